// The checks behind `sluice-dump-log --verify` and `--index-sanity-check`.
//
// Each check walks bytes already mapped by the caller (segment_files.h) and returns the
// first problem it finds, or nullopt. They never write and hold no state between calls.
//
// What a valid segment is (the rules the engine keeps when it appends):
//   .log        batches back to back from byte 0 to the end of the file; each framed
//               (whole header, batch_length >= a header, all bytes present), magic 2,
//               CRC32C right, a known codec, 0 <= records_count <= last_offset_delta + 1
//               (fewer records than offsets after the log cleaner dropped some),
//               timestamps >= -1, base offset >= the base offset in the file name, and
//               base offset > the previous batch's last offset (gaps are legal). With
//               deep iteration, the records also decode (decompressing when needed) with
//               offset deltas strictly increasing within the batch's range.
//   .index      entries strictly increasing in offset and position; each entry's position
//               is the start of a batch, and its offset is that batch's last offset.
//   .timeindex  entries strictly increasing in timestamp and offset; each entry's offset
//               lies within a batch, and its timestamp is the largest batch max timestamp
//               of the segment up to and including that batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "engine/base/types.h"
#include "tools/dump_log/segment_files.h"

namespace sluice::dump_log {

struct log_check_options {
  bool deep_iteration = false;
  // Bound on one batch's decompressed records (deep iteration).
  std::size_t decompressed_bytes_max = 64 * 1024 * 1024;
};

struct log_summary {
  std::size_t batches = 0;
  std::uint64_t records = 0;
};

// Checks every batch of a .log file. `base` is the base offset from the file name, when
// known. Problems are reported at the byte position of the batch that breaks a rule.
std::optional<problem> verify_log(std::span<const std::byte> log, std::optional<offset> base,
                                  const log_check_options& options, log_summary& summary);

// Checks an offset index on its own: whole entries only, strictly increasing, and, when
// the size of the log is known, every position inside the log. Problems are reported at
// the byte position of the entry in the index file. `entries` receives the entry count.
std::optional<problem> check_offset_index(std::span<const std::byte> index, offset base,
                                          std::optional<std::uint64_t> log_bytes,
                                          std::size_t& entries);

// Checks a time index on its own: whole entries only, strictly increasing.
std::optional<problem> check_time_index(std::span<const std::byte> index, offset base,
                                        std::size_t& entries);

// Checks an offset index against its log. REQUIRES: check_offset_index passed, and
// verify_log passed for `log`.
std::optional<problem> check_offset_index_against_log(std::span<const std::byte> index, offset base,
                                                      std::span<const std::byte> log);

// Checks a time index against its log. REQUIRES: check_time_index passed, and verify_log
// passed for `log`.
std::optional<problem> check_time_index_against_log(std::span<const std::byte> index, offset base,
                                                    std::span<const std::byte> log);

}  // namespace sluice::dump_log
