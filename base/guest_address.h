// Distinct address types so that guest-physical addresses, host pointers and
// region offsets cannot be mixed by accident.
#ifndef VMM_BASE_GUEST_ADDRESS_H_
#define VMM_BASE_GUEST_ADDRESS_H_

#include <compare>
#include <cstdint>
#include <optional>

namespace vmm {

// A guest-physical address.
class GuestAddress {
 public:
  constexpr GuestAddress() = default;
  constexpr explicit GuestAddress(uint64_t value) : value_(value) {}
  constexpr uint64_t value() const { return value_; }

  // this + offset, or nullopt if it wraps the 64-bit address space.
  constexpr std::optional<GuestAddress> CheckedAdd(uint64_t offset) const {
    uint64_t result;
    if (__builtin_add_overflow(value_, offset, &result)) return std::nullopt;
    return GuestAddress(result);
  }
  // this + offset; only for VMM-chosen constants that cannot wrap.
  constexpr GuestAddress operator+(uint64_t offset) const {
    return GuestAddress(value_ + offset);
  }
  constexpr uint64_t operator-(GuestAddress other) const { return value_ - other.value_; }
  constexpr auto operator<=>(const GuestAddress&) const = default;

 private:
  uint64_t value_ = 0;
};

}  // namespace vmm

#endif  // VMM_BASE_GUEST_ADDRESS_H_
