#include "engine/storage/offset_index.h"

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
constexpr std::size_t relative_offset_at = 0;
constexpr std::size_t position_at = 4;
static_assert(position_at + sizeof(std::uint32_t) == offset_index::entry_bytes);

std::uint32_t load_be32(const std::byte* p) noexcept {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
         std::uint32_t(p[3]);
}

void store_be32(std::byte* p, std::uint32_t v) noexcept {
  p[0] = std::byte(v >> 24);
  p[1] = std::byte(v >> 16);
  p[2] = std::byte(v >> 8);
  p[3] = std::byte(v);
}

// Positions are stored in 32 bits, as in Kafka; a segment never grows past that.
constexpr std::uint64_t position_max = std::numeric_limits<std::uint32_t>::max();
constexpr std::int64_t relative_offset_max = std::numeric_limits<std::uint32_t>::max();

// Recovery rule for an untrimmed file: the entries are the longest prefix in which every
// entry is strictly greater than the one before in both relative offset and position
// (entry 0 is always a candidate, since (0, 0) is legitimate). The unused tail of a
// preallocated file is zero, and entries dropped by truncate_to are zeroed, so the run ends
// at the first unused slot: a zero entry can never follow an accepted entry. The one
// ambiguity is a lone all-zero entry 0, which is also what an empty file looks like; it is
// counted as no entry, which loses nothing, because lookup() then returns nullopt and the
// caller scans from position 0 -- exactly where the (0, 0) entry would have sent it.
std::size_t count_untrimmed_entries(const std::byte* map, std::size_t max_entries) noexcept {
  if (max_entries == 0) return 0;
  std::size_t count = 1;
  while (count < max_entries) {
    const std::byte* previous = map + (count - 1) * offset_index::entry_bytes;
    const std::byte* current = map + count * offset_index::entry_bytes;
    if (load_be32(current + relative_offset_at) <= load_be32(previous + relative_offset_at) ||
        load_be32(current + position_at) <= load_be32(previous + position_at)) {
      break;
    }
    ++count;
  }
  const bool lone_zero_entry =
      count == 1 && load_be32(map + relative_offset_at) == 0 && load_be32(map + position_at) == 0;
  return lone_zero_entry ? 0 : count;
}

}  // namespace

result<offset_index> offset_index::open(const std::string& path, offset base_offset,
                                        std::size_t index_bytes_max) {
  const std::size_t configured_bytes = index_bytes_max / entry_bytes * entry_bytes;
  if (configured_bytes == 0) {
    return error(errc::invalid_argument, "offset index: index_bytes_max is below one entry");
  }

  offset_index index;
  index.path_ = path;
  index.base_offset_ = base_offset;
  index.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (index.fd_ < 0) return error_from_errno(-errno, "offset index: open(2) of the index file");

  struct stat st {};
  if (::fstat(index.fd_, &st) != 0) return error_from_errno(-errno, "offset index: fstat(2)");
  const auto file_bytes = static_cast<std::size_t>(st.st_size);
  if (file_bytes % entry_bytes != 0) {
    return error(errc::corrupt_batch,
                 "offset index: file length is not a multiple of the entry size");
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

offset_index::offset_index(offset_index&& other) noexcept
    : path_(std::move(other.path_)),
      base_offset_(other.base_offset_),
      fd_(std::exchange(other.fd_, -1)),
      map_(std::exchange(other.map_, nullptr)),
      map_bytes_(std::exchange(other.map_bytes_, 0)),
      entries_(std::exchange(other.entries_, 0)),
      max_entries_(std::exchange(other.max_entries_, 0)),
      index_bytes_max_(std::exchange(other.index_bytes_max_, 0)) {}

offset_index& offset_index::operator=(offset_index&& other) noexcept {
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

offset_index::~offset_index() {
  close();
}

void offset_index::close() noexcept {
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
result<void> offset_index::resize(std::size_t file_bytes) {
  SLUICE_ASSERT(fd_ >= 0, "resize of a closed offset index");
  SLUICE_ASSERT(file_bytes % entry_bytes == 0, "offset index size is not whole entries");
  SLUICE_ASSERT(file_bytes >= entries_ * entry_bytes, "offset index resize would drop entries");
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return error_from_errno(-errno, "offset index: fstat(2)");
  const auto current_bytes = static_cast<std::size_t>(st.st_size);

  if (file_bytes > current_bytes) {
    const int rc = ::posix_fallocate(fd_, static_cast<off_t>(current_bytes),
                                     static_cast<off_t>(file_bytes - current_bytes));
    if (rc != 0) return error_from_errno(-rc, "offset index: posix_fallocate(3) to grow");
  }
  std::byte* new_map = nullptr;
  if (file_bytes > 0) {
    void* mapped = ::mmap(nullptr, file_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (mapped == MAP_FAILED) return error_from_errno(-errno, "offset index: mmap(2)");
    new_map = static_cast<std::byte*>(mapped);
  }
  if (file_bytes < current_bytes && ::ftruncate(fd_, static_cast<off_t>(file_bytes)) != 0) {
    const int saved_errno = errno;
    if (new_map != nullptr) ::munmap(new_map, file_bytes);
    return error_from_errno(-saved_errno, "offset index: ftruncate(2) to shrink");
  }
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
  map_ = new_map;
  map_bytes_ = file_bytes;
  return {};
}

offset_index_entry offset_index::entry(std::size_t i) const noexcept {
  SLUICE_ASSERT(i < entries_, "offset index entry out of range");
  const std::byte* p = map_ + i * entry_bytes;
  return {base_offset_ + load_be32(p + relative_offset_at), file_pos(load_be32(p + position_at))};
}

std::optional<offset_index_entry> offset_index::last_entry() const noexcept {
  if (entries_ == 0) return std::nullopt;
  return entry(entries_ - 1);
}

void offset_index::append(offset last_offset, file_pos position) noexcept {
  SLUICE_ASSERT(!is_full(), "append to a full offset index");
  const std::int64_t relative = last_offset - base_offset_;
  SLUICE_ASSERT(relative >= 0 && relative <= relative_offset_max,
                "offset index entry does not fit a 32-bit relative offset");
  SLUICE_ASSERT(position.value() <= position_max, "offset index position beyond 32 bits");
  if (const auto last = last_entry()) {
    SLUICE_ASSERT(last_offset > last->last_offset && position > last->position,
                  "offset index entries must be strictly increasing");
  }
  // A trimmed file ends at its last entry; grow it back before storing past the end. If the
  // disk refuses, the entry is skipped: the index is sparse, so a missing entry only makes
  // a later lookup scan a little further, and the log append itself reports the full disk.
  if (map_bytes_ < index_bytes_max_) {
    if (auto grown = resize(index_bytes_max_); !grown.ok()) {
      SLUICE_LOG(warn, "storage", "offset index {}: cannot grow after trim ({}), entry skipped",
                 path_, grown.failure().detail());
      return;
    }
  }
  std::byte* p = map_ + entries_ * entry_bytes;
  store_be32(p + relative_offset_at, static_cast<std::uint32_t>(relative));
  store_be32(p + position_at, static_cast<std::uint32_t>(position.value()));
  ++entries_;
}

std::optional<offset_index_entry> offset_index::lookup(offset target) const noexcept {
  if (entries_ == 0 || target < base_offset_) return std::nullopt;
  const std::int64_t relative = target - base_offset_;
  // The first entry whose offset is > target; the one before it is the answer.
  const auto indexes = std::views::iota(std::size_t{0}, entries_);
  const auto after = std::ranges::partition_point(indexes, [&](std::size_t i) {
    return std::int64_t{load_be32(map_ + i * entry_bytes + relative_offset_at)} <= relative;
  });
  if (after == indexes.begin()) return std::nullopt;
  return entry(*after - 1);
}

void offset_index::truncate_to(offset target) noexcept {
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
    SLUICE_LOG(warn, "storage", "offset index {}: ftruncate(2) after truncate_to failed, errno {}",
               path_, saved_errno);
  }
}

result<void> offset_index::trim() {
  if (fd_ < 0) return error(errc::closed, "offset index: trim of a closed index");
  return resize(entries_ * entry_bytes);
}

result<void> offset_index::flush() {
  if (fd_ < 0) return error(errc::closed, "offset index: flush of a closed index");
  if (map_ != nullptr && ::msync(map_, map_bytes_, MS_SYNC) != 0) {
    return error_from_errno(-errno, "offset index: msync(2)");
  }
  if (::fdatasync(fd_) != 0) return error_from_errno(-errno, "offset index: fdatasync(2)");
  return {};
}

result<void> offset_index::sanity_check(std::size_t log_bytes) const noexcept {
  for (std::size_t i = 0; i < entries_; ++i) {
    const offset_index_entry current = entry(i);
    if (current.position.value() >= log_bytes) {
      return error(errc::corrupt_batch, "offset index: entry position is beyond the log size");
    }
    if (i == 0) continue;
    const offset_index_entry previous = entry(i - 1);
    if (current.last_offset <= previous.last_offset) {
      return error(errc::corrupt_batch, "offset index: entry offsets are not strictly increasing");
    }
    if (current.position <= previous.position) {
      return error(errc::corrupt_batch,
                   "offset index: entry positions are not strictly increasing");
    }
  }
  return {};
}

}  // namespace sluice
