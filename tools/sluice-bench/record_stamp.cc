#include "tools/sluice-bench/record_stamp.h"

#include <time.h>

#include "engine/base/assert.h"

namespace sluice::bench {

namespace {
void put_be(std::byte* out, std::uint64_t value, int bytes) noexcept {
  for (int i = bytes - 1; i >= 0; --i) {
    out[i] = static_cast<std::byte>(value & 0xff);
    value >>= 8;
  }
}
std::uint64_t get_be(const std::byte* in, int bytes) noexcept {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | static_cast<std::uint8_t>(in[i]);
  return value;
}
}  // namespace

void write_stamp(std::span<std::byte> value, const record_stamp& stamp) noexcept {
  SLUICE_ASSERT(value.size() >= record_stamp::bytes, "a record value too short for its stamp");
  std::byte* out = value.data();
  put_be(out, static_cast<std::uint32_t>(stamp.partition), 4);
  put_be(out + 4, stamp.run_id, 4);
  put_be(out + 8, static_cast<std::uint64_t>(stamp.sequence), 8);
  put_be(out + 16, static_cast<std::uint64_t>(stamp.stamped_us), 8);
}

std::optional<record_stamp> read_stamp(std::span<const std::byte> value) noexcept {
  if (value.size() < record_stamp::bytes) return std::nullopt;
  const std::byte* in = value.data();
  record_stamp stamp;
  stamp.partition = static_cast<std::int32_t>(get_be(in, 4));
  stamp.run_id = static_cast<std::uint32_t>(get_be(in + 4, 4));
  stamp.sequence = static_cast<std::int64_t>(get_be(in + 8, 8));
  stamp.stamped_us = static_cast<std::int64_t>(get_be(in + 16, 8));
  return stamp;
}

std::int64_t wall_clock_us() noexcept {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
}

}  // namespace sluice::bench
