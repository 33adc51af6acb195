// The C++ types that generated messages use for Kafka field types, and the helpers that
// generated code shares.
//
//   Kafka type          C++ type
//   int8..int64         std::int8_t .. std::int64_t
//   uint16, uint32      std::uint16_t, std::uint32_t
//   varint, varlong     std::int32_t, std::int64_t
//   float64             double
//   bool                bool
//   uuid                protocol::uuid
//   string              std::string_view       (points into the buffer it was read from)
//   bytes, records      protocol::bytes_view   (std::span<const std::byte>, likewise)
//   []T                 std::vector<T>
//   nullable in any version: std::optional<...> around the type above.
//
// Views, not owned strings, in both directions: see net/protocol/README.md, "Storage".
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace sluice::protocol {

using bytes_view = std::span<const std::byte>;

// A Kafka UUID: 16 bytes, most significant byte first. All zeros is Kafka's "zero UUID".
struct uuid {
  std::array<std::uint8_t, 16> bytes{};
  friend bool operator==(const uuid&, const uuid&) = default;
};

// What visit_fields() tells a visitor about one field: the facts of the schema.
// A version bound of 32767 means "and every later version"; -1 means "none".
struct field_info {
  const char* name;
  std::int16_t versions_low;
  std::int16_t versions_high;
  std::int16_t nullable_low;
  std::int16_t nullable_high;
  // The tag number of a tagged field, -1 for a regular field.
  std::int32_t tag;

  constexpr bool present_in(std::int16_t version) const noexcept {
    return versions_low <= version && version <= versions_high;
  }
  constexpr bool nullable_in(std::int16_t version) const noexcept {
    return nullable_low >= 0 && nullable_low <= version && version <= nullable_high;
  }
};

// Field equality for generated operator== and for "is this the default value", needed
// because std::span has no operator==. Spans compare by content.
template <typename T>
bool field_equal(const T& a, const T& b) {
  return a == b;
}
inline bool field_equal(bytes_view a, bytes_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}
template <typename T>
bool field_equal(const std::optional<T>& a, const std::optional<T>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a.has_value() || field_equal(*a, *b);
}
template <typename T>
bool field_equal(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!field_equal(a[i], b[i])) return false;
  }
  return true;
}

// How many elements to reserve for an array of `count` elements read from the wire. The
// count is already bounded by the bytes left, but an element in memory can be much
// larger than its smallest encoding, so a large count grows the vector as elements
// actually decode instead of reserving everything up front.
constexpr std::size_t reserve_hint(std::int32_t count) noexcept {
  constexpr std::int32_t reserve_max = 1024;
  return count <= 0 ? 0 : static_cast<std::size_t>(std::min(count, reserve_max));
}

}  // namespace sluice::protocol
