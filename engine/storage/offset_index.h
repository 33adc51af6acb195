// The sparse offset index of one segment: `<base offset>.index`.
//
// File format (Kafka's, see docs/formats/offset-index.md), entries only, no header:
//
//   offset  size  field
//   0       4     relative_offset  uint32 big-endian  offset - segment base offset
//   4       4     position         uint32 big-endian  byte position of the batch in .log
//
// One entry is written for a batch each time more than index_interval_bytes of log were
// appended since the previous entry; the entry holds the batch's LAST offset and the
// batch's position, as Kafka does. Entries are strictly increasing in both fields.
//
// The file is preallocated to `index_bytes_max` (rounded down to a whole number of
// entries) and memory-mapped read-write; its logical size is the number of entries
// written. When the segment rolls or closes, trim() truncates the file to its entries.
// On open, the entry count is taken from the file size (a trimmed file) or, for an
// untrimmed file after a crash, by scanning for the end of the strictly increasing run;
// sanity_check() then verifies the whole index.
//
// Owned by one segment; touched only by the core that owns the partition.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "engine/base/result.h"
#include "engine/base/types.h"

namespace sluice {

struct offset_index_entry {
  offset last_offset;  // absolute
  file_pos position;
  friend bool operator==(const offset_index_entry&, const offset_index_entry&) = default;
};

class offset_index {
 public:
  static constexpr std::size_t entry_bytes = 8;

  // Opens or creates the index at `path` for a segment starting at `base_offset`.
  // A new or untrimmed file is (re)sized to index_bytes_max. Fails with errc::io_error /
  // errc::no_space when the file cannot be opened, sized or mapped, and with
  // errc::corrupt_batch when the file's length is not a multiple of entry_bytes.
  static result<offset_index> open(const std::string& path, offset base_offset,
                                   std::size_t index_bytes_max);

  offset_index(offset_index&& other) noexcept;
  offset_index& operator=(offset_index&& other) noexcept;
  offset_index(const offset_index&) = delete;
  offset_index& operator=(const offset_index&) = delete;
  ~offset_index();  // unmaps and closes; does not trim

  offset base_offset() const noexcept { return base_offset_; }
  std::size_t entries() const noexcept { return entries_; }
  std::size_t max_entries() const noexcept { return max_entries_; }
  bool is_full() const noexcept { return entries_ >= max_entries_; }
  std::optional<offset_index_entry> last_entry() const noexcept;
  offset_index_entry entry(std::size_t i) const noexcept;

  // Appends an entry. REQUIRES: !is_full(); last_offset and position greater than those
  // of the last entry; last_offset - base_offset fits in uint32.
  void append(offset last_offset, file_pos position) noexcept;

  // The entry with the largest offset <= target, or nullopt when target is before the
  // first entry (the caller then scans from position 0). Binary search.
  std::optional<offset_index_entry> lookup(offset target) const noexcept;

  // Removes every entry whose offset >= target (used by truncate_to and recovery).
  void truncate_to(offset target) noexcept;
  // Removes all entries.
  void reset() noexcept { truncate_to(base_offset_); }

  // Shrinks the file to the entries it holds (on roll and close). Further appends re-grow
  // it to index_bytes_max first.
  result<void> trim();

  // Flushes the mapped entries to disk (msync + fdatasync); called before the recovery
  // point moves past this segment.
  result<void> flush();

  // Checks that entries are strictly increasing and that each position is < log_bytes.
  // Returns errc::corrupt_batch with a detail saying which rule broke.
  result<void> sanity_check(std::size_t log_bytes) const noexcept;

  const std::string& path() const noexcept { return path_; }

 private:
  offset_index() = default;
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
