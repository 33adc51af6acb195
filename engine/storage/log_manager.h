// All partition logs of one data directory.
//
// Layout of the data directory (see docs/formats/README.md):
//   <data-dir>/.lock                              held with flock while a process uses it
//   <data-dir>/.sluice_cleanshutdown               present only after a clean stop
//   <data-dir>/recovery-point-offset-checkpoint   flushed offset per partition
//   <data-dir>/log-start-offset-checkpoint        log start offset per partition
//   <data-dir>/<topic>-<partition>/               one partition_log each
//
// At open it takes the lock, reads the checkpoints and the clean-shutdown marker, opens
// every partition directory (recovering after an unclean stop), then removes the marker.
// tick() drives time-based flushes and rolls, retention, checkpoints, the log cleaner
// (engine/storage/log_cleaner.h: every cleaner backoff it submits the compacted logs that
// are due, and on every tick it swaps in the cleanings that finished, after writing the
// checkpoints so that recovery knows the cleaned range was flushed), and closing the
// files of idle partitions so that thousands of partitions fit in the descriptor and
// mapping limits. shutdown() stops the cleaner, flushes everything, writes the
// checkpoints, closes the logs and writes the marker.
//
// Owned by one core; never touched from another thread. The log cleaner it owns runs one
// thread of its own, which never touches the manager or the logs.
#pragma once

#include <chrono>
#include <cstdint>
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
};

struct log_manager_stats {
  std::size_t partitions = 0;
  std::size_t partitions_open = 0;
  std::size_t partitions_recovered = 0;
};

class log_manager {
 public:
  // Opens the data directory. Fails with errc::invalid_argument if another process holds
  // its lock.
  static result<std::unique_ptr<log_manager>> open(const log_manager_config& config, disk& io);

  log_manager(const log_manager&) = delete;
  log_manager& operator=(const log_manager&) = delete;
  ~log_manager();

  // The log of a partition, or nullptr. Marks it recently used.
  partition_log* get(const topic_partition& tp) noexcept;
  // Creates the partition's log (or returns the existing one).
  result<partition_log*> create(const topic_partition& tp, const log_config& config);
  // Deletes a partition's log and its files. REQUIRES: the log is idle.
  result<void> remove(const topic_partition& tp);
  template <typename Visit>
  void for_each(Visit&& visit) {
    for (auto& [tp, entry] : partitions_) visit(tp, *entry.log);
  }

  // Periodic work; call every few milliseconds to seconds.
  void tick(timestamp_ms now) noexcept;
  // Flushes every log, waits for all I/O, writes checkpoints and the clean-shutdown
  // marker, and closes every log. The manager is unusable afterwards.
  result<void> shutdown();
  // Writes both checkpoint files now.
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
  result<void> load();
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
  // Declared after partitions_: destroyed (its thread stopped) before the logs go.
  std::unique_ptr<log_cleaner> cleaner_;
};

}  // namespace sluice
