#include "engine/storage/log_cleaner.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <limits>

#include "engine/base/log.h"
#include "engine/storage/crc32c.h"
#include "engine/storage/partition_log.h"
#include "engine/storage/record_batch.h"
#include "engine/storage/segment.h"

// Header-only xxHash: XXH3 128-bit, for the offset map's key identities.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sluice {
namespace {

// The largest decompressed records section a cleaning accepts for one batch: appends
// were checked against message.max.bytes * 4, which may have shrunk since.
std::size_t decompressed_bytes_max(const log_config& config) {
  return std::min<std::size_t>(std::max<std::size_t>(config.limits.batch_bytes_max * 4, 64 << 20),
                               std::numeric_limits<std::int32_t>::max());
}

// Segment positions are 32-bit in the offset index: a cleaned copy (batches rebuilt
// uncompressed may grow) must stay below this.
constexpr std::uint64_t segment_bytes_limit = std::numeric_limits<std::int32_t>::max();
// Segments one marker lists at most; bounds the marker file.
constexpr std::size_t marker_bytes_max = 1 << 20;
// The buffer of one cleaned file's writes.
constexpr std::size_t write_buffer_bytes = 1 << 20;

void store_be16(std::byte* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::byte>(v >> 8);
  p[1] = static_cast<std::byte>(v);
}
void store_be32(std::byte* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (24 - 8 * i));
}

// A key's identity in the offset map: its XXH3 128-bit hash.
struct key_hash {
  std::uint64_t low = 0;
  std::uint64_t high = 0;
};

key_hash hash_key(std::span<const std::byte> key) noexcept {
  XXH128_hash_t h = XXH3_128bits(key.data(), key.size());
  return key_hash{h.low64, h.high64};
}

// Key hash -> offset of the latest record with that key. Open addressing with linear
// probing; grows by doubling while under entries_max.
class offset_map {
 public:
  offset_map() : slots_(initial_slots) {}
  std::size_t size() const noexcept { return used_; }

  void put(key_hash key, offset at) {
    if ((used_ + 1) * 10 > slots_.size() * 7) grow();
    slot& s = find(key);
    if (s.at < 0) {
      s.low = key.low;
      s.high = key.high;
      s.at = at.value();
      ++used_;
    } else if (at.value() > s.at) {
      s.at = at.value();
    }
  }

  std::optional<offset> get(key_hash key) const noexcept {
    const slot& s = const_cast<offset_map*>(this)->find(key);
    if (s.at < 0) return std::nullopt;
    return offset(s.at);
  }

 private:
  static constexpr std::size_t initial_slots = 1024;
  struct slot {
    std::uint64_t low = 0;
    std::uint64_t high = 0;
    std::int64_t at = -1;  // -1: empty
  };

  // The slot of `key`, or the empty slot where it belongs. The table is never full (load
  // stays under 70%), so the probe ends.
  slot& find(key_hash key) noexcept {
    std::size_t mask = slots_.size() - 1;
    std::size_t i = static_cast<std::size_t>(key.low) & mask;
    while (slots_[i].at >= 0 && (slots_[i].low != key.low || slots_[i].high != key.high)) {
      i = (i + 1) & mask;
    }
    return slots_[i];
  }

  void grow() {
    std::vector<slot> old(slots_.size() * 2);
    old.swap(slots_);
    used_ = 0;
    for (const slot& s : old) {
      if (s.at >= 0) put(key_hash{s.low, s.high}, offset(s.at));
    }
  }

  std::vector<slot> slots_;
  std::size_t used_ = 0;
};

// Buffered, blocking writes of one `.cleaned` file, on the cleaner thread.
class cleaned_file {
 public:
  result<void> create(const std::string& path) {
    path_ = path;
    auto file = open_file(path, O_WRONLY | O_CREAT | O_TRUNC);
    if (!file) return file.failure();
    file_ = std::move(*file);
    buffer_.reserve(write_buffer_bytes);
    return {};
  }
  bool is_open() const noexcept { return file_.is_open(); }
  std::uint64_t bytes() const noexcept { return bytes_; }

  result<void> append(std::span<const std::byte> data) {
    bytes_ += data.size();
    if (bytes_ > segment_bytes_limit) {
      return error(errc::batch_too_large, "a cleaned segment would outgrow 2 GiB");
    }
    if (buffer_.size() + data.size() > write_buffer_bytes) SLUICE_TRY(flush());
    if (data.size() >= write_buffer_bytes) return write_all(data);
    buffer_.insert(buffer_.end(), data.begin(), data.end());
    return {};
  }

  // Writes what is buffered, fsyncs and closes the file.
  result<void> finish() {
    SLUICE_TRY(flush());
    SLUICE_TRY(sync_file(file_.get()));
    file_.reset();
    return {};
  }

 private:
  result<void> flush() {
    SLUICE_TRY(write_all(buffer_));
    buffer_.clear();
    return {};
  }
  result<void> write_all(std::span<const std::byte> data) {
    // Bounded: every pass writes at least one byte or fails.
    while (!data.empty()) {
      ssize_t n = ::write(file_.get(), data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return error_from_errno(-errno, "writing a cleaned segment failed");
      if (n == 0) return error(errc::io_error, "writing a cleaned segment made no progress");
      data = data.subspan(static_cast<std::size_t>(n));
    }
    return {};
  }

  std::string path_;
  file_handle file_;
  std::vector<std::byte> buffer_;
  std::uint64_t bytes_ = 0;
};

std::string cleaned_path(const std::string& dir, offset base) {
  return dir + "/" + segment_file_name(base, cleaned_suffix);
}

// Every batch of a sealed segment, checked as stored data (framing, magic, CRC, count
// against offset range): visit(header, bytes) for each, in order.
template <typename Visit>
result<void> for_each_stored_batch(std::span<const std::byte> data, timestamp_ms now,
                                   const std::atomic<bool>& cancelled, Visit&& visit) {
  const batch_limits unlimited{std::numeric_limits<std::size_t>::max()};
  std::uint64_t position = 0;
  // Bounded: every batch moves the position forward by at least a header.
  while (position < data.size()) {
    if (cancelled.load(std::memory_order_relaxed)) {
      return error(errc::closed, "the cleaning was cancelled");
    }
    auto header = decode_batch_header(data.subspan(position));
    if (!header) return header.failure();
    if (header->total_bytes() > data.size() - position) {
      return error(errc::corrupt_batch, "a batch runs past the end of its segment");
    }
    auto bytes = data.subspan(position, header->total_bytes());
    auto valid = validate_batch(bytes, unlimited, now, batch_source::stored);
    if (!valid) return valid.failure();
    SLUICE_TRY(visit(*valid, bytes, position));
    position += header->total_bytes();
  }
  return {};
}

}  // namespace

// One cleaning of one log. The inputs are set on the reactor thread before the job is
// queued and never change; the outputs are written by whoever runs the job and read on
// the reactor thread after it finished (the queue's mutex orders the two).
struct log_cleaner::job {
  struct input_segment {
    offset base;
    std::uint64_t size_bytes = 0;
    // The offset at which the next segment starts: where this one's offset range ends.
    offset end;
    std::shared_ptr<const mapped_file> mapping;  // nullptr for an empty segment
  };

  // Inputs.
  std::string dir;
  log_config config;
  timestamp_ms now;
  std::vector<input_segment> segments;  // the candidate range, oldest first
  std::size_t first_dirty = 0;          // the first segment not cleaned before
  std::size_t offset_map_entries_max = 0;
  std::atomic<bool> cancelled{false};

  // Outputs.
  std::optional<error> failure;
  std::size_t covered = 0;        // segments [0, covered) were cleaned
  std::vector<offset> rewritten;  // bases with a .cleaned file, ascending
  bool offset_map_full = false;   // the map could not take the next dirty segment
  std::optional<timestamp_ms> tombstone_expiry;
  cleaning_summary summary;

  // Reactor thread only: the log and the segment objects the inputs came from.
  partition_log* log = nullptr;
  std::vector<std::shared_ptr<segment>> originals;
};

namespace {

using job = log_cleaner::job;

// Adds the keys of one segment to the map.
result<void> map_segment(job& j, const job::input_segment& in, offset_map& map,
                         std::vector<std::byte>& scratch) {
  if (!in.mapping) return {};
  std::span<const std::byte> data(in.mapping->data(), in.size_bytes);
  return for_each_stored_batch(
      data, j.now, j.cancelled,
      [&](const batch_header& h, std::span<const std::byte> bytes, std::uint64_t) -> result<void> {
        if (h.is_control()) return {};
        auto records = batch_records(h, bytes, scratch, decompressed_bytes_max(j.config));
        if (!records) return records.failure();
        return for_each_record(h, *records, [&](const record_view& r) {
          if (r.key) map.put(hash_key(*r.key), h.base_offset + r.offset_delta);
        });
      });
}

// The records of segment `in` up to its records count, without decompressing.
result<std::uint64_t> count_records(const job& j, const job::input_segment& in) {
  std::uint64_t records = 0;
  if (!in.mapping) return records;
  std::span<const std::byte> data(in.mapping->data(), in.size_bytes);
  SLUICE_TRY(for_each_stored_batch(
      data, j.now, j.cancelled,
      [&](const batch_header& h, std::span<const std::byte>, std::uint64_t) -> result<void> {
        records += static_cast<std::uint64_t>(h.records_count);
        return {};
      }));
  return records;
}

// Rewrites one segment into its .cleaned file, when it loses any record.
result<void> clean_segment(job& j, const job::input_segment& in, const offset_map& map,
                           std::vector<std::byte>& scratch) {
  if (!in.mapping) return {};
  std::span<const std::byte> data(in.mapping->data(), in.size_bytes);
  const std::int64_t tombstone_horizon = j.now.value() - j.config.delete_retention.count();
  cleaned_file out;
  // Bytes at the start of the segment that are kept as they are and not yet written: the
  // file is only created once a record is dropped.
  std::uint64_t unchanged_prefix = 0;
  std::vector<std::span<const std::byte>> kept;
  std::vector<std::byte> rebuilt;
  std::uint64_t removed = 0;
  std::uint64_t tombstones_removed = 0;

  auto keep_bytes = [&](std::span<const std::byte> bytes, std::uint64_t position) -> result<void> {
    if (out.is_open()) return out.append(bytes);
    // Still identical to the original: extend the prefix.
    SLUICE_ASSERT(position == unchanged_prefix, "cleaned prefix out of step");
    unchanged_prefix += bytes.size();
    return {};
  };
  auto start_rewrite = [&]() -> result<void> {
    if (out.is_open()) return {};
    SLUICE_TRY(out.create(cleaned_path(j.dir, in.base)));
    j.rewritten.push_back(in.base);
    return out.append(data.first(unchanged_prefix));
  };

  auto walked = for_each_stored_batch(
      data, j.now, j.cancelled,
      [&](const batch_header& h, std::span<const std::byte> bytes,
          std::uint64_t position) -> result<void> {
        if (h.is_control()) return keep_bytes(bytes, position);
        auto records = batch_records(h, bytes, scratch, decompressed_bytes_max(j.config));
        if (!records) return records.failure();
        kept.clear();
        bool batch_tombstone_kept = false;
        std::uint64_t tombstones_dropped_here = 0;
        const bool tombstones_expired = h.max_timestamp.value() < tombstone_horizon;
        SLUICE_TRY(for_each_record(h, *records, [&](const record_view& r) {
          bool keep = true;
          if (r.key) {
            auto latest = map.get(hash_key(*r.key));
            if (latest && *latest > h.base_offset + r.offset_delta) keep = false;
            if (keep && !r.value) {
              if (tombstones_expired) {
                keep = false;
              } else {
                batch_tombstone_kept = true;
              }
            }
            if (!keep && !r.value) ++tombstones_dropped_here;
          }
          if (keep) kept.push_back(r.encoded);
        }));
        if (batch_tombstone_kept) {
          timestamp_ms expiry(h.max_timestamp.value() + j.config.delete_retention.count() + 1);
          if (!j.tombstone_expiry || expiry < *j.tombstone_expiry) j.tombstone_expiry = expiry;
        }
        const auto kept_count = static_cast<std::int32_t>(kept.size());
        if (kept_count == h.records_count) return keep_bytes(bytes, position);
        removed += static_cast<std::uint64_t>(h.records_count - kept_count);
        tombstones_removed += tombstones_dropped_here;
        SLUICE_TRY(start_rewrite());
        if (kept.empty()) return {};  // the whole batch goes
        // Rebuilt uncompressed from the kept records' own bytes: their offset and
        // timestamp deltas stay valid because base offset and base timestamp stay.
        rebuilt.assign(bytes.begin(), bytes.begin() + batch_layout::header_bytes);
        for (auto record : kept) rebuilt.insert(rebuilt.end(), record.begin(), record.end());
        if (rebuilt.size() - batch_layout::log_overhead >
            static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
          return error(errc::batch_too_large, "a cleaned batch would outgrow 2 GiB");
        }
        std::byte* p = rebuilt.data();
        store_be32(p + batch_layout::batch_length,
                   static_cast<std::uint32_t>(rebuilt.size() - batch_layout::log_overhead));
        store_be16(p + batch_layout::attributes, static_cast<std::uint16_t>(h.attributes & ~0x7));
        store_be32(p + batch_layout::records_count, static_cast<std::uint32_t>(kept_count));
        store_be32(p + batch_layout::crc,
                   crc32c(std::span<const std::byte>(rebuilt).subspan(batch_layout::attributes)));
        return out.append(rebuilt);
      });
  if (!walked) return walked;
  j.summary.records_removed += removed;
  j.summary.tombstones_removed += tombstones_removed;
  if (!out.is_open()) return {};
  j.summary.bytes_before += in.size_bytes;
  j.summary.bytes_after += out.bytes();
  ++j.summary.segments_rewritten;
  return out.finish();
}

void remove_job_files(const job& j) noexcept {
  for (offset base : j.rewritten) {
    if (auto removed = remove_file(cleaned_path(j.dir, base)); !removed) {
      SLUICE_LOG(warn, "storage", "cannot remove {}: {}; the next start removes it",
                 cleaned_path(j.dir, base), removed.failure().detail());
    }
  }
}

// The heavy part of a cleaning; runs on the cleaner thread (or inline in clean_now).
// Touches only the job's inputs and outputs.
void execute(job& j) noexcept {
  offset_map map;
  std::vector<std::byte> scratch;
  auto run = [&]() -> result<void> {
    // The map covers the dirty segments that fit; the clean ones before them already hold
    // one record per key.
    j.covered = j.first_dirty;
    for (std::size_t i = j.first_dirty; i < j.segments.size(); ++i) {
      auto records = count_records(j, j.segments[i]);
      if (!records) return records.failure();
      if (map.size() + *records > j.offset_map_entries_max) {
        j.offset_map_full = true;
        break;
      }
      SLUICE_TRY(map_segment(j, j.segments[i], map, scratch));
      j.covered = i + 1;
    }
    for (std::size_t i = 0; i < j.covered; ++i) {
      SLUICE_TRY(clean_segment(j, j.segments[i], map, scratch));
    }
    // The names of the new files must be durable before the marker names them.
    if (!j.rewritten.empty()) SLUICE_TRY(sync_directory(j.dir));
    return {};
  };
  auto done = run();
  j.summary.segments_cleaned = j.covered;
  j.summary.cleaned_up_to = j.covered > 0 ? j.segments[j.covered - 1].end : offset(0);
  if (!done) {
    j.failure = done.failure();
    remove_job_files(j);
    j.rewritten.clear();
  }
  // Let go of the mappings here, not when the reactor gets round to the job.
  for (auto& s : j.segments) s.mapping.reset();
}

std::string marker_path(const std::string& dir) {
  return dir + "/" + cleaner_swap_marker;
}

}  // namespace

log_cleaner::log_cleaner(const log_cleaner_config& config) : config_(config) {
  thread_ = std::thread([this] { run(); });
}

log_cleaner::~log_cleaner() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (running_) running_->cancelled = true;
  }
  wake_.notify_all();
  thread_.join();
  // Jobs never swapped in leave no files behind.
  for (auto& j : finished_) remove_job_files(*j);
}

void log_cleaner::run() noexcept {
  // Bounded by the life of the cleaner: one job per pass, until stopped.
  for (;;) {
    std::shared_ptr<job> next;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queued_.empty(); });
      if (stopping_) return;
      next = std::move(queued_.front());
      queued_.pop_front();
      running_ = next;
    }
    execute(*next);
    {
      std::lock_guard lock(mutex_);
      running_.reset();
      finished_.push_back(std::move(next));
    }
    running_done_.notify_all();
  }
}

namespace {

// Whether `s` is one of `segments`, untouched since the job read it.
bool still_holds(const std::vector<std::shared_ptr<segment>>& segments,
                 const std::shared_ptr<segment>& s, std::uint64_t size_bytes) {
  return std::find(segments.begin(), segments.end(), s) != segments.end() && !s->removed() &&
         !s->is_active() && s->size_bytes() == size_bytes;
}

}  // namespace

std::shared_ptr<log_cleaner::job> log_cleaner::prepare(partition_log& log, timestamp_ms now,
                                                       std::size_t offset_map_entries_max,
                                                       bool force) {
  const log_config& config = log.config_;
  if (!config.compact || log.failed_ || log.cleaner_.in_progress) return nullptr;
  // The cleanable prefix of the sealed segments: fully written and flushed (a cleaned
  // copy must never hold what recovery could still cut), old enough for
  // min.compaction.lag.ms. Bounded by the number of segments; the active one never counts.
  std::vector<std::shared_ptr<segment>> candidates;
  std::vector<offset> ends;
  const auto& segments = log.segments_;
  for (std::size_t i = 0; i + 1 < segments.size(); ++i) {
    const auto& s = segments[i];
    if (s->is_active() || s->written_bytes() < s->size_bytes()) break;
    const offset end = segments[i + 1]->base_offset();
    if (s->next_offset() > log.flushed_end_ || end > log.flushed_end_) break;
    if (config.min_compaction_lag.count() > 0 && s->max_timestamp() != no_timestamp &&
        now.value() - s->max_timestamp().value() < config.min_compaction_lag.count()) {
      break;
    }
    candidates.push_back(s);
    ends.push_back(end);
  }
  if (candidates.empty()) return nullptr;

  std::uint64_t dirty_bytes = 0;
  std::uint64_t total_bytes = 0;
  std::size_t first_dirty = candidates.size();
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    total_bytes += candidates[i]->size_bytes();
    if (candidates[i]->base_offset() >= log.cleaner_.cleaned_up_to) {
      dirty_bytes += candidates[i]->size_bytes();
      first_dirty = std::min(first_dirty, i);
    }
  }
  if (!force) {
    const bool dirty_enough =
        dirty_bytes > 0 && static_cast<double>(dirty_bytes) >=
                               config.min_cleanable_dirty_ratio * static_cast<double>(total_bytes);
    const auto& expiry = log.cleaner_.tombstone_expiry;
    const bool tombstones_due = expiry && now >= *expiry;
    if (!dirty_enough && !tombstones_due) return nullptr;
  }

  auto j = std::make_shared<job>();
  j->dir = log.dir();
  j->config = config;
  j->now = now;
  j->first_dirty = first_dirty;
  j->offset_map_entries_max = offset_map_entries_max;
  j->log = &log;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    auto mapping = candidates[i]->map_for_cleaning();
    if (!mapping) {
      SLUICE_LOG(warn, "storage", "cannot map {} for the log cleaner: {}; will retry",
                 candidates[i]->log_path(), mapping.failure().detail());
      return nullptr;
    }
    j->segments.push_back(job::input_segment{
        candidates[i]->base_offset(), candidates[i]->size_bytes(), ends[i], std::move(*mapping)});
  }
  j->originals = std::move(candidates);
  return j;
}

bool log_cleaner::schedule(partition_log& log, timestamp_ms now) {
  if (!config_.enabled || in_flight_ >= config_.jobs_max) return false;
  auto j = prepare(log, now, config_.offset_map_entries_max, /*force=*/false);
  if (!j) return false;
  log.cleaner_.in_progress = true;
  ++in_flight_;
  {
    std::lock_guard lock(mutex_);
    queued_.push_back(std::move(j));
  }
  wake_.notify_one();
  return true;
}

bool log_cleaner::has_finished_jobs() const {
  std::lock_guard lock(mutex_);
  return !finished_.empty();
}

bool log_cleaner::apply(job& j) noexcept {
  partition_log& log = *j.log;
  log.cleaner_.in_progress = false;
  if (j.failure) {
    if (j.failure->code() != errc::closed) {
      SLUICE_LOG(warn, "storage", "cleaning {} failed: {} ({}); will retry", j.dir,
                 j.failure->detail(), errc_name(j.failure->code()));
    }
    return false;
  }
  // The log must still hold the very segments the job read, unchanged.
  for (std::size_t i = 0; i < j.covered; ++i) {
    if (log.failed_ || !still_holds(log.segments_, j.originals[i], j.segments[i].size_bytes)) {
      SLUICE_LOG(info, "storage",
                 "discarding a cleaning of {}: segment {} changed meanwhile (retention, "
                 "truncation or deletion)",
                 j.dir, segment_file_name(j.segments[i].base, ".log"));
      remove_job_files(j);
      return false;
    }
  }
  if (j.offset_map_full) {
    SLUICE_LOG(warn, "storage",
               "cleaning {}: the offset map ({} keys) cannot take segment {}; the log is "
               "compacted only before it for now",
               j.dir, j.offset_map_entries_max,
               segment_file_name(j.segments[j.covered].base, ".log"));
  }
  if (!j.rewritten.empty()) {
    std::string listing;
    for (offset base : j.rewritten) listing += fmt::format("{}\n", base.value());
    auto marked = write_file_atomically(marker_path(j.dir), std::as_bytes(std::span(listing)));
    if (!marked) {
      SLUICE_LOG(warn, "storage", "cannot write {}: {}; the cleaning is discarded",
                 marker_path(j.dir), marked.failure().detail());
      (void)remove_file(marker_path(j.dir));
      remove_job_files(j);
      return false;
    }
    // From here on a failure leaves the swap to be completed from the marker at the next
    // start: the log goes offline rather than serve a half-swapped state.
    auto swap = [&]() -> result<void> {
      for (offset base : j.rewritten) {
        SLUICE_TRY(remove_file(j.dir + "/" + segment_file_name(base, ".index")));
        SLUICE_TRY(remove_file(j.dir + "/" + segment_file_name(base, ".timeindex")));
        SLUICE_TRY(
            rename_file(cleaned_path(j.dir, base), j.dir + "/" + segment_file_name(base, ".log")));
      }
      SLUICE_TRY(sync_directory(j.dir));
      for (offset base : j.rewritten) {
        auto it = std::find_if(log.segments_.begin(), log.segments_.end(),
                               [&](const auto& s) { return s->base_offset() == base; });
        SLUICE_ASSERT(it != log.segments_.end(), "a rewritten segment left the log in its swap");
        auto fresh = segment::open(j.dir, base, log.config_, /*active=*/false);
        if (!fresh) return fresh.failure();
        std::shared_ptr<segment> replacement = std::move(*fresh);
        SLUICE_TRY(replacement->rebuild_indexes_from_log());
        SLUICE_TRY(replacement->close_files());
        (*it)->mark_replaced();
        std::erase(log.reopened_, *it);
        *it = std::move(replacement);
      }
      SLUICE_TRY(remove_file(marker_path(j.dir)));
      return sync_directory(j.dir);
    };
    if (auto swapped = swap(); !swapped) {
      log.failed_ = swapped.failure();
      SLUICE_LOG(error, "storage",
                 "swapping cleaned segments into {} failed: {}; the partition is offline until "
                 "the broker restarts, which completes the swap from {}",
                 j.dir, swapped.failure().detail(), cleaner_swap_marker);
      return false;
    }
  }
  if (j.covered > 0) {
    log.cleaner_.cleaned_up_to = std::max(log.cleaner_.cleaned_up_to, j.summary.cleaned_up_to);
  }
  log.cleaner_.tombstone_expiry = j.tombstone_expiry;
  if (j.rewritten.empty()) return false;
  SLUICE_LOG(info, "storage",
             "cleaned {} up to offset {}: {} of {} segments rewritten, {} -> {} bytes, {} "
             "records removed ({} tombstones)",
             j.dir, j.summary.cleaned_up_to, j.summary.segments_rewritten,
             j.summary.segments_cleaned, j.summary.bytes_before, j.summary.bytes_after,
             j.summary.records_removed, j.summary.tombstones_removed);
  return true;
}

std::size_t log_cleaner::poll() noexcept {
  std::deque<std::shared_ptr<job>> done;
  {
    std::lock_guard lock(mutex_);
    done.swap(finished_);
  }
  std::size_t changed = 0;
  for (auto& j : done) {
    --in_flight_;
    if (apply(*j)) ++changed;
  }
  return changed;
}

void log_cleaner::forget(partition_log& log) noexcept {
  std::vector<std::shared_ptr<job>> dropped;
  {
    std::unique_lock lock(mutex_);
    for (auto it = queued_.begin(); it != queued_.end();) {
      if ((*it)->log == &log) {
        dropped.push_back(std::move(*it));
        it = queued_.erase(it);
      } else {
        ++it;
      }
    }
    if (running_ && running_->log == &log) {
      running_->cancelled = true;
      auto waiting_for = running_;
      // Short: the job checks the flag before every batch.
      running_done_.wait(lock, [&] { return running_ != waiting_for; });
    }
    for (auto it = finished_.begin(); it != finished_.end();) {
      if ((*it)->log == &log) {
        dropped.push_back(std::move(*it));
        it = finished_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& j : dropped) {
    remove_job_files(*j);
    --in_flight_;
  }
  log.cleaner_.in_progress = false;
}

result<cleaning_summary> log_cleaner::clean_now(partition_log& log, timestamp_ms now,
                                                std::size_t offset_map_entries_max) {
  SLUICE_ASSERT(!log.cleaner_.in_progress, "clean_now while a background cleaning runs");
  if (log.failed_) return error(errc::closed, "partition log is offline");
  auto j = prepare(log, now, offset_map_entries_max, /*force=*/true);
  if (!j) {
    cleaning_summary nothing;
    nothing.cleaned_up_to = log.log_start_offset();
    return nothing;
  }
  execute(*j);
  apply(*j);
  if (j->failure) return *j->failure;
  if (log.failed_) return *log.failed_;
  return j->summary;
}

result<void> log_cleaner::finish_interrupted_swap(const std::string& dir,
                                                  std::vector<offset>& completed) {
  const std::string marker = marker_path(dir);
  bool synced_needed = false;
  if (path_exists(marker)) {
    auto listing = read_small_file(marker, marker_bytes_max);
    if (!listing) return listing.failure();
    std::vector<offset> bases;
    std::string_view rest = *listing;
    // Bounded by the marker's size: each line consumes at least one byte.
    while (!rest.empty()) {
      std::size_t end = rest.find('\n');
      if (end == std::string_view::npos) {
        return error(errc::corrupt_batch, "the cleaner-swap marker does not end with a newline");
      }
      std::string_view line = rest.substr(0, end);
      rest.remove_prefix(end + 1);
      std::int64_t value = 0;
      auto [ptr, ec] = std::from_chars(line.data(), line.data() + line.size(), value);
      if (ec != std::errc() || ptr != line.data() + line.size() || value < 0) {
        SLUICE_LOG(error, "storage",
                   "{} holds '{}', not a base offset; a cleaner swap cannot be completed. "
                   "Move the partition directory away and restart",
                   marker, line);
        return error(errc::corrupt_batch, "the cleaner-swap marker is unreadable");
      }
      bases.push_back(offset(value));
    }
    std::sort(bases.begin(), bases.end());
    for (offset base : bases) {
      SLUICE_TRY(remove_file(dir + "/" + segment_file_name(base, ".index")));
      SLUICE_TRY(remove_file(dir + "/" + segment_file_name(base, ".timeindex")));
      std::string cleaned = cleaned_path(dir, base);
      if (path_exists(cleaned)) {
        SLUICE_TRY(rename_file(cleaned, dir + "/" + segment_file_name(base, ".log")));
      }
      completed.push_back(base);
    }
    SLUICE_TRY(sync_directory(dir));
    SLUICE_TRY(remove_file(marker));
    synced_needed = true;
    SLUICE_LOG(warn, "storage", "completed a cleaner swap of {} segments in {} cut short by a stop",
               bases.size(), dir);
  }
  auto names = list_directory(dir);
  if (!names) return names.failure();
  for (const auto& name : *names) {
    if (name.ends_with(cleaned_suffix)) {
      // A cleaning that never reached its swap: the originals are intact.
      SLUICE_TRY(remove_file(dir + "/" + name));
      synced_needed = true;
    }
  }
  if (synced_needed) SLUICE_TRY(sync_directory(dir));
  return {};
}

}  // namespace sluice
