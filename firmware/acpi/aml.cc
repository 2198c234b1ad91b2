#include "firmware/acpi/aml.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace vmm::firmware::acpi::aml {
namespace {

// Opcodes (ACPI 6.5 section 20.3).
constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kOnesOp = 0xff;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a;
constexpr uint8_t kWordPrefix = 0x0b;
constexpr uint8_t kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d;
constexpr uint8_t kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kMethodOp = 0x14;
constexpr uint8_t kExtOpPrefix = 0x5b;
constexpr uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
constexpr uint8_t kReturnOp = 0xa4;
constexpr uint8_t kIfOp = 0xa0;
constexpr uint8_t kLEqualOp = 0x93;
constexpr uint8_t kNotifyOp = 0x86;
constexpr uint8_t kArg0Op = 0x68;
constexpr uint8_t kDualNamePrefix = 0x2e;
constexpr uint8_t kMultiNamePrefix = 0x2f;
constexpr uint8_t kRootChar = '\\';
constexpr uint8_t kParentPrefixChar = '^';

// Resource descriptor tags (ACPI 6.5 section 6.4).
constexpr uint8_t kIrqTag = 0x22;             // small, 2 data bytes (no flags)
constexpr uint8_t kIoTag = 0x47;              // small, 7 data bytes
constexpr uint8_t kEndTag = 0x79;             // small, 1 data byte
constexpr uint8_t kMemory32FixedTag = 0x86;   // large
constexpr uint8_t kDWordAddressTag = 0x87;    // large
constexpr uint8_t kWordAddressTag = 0x88;     // large
constexpr uint8_t kExtendedIrqTag = 0x89;     // large
constexpr uint8_t kQWordAddressTag = 0x8a;    // large

constexpr uint8_t kResourceTypeMemory = 0;
constexpr uint8_t kResourceTypeIo = 1;
constexpr uint8_t kResourceTypeBus = 2;
// ResourceProducer (bit 0 clear), PosDecode (bit 1 clear), MinFixed, MaxFixed.
constexpr uint8_t kProducerMinMaxFixed = (1 << 2) | (1 << 3);
constexpr uint8_t kIoEntireRange = 3;
constexpr uint8_t kMemoryReadWrite = 1;

[[noreturn]] void InvalidAml(absl::string_view what, absl::string_view value) {
  std::fprintf(stderr, "AML builder: invalid %.*s \"%.*s\"\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(value.size()), value.data());
  std::abort();
}

void Append(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }

template <typename T>
void AppendLe(Bytes& out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

void AppendNameSeg(Bytes& out, absl::string_view seg) {
  if (seg.empty() || seg.size() > 4) InvalidAml("name segment", seg);
  for (size_t i = 0; i < seg.size(); ++i) {
    const char c = seg[i];
    const bool ok = (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) InvalidAml("name segment", seg);
    out.push_back(static_cast<uint8_t>(c));
  }
  for (size_t i = seg.size(); i < 4; ++i) out.push_back('_');
}

// opcode(s) PkgLength body.
Bytes WithPkgLength(std::initializer_list<uint8_t> opcode, const Bytes& body) {
  Bytes out(opcode);
  Append(out, PkgLength(body.size()));
  Append(out, body);
  return out;
}

Bytes Concat(absl::Span<const Bytes> parts) {
  Bytes out;
  for (const Bytes& part : parts) Append(out, part);
  return out;
}

Bytes NamedScope(std::initializer_list<uint8_t> opcode, absl::string_view path,
                 absl::Span<const Bytes> terms) {
  Bytes body = NameString(path);
  Append(body, Concat(terms));
  return WithPkgLength(opcode, body);
}

// The fields after the type-specific flags of an address space descriptor.
template <typename T>
Bytes AddressSpace(uint8_t tag, uint8_t type, uint8_t type_flags, T min, T max) {
  Bytes out = {tag};
  AppendLe<uint16_t>(out, 3 + 5 * sizeof(T));  // type, flags, type flags, 5 fields
  out.push_back(type);
  out.push_back(kProducerMinMaxFixed);
  out.push_back(type_flags);
  AppendLe<T>(out, 0);  // granularity
  AppendLe<T>(out, min);
  AppendLe<T>(out, max);
  AppendLe<T>(out, 0);  // translation
  AppendLe<T>(out, static_cast<T>(max - min + 1));
  return out;
}

uint8_t MemoryFlags(Cacheable cacheable) {
  return static_cast<uint8_t>(kMemoryReadWrite | (static_cast<uint8_t>(cacheable) << 1));
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Bytes PkgLength(size_t body_size) {
  if (body_size > kMaxPkgBody) InvalidAml("package length", std::to_string(body_size));
  if (body_size + 1 <= 0x3f) return {static_cast<uint8_t>(body_size + 1)};
  // Lead byte: bits 7-6 count the following bytes, bits 3-0 are the low
  // nibble of the length; the following bytes carry the rest, 8 bits each.
  size_t extra = body_size + 2 <= 0xfff ? 1 : body_size + 3 <= 0xfffff ? 2 : 3;
  const size_t length = body_size + 1 + extra;
  Bytes out = {static_cast<uint8_t>((extra << 6) | (length & 0xf))};
  for (size_t i = 0; i < extra; ++i) out.push_back(static_cast<uint8_t>(length >> (4 + 8 * i)));
  return out;
}

Bytes NameString(absl::string_view path) {
  Bytes out;
  if (!path.empty() && path.front() == kRootChar) {
    out.push_back(kRootChar);
    path.remove_prefix(1);
  } else {
    while (!path.empty() && path.front() == kParentPrefixChar) {
      out.push_back(kParentPrefixChar);
      path.remove_prefix(1);
    }
  }
  std::vector<absl::string_view> segs;
  while (!path.empty()) {
    size_t dot = path.find('.');
    segs.push_back(path.substr(0, dot));
    if (dot == absl::string_view::npos) break;
    path.remove_prefix(dot + 1);
    if (path.empty()) InvalidAml("name path ending in '.'", segs.back());
  }
  if (segs.size() > 255) InvalidAml("name path", "more than 255 segments");
  if (segs.empty()) {
    out.push_back(kZeroOp);  // NullName
  } else if (segs.size() == 2) {
    out.push_back(kDualNamePrefix);
  } else if (segs.size() > 2) {
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(segs.size()));
  }
  for (absl::string_view seg : segs) AppendNameSeg(out, seg);
  return out;
}

Bytes Integer(uint64_t value) {
  if (value == 0) return {kZeroOp};
  if (value == 1) return {kOneOp};
  if (value == ~uint64_t{0}) return {kOnesOp};
  Bytes out;
  if (value <= 0xff) {
    out.push_back(kBytePrefix);
    AppendLe<uint8_t>(out, static_cast<uint8_t>(value));
  } else if (value <= 0xffff) {
    out.push_back(kWordPrefix);
    AppendLe<uint16_t>(out, static_cast<uint16_t>(value));
  } else if (value <= 0xffff'ffff) {
    out.push_back(kDWordPrefix);
    AppendLe<uint32_t>(out, static_cast<uint32_t>(value));
  } else {
    out.push_back(kQWordPrefix);
    AppendLe<uint64_t>(out, value);
  }
  return out;
}

Bytes ZeroOp() { return {kZeroOp}; }
Bytes OneOp() { return {kOneOp}; }

Bytes String(absl::string_view text) {
  Bytes out = {kStringPrefix};
  for (char c : text) {
    if (c <= 0 || static_cast<unsigned char>(c) > 0x7f) InvalidAml("string", text);
    out.push_back(static_cast<uint8_t>(c));
  }
  out.push_back(0);
  return out;
}

Bytes EisaId(absl::string_view id) {
  if (id.size() != 7) InvalidAml("EISA ID", id);
  uint32_t value = 0;
  for (size_t i = 0; i < 3; ++i) {
    if (id[i] < 'A' || id[i] > 'Z') InvalidAml("EISA ID", id);
    value = (value << 5) | static_cast<uint32_t>(id[i] - 0x40);
  }
  for (size_t i = 3; i < 7; ++i) {
    int digit = HexDigit(id[i]);
    if (digit < 0) InvalidAml("EISA ID", id);
    value = (value << 4) | static_cast<uint32_t>(digit);
  }
  // The 32 bits are stored big-endian: byte-swap into the integer AML reads.
  Bytes out = {kDWordPrefix};
  AppendLe<uint32_t>(out, __builtin_bswap32(value));
  return out;
}

Bytes Package(absl::Span<const Bytes> elements) {
  if (elements.size() > 255) InvalidAml("package", "more than 255 elements");
  Bytes body = {static_cast<uint8_t>(elements.size())};
  Append(body, Concat(elements));
  return WithPkgLength({kPackageOp}, body);
}

Bytes Buffer(absl::Span<const uint8_t> data) {
  Bytes body = Integer(data.size());
  body.insert(body.end(), data.begin(), data.end());
  return WithPkgLength({kBufferOp}, body);
}

Bytes Name(absl::string_view path, const Bytes& object) {
  Bytes out = {kNameOp};
  Append(out, NameString(path));
  Append(out, object);
  return out;
}

Bytes Scope(absl::string_view path, absl::Span<const Bytes> terms) {
  return NamedScope({kScopeOp}, path, terms);
}

Bytes Device(absl::string_view path, absl::Span<const Bytes> terms) {
  return NamedScope({kExtOpPrefix, kDeviceOp}, path, terms);
}

Bytes Method(absl::string_view path, uint8_t arg_count, absl::Span<const Bytes> terms) {
  if (arg_count > 7) InvalidAml("method argument count", std::to_string(arg_count));
  Bytes body = NameString(path);
  body.push_back(arg_count);  // NotSerialized, SyncLevel 0
  Append(body, Concat(terms));
  return WithPkgLength({kMethodOp}, body);
}

Bytes Return(const Bytes& value) {
  Bytes out = {kReturnOp};
  Append(out, value);
  return out;
}

Bytes Arg(int n) {
  if (n < 0 || n > 6) InvalidAml("method argument", std::to_string(n));
  return {static_cast<uint8_t>(kArg0Op + n)};
}

Bytes If(const Bytes& predicate, absl::Span<const Bytes> terms) {
  Bytes body = predicate;
  Append(body, Concat(terms));
  return WithPkgLength({kIfOp}, body);
}

Bytes LEqual(const Bytes& a, const Bytes& b) {
  Bytes out = {kLEqualOp};
  Append(out, a);
  Append(out, b);
  return out;
}

Bytes Notify(absl::string_view object, uint64_t value) {
  Bytes out = {kNotifyOp};
  Append(out, NameString(object));
  Append(out, Integer(value));
  return out;
}

Bytes ResourceTemplate(absl::Span<const Bytes> descriptors) {
  Bytes data = Concat(descriptors);
  data.push_back(kEndTag);
  data.push_back(0);  // checksum 0: "the descriptors are to be treated as valid"
  return Buffer(data);
}

Bytes Io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length) {
  Bytes out = {kIoTag, 0x01 /* Decode16 */};
  AppendLe(out, min);
  AppendLe(out, max);
  out.push_back(alignment);
  out.push_back(length);
  return out;
}

Bytes IrqNoFlags(uint8_t irq) {
  if (irq > 15) InvalidAml("IRQNoFlags IRQ", std::to_string(irq));
  Bytes out = {kIrqTag};
  AppendLe<uint16_t>(out, static_cast<uint16_t>(1u << irq));
  return out;
}

Bytes Memory32Fixed(bool read_write, uint32_t base, uint32_t length) {
  Bytes out = {kMemory32FixedTag};
  AppendLe<uint16_t>(out, 9);
  out.push_back(read_write ? 1 : 0);
  AppendLe(out, base);
  AppendLe(out, length);
  return out;
}

Bytes Interrupt(Trigger trigger, Polarity polarity, bool shared, uint32_t gsi) {
  Bytes out = {kExtendedIrqTag};
  AppendLe<uint16_t>(out, 6);
  out.push_back(static_cast<uint8_t>(1 /* ResourceConsumer */ |
                                     (trigger == Trigger::kEdge ? 1 << 1 : 0) |
                                     (polarity == Polarity::kActiveLow ? 1 << 2 : 0) |
                                     (shared ? 1 << 3 : 0)));
  out.push_back(1);  // one interrupt
  AppendLe(out, gsi);
  return out;
}

Bytes WordBusNumber(uint16_t min, uint16_t max) {
  return AddressSpace<uint16_t>(kWordAddressTag, kResourceTypeBus, 0, min, max);
}

Bytes WordIo(uint16_t min, uint16_t max) {
  return AddressSpace<uint16_t>(kWordAddressTag, kResourceTypeIo, kIoEntireRange, min, max);
}

Bytes DWordMemory(Cacheable cacheable, uint32_t min, uint32_t max) {
  return AddressSpace<uint32_t>(kDWordAddressTag, kResourceTypeMemory, MemoryFlags(cacheable), min,
                                max);
}

Bytes QWordMemory(Cacheable cacheable, uint64_t min, uint64_t max) {
  return AddressSpace<uint64_t>(kQWordAddressTag, kResourceTypeMemory, MemoryFlags(cacheable), min,
                                max);
}

}  // namespace vmm::firmware::acpi::aml
