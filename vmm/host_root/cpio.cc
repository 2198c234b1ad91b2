#include "vmm/host_root/cpio.h"

#include <sys/stat.h>

#include <utility>

#include "absl/strings/str_format.h"

namespace vmm::host_root {
namespace {

void PadTo4(std::string& out) {
  while (out.size() % 4 != 0) out.push_back('\0');
}

}  // namespace

void CpioWriter::Entry(absl::string_view path, uint32_t mode, absl::string_view data,
                       uint32_t rdev_major, uint32_t rdev_minor) {
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
  // rdevmajor, rdevminor, namesize (with its NUL), check.
  absl::StrAppendFormat(&out_, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
                        next_inode_++, mode, 0, 0, (mode & S_IFMT) == S_IFDIR ? 2 : 1, 0,
                        data.size(), 0, 0, rdev_major, rdev_minor, path.size() + 1, 0);
  out_.append(path.data(), path.size());
  out_.push_back('\0');
  PadTo4(out_);
  out_.append(data.data(), data.size());
  PadTo4(out_);
}

void CpioWriter::Directory(absl::string_view path, uint32_t mode) {
  Entry(path, S_IFDIR | mode, "", 0, 0);
}

void CpioWriter::File(absl::string_view path, absl::string_view data, uint32_t mode) {
  Entry(path, S_IFREG | mode, data, 0, 0);
}

void CpioWriter::CharDevice(absl::string_view path, uint32_t major, uint32_t minor,
                            uint32_t mode) {
  Entry(path, S_IFCHR | mode, "", major, minor);
}

std::string CpioWriter::Finish() {
  Entry("TRAILER!!!", 0, "", 0, 0);
  next_inode_ = 1;
  return std::exchange(out_, {});
}

}  // namespace vmm::host_root
