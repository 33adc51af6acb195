// The log cleaner: compaction of logs whose cleanup.policy includes "compact" (Kafka's
// semantics: keep the latest record of each key, drop tombstones once they are older
// than delete.retention.ms). A general engine feature: any partition_log with
// log_config::compact is cleaned, whatever topic it belongs to.
//
// What a cleaning does (see docs/formats/segment.md, "Cleaned segments"):
//   - It covers a prefix of the log's sealed segments (never the active one, never data
//     above flushed_end, never a segment whose newest record is younger than
//     min.compaction.lag.ms): the cleaned range [log start, end).
//   - An offset map (key -> offset of its latest record) is built over the dirty part of
//     the range: the segments appended since the last cleaning. Keys are identified by
//     their XXH3 128-bit hash, without comparing the keys themselves -- as Kafka's offset
//     map identifies them by MD5. A collision (probability about n^2 / 2^129 for n keys)
//     would drop the older of two records with different keys.
//   - Every segment of the range is then rewritten on its own (no merging), keeping every
//     record's offset. A record is dropped when the map holds a later offset for its key,
//     or when it is a tombstone (key, null value) whose batch's max timestamp is older
//     than now - delete.retention.ms. Records without a key, and control batches, are
//     always kept (Kafka refuses keyless records on compacted topics at produce time;
//     Sluice keeps them).
//   - A batch whose records are all kept is copied byte for byte. A batch that lost some
//     records is rebuilt uncompressed from the encoded bytes of the kept records: same
//     base offset, last_offset_delta, timestamps, producer id/epoch, base sequence and
//     attributes (compression cleared), new records_count, batch_length and CRC. A batch
//     that lost every record is dropped. A segment that lost nothing is not rewritten;
//     one that lost everything stays as an empty file, so that its base offset -- and the
//     log start offset when it is the first -- does not move.
//
// Threading. One cleaner thread per log_cleaner does the heavy part (reading segments,
// decompressing, building the map, writing and fsyncing `<base>.log.cleaned` files). A job
// gets only immutable inputs: read-only mappings of the sealed segments, their base
// offsets and sizes, and a copy of the config. The reactor thread (the one owning the
// logs) submits jobs from schedule() and collects finished ones in poll() -- a
// mutex-protected queue it checks on tick, so the cleaner never wakes the reactor. The
// swap then runs on the reactor thread, like a roll: it checks the log still holds the
// very segment objects the job read (retention, truncation or deletion may have replaced
// them; then the job's files are discarded) and replaces them crash-safely:
//   1. write `cleaner-swap` in the partition directory, listing the rewritten base
//      offsets (atomically: tmp, fsync, rename, fsync of the directory);
//   2. for each listed segment in ascending offset order: remove its index files, rename
//      `<base>.log.cleaned` over `<base>.log`;
//   3. fsync the directory; open each new segment and rebuild its indexes (synced);
//   4. remove the marker.
// At open (finish_interrupted_swap), a marker means the swap was cut short: the listed
// renames still pending are finished and the listed index files removed (they are
// rebuilt), then the marker goes; without a marker every `.cleaned` file is a leftover
// and is deleted. The marker makes the swap all-or-nothing: removing a tombstone in a
// later segment before the older values it hides are gone from an earlier one would
// bring those values back.
//
// Readers holding a mapping of a replaced segment keep reading the old, unlinked inode.
//
// Owned by log_manager (one per data directory). schedule(), poll(), forget() and
// clean_now() are called only from the reactor thread that owns the logs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/base/result.h"
#include "engine/base/types.h"
#include "engine/io/file.h"
#include "engine/storage/log_config.h"

namespace sluice {

class partition_log;
class segment;

struct log_cleaner_config {
  // Kafka's log.cleaner.enable.
  bool enabled = true;
  // Kafka's log.cleaner.backoff.ms: how often log_manager looks for logs to clean.
  std::chrono::milliseconds backoff{15000};
  // Keys one cleaning's offset map may hold (Kafka sizes it in bytes with
  // log.cleaner.dedupe.buffer.size; an entry here takes 24 bytes, the table at most
  // twice that). A cleaning covers only as many segments as fit; the next one goes on.
  std::size_t offset_map_entries_max = std::size_t{4} << 20;
  // Jobs queued or running at once (one per log at most).
  std::size_t jobs_max = 64;
};

// What one cleaning did.
struct cleaning_summary {
  std::size_t segments_cleaned = 0;    // segments in the cleaned range
  std::size_t segments_rewritten = 0;  // of those, the ones that lost records
  std::uint64_t bytes_before = 0;      // of the rewritten segments, before and after
  std::uint64_t bytes_after = 0;
  std::uint64_t records_removed = 0;
  std::uint64_t tombstones_removed = 0;
  // The offset the range ends at (the log's first uncleaned offset); the log start offset
  // when nothing was cleaned.
  offset cleaned_up_to;
};

// The name of the swap marker in a partition directory.
inline constexpr const char* cleaner_swap_marker = "cleaner-swap";
// The suffix of a segment's cleaned copy: `<base>.log.cleaned`.
inline constexpr const char* cleaned_suffix = ".log.cleaned";

class log_cleaner {
 public:
  // Starts the cleaner thread.
  explicit log_cleaner(const log_cleaner_config& config);
  log_cleaner(const log_cleaner&) = delete;
  log_cleaner& operator=(const log_cleaner&) = delete;
  // Cancels queued and running jobs, waits for the thread and removes the jobs' files.
  ~log_cleaner();

  // Submits a cleaning of `log` when it is compacted, has no cleaning in progress, and is
  // due: its dirty ratio reached min.cleanable.dirty.ratio, or a kept tombstone may have
  // expired. Returns whether a job was submitted. Blocking work here: mapping the sealed
  // segments that are not open (open + mmap + close, as a read does).
  bool schedule(partition_log& log, timestamp_ms now);
  // Whether a finished job waits for poll().
  bool has_finished_jobs() const;
  // Swaps the results of finished jobs into their logs (or discards them). Returns how
  // many logs were changed.
  std::size_t poll() noexcept;
  // Cancels `log`'s job, waits for the thread to let go of it and removes its files.
  // Call before the log is destroyed.
  void forget(partition_log& log) noexcept;
  // Jobs submitted and not yet polled.
  std::size_t jobs_in_flight() const noexcept { return in_flight_; }

  // Cleans `log` now on the calling thread (the reactor thread in the broker; tests), if
  // anything is cleanable, whatever the dirty ratio. REQUIRES: no job of the background
  // cleaner is in progress for the log.
  static result<cleaning_summary> clean_now(
      partition_log& log, timestamp_ms now,
      std::size_t offset_map_entries_max = log_cleaner_config{}.offset_map_entries_max);

  // Run by partition_log::open before the segments are listed: completes a swap cut
  // short by a crash, or deletes leftover .cleaned files. `completed` receives the base
  // offsets whose files were replaced (their indexes must be rebuilt).
  static result<void> finish_interrupted_swap(const std::string& dir,
                                              std::vector<offset>& completed);

  struct job;  // defined in log_cleaner.cc

 private:
  void run() noexcept;
  // Reactor thread: builds a job for `log` (nullptr when nothing is cleanable or, unless
  // `force`, when the log is not due), and applies a finished one. apply() returns
  // whether the log's files changed.
  static std::shared_ptr<job> prepare(partition_log& log, timestamp_ms now,
                                      std::size_t offset_map_entries_max, bool force);
  static bool apply(job& j) noexcept;

  log_cleaner_config config_;
  // Shared with the cleaner thread, under mutex_.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<job>> queued_;
  std::deque<std::shared_ptr<job>> finished_;
  bool stopping_ = false;
  std::shared_ptr<job> running_;
  std::condition_variable running_done_;
  // Reactor thread only.
  std::size_t in_flight_ = 0;
  std::thread thread_;
};

}  // namespace sluice
