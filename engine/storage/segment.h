// One segment of a partition log: `<base offset>.log` plus its `.index` and `.timeindex`.
//
// The .log file holds RecordBatch v2 batches back to back, exactly as producers sent
// them except for the base offset and leader epoch the log assigned (see
// docs/formats/segment.md). The segment keeps the bookkeeping of appends (size, next
// offset, largest timestamp, sparse index entries) and serves reads from a read-only
// memory mapping of the .log file. It does no write I/O itself: partition_log queues the
// batch bytes and writes them through io_uring, then tells the segment how far the file
// is written.
//
// Lifecycle: created (new, empty) or opened (existing files) by partition_log; files may
// be closed when idle and reopened on demand (ensure_open); removed by retention or
// truncation. Owned by one partition_log; touched only by the core that owns it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "engine/base/result.h"
#include "engine/base/types.h"
#include "engine/io/file.h"
#include "engine/storage/log_config.h"
#include "engine/storage/offset_index.h"
#include "engine/storage/record_batch.h"
#include "engine/storage/time_index.h"

namespace sluice {

// The file name of a segment file: 20-digit zero-padded base offset plus suffix.
std::string segment_file_name(offset base_offset, const char* suffix);
// Parses "00000000000000000042.log" into 42; nullopt for any other name.
std::optional<offset> parse_segment_file_name(const std::string& name, const char* suffix);

// What recovery found in one segment.
struct segment_recovery {
  std::uint64_t valid_bytes = 0;      // bytes of valid batches from the start
  std::uint64_t truncated_bytes = 0;  // bytes cut off after them
  std::size_t batches = 0;
  const char* stop_reason = nullptr;  // why the scan stopped before the end, or nullptr
};

class segment {
 public:
  // Creates a new, empty segment's files in `dir`.
  static result<std::unique_ptr<segment>> create(const std::string& dir, offset base_offset,
                                                 const log_config& config);
  // Opens an existing segment. Sizes it from its files; its indexes are trusted if they
  // pass their sanity checks, and rebuilt from the log otherwise. Does not validate
  // batches (recover() does).
  static result<std::unique_ptr<segment>> open(const std::string& dir, offset base_offset,
                                               const log_config& config, bool active);

  segment(const segment&) = delete;
  segment& operator=(const segment&) = delete;
  ~segment();

  offset base_offset() const noexcept { return base_offset_; }
  // Bytes appended (queued or written).
  std::uint64_t size_bytes() const noexcept { return size_bytes_; }
  // Bytes known to be in the file.
  std::uint64_t written_bytes() const noexcept { return written_bytes_; }
  // The offset after the last appended batch; base_offset when empty.
  offset next_offset() const noexcept { return next_offset_; }
  bool empty() const noexcept { return size_bytes_ == 0; }
  // The largest batch max_timestamp in the segment, and the last offset of the batch
  // holding it; no_timestamp when empty.
  timestamp_ms max_timestamp() const noexcept { return max_timestamp_; }
  offset max_timestamp_offset() const noexcept { return max_timestamp_offset_; }
  // Wall-clock time of the first append to this segment (for segment.ms), or nullopt.
  std::optional<timestamp_ms> first_append_wall_ms() const noexcept { return first_append_wall_; }

  // Whether another batch of `bytes` would overflow the segment or its indexes.
  bool needs_roll_for(std::uint64_t bytes, std::int32_t last_offset_delta,
                      const log_config& config) const noexcept;

  // Files: open on demand, closable when idle.
  bool is_open() const noexcept { return log_file_.is_open(); }
  result<void> ensure_open();
  // Trims the indexes and closes all files. REQUIRES: no write in flight.
  result<void> close_files();
  int log_fd() const noexcept { return log_file_.get(); }

  // Records a batch appended at size_bytes() (queued for writing by the log): advances
  // the size and next offset, and adds index entries when due.
  void note_append(const batch_header& header, timestamp_ms wall_now);
  // The file now holds `bytes` bytes.
  void note_written(std::uint64_t bytes) noexcept;
  // Bytes made durable by fdatasync.
  std::uint64_t synced_bytes() const noexcept { return synced_bytes_; }
  void note_synced(std::uint64_t bytes) noexcept {
    if (bytes > synced_bytes_) synced_bytes_ = bytes;
  }
  // Forgets appends that were never written (a failed write): cuts the file back to
  // written_bytes() and rebuilds the indexes over what remains.
  result<void> abandon_unwritten();
  // Makes a sealed segment the active one again (after truncate_to removed later ones).
  result<void> reactivate(const log_config& config);

  // The position of the first batch whose last offset is >= target, among the first
  // `readable_bytes` of the file; nullopt when there is none.
  std::optional<file_pos> find_batch(offset target, std::uint64_t readable_bytes) const noexcept;
  // The header of the batch at `position` (which must be the start of a batch that lies
  // within written_bytes()).
  batch_header header_at(file_pos position) const noexcept;
  // Mapped bytes [position, position + length): REQUIRES within written_bytes().
  std::span<const std::byte> bytes(file_pos position, std::uint64_t length) const noexcept;
  const std::shared_ptr<mapped_file>& mapping() const noexcept { return mapping_; }

  // The first batch whose max timestamp is >= target; nullopt if none.
  std::optional<file_pos> find_timestamp(timestamp_ms target, std::uint64_t readable_bytes) const;

  // Cuts the segment so that it holds only batches with last offset < target.
  // REQUIRES: no write in flight.
  result<void> truncate_to(offset target);

  // Validates every batch from the start, rebuilds both indexes, and cuts off everything
  // from the first invalid byte on.
  // `next_segment_base`, when there is a next segment, bounds this one's offsets.
  result<segment_recovery> recover(const log_config& config,
                                   std::optional<offset> next_segment_base = std::nullopt);

  // Trims the indexes to their entries (on roll and close).
  result<void> seal();
  // The segment stops being the active one: no more appends; later mappings are sized to
  // the file.
  result<void> set_sealed();
  bool is_active() const noexcept { return active_; }

  // Deletes the segment's files. The object must not be used afterwards, except to be
  // destroyed; readers holding mapping() keep reading the unlinked file, and a sync in
  // flight keeps the (unlinked) file open until the segment is destroyed.
  result<void> remove_files();
  // As remove_files(), but the .log -- which may be a gigabyte, whose unlink takes tens of
  // milliseconds -- is only renamed to `<name>.log.deleted` (as Kafka renames a segment it
  // deletes); the caller unlinks that file later, off the reactor thread, and a start-up
  // removes such files left by a crash. Returns the renamed path.
  result<std::string> remove_files_deferred();
  static constexpr const char* deleted_suffix = ".deleted";

  // A read-only mapping of the first size_bytes() of a sealed segment's .log, for the log
  // cleaner's thread: the current mapping when the files are open, otherwise a fresh
  // one made without opening the indexes (the descriptor is closed at once; the mapping
  // stays valid). nullptr for an empty segment. Sealed bytes never change in place (only
  // truncate_to could cut them, and the log refuses that while a cleaning reads them).
  result<std::shared_ptr<const mapped_file>> map_for_cleaning() const;
  // Rebuilds both indexes from the .log as it is now (after the log cleaner replaced the
  // file), trims and syncs them.
  result<void> rebuild_indexes_from_log();
  // The segment's files were replaced by a cleaned copy under the same names: this object
  // must not be used any more, and must not remove the (new) files either. Readers holding
  // mapping() keep reading the old, unlinked file.
  void mark_replaced() noexcept { removed_ = true; }

  const std::string& log_path() const noexcept { return log_path_; }
  // remove_files() was called: nothing is left to sync or read.
  bool removed() const noexcept { return removed_; }
  // Makes sure the mapping covers `bytes` more than size_bytes(), remapping if the
  // limits grew since it was made.
  result<void> reserve_mapping(std::uint64_t bytes);

 private:
  segment(std::string dir, offset base_offset, const log_config& config);
  result<void> open_files(bool create);
  // Whether the batch can come next in this segment: its offsets follow the ones before
  // it and fit the indexes' 32-bit relative offsets.
  bool holds_offsets_of(const batch_header& header) const noexcept;
  result<void> map_log();
  template <typename Index>
  result<Index> open_index(const std::string& path, index_open_mode mode);
  result<void> rebuild_indexes(std::uint64_t log_bytes);
  result<void> fill_indexes(std::uint64_t log_bytes);
  void index_batch(const batch_header& header, file_pos position);
  void add_final_time_entry() noexcept;

  std::string dir_;
  std::string log_path_;
  std::string offset_index_path_;
  std::string time_index_path_;
  offset base_offset_;
  std::uint64_t map_bytes_ = 0;
  bool active_ = true;
  bool indexes_need_rebuild_ = false;
  bool removed_ = false;
  std::size_t index_bytes_max_ = 0;
  std::size_t index_interval_bytes_ = 0;

  file_handle log_file_;
  std::shared_ptr<mapped_file> mapping_;
  std::optional<offset_index> offset_index_;
  std::optional<time_index> time_index_;

  std::uint64_t size_bytes_ = 0;
  std::uint64_t written_bytes_ = 0;
  std::uint64_t synced_bytes_ = 0;
  std::uint64_t bytes_since_index_entry_ = 0;
  offset next_offset_;
  timestamp_ms max_timestamp_ = no_timestamp;
  offset max_timestamp_offset_;
  std::optional<timestamp_ms> first_append_wall_;
};

}  // namespace sluice
