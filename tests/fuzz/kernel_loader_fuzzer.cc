// Fuzzes the kernel loaders: the whole input (after one mode byte) is a kernel image given
// to LoadKernelImage (bzImage / ELF / PVH detection, with and without the VMM decompressing
// a bzImage's payload), or to the payload finder and decompressors directly.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <vector>

#include "arch/x86_64/loader/boot_params.h"
#include "arch/x86_64/loader/bzimage.h"
#include "arch/x86_64/loader/bzimage_payload.h"
#include "arch/x86_64/loader/cmdline.h"
#include "arch/x86_64/loader/elf.h"
#include "arch/x86_64/loader/initrd.h"
#include "arch/x86_64/loader/kernel_loader.h"
#include "arch/x86_64/loader/pvh_start_info.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// What follows a successful load: the header-driven command line, initrd placement and
// boot_params / start_info, as the VMM does it.
void WriteBootData(const vmm::GuestMemory& mem, const vmm::x86_64::LoadedKernel& kernel,
                   uint64_t initrd_size) {
  using namespace vmm;
  using namespace vmm::x86_64;
  auto cmdline = WriteCmdline(mem, kernel, "console=ttyS0 reboot=k panic=-1");
  if (!cmdline.ok()) return;
  (void)CmdlineCapacity(kernel);
  (void)InitrdEndLimit(kernel);
  (void)PlaceInitrd(mem, kernel, initrd_size);
  const E820Entry e820[] = {{GuestAddress(0), 0x9fc00, E820Type::kRam},
                            {GuestAddress(0x100000), (32ull << 20) - 0x100000, E820Type::kRam}};
  BootInfo info{.cmdline = *cmdline, .initrd = std::nullopt, .e820 = e820, .acpi_rsdp_addr = 0};
  if (kernel.pvh_entry) {
    (void)WritePvhStartInfo(mem, info);
  } else {
    (void)WriteBootParams(mem, kernel, info);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmm;
  using namespace vmm::x86_64;
  // 32 MiB: room for a bzImage at 1 MiB and small ELF segments; never cleared (loaders
  // must not depend on RAM contents).
  static const GuestMemory mem = vmm::fuzz::MakeMemory(32ull << 20);
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  absl::Span<const uint8_t> image(data + 1, size - 1);
  switch (mode % 4) {
    case 0:
    case 1: {
      auto kernel = LoadKernelImage(mem, image, LoadOptions{.decompress_bzimage = mode % 4 == 1});
      if (kernel.ok()) WriteBootData(mem, *kernel, uint64_t{mode} << 16);
      break;
    }
    case 2:
      (void)FindPvhEntry(image);
      (void)ParseBzImage(image);
      if (auto payload = FindBzImagePayload(image); payload.ok()) {
        (void)DecompressPayload(*payload, 16ull << 20);
      }
      break;
    default:
      // A bare compressed stream (the fuzzer finds gzip/xz headers from the seeds).
      (void)IdentifyPayloadFormat(image);
      (void)DecompressPayload(image, 1ull << 20);
      break;
  }
  return 0;
}
