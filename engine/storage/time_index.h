// The sparse time index of one segment: `<base offset>.timeindex`.
//
// File format (Kafka's, see docs/formats/time-index.md), entries only, no header:
//
//   offset  size  field
//   0       8     timestamp        int64 big-endian   largest timestamp so far in the segment
//   8       4     relative_offset  uint32 big-endian  offset of a batch holding it - base
//
// An entry is written at the same cadence as the offset index, and only when the
// segment's largest timestamp grew since the last entry, so timestamps and offsets are
// both strictly increasing. When the segment rolls, an entry for the segment's final
// largest timestamp is added if it is not there yet (Kafka does the same).
//
// The file is handled by index_file (see index_file.h) exactly as for offset_index: sparse
// preallocation with disk blocks reserved a chunk at a time in append mode, read as it is
// in sealed mode; trimmed, recovered and checked the same way.
// Owned by one segment; touched only by the core that owns the partition.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "engine/base/result.h"
#include "engine/base/types.h"
#include "engine/storage/index_file.h"

namespace sluice {

struct time_index_entry {
  timestamp_ms timestamp;
  offset last_offset;  // absolute
  friend bool operator==(const time_index_entry&, const time_index_entry&) = default;
};

class time_index {
 public:
  static constexpr std::size_t entry_bytes = 12;

  // As offset_index::open: append mode grows a shorter file to index_bytes_max (sparse);
  // sealed mode reads the file as it is, never writes it, and is_full() is true.
  static result<time_index> open(const std::string& path, offset base_offset,
                                 std::size_t index_bytes_max,
                                 index_open_mode mode = index_open_mode::append);

  time_index(time_index&& other) noexcept = default;
  time_index& operator=(time_index&& other) noexcept = default;
  time_index(const time_index&) = delete;
  time_index& operator=(const time_index&) = delete;
  ~time_index() = default;

  offset base_offset() const noexcept { return base_offset_; }
  std::size_t entries() const noexcept { return file_.entries(); }
  std::size_t max_entries() const noexcept { return file_.max_entries(); }
  bool is_full() const noexcept { return file_.is_full(); }
  bool is_sealed() const noexcept { return file_.is_sealed(); }
  std::optional<time_index_entry> last_entry() const noexcept;
  time_index_entry entry(std::size_t i) const noexcept;

  // Appends an entry when `timestamp` is larger than the last entry's (otherwise does
  // nothing and returns false); also returns false when the disk is full and the entry is
  // skipped (logged). REQUIRES: !is_full(); offset larger than the last entry's.
  bool maybe_append(timestamp_ms timestamp, offset last_offset) noexcept;

  // The entry with the largest timestamp <= target, or nullopt when target is before the
  // first entry (the caller then scans the segment from its start).
  std::optional<time_index_entry> lookup(timestamp_ms target) const noexcept;

  // Removes every entry whose offset >= target. REQUIRES: append mode.
  void truncate_to(offset target) noexcept;
  void reset() noexcept { truncate_to(base_offset_); }

  result<void> trim() { return file_.trim(); }
  result<void> flush() { return file_.flush(); }
  // Strictly increasing timestamps and offsets, every offset < `next_offset`.
  result<void> sanity_check(offset next_offset) const noexcept;

  const std::string& path() const noexcept { return file_.path(); }

 private:
  time_index(offset base_offset, index_file file) noexcept
      : base_offset_(base_offset), file_(std::move(file)) {}

  offset base_offset_;
  index_file file_;
};

}  // namespace sluice
