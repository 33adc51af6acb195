#include "engine/storage/log_manager.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>

#include <algorithm>
#include <vector>

#include "engine/base/log.h"

namespace sluice {
namespace {

constexpr const char* clean_shutdown_marker = ".sluice_cleanshutdown";
constexpr const char* recovery_point_file = "recovery-point-offset-checkpoint";
constexpr const char* log_start_file = "log-start-offset-checkpoint";
// Descriptors kept for sockets and everything else when sizing the partition budget.
constexpr std::size_t descriptors_reserved = 256;
// An open partition uses at most this many descriptors in the common case: the active
// segment's .log, .index and .timeindex, and one older segment opened for a read.
constexpr std::size_t descriptors_per_partition = 6;

std::size_t derive_open_partitions_max() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 128;
  std::size_t available = limit.rlim_cur > descriptors_reserved + descriptors_per_partition * 16
                              ? limit.rlim_cur - descriptors_reserved
                              : descriptors_per_partition * 16;
  // Each open segment also holds three memory mappings; stay well inside the default
  // vm.max_map_count of 65530.
  return std::min<std::size_t>(available / descriptors_per_partition, 8192);
}

}  // namespace

result<std::unique_ptr<log_manager>> log_manager::open(const log_manager_config& config, disk& io) {
  SLUICE_TRY(make_directory(config.data_dir));
  std::unique_ptr<log_manager> manager(new log_manager(config, io));
  auto lock = open_file(config.data_dir + "/.lock", O_RDWR | O_CREAT);
  if (!lock) return lock.failure();
  if (::flock(lock->get(), LOCK_EX | LOCK_NB) != 0) {
    SLUICE_LOG(error, "storage",
               "data directory {} is in use by another process (its .lock is held); stop that "
               "process or choose another --data-dir",
               config.data_dir);
    return error(errc::invalid_argument, "data directory is locked by another process");
  }
  manager->lock_file_ = std::move(*lock);
  if (manager->config_.open_partitions_max == 0) {
    manager->config_.open_partitions_max = derive_open_partitions_max();
  }
  SLUICE_TRY(manager->load());
  if (config.cleaner.enabled) manager->cleaner_ = std::make_unique<log_cleaner>(config.cleaner);
  return manager;
}

log_manager::~log_manager() {
  for (auto& [tp, entry] : partitions_) {
    SLUICE_ASSERT(entry.log->idle(), "log manager destroyed with I/O in flight");
  }
}

result<void> log_manager::load() {
  const std::string& dir = config_.data_dir;
  bool clean = path_exists(dir + "/" + clean_shutdown_marker);
  auto recovery_points = read_offset_checkpoint(dir + "/" + recovery_point_file);
  if (!recovery_points) {
    SLUICE_LOG(warn, "storage", "{}/{} is unreadable ({}); recovering every segment", dir,
               recovery_point_file, recovery_points.failure().detail());
    recovery_points = offset_checkpoint{};
    clean = false;
  }
  auto log_starts = read_offset_checkpoint(dir + "/" + log_start_file);
  if (!log_starts) {
    SLUICE_LOG(warn, "storage",
               "{}/{} is unreadable ({}); log start offsets fall back to the "
               "first segment",
               dir, log_start_file, log_starts.failure().detail());
    log_starts = offset_checkpoint{};
  }
  auto names = list_directory(dir);
  if (!names) return names.failure();
  std::sort(names->begin(), names->end());
  for (const auto& name : *names) {
    auto tp = topic_partition::from_dir_name(name);
    if (!tp) continue;
    offset recovery_point(0);
    if (auto it = recovery_points->find(*tp); it != recovery_points->end()) {
      recovery_point = it->second;
    }
    offset log_start(0);
    if (auto it = log_starts->find(*tp); it != log_starts->end()) log_start = it->second;
    auto log = partition_log::open(dir + "/" + name, config_.defaults, io_, recovery_point, clean,
                                   log_start);
    if (!log) {
      SLUICE_LOG(error, "storage", "cannot open partition {}: {} ({}); fix or move {}/{} away",
                 name, log.failure().detail(), errc_name(log.code()), dir, name);
      return log.failure();
    }
    if (!clean) ++recovered_;
    partition_entry entry{std::move(*log), ++use_counter_, true};
    partitions_.emplace(*tp, std::move(entry));
    ++open_count_;
    if (open_count_ > config_.open_partitions_max) close_idle_partitions();
  }
  if (clean) {
    SLUICE_LOG(info, "storage", "opened data directory {}: {} partitions, after a clean shutdown",
               dir, partitions_.size());
  } else if (!partitions_.empty()) {
    SLUICE_LOG(warn, "storage",
               "opened data directory {} after an unclean stop: {} partitions, each recovered "
               "from its recovery point",
               dir, partitions_.size());
  } else {
    SLUICE_LOG(info, "storage", "opened data directory {}: no partitions yet", dir);
  }
  // The marker speaks only for the stop before this start: remove it (durably) whatever
  // this start made of it, or a crash from now on would be taken for a clean stop.
  if (path_exists(dir + "/" + clean_shutdown_marker)) {
    SLUICE_TRY(remove_file(dir + "/" + clean_shutdown_marker));
    SLUICE_TRY(sync_directory(dir));
  }
  return {};
}

partition_log* log_manager::get(const topic_partition& tp) noexcept {
  auto it = partitions_.find(tp);
  if (it == partitions_.end()) return nullptr;
  it->second.last_used = ++use_counter_;
  if (!it->second.files_open) {
    it->second.files_open = true;
    ++open_count_;
  }
  return it->second.log.get();
}

result<partition_log*> log_manager::create(const topic_partition& tp, const log_config& config) {
  if (auto* existing = get(tp)) return existing;
  if (!is_legal_topic_name(tp.topic) || tp.partition < 0) {
    return error(errc::invalid_argument, "illegal topic name or partition");
  }
  auto log = partition_log::open(config_.data_dir + "/" + tp.dir_name(), config, io_, offset(0),
                                 /*clean_shutdown=*/true);
  if (!log) return log.failure();
  partition_log* raw = log->get();
  partitions_.emplace(tp, partition_entry{std::move(*log), ++use_counter_, true});
  ++open_count_;
  if (open_count_ > config_.open_partitions_max) close_idle_partitions();
  return raw;
}

result<void> log_manager::remove(const topic_partition& tp) {
  auto it = partitions_.find(tp);
  if (it == partitions_.end()) return error(errc::not_found, "no such partition");
  SLUICE_ASSERT(it->second.log->idle(), "removing a partition with I/O in flight");
  // The cleaner lets go of the log (and its files) before they go.
  if (cleaner_) cleaner_->forget(*it->second.log);
  std::string dir = it->second.log->dir();
  if (it->second.files_open) --open_count_;
  partitions_.erase(it);
  SLUICE_TRY(remove_tree(dir));
  return sync_directory(config_.data_dir);
}

void log_manager::tick(timestamp_ms now) noexcept {
  for (auto& [tp, entry] : partitions_) {
    if (entry.files_open) entry.log->tick(now);
  }
  if (cleaner_) run_cleaner(now);
  if (now.value() - last_retention_.value() >= config_.retention_check_interval.count()) {
    last_retention_ = now;
    for (auto& [tp, entry] : partitions_) {
      auto deleted = entry.log->enforce_retention(now);
      if (!deleted) {
        SLUICE_LOG(warn, "storage", "retention of {} failed: {}; will retry", tp.dir_name(),
                   deleted.failure().detail());
      }
    }
  }
  if (now.value() - last_checkpoint_.value() >= config_.checkpoint_interval.count()) {
    last_checkpoint_ = now;
    if (auto written = write_checkpoints(); !written) {
      SLUICE_LOG(error, "storage",
                 "writing offset checkpoints in {} failed: {}; recovery after "
                 "a crash will scan more data",
                 config_.data_dir, written.failure().detail());
    }
  }
  if (open_count_ > config_.open_partitions_max) close_idle_partitions();
}

void log_manager::run_cleaner(timestamp_ms now) noexcept {
  if (cleaner_->has_finished_jobs()) {
    // A cleaned segment may end in a gap; recovery tells that gap from a roll whose
    // batches were lost by the recovery point, so it must cover the cleaned range before
    // the swap makes the gap durable.
    if (auto written = write_checkpoints(); !written) {
      SLUICE_LOG(warn, "storage",
                 "writing offset checkpoints in {} failed: {}; finished cleanings wait for "
                 "the next tick",
                 config_.data_dir, written.failure().detail());
    } else {
      cleaner_->poll();
    }
  }
  if (now.value() - last_cleaner_check_.value() < config_.cleaner.backoff.count()) return;
  last_cleaner_check_ = now;
  for (auto& [tp, entry] : partitions_) {
    if (entry.log->config().compact) cleaner_->schedule(*entry.log, now);
  }
}

void log_manager::close_idle_partitions() noexcept {
  // Close the least recently used idle partitions until under budget. Sorting a list of
  // candidates bounds the work to the number of partitions.
  std::vector<std::pair<std::uint64_t, partition_entry*>> candidates;
  for (auto& [tp, entry] : partitions_) {
    // Unflushed data under a flush policy stays open until its flush is due, so that
    // time-based flushes (driven by tick() on open partitions) still happen.
    bool flushed = entry.log->flushed_end() >= entry.log->written_end() ||
                   !entry.log->config().flush.flushes();
    if (entry.files_open && entry.log->idle() && flushed) {
      candidates.emplace_back(entry.last_used, &entry);
    }
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  // Close down to 90% of the budget, so closing is not repeated on every new partition.
  std::size_t target = config_.open_partitions_max - config_.open_partitions_max / 10;
  for (auto& [used, entry] : candidates) {
    if (open_count_ <= target) break;
    if (auto closed = entry->log->close_files(); !closed) {
      SLUICE_LOG(warn, "storage", "closing idle partition {} failed: {}", entry->log->dir(),
                 closed.failure().detail());
      continue;
    }
    entry->files_open = false;
    --open_count_;
  }
}

result<void> log_manager::write_checkpoints() {
  offset_checkpoint recovery_points;
  offset_checkpoint log_starts;
  for (auto& [tp, entry] : partitions_) {
    recovery_points[tp] = entry.log->flushed_end();
    log_starts[tp] = entry.log->log_start_offset();
  }
  SLUICE_TRY(
      write_offset_checkpoint(config_.data_dir + "/" + recovery_point_file, recovery_points));
  return write_offset_checkpoint(config_.data_dir + "/" + log_start_file, log_starts);
}

result<void> log_manager::shutdown() {
  SLUICE_ASSERT(!shut_down_, "shutdown twice");
  shut_down_ = true;
  // Cleanings in progress are abandoned (their files removed); the next start cleans
  // again.
  cleaner_.reset();
  // Flush and close in waves no larger than the open-files budget: a flush reopens the
  // files of a partition closed while idle, and ten thousand at once would run out of
  // descriptors.
  std::size_t wave = std::max<std::size_t>(1, config_.open_partitions_max / 2);
  bool all_flushed = true;
  auto it = partitions_.begin();
  while (it != partitions_.end()) {
    auto wave_begin = it;
    for (std::size_t n = 0; n < wave && it != partitions_.end(); ++n, ++it) {
      it->second.log->flush();
    }
    bool drained = io_.reactor().run_until(
        [&] {
          for (auto w = wave_begin; w != it; ++w) {
            if (!w->second.log->idle()) return false;
          }
          return true;
        },
        std::chrono::minutes(5));
    if (!drained) return error(errc::io_error, "writes did not finish within 5 minutes");
    for (auto w = wave_begin; w != it; ++w) {
      partition_log& log = *w->second.log;
      if (log.failed() || log.flushed_end() < log.log_end_offset()) all_flushed = false;
      SLUICE_TRY(log.close());
      if (w->second.files_open) --open_count_;
      w->second.files_open = false;
    }
  }
  SLUICE_TRY(write_checkpoints());
  if (!all_flushed) {
    SLUICE_LOG(warn, "storage",
               "not every partition is flushed; the next start recovers "
               "them instead of trusting a clean shutdown");
    return {};
  }
  auto marker = std::string(clean_shutdown_marker);
  return write_file_atomically(config_.data_dir + "/" + marker, {});
}

log_manager_stats log_manager::stats() const noexcept {
  return log_manager_stats{partitions_.size(), open_count_, recovered_};
}

}  // namespace sluice
