#include "engine/storage/partition_log.h"

#include <fcntl.h>
#include <limits.h>

#include <algorithm>
#include <cstring>

#include "engine/base/log.h"
#include "engine/storage/log_cleaner.h"

namespace sluice {
namespace {

// The most iovecs one vectored write takes (Linux's UIO_MAXIOV).
constexpr std::size_t write_iovecs_max = IOV_MAX;

}  // namespace

partition_log::partition_log(std::string dir, const log_config& config, disk& io)
    : dir_(std::move(dir)), config_(config), io_(io) {}

partition_log::~partition_log() {
  SLUICE_ASSERT(!write_in_flight_ && !sync_in_flight_,
                "partition log destroyed with I/O in flight");
}

result<std::unique_ptr<partition_log>> partition_log::open(std::string dir,
                                                           const log_config& config, disk& io,
                                                           offset recovery_point,
                                                           bool clean_shutdown,
                                                           offset log_start_offset) {
  SLUICE_TRY(make_directory(dir));
  std::unique_ptr<partition_log> log(new partition_log(std::move(dir), config, io));
  log->log_start_offset_ = log_start_offset;
  log_recovery summary;
  SLUICE_TRY(log->load_segments(recovery_point, clean_shutdown, summary));
  return log;
}

result<void> partition_log::load_segments(offset recovery_point, bool clean_shutdown,
                                          log_recovery& summary) {
  // A cleaner swap cut short by a crash is finished before the files are read.
  std::vector<offset> replaced_by_cleaner;
  SLUICE_TRY(log_cleaner::finish_interrupted_swap(dir_, replaced_by_cleaner));
  auto names = list_directory(dir_);
  if (!names) return names.failure();
  std::vector<offset> bases;
  for (const auto& name : *names) {
    if (auto base = parse_segment_file_name(name, ".log")) {
      bases.push_back(*base);
    } else if (name.ends_with(".tmp")) {
      // Left by a crash in the middle of an atomic write; the old file is intact.
      SLUICE_TRY(remove_file(dir_ + "/" + name));
    } else if (name.ends_with(segment::deleted_suffix)) {
      // A segment deleted by retention whose unlink a crash cut short.
      SLUICE_TRY(remove_file(dir_ + "/" + name));
    }
  }
  std::sort(bases.begin(), bases.end());
  // Index files without their .log belong to a segment whose deletion was cut short.
  for (const auto& name : *names) {
    for (const char* suffix : {".index", ".timeindex"}) {
      auto base = parse_segment_file_name(name, suffix);
      if (base && !std::binary_search(bases.begin(), bases.end(), *base)) {
        SLUICE_TRY(remove_file(dir_ + "/" + name));
      }
    }
  }

  // Segments from the one holding the recovery point on may hold unflushed bytes.
  offset recover_from = offset(std::numeric_limits<std::int64_t>::max());
  if (!clean_shutdown) {
    recover_from = offset(0);
    for (offset base : bases) {
      if (base <= recovery_point) recover_from = base;
    }
  }

  for (std::size_t i = 0; i < bases.size(); ++i) {
    bool last = i + 1 == bases.size();
    auto opened = segment::open(dir_, bases[i], config_, last);
    if (!opened) {
      SLUICE_LOG(error, "storage", "cannot open segment {} of {}: {} ({})",
                 segment_file_name(bases[i], ".log"), dir_, opened.failure().detail(),
                 errc_name(opened.code()));
      return opened.failure();
    }
    std::shared_ptr<segment> s = std::move(*opened);
    if (std::find(replaced_by_cleaner.begin(), replaced_by_cleaner.end(), bases[i]) !=
        replaced_by_cleaner.end()) {
      // Its index files were removed with the swap: build them for the cleaned .log.
      SLUICE_TRY(s->rebuild_indexes_from_log());
    }
    ++summary.segments;
    if (!segments_.empty() && s->base_offset() < segments_.back()->next_offset()) {
      SLUICE_LOG(error, "storage",
                 "segment {} of {} starts at offset {} inside the previous segment, which ends "
                 "at {}; move the overlapping files away and restart",
                 segment_file_name(bases[i], ".log"), dir_, s->base_offset(),
                 segments_.back()->next_offset());
      return error(errc::corrupt_batch, "segments overlap");
    }
    bool cut_short = false;
    if (bases[i] >= recover_from) {
      auto recovered =
          s->recover(config_, last ? std::nullopt : std::optional<offset>(bases[i + 1]));
      if (!recovered) return recovered.failure();
      ++summary.segments_recovered;
      summary.bytes_truncated += recovered->truncated_bytes;
      // Durable before the recovery point may move past it.
      if (s->is_open()) SLUICE_TRY(sync_file(s->log_fd()));
      s->note_synced(s->written_bytes());
      cut_short = recovered->truncated_bytes > 0 && !last;
    }
    segments_.push_back(std::move(s));
    if (cut_short) {
      // Everything after a damaged batch is unreachable by offset order: drop the later
      // segments, as Kafka does, durably.
      for (std::size_t j = i + 1; j < bases.size(); ++j) {
        SLUICE_LOG(warn, "storage", "deleting segment {} of {}: it follows a damaged batch",
                   segment_file_name(bases[j], ".log"), dir_);
        for (const char* suffix : {".log", ".index", ".timeindex"}) {
          SLUICE_TRY(remove_file(dir_ + "/" + segment_file_name(bases[j], suffix)));
        }
      }
      SLUICE_TRY(sync_directory(dir_));
      if (!segments_.back()->is_active()) SLUICE_TRY(segments_.back()->reactivate(config_));
      break;
    }
  }

  // A roll creates the next segment while batches for the old one may still be queued; a
  // crash then leaves empty segments after a hole in the offsets. Drop them, so appends
  // continue right after the last batch that reached the disk. Such a hole lies past the
  // recovery point (its batches were never flushed); a hole at or below it is a gap the
  // log cleaner left at the end of a segment, and the segment after it stays.
  while (!clean_shutdown && segments_.size() > 1 && segments_.back()->empty() &&
         segments_.back()->base_offset() > segments_[segments_.size() - 2]->next_offset() &&
         segments_.back()->base_offset() > recovery_point) {
    SLUICE_LOG(warn, "storage",
               "deleting empty segment {}: the batches before it never reached "
               "the disk",
               segments_.back()->log_path());
    SLUICE_TRY(segments_.back()->remove_files());
    SLUICE_TRY(sync_directory(dir_));
    segments_.pop_back();
    SLUICE_TRY(segments_.back()->reactivate(config_));
  }
  // Only the active segment keeps its files open; older ones reopen when read.
  for (std::size_t i = 0; i + 1 < segments_.size(); ++i) SLUICE_TRY(segments_[i]->close_files());
  if (segments_.empty()) {
    auto first = segment::create(dir_, log_start_offset_, config_);
    if (!first) return first.failure();
    segments_.push_back(std::move(*first));
  }
  log_start_offset_ = std::max(log_start_offset_, segments_.front()->base_offset());
  log_end_offset_ = std::max(segments_.back()->next_offset(), segments_.back()->base_offset());
  if (log_start_offset_ > log_end_offset_) {
    // Records were deleted up to an offset past the last batch: appends continue at the
    // log start offset, in a segment of their own (Kafka does the same).
    SLUICE_TRY(roll_to(log_start_offset_, timestamp_ms(0)));
    log_end_offset_ = log_start_offset_;
  }
  written_end_ = log_end_offset_;
  flushed_end_ = log_end_offset_;
  if (summary.bytes_truncated > 0 || summary.segments_recovered > 0) {
    SLUICE_LOG(info, "storage",
               "recovered {}: {} of {} segments validated, {} bytes of damaged tail removed, "
               "offsets [{}, {})",
               dir_, summary.segments_recovered, summary.segments, summary.bytes_truncated,
               log_start_offset_, log_end_offset_);
  }
  return {};
}

std::uint64_t partition_log::size_bytes() const noexcept {
  std::uint64_t total = 0;
  for (const auto& s : segments_) total += s->size_bytes();
  return total;
}

bool partition_log::idle() const noexcept {
  return pending_.empty() && !write_in_flight_ && !sync_in_flight_;
}

namespace {

// One deferred unlink; deletes itself when the kernel is done.
struct deferred_unlink final : completion {
  explicit deferred_unlink(std::string file) : path(std::move(file)) {}
  void complete(int res, std::uint32_t) noexcept override {
    if (res < 0 && res != -ENOENT) {
      SLUICE_LOG(warn, "storage",
                 "cannot delete {}: {} (errno {}); the next start deletes it, or remove it by "
                 "hand",
                 path, std::strerror(-res), -res);
    }
    delete this;
  }
  std::string path;
};

}  // namespace

void partition_log::unlink_later(std::vector<std::string> paths) noexcept {
  for (auto& path : paths) {
    auto* done = new deferred_unlink(std::move(path));
    io_.unlink(done->path.c_str(), done);
  }
}

result<append_info> partition_log::append(std::span<std::byte> batch, timestamp_ms now,
                                          leader_epoch epoch) {
  if (failed_) return error(errc::closed, "partition log is offline after a failed sync");
  if (pending_.size() >= config_.pending_batches_max ||
      pending_bytes_ + batch.size() > config_.pending_bytes_max) {
    return error(errc::backpressure, "too many batches are waiting to be written");
  }
  auto header = validate_batch(batch, config_.limits, now);
  if (!header) return header.failure();
  if (config_.validate_records) {
    SLUICE_TRY(validate_records(*header, batch, scratch_, config_.limits.batch_bytes_max * 4));
  }
  bool too_old =
      active().first_append_wall_ms() &&
      now.value() - active().first_append_wall_ms()->value() >= config_.segment_ms.count();
  if (active().needs_roll_for(batch.size(), header->last_offset_delta, config_) ||
      (too_old && !active().empty())) {
    SLUICE_TRY(roll_to(log_end_offset_, now));
  }
  SLUICE_TRY(active().ensure_open());
  SLUICE_TRY(active().reserve_mapping(batch.size()));

  assign_batch_offsets(batch, log_end_offset_, epoch);
  header->base_offset = log_end_offset_;
  header->partition_leader_epoch = epoch;
  file_pos position(active().size_bytes());
  active().note_append(*header, now);
  pending_.push_back(pending_write{&active(), position, iovec{batch.data(), batch.size()},
                                   header->next_offset(), header->records_count});
  pending_bytes_ += batch.size();
  log_end_offset_ = header->next_offset();
  if (!write_in_flight_) start_write();
  return append_info{header->base_offset, header->last_offset(), header->max_timestamp,
                     header->records_count};
}

void partition_log::start_write() noexcept {
  SLUICE_ASSERT(!write_in_flight_ && !pending_.empty(), "start_write with nothing to write");
  segment* target = pending_.front().target;
  file_pos start = pending_.front().position;
  write_iovecs_.clear();
  write_bytes_total_ = 0;
  write_bytes_done_ = 0;
  // Gather the queued batches of one segment, which are contiguous in its file.
  for (const auto& p : pending_) {
    if (p.target != target || write_iovecs_.size() == write_iovecs_max) break;
    SLUICE_ASSERT(p.position.value() == start.value() + write_bytes_total_,
                  "queued batches are not contiguous");
    write_iovecs_.push_back(p.bytes);
    write_bytes_total_ += p.bytes.iov_len;
  }
  write_batches_ = write_iovecs_.size();
  write_in_flight_ = true;
  io_.write(target->log_fd(), start, write_iovecs_, &write_done_);
}

void partition_log::write_done::complete(int res, std::uint32_t) noexcept {
  log_.on_write_complete(res);
}

void partition_log::on_write_complete(int res) noexcept {
  SLUICE_ASSERT(write_in_flight_, "write completion without a write");
  if (res == 0 && write_bytes_total_ > 0) res = -EIO;  // no progress: never loop on it
  if (res < 0) {
    write_in_flight_ = false;
    auto failure = error_from_errno(res, "writing a segment failed");
    SLUICE_LOG(error, "storage",
               "writing {} bytes to {} at offset {} failed: {} ({}); the {} queued batches "
               "from offset {} are dropped and their producers get an error",
               write_bytes_total_, pending_.front().target->log_path(), written_end_,
               std::strerror(-res), errc_name(failure.code()), pending_.size(), written_end_);
    fail_pending(failure);
    return;
  }
  write_bytes_done_ += static_cast<std::uint64_t>(res);
  if (write_bytes_done_ < write_bytes_total_) {
    // A short write: resubmit the rest, skipping what the kernel took.
    std::uint64_t skip = static_cast<std::uint64_t>(res);
    std::size_t first = 0;
    while (skip > 0 && skip >= write_iovecs_[first].iov_len) {
      skip -= write_iovecs_[first].iov_len;
      ++first;
    }
    write_iovecs_.erase(write_iovecs_.begin(), write_iovecs_.begin() + first);
    write_iovecs_[0].iov_base = static_cast<std::byte*>(write_iovecs_[0].iov_base) + skip;
    write_iovecs_[0].iov_len -= skip;
    segment* target = pending_.front().target;
    io_.write(target->log_fd(), pending_.front().position + write_bytes_done_, write_iovecs_,
              &write_done_);
    return;
  }

  for (std::size_t i = 0; i < write_batches_; ++i) {
    const pending_write& done = pending_.front();
    done.target->note_written(done.position.value() + done.bytes.iov_len);
    written_end_ = done.next_offset;
    unflushed_records_ += static_cast<std::uint64_t>(done.records);
    pending_bytes_ -= done.bytes.iov_len;
    pending_.pop_front();
  }
  if (!unflushed_since_) unflushed_since_ = last_tick_;
  write_in_flight_ = false;
  // Start the next write before telling the listener, so appends it makes only queue.
  if (!pending_.empty()) start_write();
  maybe_flush();
  if (listener_) listener_->on_written(written_end_);
}

void partition_log::fail_pending(const error& failure) noexcept {
  offset from = written_end_;
  pending_.clear();
  pending_bytes_ = 0;
  // Forget the appends that never reached the file: segments created for them go, the
  // rest are cut back to what is written.
  while (segments_.size() > 1 && segments_.back()->base_offset() > written_end_) {
    if (auto removed = segments_.back()->remove_files(); !removed) {
      SLUICE_LOG(warn, "storage",
                 "cannot delete the unused segment {}: {}; the next start "
                 "removes it",
                 segments_.back()->log_path(), removed.failure().detail());
    }
    segments_.pop_back();
  }
  for (auto& s : segments_) {
    if (s->written_bytes() == s->size_bytes()) continue;
    if (auto cut = s->abandon_unwritten(); !cut) {
      failed_ = cut.failure();
      SLUICE_LOG(error, "storage",
                 "cannot cut {} back after a failed write: {}; the partition is offline until "
                 "the broker restarts and recovers it",
                 s->log_path(), cut.failure().detail());
    }
  }
  if (!segments_.back()->is_active()) {
    if (auto reactivated = segments_.back()->reactivate(config_); !reactivated) {
      failed_ = reactivated.failure();
      SLUICE_LOG(error, "storage",
                 "cannot reopen {} for appends after a failed write: {}; the "
                 "partition is offline until the broker restarts",
                 segments_.back()->log_path(), reactivated.failure().detail());
    }
  }
  log_end_offset_ = written_end_;
  if (listener_) listener_->on_append_failed(from, failure);
}

void partition_log::flush() noexcept {
  flush_requested_ = true;
  maybe_flush();
}

void partition_log::maybe_flush() noexcept {
  if (failed_ || sync_in_flight_ || written_end_ <= flushed_end_) return;
  bool due = flush_requested_;
  if (config_.flush.every_messages && unflushed_records_ >= *config_.flush.every_messages) {
    due = true;
  }
  if (config_.flush.every_ms && unflushed_since_ &&
      last_tick_.value() - unflushed_since_->value() >= config_.flush.every_ms->count()) {
    due = true;
  }
  if (due) start_sync();
}

void partition_log::start_sync() noexcept {
  // Every segment with written but unsynced bytes. Not just a suffix of the list: an
  // empty active segment may follow a sealed one that still needs its sync. The walk is
  // bounded by the number of segments, and usually stops being useful after the last two.
  sync_queue_.clear();
  for (auto& s : segments_) {
    if (s->written_bytes() > s->synced_bytes()) sync_queue_.push_back({s, s->written_bytes()});
  }
  sync_target_ = written_end_;
  unflushed_records_ = 0;
  unflushed_since_.reset();
  flush_requested_ = false;
  sync_next_ = 0;
  sync_in_flight_ = true;
  submit_next_sync();
}

void partition_log::submit_next_sync() noexcept {
  if (sync_next_ == sync_queue_.size()) {
    sync_queue_.clear();
    sync_in_flight_ = false;
    flushed_end_ = sync_target_;
    maybe_flush();
    if (listener_) listener_->on_flushed(flushed_end_);
    return;
  }
  const std::shared_ptr<segment>& target = sync_queue_[sync_next_].first;
  if (target->removed()) {
    // Retention deleted it meanwhile: nothing of it is left to make durable.
    ++sync_next_;
    submit_next_sync();
    return;
  }
  // The segment's files may have been closed while idle: fdatasync through a fresh
  // descriptor flushes the same inode.
  if (!target->is_open()) {
    if (auto opened = target->ensure_open(); !opened) {
      sync_in_flight_ = false;
      fail_sync(opened.failure());
      return;
    }
    track_open_sealed(target);
  }
  io_.sync(target->log_fd(), &sync_done_);
}

void partition_log::sync_done::complete(int res, std::uint32_t) noexcept {
  log_.on_sync_complete(res);
}

void partition_log::on_sync_complete(int res) noexcept {
  SLUICE_ASSERT(sync_in_flight_, "sync completion without a sync");
  if (res < 0) {
    sync_in_flight_ = false;
    fail_sync(error_from_errno(res, "fdatasync of a segment failed"));
    return;
  }
  auto& [synced, bytes] = sync_queue_[sync_next_];
  synced->note_synced(bytes);
  ++sync_next_;
  submit_next_sync();
}

void partition_log::fail_sync(const error& failure) noexcept {
  sync_queue_.clear();
  failed_ = failure;
  // After a failed fdatasync the page cache may have dropped the dirty pages: retrying
  // could report success for data that is gone. Stop, as Kafka does.
  SLUICE_LOG(error, "storage",
             "fdatasync of {} failed: {} ({}); data from offset {} on may not be durable. The "
             "partition accepts no more appends; check the disk, then restart the broker to "
             "recover the partition from disk",
             dir_, failure.detail(),
             failure.os_errno() ? std::strerror(failure.os_errno()) : errc_name(failure.code()),
             flushed_end_);
  if (listener_) listener_->on_append_failed(flushed_end_, failure);
}

void partition_log::tick(timestamp_ms now) noexcept {
  last_tick_ = now;
  if (failed_) return;
  maybe_flush();
  auto first = active().first_append_wall_ms();
  if (first && !active().empty() && now.value() - first->value() >= config_.segment_ms.count()) {
    if (auto rolled = roll_to(log_end_offset_, now); !rolled) {
      SLUICE_LOG(warn, "storage", "time-based roll of {} failed: {}; will retry", dir_,
                 rolled.failure().detail());
    }
  }
}

result<void> partition_log::roll(timestamp_ms now) {
  if (failed_) return error(errc::closed, "partition log is offline");
  if (active().empty()) return {};
  return roll_to(log_end_offset_, now);
}

result<void> partition_log::roll_to(offset base, timestamp_ms) {
  if (active().empty() && active().base_offset() == base) return {};
  auto next = segment::create(dir_, base, config_);
  if (!next) {
    SLUICE_LOG(error, "storage", "cannot create segment {} in {}: {}",
               segment_file_name(base, ".log"), dir_, next.failure().detail());
    return next.failure();
  }
  SLUICE_TRY(active().set_sealed());
  std::shared_ptr<segment> sealed = segments_.back();
  segments_.push_back(std::move(*next));
  track_open_sealed(sealed);
  SLUICE_LOG(debug, "storage", "rolled {} to a new segment at offset {}", dir_, base);
  return {};
}

result<void> partition_log::open_for_read(const std::shared_ptr<segment>& s) {
  if (s->is_open()) return {};
  SLUICE_TRY(s->ensure_open());
  track_open_sealed(s);
  return {};
}

void partition_log::track_open_sealed(const std::shared_ptr<segment>& s) noexcept {
  if (s->is_active()) return;
  // Bound the descriptors and mappings that sealed segments hold open (after a read, a
  // sync or a roll): keep the most recent few, close the rest. A segment still being
  // written or synced, or the one just opened, stays; a reader holding a mapping keeps
  // that mapping alive. Bounded by the length of the list.
  std::erase(reopened_, s);
  reopened_.push_back(s);
  for (auto it = reopened_.begin();
       reopened_.size() > reopened_segments_max && it != reopened_.end();) {
    segment& oldest = **it;
    bool busy = *it == s || oldest.is_active() || oldest.written_bytes() < oldest.size_bytes() ||
                (sync_in_flight_ && oldest.synced_bytes() < oldest.written_bytes());
    if (busy || !oldest.is_open()) {
      it = oldest.is_open() && busy ? std::next(it) : reopened_.erase(it);
      continue;
    }
    if (auto closed = oldest.close_files(); !closed) {
      SLUICE_LOG(warn, "storage", "closing {} failed: {}", oldest.log_path(),
                 closed.failure().detail());
    }
    it = reopened_.erase(it);
  }
}

segment* partition_log::segment_for(offset target) noexcept {
  auto it = std::upper_bound(
      segments_.begin(), segments_.end(), target,
      [](offset t, const std::shared_ptr<segment>& s) { return t < s->base_offset(); });
  if (it == segments_.begin()) return nullptr;
  return std::prev(it)->get();
}

result<read_result> partition_log::read(offset start, std::size_t bytes_max,
                                        std::optional<offset> upper_bound) {
  if (start < log_start_offset_ || start > written_end_) {
    return error(errc::offset_out_of_range, "fetch offset is outside the log");
  }
  offset limit = std::min(upper_bound.value_or(written_end_), written_end_);
  read_result out{nullptr, {}, start};
  if (start >= limit) return out;
  auto it = std::upper_bound(
      segments_.begin(), segments_.end(), start,
      [](offset t, const std::shared_ptr<segment>& s) { return t < s->base_offset(); });
  if (it != segments_.begin()) --it;
  // Usually the first segment tried holds `start`; a later one only after a gap in the
  // offsets. Bounded by the number of segments.
  for (; it != segments_.end(); ++it) {
    segment& s = **it;
    if (s.base_offset() >= limit) break;
    SLUICE_TRY(open_for_read(*it));
    std::uint64_t readable = s.written_bytes();
    auto position = s.find_batch(start, readable);
    if (!position) continue;
    std::uint64_t total = 0;
    std::uint64_t cursor = position->value();
    offset next = start;
    while (cursor + batch_layout::header_bytes <= readable) {
      batch_header header = s.header_at(file_pos(cursor));
      if (header.base_offset >= limit) break;
      if (total > 0 && total + header.total_bytes() > bytes_max) break;
      total += header.total_bytes();
      cursor += header.total_bytes();
      next = header.next_offset();
    }
    if (total == 0) return out;
    out.mapping = s.mapping();
    out.bytes = s.bytes(*position, total);
    out.next_offset = next;
    return out;
  }
  return out;
}

result<std::optional<offset>> partition_log::offset_for_timestamp(timestamp_ms target) {
  for (auto& s : segments_) {
    if (s->max_timestamp() < target || s->next_offset() <= log_start_offset_) continue;
    SLUICE_TRY(open_for_read(s));
    std::uint64_t readable = s->written_bytes();
    auto position = s->find_timestamp(target, readable);
    // Batches wholly before the log start offset (after delete_records) no longer count.
    // The scan is bounded by the segment's written bytes.
    while (position && position->value() + batch_layout::header_bytes <= readable) {
      batch_header header = s->header_at(*position);
      if (header.next_offset() > log_start_offset_ && header.max_timestamp >= target) {
        return std::optional<offset>(std::max(header.base_offset, log_start_offset_));
      }
      position = *position + header.total_bytes();
    }
  }
  return std::optional<offset>();
}

std::optional<std::pair<timestamp_ms, offset>> partition_log::max_timestamp() const noexcept {
  std::optional<std::pair<timestamp_ms, offset>> best;
  for (const auto& s : segments_) {
    if (s->max_timestamp() == no_timestamp) continue;
    if (!best || s->max_timestamp() > best->first) {
      best = std::pair{s->max_timestamp(), s->max_timestamp_offset()};
    }
  }
  return best;
}

result<void> partition_log::delete_oldest_segment(std::vector<std::string>& to_unlink) {
  std::shared_ptr<segment> oldest = segments_.front();
  auto renamed = oldest->remove_files_deferred();
  if (!renamed) return renamed.failure();
  to_unlink.push_back(std::move(*renamed));
  segments_.erase(segments_.begin());
  log_start_offset_ = std::max(log_start_offset_, segments_.front()->base_offset());
  SLUICE_LOG(info, "storage", "deleted segment {} of {}; log start offset is now {}",
             segment_file_name(oldest->base_offset(), ".log"), dir_, log_start_offset_);
  return {};
}

result<std::size_t> partition_log::enforce_retention(timestamp_ms now) {
  if (failed_) return std::size_t{0};
  std::size_t deleted = 0;
  std::vector<std::string> to_unlink;
  std::uint64_t total = size_bytes();
  // Bounded by the number of segments; the active one is never deleted.
  while (segments_.size() > 1) {
    segment& oldest = *segments_.front();
    if (oldest.written_bytes() < oldest.size_bytes()) break;  // still being written
    bool below_start = oldest.next_offset() <= log_start_offset_;
    bool over_size = config_.delete_old && config_.retention_bytes &&
                     total - oldest.size_bytes() >= *config_.retention_bytes;
    bool too_old = config_.delete_old && config_.retention_ms &&
                   oldest.max_timestamp() != no_timestamp &&
                   now.value() - oldest.max_timestamp().value() > config_.retention_ms->count();
    if (!below_start && !over_size && !too_old) break;
    total -= oldest.size_bytes();
    if (auto gone = delete_oldest_segment(to_unlink); !gone) {
      unlink_later(std::move(to_unlink));
      return gone.failure();
    }
    ++deleted;
  }
  // The renames must be durable too, or a power loss brings the segments back.
  if (deleted > 0) {
    auto synced = sync_directory(dir_);
    unlink_later(std::move(to_unlink));
    if (!synced) return synced.failure();
  }
  return deleted;
}

result<void> partition_log::delete_records(offset new_start) {
  if (failed_) return error(errc::closed, "partition log is offline");
  if (new_start > written_end_) {
    return error(errc::offset_out_of_range, "delete_records past the written end of the log");
  }
  if (new_start <= log_start_offset_) return {};
  log_start_offset_ = new_start;
  std::vector<std::string> to_unlink;
  while (segments_.size() > 1 && segments_.front()->next_offset() <= log_start_offset_ &&
         segments_[1]->base_offset() <= log_start_offset_) {
    if (auto gone = delete_oldest_segment(to_unlink); !gone) {
      unlink_later(std::move(to_unlink));
      return gone.failure();
    }
    log_start_offset_ = std::max(log_start_offset_, new_start);
  }
  if (!to_unlink.empty()) {
    auto synced = sync_directory(dir_);
    unlink_later(std::move(to_unlink));
    if (!synced) return synced.failure();
  }
  return {};
}

result<void> partition_log::truncate_to(offset target) {
  if (failed_) return error(errc::closed, "partition log is offline");
  if (!idle()) return error(errc::backpressure, "truncate_to while writes are in flight");
  if (target >= log_end_offset_) return {};
  if (cleaner_.in_progress) {
    return error(errc::backpressure, "truncate_to while the log cleaner reads the segments");
  }
  // Data appended again below the clean mark would escape the next cleaning's map.
  cleaner_.cleaned_up_to = std::min(cleaner_.cleaned_up_to, target);
  if (target < log_start_offset_) {
    // Nothing survives: start afresh at target. Remove the old segments first, so their
    // files cannot collide with the new segment's names.
    for (auto& s : segments_) SLUICE_TRY(s->remove_files());
    segments_.clear();
    auto fresh = segment::create(dir_, target, config_);
    if (!fresh) {
      // No segment is left to append to: the partition stays offline until a restart.
      failed_ = fresh.failure();
      SLUICE_LOG(error, "storage", "cannot create segment {} in {} after truncation: {}",
                 segment_file_name(target, ".log"), dir_, fresh.failure().detail());
      return fresh.failure();
    }
    segments_.push_back(std::move(*fresh));
    log_start_offset_ = target;
  } else {
    bool removed = false;
    while (segments_.size() > 1 && segments_.back()->base_offset() >= target) {
      SLUICE_TRY(segments_.back()->remove_files());
      segments_.pop_back();
      removed = true;
    }
    if (removed) SLUICE_TRY(sync_directory(dir_));
    SLUICE_TRY(segments_.back()->truncate_to(target));
    SLUICE_TRY(segments_.back()->reactivate(config_));
  }
  log_end_offset_ = target;
  written_end_ = std::min(written_end_, target);
  flushed_end_ = std::min(flushed_end_, target);
  return {};
}

result<void> partition_log::close_files() {
  SLUICE_ASSERT(idle(), "close_files with I/O in flight");
  reopened_.clear();
  for (auto& s : segments_) SLUICE_TRY(s->close_files());
  return {};
}

result<void> partition_log::close() {
  SLUICE_ASSERT(idle(), "close with I/O in flight");
  reopened_.clear();
  for (auto& s : segments_) SLUICE_TRY(s->close_files());
  return {};
}

}  // namespace sluice
