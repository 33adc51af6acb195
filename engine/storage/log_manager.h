// All partition logs of one data directory, or of the share of it that one core owns.
//
// Layout of the data directory (see docs/formats/README.md):
//   <data-dir>/.lock                              held with flock while a process uses it
//   <data-dir>/.sluice_cleanshutdown               present only after a clean stop
//   <data-dir>/recovery-point-offset-checkpoint   flushed offset per partition
//   <data-dir>/log-start-offset-checkpoint        log start offset per partition
//   <data-dir>/recovery-point-offset-checkpoint.<k>, log-start-offset-checkpoint.<k>
//                                                 the same, of shard k of a multi-core process
//   <data-dir>/<topic>-<partition>/               one partition_log each
//
// Alone (log_manager_config::shared is null), a manager takes the lock, reads the
// checkpoints and the clean-shutdown marker, opens every partition directory (recovering
// after an unclean stop), then removes the marker.
//
// Sharded: a multi-core process runs one manager per core, each owning the partitions its
// log_shard::owns selects, all in one data directory. The process claims the directory
// once (data_directory::claim: the lock, the marker, the checkpoints read and merged),
// opens one manager per shard with log_manager_config::shared pointing at it, calls
// data_directory::finish_open once every shard has opened, and after every shard has shut
// down cleanly, data_directory::mark_clean_shutdown. Shard k of n > 1 writes the checkpoint
// files suffixed ".<k>" with its own partitions only. At open the files of every shard
// count are merged (the minimum recovery point and the maximum log start offset of a
// partition named in several), so the core count may change between runs.
//
// tick() drives time-based flushes and rolls, retention, checkpoints, the log cleaner
// (engine/storage/log_cleaner.h: every cleaner backoff it submits the compacted logs that
// are due, and on every tick it swaps in the cleanings that finished, after writing the
// checkpoints so that recovery knows the cleaned range was flushed), and closing the
// files of idle partitions so that thousands of partitions fit in the descriptor and
// mapping limits. shutdown() stops the cleaner, flushes everything, writes the
// checkpoints, closes the logs and (alone) writes the marker.
//
// Owned by one core; never touched from another thread. The log cleaner it owns runs one
// thread of its own, which never touches the manager or the logs. A data_directory is
// read (const) by the shards' threads while they open; the process calls its non-const
// members only while no shard is opening or running.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "engine/base/result.h"
#include "engine/io/disk.h"
#include "engine/io/file.h"
#include "engine/storage/checkpoint.h"
#include "engine/storage/log_cleaner.h"
#include "engine/storage/partition_log.h"

namespace sluice {

class data_directory;

// Which share of a data directory's partitions a log_manager owns.
struct log_shard {
  std::uint32_t index = 0;
  std::uint32_t count = 1;
  // The partitions this shard owns: it opens only their directories at start-up and may
  // create only them. Empty: every partition. REQUIRED when count > 1; the shards' sets
  // must not overlap.
  std::function<bool(const topic_partition&)> owns;

  bool owns_partition(const topic_partition& tp) const { return !owns || owns(tp); }
};

// The offset checkpoints of a data directory as read at start-up: the files of every shard
// count, merged.
struct checkpoint_snapshot {
  // The minimum over the files naming a partition. Empty when a recovery-point file was
  // unreadable: every partition then recovers from offset 0.
  offset_checkpoint recovery_points;
  // The maximum over the files naming a partition.
  offset_checkpoint log_starts;
  bool recovery_points_readable = true;
  // Some file (or leftover temporary) carried a ".<k>" suffix: a shard of a multi-core
  // process wrote it.
  bool shard_files_found = false;
};

struct log_manager_config {
  std::string data_dir;
  log_config defaults;
  // Partitions whose files may stay open at once; 0 derives it from RLIMIT_NOFILE.
  std::size_t open_partitions_max = 0;
  std::chrono::milliseconds retention_check_interval = std::chrono::minutes(5);
  std::chrono::milliseconds checkpoint_interval = std::chrono::seconds(60);
  // The log cleaner (--log-cleaner-enable, --log-cleaner-backoff-ms). Disabled: compacted
  // logs are never cleaned.
  log_cleaner_config cleaner;
  // The share of the directory's partitions this manager owns. count > 1 needs `shared`.
  log_shard shard;
  // The directory as claimed by the process for all its shards, or null when this manager
  // is alone (it then takes the lock and handles the marker itself). Must outlive the
  // manager; its path must equal data_dir.
  const data_directory* shared = nullptr;
};

struct log_manager_stats {
  std::size_t partitions = 0;
  std::size_t partitions_open = 0;
  std::size_t partitions_recovered = 0;
};

class log_manager {
 public:
  // Opens the data directory (alone), or this shard's partitions of it (shared). Alone, it
  // fails with errc::invalid_argument if the directory's lock is held (by another process,
  // or by a data_directory of this one).
  static result<std::unique_ptr<log_manager>> open(const log_manager_config& config, disk& io);

  log_manager(const log_manager&) = delete;
  log_manager& operator=(const log_manager&) = delete;
  ~log_manager();

  // The log of a partition, or nullptr. Marks it recently used.
  partition_log* get(const topic_partition& tp) noexcept;
  // Creates the partition's log (or returns the existing one). Fails with
  // errc::invalid_argument if this shard does not own the partition.
  result<partition_log*> create(const topic_partition& tp, const log_config& config);
  // Deletes a partition's log and its files. REQUIRES: the log is idle.
  result<void> remove(const topic_partition& tp);
  template <typename Visit>
  void for_each(Visit&& visit) {
    for (auto& [tp, entry] : partitions_) visit(tp, *entry.log);
  }

  // Periodic work; call every few milliseconds to seconds.
  void tick(timestamp_ms now) noexcept;
  // Flushes every log, waits for all I/O, writes checkpoints and (alone) the clean-shutdown
  // marker, and closes every log. The manager is unusable afterwards. A partition left
  // unflushed is logged and does not fail the call: see stopped_clean().
  result<void> shutdown();
  // After shutdown(): whether every partition was flushed and the checkpoints written,
  // so that the stop counts as clean (a shared directory may then be marked clean).
  bool stopped_clean() const noexcept { return stopped_clean_; }
  // Writes both checkpoint files (this shard's) now.
  result<void> write_checkpoints();

  log_manager_stats stats() const noexcept;
  const log_manager_config& config() const noexcept { return config_; }
  // The log cleaner, or nullptr when disabled (or after shutdown()).
  log_cleaner* cleaner() noexcept { return cleaner_.get(); }

 private:
  struct partition_entry {
    std::unique_ptr<partition_log> log;
    std::uint64_t last_used = 0;  // use counter, for closing the least recently used
    bool files_open = true;
  };

  log_manager(const log_manager_config& config, disk& io) : config_(config), io_(io) {}
  result<void> load(const checkpoint_snapshot& checkpoints, bool clean);
  void close_idle_partitions() noexcept;
  void run_cleaner(timestamp_ms now) noexcept;

  log_manager_config config_;
  disk& io_;
  file_handle lock_file_;
  std::map<topic_partition, partition_entry> partitions_;
  std::size_t open_count_ = 0;
  std::uint64_t use_counter_ = 0;
  std::size_t recovered_ = 0;
  timestamp_ms last_retention_{0};
  timestamp_ms last_checkpoint_{0};
  timestamp_ms last_cleaner_check_{0};
  bool shut_down_ = false;
  bool stopped_clean_ = false;
  // Declared after partitions_: destroyed (its thread stopped) before the logs go.
  std::unique_ptr<log_cleaner> cleaner_;
};

// What a process does once for a data directory that several shards (log_managers) share:
// the lock, the clean-shutdown marker, and reading the checkpoint files before any shard
// writes its own. Owned by the process, which keeps it until every shard is destroyed.
class data_directory {
 public:
  // Creates the directory if missing, takes <dir>/.lock (flock, non-blocking; fails with
  // errc::invalid_argument if it is held), notes whether the clean-shutdown marker is
  // present, and reads and merges the checkpoint files of every shard count. If some were
  // written by shards, it first saves the merged checkpoints in the unsuffixed files, so
  // that shards rewriting their own files under a changed core count lose no partition's
  // entry if the process dies before finish_open.
  static result<std::unique_ptr<data_directory>> claim(const std::string& dir);

  data_directory(const data_directory&) = delete;
  data_directory& operator=(const data_directory&) = delete;

  const std::string& path() const noexcept { return path_; }
  bool was_clean() const noexcept { return was_clean_; }
  // The merged checkpoints shards start from. Empty after finish_open.
  const checkpoint_snapshot& checkpoints() const noexcept { return checkpoints_; }
  // After every shard has opened (each has written its own checkpoint files), and before
  // any appends (until then the marker still vouches for every log): removes the marker
  // durably (it speaks only for the stop before this start), and removes the
  // checkpoint files that no shard of a `shard_count`-shard process writes.
  result<void> finish_open(std::uint32_t shard_count);
  // After every shard has shut down with stopped_clean(): writes the marker (atomically,
  // durably).
  result<void> mark_clean_shutdown();

 private:
  explicit data_directory(std::string path) : path_(std::move(path)) {}

  std::string path_;
  file_handle lock_file_;
  bool was_clean_ = false;
  checkpoint_snapshot checkpoints_;
};

}  // namespace sluice
