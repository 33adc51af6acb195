#include "engine/storage/time_index.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <ranges>
#include <utility>

#include "engine/base/assert.h"
#include "engine/base/log.h"

namespace sluice {
namespace {

// Byte layout of one entry; see the header comment for the format.
constexpr std::size_t timestamp_at = 0;
constexpr std::size_t relative_offset_at = 8;
static_assert(relative_offset_at + sizeof(std::uint32_t) == time_index::entry_bytes);

std::uint32_t load_be32(const std::byte* p) noexcept {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
         std::uint32_t(p[3]);
}

// Timestamps are stored as the two's-complement bits of the int64, as Java writes them.
std::int64_t load_be64(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | std::uint64_t(p[i]);
  return static_cast<std::int64_t>(v);
}

void store_be64(std::byte* p, std::int64_t value) noexcept {
  auto v = static_cast<std::uint64_t>(value);
  for (std::size_t i = 8; i > 0; --i) {
    p[i - 1] = std::byte(v & 0xff);
    v >>= 8;
  }
}

void store_be32(std::byte* p, std::uint32_t v) noexcept {
  p[0] = std::byte(v >> 24);
  p[1] = std::byte(v >> 16);
  p[2] = std::byte(v >> 8);
  p[3] = std::byte(v);
}

constexpr std::int64_t relative_offset_max = std::numeric_limits<std::uint32_t>::max();

// Recovery rule for an untrimmed file: the entries are the longest prefix in which every
// entry is strictly greater than the one before in both timestamp and relative offset
// (entry 0 is always a candidate). The unused tail of a preallocated file is zero, and
// entries dropped by truncate_to are zeroed, so the run ends at the first unused slot: a
// zero entry can never follow an accepted one, whose offset is at least 0 and timestamp at
// least the zero of the first. The one ambiguity is a lone all-zero entry 0 (timestamp 0,
// base offset), which is also what an empty file looks like; it is counted as no entry,
// which loses nothing: lookup() then returns nullopt and the caller scans the segment from
// its start -- the base offset, exactly where that entry would have sent it.
std::size_t count_untrimmed_entries(const std::byte* map, std::size_t max_entries) noexcept {
  if (max_entries == 0) return 0;
  std::size_t count = 1;
  while (count < max_entries) {
    const std::byte* previous = map + (count - 1) * time_index::entry_bytes;
    const std::byte* current = map + count * time_index::entry_bytes;
    if (load_be64(current + timestamp_at) <= load_be64(previous + timestamp_at) ||
        load_be32(current + relative_offset_at) <= load_be32(previous + relative_offset_at)) {
      break;
    }
    ++count;
  }
  const bool lone_zero_entry =
      count == 1 && load_be64(map + timestamp_at) == 0 && load_be32(map + relative_offset_at) == 0;
  return lone_zero_entry ? 0 : count;
}

}  // namespace

result<time_index> time_index::open(const std::string& path, offset base_offset,
                                    std::size_t index_bytes_max) {
  const std::size_t configured_bytes = index_bytes_max / entry_bytes * entry_bytes;
  if (configured_bytes == 0) {
    return error(errc::invalid_argument, "time index: index_bytes_max is below one entry");
  }

  time_index index;
  index.path_ = path;
  index.base_offset_ = base_offset;
  index.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (index.fd_ < 0) return error_from_errno(-errno, "time index: open(2) of the index file");

  struct stat st {};
  if (::fstat(index.fd_, &st) != 0) return error_from_errno(-errno, "time index: fstat(2)");
  const auto file_bytes = static_cast<std::size_t>(st.st_size);
  if (file_bytes % entry_bytes != 0) {
    return error(errc::corrupt_batch,
                 "time index: file length is not a multiple of the entry size");
  }

  // A file shorter than the preallocated size was trimmed (or is new): its length is its
  // entry count. A file at least that long was left untrimmed by a crash and must be
  // scanned. A file longer than the configured size (the setting shrank) keeps its length,
  // so no entry is lost.
  const bool trimmed = file_bytes < configured_bytes;
  const std::size_t capacity_bytes = std::max(file_bytes, configured_bytes);
  index.index_bytes_max_ = capacity_bytes;
  index.max_entries_ = capacity_bytes / entry_bytes;
  SLUICE_TRY(index.resize(capacity_bytes));
  index.entries_ =
      trimmed ? file_bytes / entry_bytes : count_untrimmed_entries(index.map_, index.max_entries_);
  return index;
}

time_index::time_index(time_index&& other) noexcept
    : path_(std::move(other.path_)),
      base_offset_(other.base_offset_),
      fd_(std::exchange(other.fd_, -1)),
      map_(std::exchange(other.map_, nullptr)),
      map_bytes_(std::exchange(other.map_bytes_, 0)),
      entries_(std::exchange(other.entries_, 0)),
      max_entries_(std::exchange(other.max_entries_, 0)),
      index_bytes_max_(std::exchange(other.index_bytes_max_, 0)) {}

time_index& time_index::operator=(time_index&& other) noexcept {
  if (this != &other) {
    close();
    path_ = std::move(other.path_);
    base_offset_ = other.base_offset_;
    fd_ = std::exchange(other.fd_, -1);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    entries_ = std::exchange(other.entries_, 0);
    max_entries_ = std::exchange(other.max_entries_, 0);
    index_bytes_max_ = std::exchange(other.index_bytes_max_, 0);
  }
  return *this;
}

time_index::~time_index() {
  close();
}

void time_index::close() noexcept {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  map_ = nullptr;
  map_bytes_ = 0;
  entries_ = 0;
  max_entries_ = 0;
  index_bytes_max_ = 0;
}

// Sets the file length to `file_bytes` and maps all of it. Each step that can fail runs
// before the old mapping is given up, so a failure leaves the index as it was: growing
// preallocates first (ENOSPC surfaces here rather than as SIGBUS on a later store), and
// shrinking maps the smaller range before cutting the file under the old mapping.
result<void> time_index::resize(std::size_t file_bytes) {
  SLUICE_ASSERT(fd_ >= 0, "resize of a closed time index");
  SLUICE_ASSERT(file_bytes % entry_bytes == 0, "time index size is not whole entries");
  SLUICE_ASSERT(file_bytes >= entries_ * entry_bytes, "time index resize would drop entries");
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return error_from_errno(-errno, "time index: fstat(2)");
  const auto current_bytes = static_cast<std::size_t>(st.st_size);

  if (file_bytes > current_bytes) {
    const int rc = ::posix_fallocate(fd_, static_cast<off_t>(current_bytes),
                                     static_cast<off_t>(file_bytes - current_bytes));
    if (rc != 0) return error_from_errno(-rc, "time index: posix_fallocate(3) to grow");
  }
  std::byte* new_map = nullptr;
  if (file_bytes > 0) {
    void* mapped = ::mmap(nullptr, file_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (mapped == MAP_FAILED) return error_from_errno(-errno, "time index: mmap(2)");
    new_map = static_cast<std::byte*>(mapped);
  }
  if (file_bytes < current_bytes && ::ftruncate(fd_, static_cast<off_t>(file_bytes)) != 0) {
    const int saved_errno = errno;
    if (new_map != nullptr) ::munmap(new_map, file_bytes);
    return error_from_errno(-saved_errno, "time index: ftruncate(2) to shrink");
  }
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
  map_ = new_map;
  map_bytes_ = file_bytes;
  return {};
}

time_index_entry time_index::entry(std::size_t i) const noexcept {
  SLUICE_ASSERT(i < entries_, "time index entry out of range");
  const std::byte* p = map_ + i * entry_bytes;
  return {timestamp_ms(load_be64(p + timestamp_at)),
          base_offset_ + load_be32(p + relative_offset_at)};
}

std::optional<time_index_entry> time_index::last_entry() const noexcept {
  if (entries_ == 0) return std::nullopt;
  return entry(entries_ - 1);
}

bool time_index::maybe_append(timestamp_ms timestamp, offset last_offset) noexcept {
  const auto last = last_entry();
  if (last && timestamp <= last->timestamp) return false;
  SLUICE_ASSERT(!is_full(), "append to a full time index");
  const std::int64_t relative = last_offset - base_offset_;
  SLUICE_ASSERT(relative >= 0 && relative <= relative_offset_max,
                "time index entry does not fit a 32-bit relative offset");
  SLUICE_ASSERT(!last || last_offset > last->last_offset,
                "time index offsets must be strictly increasing");
  // A trimmed file ends at its last entry; grow it back before storing past the end. If the
  // disk refuses, the entry is skipped: the index is sparse, so a missing entry only makes
  // a later lookup scan a little further, and the log append itself reports the full disk.
  if (map_bytes_ < index_bytes_max_) {
    if (auto grown = resize(index_bytes_max_); !grown.ok()) {
      SLUICE_LOG(warn, "storage", "time index {}: cannot grow after trim ({}), entry skipped",
                 path_, grown.failure().detail());
      return false;
    }
  }
  std::byte* p = map_ + entries_ * entry_bytes;
  store_be64(p + timestamp_at, timestamp.value());
  store_be32(p + relative_offset_at, static_cast<std::uint32_t>(relative));
  ++entries_;
  return true;
}

std::optional<time_index_entry> time_index::lookup(timestamp_ms target) const noexcept {
  if (entries_ == 0) return std::nullopt;
  // The first entry whose timestamp is > target; the one before it is the answer.
  const auto indexes = std::views::iota(std::size_t{0}, entries_);
  const auto after = std::ranges::partition_point(indexes, [&](std::size_t i) {
    return load_be64(map_ + i * entry_bytes + timestamp_at) <= target.value();
  });
  if (after == indexes.begin()) return std::nullopt;
  return entry(*after - 1);
}

void time_index::truncate_to(offset target) noexcept {
  const std::int64_t relative = target - base_offset_;
  const auto indexes = std::views::iota(std::size_t{0}, entries_);
  const auto first_dropped = std::ranges::partition_point(indexes, [&](std::size_t i) {
    return std::int64_t{load_be32(map_ + i * entry_bytes + relative_offset_at)} < relative;
  });
  const std::size_t keep = first_dropped == indexes.end() ? entries_ : *first_dropped;
  if (keep == entries_) return;
  // Zero the dropped entries so that crash recovery of an untrimmed file, which scans for
  // the increasing run, cannot bring them back.
  std::memset(map_ + keep * entry_bytes, 0, (entries_ - keep) * entry_bytes);
  entries_ = keep;
  // A trimmed file's length is its entry count, so cut it too; otherwise a reopen would
  // count the zeroed entries. If that fails, sanity_check() will reject the zeros.
  if (map_bytes_ < index_bytes_max_ &&
      ::ftruncate(fd_, static_cast<off_t>(keep * entry_bytes)) != 0) {
    const int saved_errno = errno;
    SLUICE_LOG(warn, "storage", "time index {}: ftruncate(2) after truncate_to failed, errno {}",
               path_, saved_errno);
  }
}

result<void> time_index::trim() {
  if (fd_ < 0) return error(errc::closed, "time index: trim of a closed index");
  return resize(entries_ * entry_bytes);
}

result<void> time_index::flush() {
  if (fd_ < 0) return error(errc::closed, "time index: flush of a closed index");
  if (map_ != nullptr && ::msync(map_, map_bytes_, MS_SYNC) != 0) {
    return error_from_errno(-errno, "time index: msync(2)");
  }
  if (::fdatasync(fd_) != 0) return error_from_errno(-errno, "time index: fdatasync(2)");
  return {};
}

result<void> time_index::sanity_check(offset next_offset) const noexcept {
  for (std::size_t i = 0; i < entries_; ++i) {
    const time_index_entry current = entry(i);
    if (current.last_offset >= next_offset) {
      return error(errc::corrupt_batch, "time index: entry offset is at or past the log end");
    }
    if (i == 0) continue;
    const time_index_entry previous = entry(i - 1);
    if (current.timestamp <= previous.timestamp) {
      return error(errc::corrupt_batch, "time index: entry timestamps are not strictly increasing");
    }
    if (current.last_offset <= previous.last_offset) {
      return error(errc::corrupt_batch, "time index: entry offsets are not strictly increasing");
    }
  }
  return {};
}

}  // namespace sluice
