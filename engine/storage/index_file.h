// One memory-mapped index file made of fixed-size entries: the file handling shared by
// offset_index (`.index`) and time_index (`.timeindex`).
//
// The file has no header: entry i is at bytes [i * entry_bytes, (i + 1) * entry_bytes).
// What an entry means (its fields, their order, lookups) belongs to the index that holds
// this object; index_file only knows slots of entry_bytes. Every index field is stored
// big-endian, as Kafka writes them, hence the byte-order helpers at the end.
//
// Length, allocation and mapping (see docs/formats/offset-index.md):
// - append mode (the segment is active): the file's length is set to the preallocated
//   size (index_bytes_max rounded down to whole entries) with ftruncate(2) and all of it
//   is mapped read-write. The new length is a hole: no disk blocks are allocated for it.
//   Before an append stores into bytes past `reserved_bytes_`, the next chunk of
//   reserve_chunk_bytes (or what is left up to the end) is allocated with
//   posix_fallocate(3). A full disk thus shows up as a failed reservation -- the entry is
//   skipped with a warning; the index is sparse, so that only makes lookups scan further
//   -- and never as SIGBUS on a store into an unallocated page of the mapping. 10,000
//   partitions then cost a few chunks each, not 2 x 10 MiB of real disk each.
//   The bytes of the entries a file holds at open are written already, so they count as
//   reserved; trim() gives the blocks past the entries back.
// - sealed mode (the segment is sealed): the file is used as it is, read-only. Its length
//   is never changed, nothing is written or allocated, and is_full() is true.
//
// The entry count comes from the length of a trimmed file (shorter than the preallocated
// size). An untrimmed file (a crash left it at the preallocated size) is scanned for the
// longest run in which every entry follows the one before under the index's ordering
// rule (see index_entry_order); dropped entries are zeroed, so they end the run.
//
// Owned by one offset_index or time_index, hence by one segment; touched only by the core
// that owns the partition. Movable (the source is left closed), not copyable. Destruction
// unmaps and closes without trimming, which is what a crash leaves too.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <ranges>
#include <span>
#include <string>
#include <utility>

#include "engine/base/assert.h"
#include "engine/base/result.h"

namespace sluice {

enum class index_open_mode : std::uint8_t {
  // An active segment's index: grown to the preallocated size, accepts appends.
  append,
  // A sealed segment's index: the file as it is, never written; accepts no appends.
  sealed,
};

// How an index orders its entries; used to recover the entry count of an untrimmed file.
struct index_entry_order {
  // True when the entry at `current` may follow the entry at `previous`: in Sluice's
  // indexes, strictly greater in every field.
  bool (*follows)(const std::byte* previous, const std::byte* current) noexcept;
  // Whether a lone all-zero entry 0 counts as no entry. An empty preallocated file looks
  // exactly like that, so an index for which a zero entry 0 sends a lookup where "no
  // entry" sends it too says true.
  bool lone_zero_entry_is_empty;
};

class index_file {
 public:
  // The unit in which disk blocks are reserved ahead of appends.
  static constexpr std::size_t reserve_chunk_bytes = 64 * 1024;

  // Opens or creates the file at `path` (sealed mode also creates a missing file, empty,
  // as an index with no entries). Fails with errc::invalid_argument when index_bytes_max
  // is below one entry, errc::io_error / errc::no_space when the file cannot be opened,
  // sized or mapped, and errc::corrupt_batch when its length is not whole entries. A file
  // longer than the preallocated size (the setting shrank) keeps its length and entries.
  static result<index_file> open(const std::string& path, std::size_t entry_bytes,
                                 std::size_t index_bytes_max, index_open_mode mode,
                                 index_entry_order order);

  index_file() = default;  // closed
  index_file(index_file&& other) noexcept;
  index_file& operator=(index_file&& other) noexcept;
  index_file(const index_file&) = delete;
  index_file& operator=(const index_file&) = delete;
  ~index_file();  // unmaps; does not trim

  const std::string& path() const noexcept { return path_; }
  bool is_sealed() const noexcept { return mode_ == index_open_mode::sealed; }
  std::size_t entries() const noexcept { return entries_; }
  // Slots the file can hold: the preallocated size in append mode, the file's length in
  // sealed mode.
  std::size_t max_entries() const noexcept {
    return entry_bytes_ == 0 ? 0 : capacity_bytes_ / entry_bytes_;
  }
  bool is_full() const noexcept { return is_sealed() || entries_ >= max_entries(); }

  // The bytes of entry i. REQUIRES: i < entries().
  const std::byte* entry_at(std::size_t i) const noexcept {
    SLUICE_ASSERT(i < entries_, "index entry out of range");
    return map_ + i * entry_bytes_;
  }

  // The number of leading entries for which pred(entry bytes) holds, by binary search.
  // REQUIRES: pred holds for a prefix of the entries and for none after it, as it does
  // for "field < threshold" over a strictly increasing field.
  template <typename Predicate>
  std::size_t count_leading(Predicate pred) const noexcept {
    const auto indexes = std::views::iota(std::size_t{0}, entries_);
    const auto first_false = std::ranges::partition_point(
        indexes, [&](std::size_t i) { return pred(map_ + i * entry_bytes_); });
    return static_cast<std::size_t>(first_false - indexes.begin());
  }

  // Stores `entry` (entry_bytes long) as the next entry. Grows a trimmed file back to the
  // preallocated size and reserves disk blocks first; when either fails (a full disk),
  // logs a warning and returns false without storing. REQUIRES: !is_full().
  bool append(std::span<const std::byte> entry) noexcept;

  // Keeps the first `keep` entries and zeroes the rest, so that the recovery scan of an
  // untrimmed file cannot bring them back; a trimmed file is also cut to `keep` entries
  // (a failure there is logged: the next sanity check then rejects the zeros).
  // REQUIRES: append mode -- a sealed file is never written; reopen it to change it.
  void truncate_entries(std::size_t keep) noexcept;

  // Shrinks the file to its entries, giving back the blocks after them (on roll and
  // close). A later append grows it again. Does nothing in sealed mode.
  result<void> trim();

  // Writes the mapped entries to disk (msync + fdatasync).
  result<void> flush();

 private:
  // Testing only: a test (index_file_testing, defined in the test) replaces the
  // reservation call to watch it or to simulate a full disk, while no other thread uses an
  // index. Production code never changes it.
  friend struct index_file_testing;
  // posix_fallocate(3)'s contract: 0 or a positive errno.
  using reserve_blocks_fn = int (*)(int fd, std::int64_t offset, std::int64_t length) noexcept;
  static reserve_blocks_fn reserve_blocks_;

  void swap(index_file& other) noexcept;
  // The file holds no descriptor between calls (only its mapping): a partition's active
  // segment then costs one descriptor (its .log) instead of three, so 10,000 partitions
  // fit a 20,000-descriptor limit. The rare calls that need one (grow, trim, reserve,
  // flush, truncate) open the file by path for the call.
  struct descriptor {
    explicit descriptor(int value) noexcept : fd(value) {}
    descriptor(descriptor&& other) noexcept : fd(std::exchange(other.fd, -1)) {}
    descriptor(const descriptor&) = delete;
    descriptor& operator=(const descriptor&) = delete;
    descriptor& operator=(descriptor&&) = delete;
    ~descriptor();
    int fd;
  };
  result<descriptor> reopen() const;
  result<void> resize(std::size_t file_bytes);
  result<void> resize_with(int fd, std::size_t file_bytes);
  result<void> reserve_through(std::size_t end_bytes);
  std::size_t count_untrimmed_entries(index_entry_order order) const noexcept;

  std::string path_;
  bool open_ = false;
  index_open_mode mode_ = index_open_mode::append;
  std::byte* map_ = nullptr;
  std::size_t map_bytes_ = 0;
  std::size_t file_bytes_ = 0;      // the file's current length
  std::size_t capacity_bytes_ = 0;  // the length in which appends happen
  std::size_t reserved_bytes_ = 0;  // [0, reserved_bytes_) has disk blocks
  std::size_t entry_bytes_ = 0;
  std::size_t entries_ = 0;
};

// Big-endian fields of index entries, in their own namespace so that they cannot clash
// with other byte-order helpers of the engine.
namespace index_field {

inline std::uint32_t load_be32(const std::byte* p) noexcept {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
         std::uint32_t(p[3]);
}

inline void store_be32(std::byte* p, std::uint32_t v) noexcept {
  for (std::size_t i = 4; i > 0; --i, v >>= 8) p[i - 1] = std::byte(v & 0xff);
}

// Signed values are stored as their two's-complement bits, as Java writes them.
inline std::int64_t load_be64(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | std::uint64_t(p[i]);
  return static_cast<std::int64_t>(v);
}

inline void store_be64(std::byte* p, std::int64_t value) noexcept {
  auto v = static_cast<std::uint64_t>(value);
  for (std::size_t i = 8; i > 0; --i, v >>= 8) p[i - 1] = std::byte(v & 0xff);
}

}  // namespace index_field
}  // namespace sluice
