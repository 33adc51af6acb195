#include "engine/storage/index_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "engine/base/log.h"

namespace sluice {
namespace {

int posix_fallocate_blocks(int fd, std::int64_t offset, std::int64_t length) noexcept {
  return ::posix_fallocate(fd, static_cast<off_t>(offset), static_cast<off_t>(length));
}

bool is_all_zero(const std::byte* p, std::size_t bytes) noexcept {
  return std::all_of(p, p + bytes, [](std::byte b) { return b == std::byte{0}; });
}

std::size_t round_up(std::size_t value, std::size_t unit) noexcept {
  return (value + unit - 1) / unit * unit;
}

}  // namespace

index_file::reserve_blocks_fn index_file::reserve_blocks_ = &posix_fallocate_blocks;

result<index_file> index_file::open(const std::string& path, std::size_t entry_bytes,
                                    std::size_t index_bytes_max, index_open_mode mode,
                                    index_entry_order order) {
  SLUICE_ASSERT(entry_bytes > 0 && entry_bytes <= reserve_chunk_bytes,
                "index entry size outside (0, reserve_chunk_bytes]");
  SLUICE_ASSERT(order.follows != nullptr, "index entry order without a rule");
  const std::size_t configured_bytes = index_bytes_max / entry_bytes * entry_bytes;
  if (configured_bytes == 0) {
    return error(errc::invalid_argument, "index file: index_bytes_max is below one entry");
  }

  index_file file;
  file.path_ = path;
  file.mode_ = mode;
  file.entry_bytes_ = entry_bytes;
  // A sealed file is opened read-only, so that nothing can write it by mistake. The
  // descriptor is closed at the end of open(): the mapping is all reads and appends need.
  const int access = mode == index_open_mode::sealed ? O_RDONLY : O_RDWR;
  descriptor fd(::open(path.c_str(), access | O_CREAT | O_CLOEXEC, 0644));
  if (fd.fd < 0) return error_from_errno(-errno, "index file: open(2)");
  file.open_ = true;

  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) return error_from_errno(-errno, "index file: fstat(2)");
  const auto file_bytes = static_cast<std::size_t>(st.st_size);
  if (file_bytes % entry_bytes != 0) {
    return error(errc::corrupt_batch, "index file: length is not a multiple of the entry size");
  }
  file.file_bytes_ = file_bytes;

  // A file shorter than the preallocated size was trimmed (or is new): its length is its
  // entry count. A file at least that long was left untrimmed by a crash and is scanned.
  const bool trimmed = file_bytes < configured_bytes;
  file.capacity_bytes_ =
      mode == index_open_mode::sealed ? file_bytes : std::max(file_bytes, configured_bytes);
  SLUICE_TRY(file.resize_with(fd.fd, file.capacity_bytes_));
  file.entries_ = trimmed ? file_bytes / entry_bytes : file.count_untrimmed_entries(order);
  // The existing entries were written, so their blocks exist; appends reserve the rest.
  file.reserved_bytes_ = file.entries_ * entry_bytes;
  return file;
}

index_file::index_file(index_file&& other) noexcept {
  swap(other);
}

index_file& index_file::operator=(index_file&& other) noexcept {
  // The old state goes to `taken`, which closes it on the way out.
  index_file taken(std::move(other));
  swap(taken);
  return *this;
}

index_file::~index_file() {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
}

index_file::descriptor::~descriptor() {
  if (fd >= 0) ::close(fd);
}

result<index_file::descriptor> index_file::reopen() const {
  SLUICE_ASSERT(open_, "reopen of a closed index file");
  descriptor fd(::open(path_.c_str(), (is_sealed() ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (fd.fd < 0) return error_from_errno(-errno, "index file: reopen(2)");
  return fd;
}

result<void> index_file::resize(std::size_t file_bytes) {
  auto fd = reopen();
  if (!fd) return fd.failure();
  return resize_with(fd->fd, file_bytes);
}

void index_file::swap(index_file& other) noexcept {
  std::swap(path_, other.path_);
  std::swap(open_, other.open_);
  std::swap(mode_, other.mode_);
  std::swap(map_, other.map_);
  std::swap(map_bytes_, other.map_bytes_);
  std::swap(file_bytes_, other.file_bytes_);
  std::swap(capacity_bytes_, other.capacity_bytes_);
  std::swap(reserved_bytes_, other.reserved_bytes_);
  std::swap(entry_bytes_, other.entry_bytes_);
  std::swap(entries_, other.entries_);
}

// Sets the file's length to `file_bytes` and maps all of it. Growing only sets the length:
// the new range is a hole until reserve_through() allocates it. Each step that can fail
// runs before the old mapping is given up, so a failure leaves the mapping as it was;
// shrinking maps the smaller range before cutting the file under the old mapping.
result<void> index_file::resize_with(int fd, std::size_t file_bytes) {
  SLUICE_ASSERT(open_, "resize of a closed index file");
  SLUICE_ASSERT(file_bytes % entry_bytes_ == 0, "index file size is not whole entries");
  SLUICE_ASSERT(file_bytes >= entries_ * entry_bytes_, "index file resize would drop entries");
  SLUICE_ASSERT(!is_sealed() || file_bytes == file_bytes_, "sealed index file resized");

  if (file_bytes > file_bytes_) {
    if (::ftruncate(fd, static_cast<off_t>(file_bytes)) != 0) {
      return error_from_errno(-errno, "index file: ftruncate(2) to grow");
    }
    file_bytes_ = file_bytes;
  }
  std::byte* new_map = nullptr;
  if (file_bytes > 0) {
    const int protection = is_sealed() ? PROT_READ : PROT_READ | PROT_WRITE;
    void* mapped = ::mmap(nullptr, file_bytes, protection, MAP_SHARED, fd, 0);
    if (mapped == MAP_FAILED) return error_from_errno(-errno, "index file: mmap(2)");
    // Entries are appended a few at a time and looked up by binary search: never a
    // sequential scan. Without this, the first fault on a fresh (mostly unwritten) index
    // makes the kernel read ahead -- allocate and zero -- up to read_ahead_kb of page cache
    // (8 MiB here) per index; with 10,000 partitions that stalled the broker for seconds
    // (docs/benchmarks.md, "10,000 partitions"). Advisory: a failure changes nothing else.
    (void)::madvise(mapped, file_bytes, MADV_RANDOM);
    new_map = static_cast<std::byte*>(mapped);
  }
  if (file_bytes < file_bytes_) {
    if (::ftruncate(fd, static_cast<off_t>(file_bytes)) != 0) {
      const int saved_errno = errno;
      if (new_map != nullptr) ::munmap(new_map, file_bytes);
      return error_from_errno(-saved_errno, "index file: ftruncate(2) to shrink");
    }
    file_bytes_ = file_bytes;
    reserved_bytes_ = std::min(reserved_bytes_, file_bytes);
  }
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
  map_ = new_map;
  map_bytes_ = file_bytes;
  return {};
}

// Allocates disk blocks so that [0, end_bytes) is reserved, a chunk at a time from the
// current reservation end. Chunk ends fall on multiples of reserve_chunk_bytes (so on
// page boundaries) or at the end of the file, so a page an append stores into is never
// partly reserved.
result<void> index_file::reserve_through(std::size_t end_bytes) {
  if (end_bytes <= reserved_bytes_) return {};
  const std::size_t chunk_end = std::min(capacity_bytes_, round_up(end_bytes, reserve_chunk_bytes));
  SLUICE_ASSERT(chunk_end >= end_bytes, "index reservation past the end of the file");
  // Once per reserve_chunk_bytes of entries (every few hundred MiB of log): reopening
  // costs less than a descriptor per index held for the life of the segment.
  auto fd = reopen();
  if (!fd) return fd.failure();
  const int rc = reserve_blocks_(fd->fd, static_cast<std::int64_t>(reserved_bytes_),
                                 static_cast<std::int64_t>(chunk_end - reserved_bytes_));
  if (rc != 0) return error_from_errno(-rc, "index file: posix_fallocate(3) of the next chunk");
  reserved_bytes_ = chunk_end;
  return {};
}

bool index_file::append(std::span<const std::byte> entry) noexcept {
  SLUICE_ASSERT(!is_sealed(), "append to a sealed index file");
  SLUICE_ASSERT(!is_full(), "append to a full index file");
  SLUICE_ASSERT(entry.size() == entry_bytes_, "index entry of the wrong size");
  // If the disk refuses, the entry is skipped: the index is sparse, so a missing entry
  // only makes a later lookup scan a little further, and the log append itself reports
  // the full disk.
  const std::size_t end_bytes = (entries_ + 1) * entry_bytes_;
  auto ready = map_bytes_ < capacity_bytes_ ? resize(capacity_bytes_) : result<void>();
  if (ready.ok()) ready = reserve_through(end_bytes);
  if (!ready.ok()) {
    SLUICE_LOG(warn, "storage", "index {}: no room for an entry ({}, errno {}), entry skipped",
               path_, ready.failure().detail(), ready.failure().os_errno());
    return false;
  }
  std::memcpy(map_ + entries_ * entry_bytes_, entry.data(), entry_bytes_);
  ++entries_;
  return true;
}

void index_file::truncate_entries(std::size_t keep) noexcept {
  SLUICE_ASSERT(!is_sealed(), "truncate of a sealed index file: reopen it in append mode");
  if (keep >= entries_) return;
  std::memset(map_ + keep * entry_bytes_, 0, (entries_ - keep) * entry_bytes_);
  entries_ = keep;
  // A trimmed file's length is its entry count, so cut it too; otherwise a reopen would
  // count the zeroed entries.
  if (file_bytes_ >= capacity_bytes_) return;
  auto fd = reopen();
  if (!fd || ::ftruncate(fd->fd, static_cast<off_t>(keep * entry_bytes_)) != 0) {
    const int saved_errno = fd ? errno : fd.failure().os_errno();
    SLUICE_LOG(warn, "storage", "index {}: ftruncate(2) after truncate_to failed, errno {}", path_,
               saved_errno);
    return;
  }
  // The mapping stays as long as it was; the next append remaps it whole.
  file_bytes_ = keep * entry_bytes_;
  reserved_bytes_ = std::min(reserved_bytes_, file_bytes_);
}

result<void> index_file::trim() {
  if (!open_) return error(errc::closed, "index file: trim of a closed index");
  if (is_sealed()) return {};
  return resize(entries_ * entry_bytes_);
}

result<void> index_file::flush() {
  if (!open_) return error(errc::closed, "index file: flush of a closed index");
  if (map_ != nullptr && ::msync(map_, map_bytes_, MS_SYNC) != 0) {
    return error_from_errno(-errno, "index file: msync(2)");
  }
  // fdatasync(2) syncs the file, whichever descriptor names it.
  auto fd = reopen();
  if (!fd) return fd.failure();
  if (::fdatasync(fd->fd) != 0) return error_from_errno(-errno, "index file: fdatasync(2)");
  return {};
}

// The entries of an untrimmed file are the longest prefix in which each entry follows the
// one before (entry 0 is always a candidate). The unused tail is zero and dropped entries
// are zeroed, so under a "strictly greater in every field" rule the run ends at the first
// unused slot. The one ambiguity is a lone all-zero entry 0, which is also what an empty
// file looks like; the order says whether it counts as an entry.
std::size_t index_file::count_untrimmed_entries(index_entry_order order) const noexcept {
  const std::size_t slots = map_bytes_ / entry_bytes_;
  if (slots == 0) return 0;
  std::size_t count = 1;
  while (count < slots &&
         order.follows(map_ + (count - 1) * entry_bytes_, map_ + count * entry_bytes_)) {
    ++count;
  }
  const bool lone_zero_entry =
      order.lone_zero_entry_is_empty && count == 1 && is_all_zero(map_, entry_bytes_);
  return lone_zero_entry ? 0 : count;
}

}  // namespace sluice
