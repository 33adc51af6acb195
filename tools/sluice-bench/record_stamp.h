// record_stamp: the first 24 bytes of every record value sluice-bench produces, which
// let a consumer check delivery (--verify) and measure end-to-end latency (e2e).
//
//   offset  size  field       all big-endian
//   0       4     partition   int32   the partition the record was sent to
//   4       4     run_id      uint32  random per sluice-bench run: runs sharing a topic
//                                     are told apart
//   8       8     sequence    int64   per partition and run: 0, 1, 2, ... in send order
//   16      8     stamped_us  int64   microseconds since the epoch (CLOCK_REALTIME) when the
//                                     batch was stamped, just before its request was sent
//
// The rest of the value is filler (random capital letters, as kafka-producer-perf-test
// writes, so that compression has something realistic to do).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace sluice::bench {

struct record_stamp {
  static constexpr std::size_t bytes = 24;
  std::int32_t partition = 0;
  std::uint32_t run_id = 0;
  std::int64_t sequence = 0;
  std::int64_t stamped_us = 0;
};

// REQUIRES: value.size() >= record_stamp::bytes.
void write_stamp(std::span<std::byte> value, const record_stamp& stamp) noexcept;
// nullopt when the value is too short (or null) to hold a stamp.
std::optional<record_stamp> read_stamp(std::span<const std::byte> value) noexcept;

// CLOCK_REALTIME in microseconds: comparable between processes of one host.
std::int64_t wall_clock_us() noexcept;

}  // namespace sluice::bench
