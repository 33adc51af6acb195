// The append-only log of one partition: `<data-dir>/<topic>-<partition>/`.
//
// A sorted run of segments; the last is the active one that appends go to. The log
// validates each batch, assigns its offsets by rewriting its base offset and leader
// epoch in place, and queues the caller's bytes for writing -- no copy. Queued batches
// are written through io_uring, as many as are waiting in one vectored write per
// segment, one write in flight at a time; that is the write half of group commit. After
// each write, the flush policy decides whether to fdatasync; at most one sync is in
// flight, covering all that was written when it started: the other half.
//
// Three positions describe the tail, in this order:
//   flushed_end <= written_end <= log_end_offset
// log_end_offset is the next offset to assign; written_end bounds what reads see (the
// bytes are in the page cache); flushed_end bounds what survives a crash. A listener
// hears when written_end and flushed_end move, and when queued appends fail.
//
// Buffers passed to append() belong to the caller and must stay untouched until
// written_end passes the batch's last offset (or the append is reported failed).
//
// Owned by one core (by log_manager); never touched from another thread. It must be
// drained (idle()) before it is destroyed.
#pragma once

#include <sys/uio.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/result.h"
#include "engine/base/types.h"
#include "engine/io/disk.h"
#include "engine/storage/log_config.h"
#include "engine/storage/segment.h"

namespace sluice {

class log_listener {
 public:
  // Data below `written_end` is written and readable.
  virtual void on_written(offset written_end) noexcept = 0;
  // Data below `flushed_end` is durable.
  virtual void on_flushed(offset flushed_end) noexcept = 0;
  // Appends at or after `from` will never be acknowledged, because of `failure`. After a
  // failed write they were dropped and the log end offset went back to `from`; after a
  // failed sync the partition is offline (failed()) and nothing more becomes durable.
  virtual void on_append_failed(offset from, const error& failure) noexcept = 0;

 protected:
  ~log_listener() = default;
};

struct append_info {
  offset base_offset;
  offset last_offset;
  timestamp_ms max_timestamp;
  std::int32_t records = 0;
};

// Whole batches, as a view into a segment mapping that `mapping` keeps alive.
struct read_result {
  std::shared_ptr<const mapped_file> mapping;
  std::span<const std::byte> bytes;
  // The offset after the last batch returned; the start offset when nothing was.
  offset next_offset;
};

// How the log found its files at open.
struct log_recovery {
  std::size_t segments = 0;
  std::size_t segments_recovered = 0;
  std::uint64_t bytes_truncated = 0;
};

class partition_log {
 public:
  // Opens the log in `dir`, creating the directory and a first segment if needed.
  // `recovery_point`: segments from the one holding it on are validated batch by batch
  // and their indexes rebuilt (pass offset(0) to recover everything; pass
  // `clean_shutdown = true` to skip validation after a clean stop). It must not exceed
  // what was flushed. After an unclean stop, empty segments at the tail that start past
  // both the previous segment's last batch and the recovery point are taken for rolls
  // whose batches never reached the disk, and removed; a compacted log (whose cleaned
  // segments may end in a gap) therefore needs the recovery point log_manager checkpoints
  // before every cleaner swap. A cleaner swap cut short is completed first
  // (log_cleaner::finish_interrupted_swap).
  static result<std::unique_ptr<partition_log>> open(std::string dir, const log_config& config,
                                                     disk& io, offset recovery_point,
                                                     bool clean_shutdown,
                                                     offset log_start_offset = offset(0));

  partition_log(const partition_log&) = delete;
  partition_log& operator=(const partition_log&) = delete;
  ~partition_log();

  void set_listener(log_listener* listener) noexcept { listener_ = listener; }
  const log_config& config() const noexcept { return config_; }
  void set_config(const log_config& config) noexcept { config_ = config; }
  const std::string& dir() const noexcept { return dir_; }

  // Validates `batch` (exactly one RecordBatch v2), assigns it offsets from
  // log_end_offset() and `epoch`, and queues it for writing. Nothing is queued on
  // failure. `now` is the wall clock, for timestamp limits and segment.ms.
  result<append_info> append(std::span<std::byte> batch, timestamp_ms now,
                             leader_epoch epoch = leader_epoch(-1));

  // Up to `bytes_max` bytes of whole batches from the batch that holds `start`, but at
  // least one batch when there is any (even one larger than bytes_max), never past
  // written_end or past a batch starting at or after `upper_bound`. The bytes come from
  // one segment. Fails with errc::offset_out_of_range unless
  // log_start_offset() <= start <= written_end().
  result<read_result> read(offset start, std::size_t bytes_max,
                           std::optional<offset> upper_bound = std::nullopt);

  offset log_start_offset() const noexcept { return log_start_offset_; }
  offset log_end_offset() const noexcept { return log_end_offset_; }
  offset written_end() const noexcept { return written_end_; }
  offset flushed_end() const noexcept { return flushed_end_; }
  // Total bytes of all segments.
  std::uint64_t size_bytes() const noexcept;
  std::size_t segment_count() const noexcept { return segments_.size(); }

  // The first offset of a batch whose max timestamp is >= target (Kafka's offset for a
  // timestamp, at batch granularity; the caller refines inside the batch); nullopt when
  // no batch is that recent.
  result<std::optional<offset>> offset_for_timestamp(timestamp_ms target);
  // The largest timestamp in the log and the last offset of the batch that holds it.
  std::optional<std::pair<timestamp_ms, offset>> max_timestamp() const noexcept;

  // Starts a new segment now (if the active one is not empty).
  result<void> roll(timestamp_ms now);
  // Deletes old segments beyond retention.bytes / retention.ms (only when the config's
  // delete_old is set: cleanup.policy includes "delete"), and segments wholly before the
  // log start offset; never the active one. Returns how many were deleted.
  result<std::size_t> enforce_retention(timestamp_ms now);
  // Moves the log start offset forward (Kafka's DeleteRecords) and deletes segments
  // wholly before it. REQUIRES new_start <= written_end().
  result<void> delete_records(offset new_start);
  // Removes every batch with an offset >= target. Fails with errc::backpressure while
  // writes are queued or in flight, or while the log cleaner reads the segments (cutting
  // a file under its mapping would fault the cleaner's thread).
  result<void> truncate_to(offset target);
  // The log cleaner has a job in progress for this log.
  bool cleaning() const noexcept { return cleaner_.in_progress; }

  // Starts a flush of everything written, whatever the policy (no-op when flushed).
  void flush() noexcept;
  // Time-driven work: flush.ms and segment.ms.
  void tick(timestamp_ms now) noexcept;
  // No write or sync queued or in flight.
  bool idle() const noexcept;
  // The log failed a sync and accepts no more appends until reopened.
  bool failed() const noexcept { return failed_.has_value(); }
  // Closes the files of segments (the active one included) to release descriptors and
  // mappings; they reopen on demand. REQUIRES idle().
  result<void> close_files();
  // Trims indexes and closes files, for a clean shutdown. REQUIRES idle().
  result<void> close();

 private:
  friend class log_cleaner;

  // The log cleaner's bookkeeping for this log (engine/storage/log_cleaner.h), kept in
  // memory only: after a restart the first cleaning treats the whole log as dirty.
  struct cleaner_state {
    // Below this offset the log is clean: no two kept records share a key.
    offset cleaned_up_to{0};
    // When the earliest tombstone kept by the last cleaning becomes droppable.
    std::optional<timestamp_ms> tombstone_expiry;
    bool in_progress = false;
  };

  struct pending_write {
    segment* target;
    file_pos position;
    iovec bytes;
    offset next_offset;
    std::int32_t records;
  };
  class write_done final : public completion {
   public:
    explicit write_done(partition_log& log) : log_(log) {}
    void complete(int res, std::uint32_t flags) noexcept override;

   private:
    partition_log& log_;
  };
  class sync_done final : public completion {
   public:
    explicit sync_done(partition_log& log) : log_(log) {}
    void complete(int res, std::uint32_t flags) noexcept override;

   private:
    partition_log& log_;
  };

  partition_log(std::string dir, const log_config& config, disk& io);
  result<void> load_segments(offset recovery_point, bool clean_shutdown, log_recovery& summary);
  result<void> roll_to(offset base, timestamp_ms now);
  segment& active() noexcept { return *segments_.back(); }
  segment* segment_for(offset target) noexcept;
  result<void> open_for_read(const std::shared_ptr<segment>& s);
  void track_open_sealed(const std::shared_ptr<segment>& s) noexcept;
  void start_write() noexcept;
  void on_write_complete(int res) noexcept;
  void fail_pending(const error& failure) noexcept;
  void maybe_flush() noexcept;
  void start_sync() noexcept;
  void submit_next_sync() noexcept;
  void on_sync_complete(int res) noexcept;
  void fail_sync(const error& failure) noexcept;
  // Renames the oldest segment's .log to .deleted (added to `to_unlink`), deletes its
  // indexes, and drops it; the caller syncs the directory and then unlink_later()s.
  result<void> delete_oldest_segment(std::vector<std::string>& to_unlink);

  std::string dir_;
  log_config config_;
  disk& io_;
  log_listener* listener_ = nullptr;

  // Sorted by base offset; never empty. Shared so that a sync in flight keeps a segment
  // deleted by retention alive until it completes.
  std::vector<std::shared_ptr<segment>> segments_;
  std::vector<std::byte> scratch_;  // decompression space for record validation
  // Old segments whose files a read reopened, oldest first; at most a few stay open.
  static constexpr std::size_t reopened_segments_max = 2;
  std::deque<std::shared_ptr<segment>> reopened_;

  offset log_start_offset_;
  offset log_end_offset_;
  offset written_end_;
  offset flushed_end_;

  // Write path.
  std::deque<pending_write> pending_;
  std::uint64_t pending_bytes_ = 0;
  std::vector<iovec> write_iovecs_;      // the iovecs of the write in flight
  std::size_t write_batches_ = 0;        // how many pending_ entries it covers
  std::uint64_t write_bytes_total_ = 0;  // their total size
  std::uint64_t write_bytes_done_ = 0;   // bytes already reported written (short writes)
  bool write_in_flight_ = false;
  write_done write_done_{*this};

  // Sync path.
  std::uint64_t unflushed_records_ = 0;
  std::optional<timestamp_ms> unflushed_since_;
  timestamp_ms last_tick_{0};
  // The segments the flush in progress syncs, oldest first, with the bytes each covers.
  std::vector<std::pair<std::shared_ptr<segment>, std::uint64_t>> sync_queue_;
  std::size_t sync_next_ = 0;
  offset sync_target_;  // flushed_end once the queue is synced
  bool sync_in_flight_ = false;
  bool flush_requested_ = false;
  sync_done sync_done_{*this};

  // Unlinks segment files deleted by retention or delete_records (already renamed to
  // .deleted, the directory synced) through the disk, off the reactor thread. Each unlink
  // owns its path and frees itself when done, touching nothing of the log: a log may go
  // (a deleted topic, a stop) while they are in flight; a file a stop leaves is deleted
  // at the next start.
  void unlink_later(std::vector<std::string> paths) noexcept;
  std::optional<error> failed_;
  cleaner_state cleaner_;
};

}  // namespace sluice
