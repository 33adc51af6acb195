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
// The file handling is index_file's (see index_file.h): in append mode the file's length
// is set to `index_bytes_max` (rounded down to a whole number of entries) as a sparse
// file, mapped read-write, and disk blocks are reserved a chunk at a time ahead of the
// appends; its logical size is the number of entries written. When the segment rolls or
// closes, trim() truncates the file to its entries. A sealed segment opens its index in
// sealed mode: the file is read as it is and never written. On open, the entry count is
// taken from the file size (a trimmed file) or, for an untrimmed file after a crash, by
// scanning for the end of the strictly increasing run; sanity_check() then verifies the
// whole index.
//
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

struct offset_index_entry {
  offset last_offset;  // absolute
  file_pos position;
  friend bool operator==(const offset_index_entry&, const offset_index_entry&) = default;
};

class offset_index {
 public:
  static constexpr std::size_t entry_bytes = 8;

  // Opens or creates the index at `path` for a segment starting at `base_offset`.
  // In append mode a file shorter than index_bytes_max gets that length (sparse); in
  // sealed mode the file keeps its length and is never written, and is_full() is true.
  // Fails with errc::io_error / errc::no_space when the file cannot be opened, sized or
  // mapped, and with errc::corrupt_batch when the file's length is not a multiple of
  // entry_bytes.
  static result<offset_index> open(const std::string& path, offset base_offset,
                                   std::size_t index_bytes_max,
                                   index_open_mode mode = index_open_mode::append);

  offset_index(offset_index&& other) noexcept = default;
  offset_index& operator=(offset_index&& other) noexcept = default;
  offset_index(const offset_index&) = delete;
  offset_index& operator=(const offset_index&) = delete;
  ~offset_index() = default;  // unmaps and closes; does not trim

  offset base_offset() const noexcept { return base_offset_; }
  std::size_t entries() const noexcept { return file_.entries(); }
  std::size_t max_entries() const noexcept { return file_.max_entries(); }
  bool is_full() const noexcept { return file_.is_full(); }
  bool is_sealed() const noexcept { return file_.is_sealed(); }
  std::optional<offset_index_entry> last_entry() const noexcept;
  offset_index_entry entry(std::size_t i) const noexcept;

  // Appends an entry; when the disk is full the entry is skipped (logged), which only
  // makes lookups scan further. REQUIRES: !is_full(); last_offset and position greater than those
  // of the last entry; last_offset - base_offset fits in uint32.
  void append(offset last_offset, file_pos position) noexcept;

  // The entry with the largest offset <= target, or nullopt when target is before the
  // first entry (the caller then scans from position 0). Binary search.
  std::optional<offset_index_entry> lookup(offset target) const noexcept;

  // Removes every entry whose offset >= target (used by truncate_to and recovery).
  // REQUIRES: append mode.
  void truncate_to(offset target) noexcept;
  // Removes all entries.
  void reset() noexcept { truncate_to(base_offset_); }

  // Shrinks the file to the entries it holds (on roll and close). Further appends re-grow
  // it to index_bytes_max first. Does nothing in sealed mode.
  result<void> trim() { return file_.trim(); }

  // Flushes the mapped entries to disk (msync + fdatasync); called before the recovery
  // point moves past this segment.
  result<void> flush() { return file_.flush(); }

  // Checks that entries are strictly increasing and that each position is < log_bytes.
  // Returns errc::corrupt_batch with a detail saying which rule broke.
  result<void> sanity_check(std::size_t log_bytes) const noexcept;

  const std::string& path() const noexcept { return file_.path(); }

 private:
  offset_index(offset base_offset, index_file file) noexcept
      : base_offset_(base_offset), file_(std::move(file)) {}

  offset base_offset_;
  index_file file_;
};

}  // namespace sluice
