// Strong types for the numbers of the domain, so an offset cannot be passed where a
// file position or a partition id is expected.
//
// `strong<Tag, Rep>` carries one integer. Comparison is always allowed between values of
// the same type; arithmetic only where it means something, through named helpers below.
#pragma once

#include <fmt/format.h>

#include <compare>
#include <cstdint>
#include <functional>
#include <limits>

namespace sluice {

template <typename Tag, typename Rep>
class strong {
 public:
  using rep = Rep;
  constexpr strong() noexcept = default;
  constexpr explicit strong(Rep value) noexcept : value_(value) {}
  constexpr Rep value() const noexcept { return value_; }
  friend constexpr auto operator<=>(strong, strong) noexcept = default;

 private:
  Rep value_{};
};

// The position of a record in a partition log. Kafka's int64 offset.
struct offset_tag {};
using offset = strong<offset_tag, std::int64_t>;
// A byte position inside one file.
struct file_pos_tag {};
using file_pos = strong<file_pos_tag, std::uint64_t>;
// A partition number within a topic.
struct partition_id_tag {};
using partition_id = strong<partition_id_tag, std::int32_t>;
// The epoch of the partition leader that wrote a batch.
struct leader_epoch_tag {};
using leader_epoch = strong<leader_epoch_tag, std::int32_t>;
// Milliseconds since the Unix epoch, as in Kafka record timestamps.
struct timestamp_ms_tag {};
using timestamp_ms = strong<timestamp_ms_tag, std::int64_t>;

// Kafka's "no timestamp" value.
inline constexpr timestamp_ms no_timestamp{-1};

constexpr offset operator+(offset o, std::int64_t delta) noexcept {
  return offset(o.value() + delta);
}
constexpr offset operator-(offset o, std::int64_t delta) noexcept {
  return offset(o.value() - delta);
}
// The number of offsets between two offsets.
constexpr std::int64_t operator-(offset a, offset b) noexcept {
  return a.value() - b.value();
}

constexpr file_pos operator+(file_pos p, std::uint64_t bytes) noexcept {
  return file_pos(p.value() + bytes);
}
// The number of bytes between two positions; `a` must not be before `b`.
constexpr std::uint64_t operator-(file_pos a, file_pos b) noexcept {
  return a.value() - b.value();
}

}  // namespace sluice

template <typename Tag, typename Rep>
struct std::hash<sluice::strong<Tag, Rep>> {
  std::size_t operator()(sluice::strong<Tag, Rep> v) const noexcept {
    return std::hash<Rep>()(v.value());
  }
};

template <typename Tag, typename Rep>
struct fmt::formatter<sluice::strong<Tag, Rep>> : fmt::formatter<Rep> {
  auto format(sluice::strong<Tag, Rep> v, fmt::format_context& ctx) const {
    return fmt::formatter<Rep>::format(v.value(), ctx);
  }
};
