// A small ACPI Machine Language (AML) encoder: just the terms a VMM's DSDT
// needs (ACPI 6.5 chapter 20 for the grammar, 6.4 for resource descriptors).
// Every function returns the encoded bytes of one term; composite terms take
// their children already encoded, so a DSDT body reads like its ASL.
//
// Names and paths are VMM-chosen constants ("_SB_.PCI0", "\\_S5_", "_HID"):
// a malformed one is a bug in the VMM, not input, and aborts.
#ifndef VMM_FIRMWARE_ACPI_AML_H_
#define VMM_FIRMWARE_ACPI_AML_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace vmm::firmware::acpi::aml {

using Bytes = std::vector<uint8_t>;

// The largest body a PkgLength can describe (28 bits minus its own 4 bytes).
inline constexpr size_t kMaxPkgBody = (1u << 28) - 5;

// PkgLength for a term whose remaining bytes (after the PkgLength) are
// `body_size` long: the encoded length counts itself, so it takes 1 byte up
// to 62 body bytes, 2 up to 4093, 3 up to 1048572, else 4.
Bytes PkgLength(size_t body_size);

// A NameString: segments separated by '.', each 1-4 of [A-Z0-9_] (short
// ones padded with '_'), optionally led by '\' (root) or '^'s (parent).
// "" is the NullName.
Bytes NameString(absl::string_view path);

// Data objects.
Bytes Integer(uint64_t value);  // Zero, One, Ones or the smallest prefix
Bytes ZeroOp();
Bytes OneOp();
Bytes String(absl::string_view text);  // ASCII without NUL
// A 7-character EISA ID ("PNP0A08") as the DWord the compressed form makes.
Bytes EisaId(absl::string_view id);
Bytes Package(absl::Span<const Bytes> elements);  // at most 255 elements
Bytes Buffer(absl::Span<const uint8_t> data);

// Named objects and scopes.
Bytes Name(absl::string_view path, const Bytes& object);
Bytes Scope(absl::string_view path, absl::Span<const Bytes> terms);
Bytes Device(absl::string_view path, absl::Span<const Bytes> terms);
// Method(path, arg_count, NotSerialized) { terms }.
Bytes Method(absl::string_view path, uint8_t arg_count, absl::Span<const Bytes> terms);
Bytes Return(const Bytes& value);
// Control flow and the few expressions a GED's _EVT needs.
Bytes Arg(int n);  // Arg0..Arg6
// If (predicate) { terms }.
Bytes If(const Bytes& predicate, absl::Span<const Bytes> terms);
// LEqual (a, b): (a == b).
Bytes LEqual(const Bytes& a, const Bytes& b);
// Notify (object, value).
Bytes Notify(absl::string_view object, uint64_t value);

// ResourceTemplate () { descriptors }: a Buffer ending with an EndTag
// (checksum 0, as iasl emits).
Bytes ResourceTemplate(absl::Span<const Bytes> descriptors);

// Resource descriptors (ACPI 6.5 section 6.4).
// IO (Decode16, min, max, alignment, length).
Bytes Io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length);
// IRQNoFlags () {irq}: edge, active high, exclusive; irq 0..15.
Bytes IrqNoFlags(uint8_t irq);
// Memory32Fixed (ReadWrite or ReadOnly, base, length).
Bytes Memory32Fixed(bool read_write, uint32_t base, uint32_t length);
// Interrupt (ResourceConsumer, Edge/Level, ActiveHigh/ActiveLow,
// Exclusive/Shared) {gsi}: the extended interrupt descriptor.
enum class Trigger { kEdge, kLevel };
enum class Polarity { kActiveHigh, kActiveLow };
Bytes Interrupt(Trigger trigger, Polarity polarity, bool shared, uint32_t gsi);

// Address space descriptors, all ResourceProducer, MinFixed, MaxFixed,
// PosDecode with granularity and translation 0: what a host bridge's _CRS
// hands down. The length is max - min + 1.
Bytes WordBusNumber(uint16_t min, uint16_t max);
Bytes WordIo(uint16_t min, uint16_t max);  // EntireRange
enum class Cacheable { kNonCacheable, kCacheable, kWriteCombining, kPrefetchable };
Bytes DWordMemory(Cacheable cacheable, uint32_t min, uint32_t max);  // ReadWrite
Bytes QWordMemory(Cacheable cacheable, uint64_t min, uint64_t max);  // ReadWrite

}  // namespace vmm::firmware::acpi::aml

#endif  // VMM_FIRMWARE_ACPI_AML_H_
