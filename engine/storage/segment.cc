#include "engine/storage/segment.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "engine/base/log.h"
#include "engine/storage/crc32c.h"

namespace sluice {
namespace {

constexpr std::uint64_t page_bytes = 4096;

std::uint64_t round_up_to_page(std::uint64_t bytes) {
  return (bytes + page_bytes - 1) / page_bytes * page_bytes;
}

// Checks a batch found in a segment file: whole, magic 2, CRC intact. The rules for
// appends (record count against last offset delta, timestamps) are not repeated here:
// stored batches may legitimately differ (compaction drops records but keeps the
// offset range).
const char* stored_batch_problem(std::span<const std::byte> bytes, const batch_header& header) {
  if (header.batch_length <
      static_cast<std::int32_t>(batch_layout::header_bytes - batch_layout::log_overhead)) {
    return "batch length is smaller than a batch header";
  }
  if (header.total_bytes() > bytes.size()) return "batch extends past the end of the file";
  if (header.magic != batch_magic_v2) return "batch magic is not 2";
  if (header.last_offset_delta < 0) return "batch last offset delta is negative";
  auto crc_range =
      bytes.subspan(batch_layout::attributes, header.total_bytes() - batch_layout::attributes);
  if (crc32c(crc_range) != header.crc) return "batch CRC32C does not match its bytes";
  return nullptr;
}

}  // namespace

std::string segment_file_name(offset base_offset, const char* suffix) {
  return fmt::format("{:020d}{}", base_offset.value(), suffix);
}

std::optional<offset> parse_segment_file_name(const std::string& name, const char* suffix) {
  std::size_t suffix_bytes = std::strlen(suffix);
  if (name.size() != 20 + suffix_bytes) return std::nullopt;
  if (name.compare(20, suffix_bytes, suffix) != 0) return std::nullopt;
  std::int64_t value = 0;
  for (std::size_t i = 0; i < 20; ++i) {
    char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    if (value > (std::numeric_limits<std::int64_t>::max() - (c - '0')) / 10) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return offset(value);
}

segment::segment(std::string dir, offset base_offset, const log_config& config)
    : dir_(std::move(dir)),
      log_path_(dir_ + "/" + segment_file_name(base_offset, ".log")),
      offset_index_path_(dir_ + "/" + segment_file_name(base_offset, ".index")),
      time_index_path_(dir_ + "/" + segment_file_name(base_offset, ".timeindex")),
      base_offset_(base_offset),
      map_bytes_(round_up_to_page(config.segment_bytes + config.limits.batch_bytes_max)),
      index_bytes_max_(config.index_bytes_max),
      index_interval_bytes_(config.index_interval_bytes),
      next_offset_(base_offset),
      max_timestamp_offset_(base_offset) {}

segment::~segment() = default;

result<std::unique_ptr<segment>> segment::create(const std::string& dir, offset base_offset,
                                                 const log_config& config) {
  std::unique_ptr<segment> s(new segment(dir, base_offset, config));
  SLUICE_TRY(s->open_files(/*create=*/true));
  // The new file names must survive a power loss before anything is acknowledged in them.
  SLUICE_TRY(sync_directory(dir));
  return s;
}

result<std::unique_ptr<segment>> segment::open(const std::string& dir, offset base_offset,
                                               const log_config& config, bool active) {
  std::unique_ptr<segment> s(new segment(dir, base_offset, config));
  s->active_ = active;
  SLUICE_TRY(s->open_files(/*create=*/false));
  auto size = file_size(s->log_file_.get());
  if (!size) return size.failure();
  if (!active) {
    s->map_bytes_ = round_up_to_page(*size);
  } else {
    // segment.bytes may have shrunk since the file was written: cover the whole file.
    s->map_bytes_ =
        std::max(s->map_bytes_, round_up_to_page(*size + config.limits.batch_bytes_max));
  }
  s->size_bytes_ = *size;
  s->written_bytes_ = *size;
  s->synced_bytes_ = *size;
  SLUICE_TRY(s->map_log());
  // Trust indexes that pass their sanity checks: then only the batches after the last
  // offset index entry need a header walk to find the next offset, as in Kafka. Otherwise
  // walk every header (no CRC; recover() does the full validation when it is needed).
  bool indexes_sane =
      !s->indexes_need_rebuild_ && s->offset_index_->sanity_check(*size).ok() &&
      s->time_index_->sanity_check(offset(std::numeric_limits<std::int64_t>::max())).ok();
  std::uint64_t position = 0;
  if (indexes_sane) {
    if (auto last = s->offset_index_->last_entry()) position = last->position.value();
    if (auto last = s->time_index_->last_entry()) {
      s->max_timestamp_ = last->timestamp;
      s->max_timestamp_offset_ = last->last_offset;
    }
  }
  while (position + batch_layout::header_bytes <= *size) {
    auto header = decode_batch_header(s->bytes(file_pos(position), *size - position));
    if (!header || header->total_bytes() > *size - position) break;
    // The base offset and the count lie outside the CRC, and nothing here checks the CRC:
    // a damaged header can claim offsets this segment cannot hold (before the previous
    // batch, or beyond the 32-bit offsets its indexes store). It ends the walk like a torn
    // tail, so the indexes are never built from it; recover() cuts it.
    if (!s->holds_offsets_of(*header)) break;
    s->next_offset_ = std::max(s->next_offset_, header->next_offset());
    if (header->max_timestamp > s->max_timestamp_) {
      s->max_timestamp_ = header->max_timestamp;
      s->max_timestamp_offset_ = header->last_offset();
    }
    position += header->total_bytes();
  }
  if (position != *size) {
    // A torn tail: the caller runs recover() for segments after the recovery point; here
    // only the bytes that frame as batches are counted.
    SLUICE_LOG(warn, "storage", "segment {} has {} bytes after its last whole batch", s->log_path_,
               *size - position);
    s->size_bytes_ = position;
    s->written_bytes_ = position;
    s->synced_bytes_ = position;
  }
  if (!indexes_sane || !s->offset_index_->sanity_check(s->size_bytes_).ok() ||
      !s->time_index_->sanity_check(s->next_offset_).ok()) {
    SLUICE_LOG(warn, "storage", "rebuilding the indexes of segment {}: they fail their checks",
               s->log_path_);
    SLUICE_TRY(s->rebuild_indexes(s->size_bytes_));
    s->indexes_need_rebuild_ = false;
  } else {
    s->bytes_since_index_entry_ =
        position -
        (s->offset_index_->last_entry() ? s->offset_index_->last_entry()->position.value() : 0);
  }
  if (!active) SLUICE_TRY(s->seal());
  return s;
}

bool segment::holds_offsets_of(const batch_header& header) const noexcept {
  constexpr std::int64_t relative_offset_max = std::numeric_limits<std::uint32_t>::max();
  return header.base_offset >= next_offset_ && header.last_offset() >= header.base_offset &&
         header.last_offset() - base_offset_ <= relative_offset_max;
}

result<void> segment::open_files(bool create) {
  if (create) SLUICE_TRY(remove_file(log_path_));
  int flags = O_RDWR | (create ? O_CREAT | O_EXCL : 0);
  auto log_file = open_file(log_path_, flags);
  if (!log_file) return log_file.failure();
  log_file_ = std::move(*log_file);
  if (create) {
    // Files left behind by an earlier segment with the same base offset (one whose
    // deletion failed, say) must not be mistaken for this one's: the log creates a
    // segment only at a base offset it holds no segment for.
    SLUICE_TRY(remove_file(offset_index_path_));
    SLUICE_TRY(remove_file(time_index_path_));
  }
  // Sealed segments read their indexes as they are; only the active one grows them.
  const index_open_mode mode = active_ ? index_open_mode::append : index_open_mode::sealed;
  auto oi = open_index<offset_index>(offset_index_path_, mode);
  if (!oi) return oi.failure();
  offset_index_.emplace(std::move(*oi));
  auto ti = open_index<time_index>(time_index_path_, mode);
  if (!ti) return ti.failure();
  time_index_.emplace(std::move(*ti));
  if (create) SLUICE_TRY(map_log());
  return {};
}

template <typename Index>
result<Index> segment::open_index(const std::string& path, index_open_mode mode) {
  auto index = Index::open(path, base_offset_, index_bytes_max_, mode);
  if (index || index.code() != errc::corrupt_batch) return index;
  // An index can always be rebuilt from the log: start it afresh; open() rebuilds it.
  SLUICE_LOG(warn, "storage", "index {} is damaged ({}); rebuilding it from the log", path,
             index.failure().detail());
  SLUICE_TRY(remove_file(path));
  indexes_need_rebuild_ = true;
  return Index::open(path, base_offset_, index_bytes_max_, index_open_mode::append);
}

result<void> segment::map_log() {
  mapping_.reset();
  if (map_bytes_ == 0) return {};
  auto mapping = mapped_file::map(log_file_.get(), map_bytes_);
  if (!mapping) return mapping.failure();
  mapping_ = std::move(*mapping);
  return {};
}

result<void> segment::ensure_open() {
  if (is_open()) return {};
  SLUICE_TRY(open_files(/*create=*/false));
  if (!active_) map_bytes_ = round_up_to_page(size_bytes_);
  SLUICE_TRY(map_log());
  if (indexes_need_rebuild_) {
    SLUICE_TRY(rebuild_indexes(size_bytes_));
    indexes_need_rebuild_ = false;
  }
  return {};
}

result<void> segment::reserve_mapping(std::uint64_t bytes) {
  if (mapping_ && size_bytes_ + bytes <= mapping_->length()) return {};
  // The limits grew since the mapping was made (set_config): map the file again, larger.
  // Readers keep the old mapping alive as long as they hold it.
  map_bytes_ = round_up_to_page(size_bytes_ + bytes + map_bytes_);
  return map_log();
}

void segment::add_final_time_entry() noexcept {
  if (max_timestamp_ != no_timestamp && !time_index_->is_full()) {
    time_index_->maybe_append(max_timestamp_, max_timestamp_offset_);
  }
}

result<void> segment::set_sealed() {
  active_ = false;
  if (is_open()) add_final_time_entry();
  return seal();
}

result<void> segment::close_files() {
  if (!is_open()) return {};
  SLUICE_TRY(seal());
  offset_index_.reset();
  time_index_.reset();
  mapping_.reset();
  log_file_.reset();
  return {};
}

bool segment::needs_roll_for(std::uint64_t bytes, std::int32_t last_offset_delta,
                             const log_config& config) const noexcept {
  if (size_bytes_ == 0) return false;  // a batch larger than a segment still gets one
  if (size_bytes_ + bytes > config.segment_bytes) return true;
  // Offsets relative to the base must fit Kafka's signed 32 bits, for the whole batch.
  if (next_offset_ - base_offset_ + last_offset_delta >
      std::int64_t{std::numeric_limits<std::int32_t>::max()}) {
    return true;
  }
  if (size_bytes_ + bytes > std::numeric_limits<std::int32_t>::max()) return true;
  return offset_index_ && (offset_index_->is_full() || time_index_->is_full());
}

void segment::note_append(const batch_header& header, timestamp_ms wall_now) {
  SLUICE_ASSERT(is_open(), "append to a closed segment");
  if (!first_append_wall_) first_append_wall_ = wall_now;
  index_batch(header, file_pos(size_bytes_));
  size_bytes_ += header.total_bytes();
  next_offset_ = header.next_offset();
}

void segment::index_batch(const batch_header& header, file_pos position) {
  if (header.max_timestamp > max_timestamp_) {
    max_timestamp_ = header.max_timestamp;
    max_timestamp_offset_ = header.last_offset();
  }
  if (bytes_since_index_entry_ > index_interval_bytes_) {
    offset_index_->append(header.last_offset(), position);
    if (max_timestamp_ != no_timestamp) {
      time_index_->maybe_append(max_timestamp_, max_timestamp_offset_);
    }
    bytes_since_index_entry_ = 0;
  }
  bytes_since_index_entry_ += header.total_bytes();
}

void segment::note_written(std::uint64_t bytes) noexcept {
  SLUICE_ASSERT(bytes <= size_bytes_ && bytes >= written_bytes_, "written bytes out of order");
  written_bytes_ = bytes;
}

batch_header segment::header_at(file_pos position) const noexcept {
  auto header = decode_batch_header(bytes(position, batch_layout::header_bytes));
  SLUICE_ASSERT(header.ok(), "no batch header at an indexed position");
  return *header;
}

std::span<const std::byte> segment::bytes(file_pos position, std::uint64_t length) const noexcept {
  SLUICE_ASSERT(mapping_ && position.value() + length <= mapping_->length(),
                "read outside the segment mapping");
  return {mapping_->data() + position.value(), length};
}

std::optional<file_pos> segment::find_batch(offset target,
                                            std::uint64_t readable_bytes) const noexcept {
  std::uint64_t position = 0;
  if (auto entry = offset_index_->lookup(target)) position = entry->position.value();
  // Scan forward over batch headers; bounded by the readable bytes.
  while (position + batch_layout::header_bytes <= readable_bytes) {
    batch_header header = header_at(file_pos(position));
    if (header.last_offset() >= target) return file_pos(position);
    position += header.total_bytes();
  }
  return std::nullopt;
}

std::optional<file_pos> segment::find_timestamp(timestamp_ms target,
                                                std::uint64_t readable_bytes) const {
  std::uint64_t position = 0;
  if (auto entry = time_index_->lookup(target)) {
    if (auto at = offset_index_->lookup(entry->last_offset)) position = at->position.value();
  }
  while (position + batch_layout::header_bytes <= readable_bytes) {
    batch_header header = header_at(file_pos(position));
    if (header.max_timestamp >= target) return file_pos(position);
    position += header.total_bytes();
  }
  return std::nullopt;
}

result<void> segment::truncate_to(offset target) {
  SLUICE_TRY(ensure_open());
  SLUICE_ASSERT(written_bytes_ == size_bytes_, "truncate_to with a write in flight");
  std::uint64_t keep = size_bytes_;
  if (auto position = find_batch(target, size_bytes_)) {
    // find_batch gives the first batch with last offset >= target; keep only what is
    // before it.
    keep = position->value();
  }
  if (keep == size_bytes_) return {};
  SLUICE_TRY(truncate_file(log_file_.get(), keep));
  // Cut batches have valid CRCs: the new size must be durable, or a power loss could bring
  // them back and recovery would keep them.
  SLUICE_TRY(sync_file(log_file_.get()));
  synced_bytes_ = std::min(synced_bytes_, keep);
  return rebuild_indexes(keep);
}

result<void> segment::rebuild_indexes(std::uint64_t log_bytes) {
  if (offset_index_->is_sealed() || time_index_->is_sealed()) {
    // A sealed index is read-only: reopen both for writing, and trim them again after.
    offset_index_.reset();
    time_index_.reset();
    auto oi = offset_index::open(offset_index_path_, base_offset_, index_bytes_max_);
    if (!oi) return oi.failure();
    offset_index_.emplace(std::move(*oi));
    auto ti = time_index::open(time_index_path_, base_offset_, index_bytes_max_);
    if (!ti) return ti.failure();
    time_index_.emplace(std::move(*ti));
  }
  SLUICE_TRY(fill_indexes(log_bytes));
  if (!active_) {
    add_final_time_entry();
    return seal();
  }
  return {};
}

result<void> segment::fill_indexes(std::uint64_t log_bytes) {
  offset_index_->reset();
  time_index_->reset();
  size_bytes_ = 0;
  written_bytes_ = 0;
  bytes_since_index_entry_ = 0;
  next_offset_ = base_offset_;
  max_timestamp_ = no_timestamp;
  max_timestamp_offset_ = base_offset_;
  std::uint64_t position = 0;
  while (position + batch_layout::header_bytes <= log_bytes) {
    batch_header header = header_at(file_pos(position));
    if (position + header.total_bytes() > log_bytes) break;
    // An index too small for the segment only makes lookups scan further.
    if (!offset_index_->is_full() && !time_index_->is_full()) {
      index_batch(header, file_pos(position));
    } else if (header.max_timestamp > max_timestamp_) {
      max_timestamp_ = header.max_timestamp;
      max_timestamp_offset_ = header.last_offset();
    }
    position += header.total_bytes();
    next_offset_ = header.next_offset();
  }
  SLUICE_ASSERT(position == log_bytes, "rebuild_indexes over bytes that were not validated");
  size_bytes_ = position;
  written_bytes_ = position;
  synced_bytes_ = std::min(synced_bytes_, position);
  return {};
}

result<segment_recovery> segment::recover(const log_config& config,
                                          std::optional<offset> next_segment_base) {
  (void)config;
  SLUICE_TRY(ensure_open());
  auto size = file_size(log_file_.get());
  if (!size) return size.failure();
  // Map at least the whole file, whatever its size, to validate it.
  if (!mapping_ || mapping_->length() < *size) {
    map_bytes_ = std::max(map_bytes_, round_up_to_page(*size));
    SLUICE_TRY(map_log());
  }
  segment_recovery summary;
  std::uint64_t position = 0;
  offset expected = base_offset_;
  while (position < *size) {
    auto remaining = bytes(file_pos(position), *size - position);
    if (remaining.size() < batch_layout::header_bytes) {
      summary.stop_reason = "a partial batch header at the end of the file";
      break;
    }
    auto header = decode_batch_header(remaining);
    if (!header) {
      summary.stop_reason = header.failure().detail();
      break;
    }
    if (const char* problem = stored_batch_problem(remaining, *header)) {
      summary.stop_reason = problem;
      break;
    }
    // The base offset lies outside the CRC, so check what can be checked: offsets only
    // grow, stay within the segment's 32-bit relative range (Kafka's rule), and end
    // before the next segment begins. A small forward jump cannot be told from a real
    // gap (after truncate_to, or compaction), as in Kafka.
    if (header->base_offset < expected) {
      summary.stop_reason = "batch base offset goes backwards";
      break;
    }
    if (header->last_offset() - base_offset_ >
        std::int64_t{std::numeric_limits<std::int32_t>::max()}) {
      summary.stop_reason = "batch offsets are outside the segment's 32-bit relative range";
      break;
    }
    if (next_segment_base && header->last_offset() >= *next_segment_base) {
      summary.stop_reason = "batch offsets run into the next segment";
      break;
    }
    expected = header->next_offset();
    position += header->total_bytes();
    ++summary.batches;
  }
  summary.valid_bytes = position;
  summary.truncated_bytes = *size - position;
  if (summary.truncated_bytes > 0) {
    SLUICE_LOG(warn, "storage",
               "recovery cut {} bytes off segment {} at byte {}: {}; the batches before are "
               "intact",
               summary.truncated_bytes, log_path_, position, summary.stop_reason);
    SLUICE_TRY(truncate_file(log_file_.get(), position));
  }
  SLUICE_TRY(rebuild_indexes(position));
  return summary;
}

result<void> segment::seal() {
  if (!is_open()) return {};
  SLUICE_TRY(offset_index_->trim());
  SLUICE_TRY(time_index_->trim());
  return {};
}

result<void> segment::abandon_unwritten() {
  if (written_bytes_ == size_bytes_) return {};
  SLUICE_TRY(truncate_file(log_file_.get(), written_bytes_));
  SLUICE_TRY(sync_file(log_file_.get()));
  return rebuild_indexes(written_bytes_);
}

result<void> segment::reactivate(const log_config& config) {
  if (active_) return {};
  active_ = true;
  map_bytes_ =
      round_up_to_page(std::max(size_bytes_, config.segment_bytes) + config.limits.batch_bytes_max);
  if (!is_open()) return ensure_open();
  // Reopen the indexes so they grow back to their preallocated size for appends.
  offset_index_.reset();
  time_index_.reset();
  log_file_.reset();
  SLUICE_TRY(open_files(/*create=*/false));
  return map_log();
}

result<std::shared_ptr<const mapped_file>> segment::map_for_cleaning() const {
  SLUICE_ASSERT(!active_, "map_for_cleaning of the active segment");
  if (size_bytes_ == 0) return std::shared_ptr<const mapped_file>();
  if (mapping_ && mapping_->length() >= size_bytes_) {
    return std::shared_ptr<const mapped_file>(mapping_);
  }
  auto file = open_file(log_path_, O_RDONLY);
  if (!file) return file.failure();
  auto mapping = mapped_file::map(file->get(), round_up_to_page(size_bytes_));
  if (!mapping) return mapping.failure();
  return std::shared_ptr<const mapped_file>(std::move(*mapping));
}

result<void> segment::rebuild_indexes_from_log() {
  SLUICE_TRY(ensure_open());
  return rebuild_indexes(size_bytes_);
}

result<std::string> segment::remove_files_deferred() {
  removed_ = true;
  std::string renamed = log_path_ + deleted_suffix;
  SLUICE_TRY(rename_file(log_path_, renamed));
  SLUICE_TRY(remove_file(offset_index_path_));
  SLUICE_TRY(remove_file(time_index_path_));
  return renamed;
}

result<void> segment::remove_files() {
  removed_ = true;
  // Files stay open (and mapped) until the object is destroyed: a sync in flight or a
  // reader may still hold them. Unlinking is what deletes the data.
  SLUICE_TRY(remove_file(log_path_));
  SLUICE_TRY(remove_file(offset_index_path_));
  SLUICE_TRY(remove_file(time_index_path_));
  return {};
}

}  // namespace sluice
