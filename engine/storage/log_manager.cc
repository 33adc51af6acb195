#include "engine/storage/log_manager.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <string_view>
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
// segment's .log, and the .log of one older segment opened for a read (index files hold
// no descriptor, only their mapping: engine/storage/index_file.h).
constexpr std::size_t descriptors_per_partition = 2;

// Memory mappings kept for everything else (the allocator, libraries, sockets' buffers).
constexpr std::size_t mappings_reserved = 4096;
// An open partition holds three mappings (the active segment's .log, .index and
// .timeindex), and at times some of an older segment reopened for a read.
constexpr std::size_t mappings_per_partition = 5;

// The kernel's vm.max_map_count (65530 by default), or that default when unreadable.
std::size_t max_map_count() {
  auto text = read_small_file("/proc/sys/vm/max_map_count", 64);
  if (!text) return 65530;
  std::size_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  return ec == std::errc() && value > 0 ? value : 65530;
}

std::size_t derive_open_partitions_max() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 128;
  std::size_t available = limit.rlim_cur > descriptors_reserved + descriptors_per_partition * 16
                              ? limit.rlim_cur - descriptors_reserved
                              : descriptors_per_partition * 16;
  const std::size_t maps = max_map_count();
  const std::size_t by_mappings = maps > mappings_reserved + mappings_per_partition * 16
                                      ? (maps - mappings_reserved) / mappings_per_partition
                                      : 16;
  return std::min(available / descriptors_per_partition, by_mappings);
}

// The least budget a shard gets when the derived one is split between cores.
constexpr std::size_t open_partitions_min_per_shard = 16;

enum class checkpoint_kind { recovery_point, log_start };

// A file name of the checkpoint family: "<base>", "<base>.<k>", or either with ".tmp" (a
// write cut short).
struct checkpoint_name {
  checkpoint_kind kind;
  std::optional<std::uint32_t> shard;  // nullopt: the unsuffixed file
  bool temporary;
};

// A shard index as we write it: decimal digits, no sign, no leading zero.
std::optional<std::uint32_t> parse_shard_suffix(std::string_view digits) {
  if (digits.empty() || (digits.size() > 1 && digits.front() == '0')) return std::nullopt;
  std::uint32_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

std::optional<checkpoint_name> parse_checkpoint_name(std::string_view name) {
  bool temporary = name.ends_with(".tmp");
  if (temporary) name.remove_suffix(4);
  for (auto kind : {checkpoint_kind::recovery_point, checkpoint_kind::log_start}) {
    std::string_view base =
        kind == checkpoint_kind::recovery_point ? recovery_point_file : log_start_file;
    if (!name.starts_with(base)) continue;
    std::string_view rest = name.substr(base.size());
    if (rest.empty()) return checkpoint_name{kind, std::nullopt, temporary};
    if (rest.front() != '.') return std::nullopt;
    auto shard = parse_shard_suffix(rest.substr(1));
    if (!shard) return std::nullopt;
    return checkpoint_name{kind, *shard, temporary};
  }
  return std::nullopt;
}

// The file a shard of a `count`-shard process writes: the count == 1 name is Kafka's.
std::string checkpoint_path(const std::string& dir, checkpoint_kind kind, std::uint32_t index,
                            std::uint32_t count) {
  std::string path =
      dir + "/" + (kind == checkpoint_kind::recovery_point ? recovery_point_file : log_start_file);
  if (count > 1) path += "." + std::to_string(index);
  return path;
}

// Whether a shard of a `count`-shard process writes the file (the others are stale once
// every shard has written its own).
bool written_by_shard_count(const checkpoint_name& name, std::uint32_t count) {
  if (count == 1) return !name.shard.has_value();
  return name.shard.has_value() && *name.shard < count;
}

// Reads every checkpoint file of the directory and merges them. The same partition appears
// in several files only when the shard count changed since they were written; the merge
// then keeps the value that is safe whichever file is newer: a lower recovery point only
// costs validating more, a higher log start only hides what was already deleted.
result<checkpoint_snapshot> read_checkpoints(const std::string& dir) {
  auto names = list_directory(dir);
  if (!names) return names.failure();
  checkpoint_snapshot snapshot;
  for (const auto& name : *names) {
    auto parsed = parse_checkpoint_name(name);
    if (!parsed) continue;
    // A shard's leftover temporary counts too: the manager that removes stale files
    // removes it with them.
    if (parsed->shard) snapshot.shard_files_found = true;
    if (parsed->temporary) continue;
    bool recovery = parsed->kind == checkpoint_kind::recovery_point;
    auto entries = read_offset_checkpoint(dir + "/" + name);
    if (!entries) {
      if (recovery) {
        SLUICE_LOG(warn, "storage", "{}/{} is unreadable ({}); recovering every segment", dir, name,
                   entries.failure().detail());
        snapshot.recovery_points_readable = false;
      } else {
        SLUICE_LOG(warn, "storage",
                   "{}/{} is unreadable ({}); log start offsets fall back to the "
                   "first segment",
                   dir, name, entries.failure().detail());
      }
      continue;
    }
    offset_checkpoint& merged = recovery ? snapshot.recovery_points : snapshot.log_starts;
    for (const auto& [tp, value] : *entries) {
      auto [it, inserted] = merged.emplace(tp, value);
      if (inserted) continue;
      it->second = recovery ? std::min(it->second, value) : std::max(it->second, value);
    }
  }
  // A lost file may have held a lower recovery point for any partition.
  if (!snapshot.recovery_points_readable) snapshot.recovery_points.clear();
  return snapshot;
}

// Removes the checkpoint files (and their leftover temporaries) that no shard of a
// `count`-shard process writes, durably.
result<void> remove_stale_checkpoints(const std::string& dir, std::uint32_t count) {
  auto names = list_directory(dir);
  if (!names) return names.failure();
  bool removed = false;
  for (const auto& name : *names) {
    auto parsed = parse_checkpoint_name(name);
    if (!parsed || written_by_shard_count(*parsed, count)) continue;
    SLUICE_TRY(remove_file(dir + "/" + name));
    removed = true;
  }
  if (removed) SLUICE_TRY(sync_directory(dir));
  return {};
}

// Takes <dir>/.lock; fails with errc::invalid_argument when another holder has it.
result<file_handle> lock_data_directory(const std::string& dir) {
  auto lock = open_file(dir + "/.lock", O_RDWR | O_CREAT);
  if (!lock) return lock.failure();
  if (::flock(lock->get(), LOCK_EX | LOCK_NB) != 0) {
    SLUICE_LOG(error, "storage",
               "data directory {} is in use by another process (its .lock is held); stop that "
               "process or choose another --data-dir",
               dir);
    return error(errc::invalid_argument, "data directory is locked by another process");
  }
  return std::move(*lock);
}

// The marker speaks only for the stop before this start: remove it (durably) whatever this
// start made of it, or a crash from now on would be taken for a clean stop.
result<void> remove_clean_shutdown_marker(const std::string& dir) {
  if (!path_exists(dir + "/" + clean_shutdown_marker)) return {};
  SLUICE_TRY(remove_file(dir + "/" + clean_shutdown_marker));
  return sync_directory(dir);
}

}  // namespace

result<std::unique_ptr<data_directory>> data_directory::claim(const std::string& dir) {
  SLUICE_TRY(make_directory(dir));
  std::unique_ptr<data_directory> claimed(new data_directory(dir));
  auto lock = lock_data_directory(dir);
  if (!lock) return lock.failure();
  claimed->lock_file_ = std::move(*lock);
  claimed->was_clean_ = path_exists(dir + "/" + clean_shutdown_marker);
  auto checkpoints = read_checkpoints(dir);
  if (!checkpoints) return checkpoints.failure();
  claimed->checkpoints_ = std::move(*checkpoints);
  if (claimed->checkpoints_.shard_files_found) {
    // Shard k's first write replaces a file that, under another core count, held other
    // shards' partitions too; until finish_open the unsuffixed files keep every entry. An
    // unreadable recovery-point file is left as it is, so the next start still recovers.
    const checkpoint_snapshot& merged = claimed->checkpoints_;
    SLUICE_TRY(write_offset_checkpoint(checkpoint_path(dir, checkpoint_kind::log_start, 0, 1),
                                       merged.log_starts));
    if (merged.recovery_points_readable) {
      SLUICE_TRY(write_offset_checkpoint(
          checkpoint_path(dir, checkpoint_kind::recovery_point, 0, 1), merged.recovery_points));
    }
  }
  return claimed;
}

result<void> data_directory::finish_open(std::uint32_t shard_count) {
  SLUICE_ASSERT(shard_count >= 1, "a process has at least one shard");
  SLUICE_TRY(remove_clean_shutdown_marker(path_));
  SLUICE_TRY(remove_stale_checkpoints(path_, shard_count));
  checkpoints_ = checkpoint_snapshot{};
  return {};
}

result<void> data_directory::mark_clean_shutdown() {
  return write_file_atomically(path_ + "/" + clean_shutdown_marker, {});
}

result<std::unique_ptr<log_manager>> log_manager::open(const log_manager_config& config, disk& io) {
  const log_shard& shard = config.shard;
  SLUICE_ASSERT(shard.count >= 1 && shard.index < shard.count, "shard index out of range");
  SLUICE_ASSERT(shard.count == 1 || config.shared != nullptr,
                "several shards share a directory only through a data_directory");
  SLUICE_ASSERT(shard.count == 1 || shard.owns, "a shard of several must say what it owns");
  SLUICE_ASSERT(config.shared == nullptr || config.shared->path() == config.data_dir,
                "the shared data directory is not data_dir");
  std::unique_ptr<log_manager> manager(new log_manager(config, io));
  if (manager->config_.open_partitions_max == 0) {
    manager->config_.open_partitions_max = std::max<std::size_t>(
        derive_open_partitions_max() / shard.count, open_partitions_min_per_shard);
  }
  if (config.shared != nullptr) {
    const data_directory& shared = *config.shared;
    const checkpoint_snapshot& checkpoints = shared.checkpoints();
    SLUICE_TRY(manager->load(checkpoints, shared.was_clean()));
    // Written at once, so that the files of other shard counts, which finish_open removes,
    // hold nothing this shard still needs.
    SLUICE_TRY(manager->write_checkpoints());
  } else {
    SLUICE_TRY(make_directory(config.data_dir));
    auto lock = lock_data_directory(config.data_dir);
    if (!lock) return lock.failure();
    manager->lock_file_ = std::move(*lock);
    const std::string& dir = config.data_dir;
    bool clean = path_exists(dir + "/" + clean_shutdown_marker);
    auto checkpoints = read_checkpoints(dir);
    if (!checkpoints) return checkpoints.failure();
    SLUICE_TRY(manager->load(*checkpoints, clean));
    if (checkpoints->shard_files_found) {
      // A multi-core process wrote these; this manager's own files now cover every
      // partition, so theirs would only be merged again at every start.
      SLUICE_TRY(manager->write_checkpoints());
      SLUICE_TRY(remove_stale_checkpoints(dir, 1));
    }
    SLUICE_TRY(remove_clean_shutdown_marker(dir));
  }
  if (config.cleaner.enabled) manager->cleaner_ = std::make_unique<log_cleaner>(config.cleaner);
  return manager;
}

log_manager::~log_manager() {
  for (auto& [tp, entry] : partitions_) {
    SLUICE_ASSERT(entry.log->idle(), "log manager destroyed with I/O in flight");
  }
}

result<void> log_manager::load(const checkpoint_snapshot& checkpoints, bool clean) {
  const std::string& dir = config_.data_dir;
  // Without trustworthy recovery points a clean stop cannot be told from recovery point 0.
  if (!checkpoints.recovery_points_readable) clean = false;
  auto names = list_directory(dir);
  if (!names) return names.failure();
  std::sort(names->begin(), names->end());
  for (const auto& name : *names) {
    auto tp = topic_partition::from_dir_name(name);
    if (!tp || !config_.shard.owns_partition(*tp)) continue;
    offset recovery_point(0);
    if (auto it = checkpoints.recovery_points.find(*tp); it != checkpoints.recovery_points.end()) {
      recovery_point = it->second;
    }
    offset log_start(0);
    if (auto it = checkpoints.log_starts.find(*tp); it != checkpoints.log_starts.end()) {
      log_start = it->second;
    }
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
  std::string shard_note;
  if (config_.shard.count > 1) {
    shard_note = fmt::format(" (shard {} of {})", config_.shard.index, config_.shard.count);
  }
  if (clean) {
    SLUICE_LOG(info, "storage", "opened data directory {}{}: {} partitions, after a clean shutdown",
               dir, shard_note, partitions_.size());
  } else if (!partitions_.empty()) {
    SLUICE_LOG(warn, "storage",
               "opened data directory {}{} after an unclean stop: {} partitions, each recovered "
               "from its recovery point",
               dir, shard_note, partitions_.size());
  } else {
    SLUICE_LOG(info, "storage", "opened data directory {}{}: no partitions yet", dir, shard_note);
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
  if (!config_.shard.owns_partition(tp)) {
    return error(errc::invalid_argument, "the partition belongs to another shard");
  }
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
  const log_shard& shard = config_.shard;
  SLUICE_TRY(write_offset_checkpoint(
      checkpoint_path(config_.data_dir, checkpoint_kind::recovery_point, shard.index, shard.count),
      recovery_points));
  return write_offset_checkpoint(
      checkpoint_path(config_.data_dir, checkpoint_kind::log_start, shard.index, shard.count),
      log_starts);
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
  stopped_clean_ = true;
  // Shared: the process writes the marker once every shard stopped cleanly.
  if (config_.shared != nullptr) return {};
  auto marker = std::string(clean_shutdown_marker);
  return write_file_atomically(config_.data_dir + "/" + marker, {});
}

log_manager_stats log_manager::stats() const noexcept {
  return log_manager_stats{partitions_.size(), open_count_, recovered_};
}

}  // namespace sluice
