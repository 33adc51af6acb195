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
// Preallocated, memory-mapped, trimmed, recovered and checked exactly like offset_index.
// Owned by one segment; touched only by the core that owns the partition.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "engine/base/result.h"
#include "engine/base/types.h"

namespace sluice {

struct time_index_entry {
  timestamp_ms timestamp;
  offset last_offset;  // absolute
  friend bool operator==(const time_index_entry&, const time_index_entry&) = default;
};

class time_index {
 public:
  static constexpr std::size_t entry_bytes = 12;

  static result<time_index> open(const std::string& path, offset base_offset,
                                 std::size_t index_bytes_max);

  time_index(time_index&& other) noexcept;
  time_index& operator=(time_index&& other) noexcept;
  time_index(const time_index&) = delete;
  time_index& operator=(const time_index&) = delete;
  ~time_index();

  offset base_offset() const noexcept { return base_offset_; }
  std::size_t entries() const noexcept { return entries_; }
  std::size_t max_entries() const noexcept { return max_entries_; }
  bool is_full() const noexcept { return entries_ >= max_entries_; }
  std::optional<time_index_entry> last_entry() const noexcept;
  time_index_entry entry(std::size_t i) const noexcept;

  // Appends an entry when `timestamp` is larger than the last entry's (otherwise does
  // nothing and returns false). REQUIRES: !is_full(); offset larger than the last entry's.
  bool maybe_append(timestamp_ms timestamp, offset last_offset) noexcept;

  // The entry with the largest timestamp <= target, or nullopt when target is before the
  // first entry (the caller then scans the segment from its start).
  std::optional<time_index_entry> lookup(timestamp_ms target) const noexcept;

  // Removes every entry whose offset >= target.
  void truncate_to(offset target) noexcept;
  void reset() noexcept { truncate_to(base_offset_); }

  result<void> trim();
  result<void> flush();
  // Strictly increasing timestamps and offsets, every offset < `next_offset`.
  result<void> sanity_check(offset next_offset) const noexcept;

  const std::string& path() const noexcept { return path_; }

 private:
  time_index() = default;
  result<void> resize(std::size_t file_bytes);
  void close() noexcept;

  std::string path_;
  offset base_offset_;
  int fd_ = -1;
  std::byte* map_ = nullptr;
  std::size_t map_bytes_ = 0;
  std::size_t entries_ = 0;
  std::size_t max_entries_ = 0;
  std::size_t index_bytes_max_ = 0;
};

}  // namespace sluice
