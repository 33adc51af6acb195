#include "engine/storage/time_index.h"

#include <array>
#include <limits>
#include <utility>

#include "engine/base/assert.h"

namespace sluice {
namespace {

using index_field::load_be32;
using index_field::load_be64;
using index_field::store_be32;
using index_field::store_be64;

// Byte layout of one entry; see the header comment for the format.
constexpr std::size_t timestamp_at = 0;
constexpr std::size_t relative_offset_at = 8;
static_assert(relative_offset_at + sizeof(std::uint32_t) == time_index::entry_bytes);

constexpr std::int64_t relative_offset_max = std::numeric_limits<std::uint32_t>::max();

// Recovery rule for an untrimmed file: each entry is strictly greater than the one before
// in both timestamp and relative offset. A zero entry cannot follow an accepted one, whose
// offset is at least 0 and timestamp at least the zero of the first. A lone all-zero entry
// 0 (timestamp 0, base offset) counts as no entry, which loses nothing: lookup() then
// returns nullopt and the caller scans the segment from its start -- the base offset,
// exactly where that entry would have sent it.
bool follows(const std::byte* previous, const std::byte* current) noexcept {
  return load_be64(current + timestamp_at) > load_be64(previous + timestamp_at) &&
         load_be32(current + relative_offset_at) > load_be32(previous + relative_offset_at);
}

constexpr index_entry_order entry_order{&follows, /*lone_zero_entry_is_empty=*/true};

}  // namespace

result<time_index> time_index::open(const std::string& path, offset base_offset,
                                    std::size_t index_bytes_max, index_open_mode mode) {
  auto file = index_file::open(path, entry_bytes, index_bytes_max, mode, entry_order);
  if (!file.ok()) return file.failure();
  return time_index(base_offset, std::move(file).value());
}

time_index_entry time_index::entry(std::size_t i) const noexcept {
  const std::byte* p = file_.entry_at(i);
  return {timestamp_ms(load_be64(p + timestamp_at)),
          base_offset_ + load_be32(p + relative_offset_at)};
}

std::optional<time_index_entry> time_index::last_entry() const noexcept {
  if (entries() == 0) return std::nullopt;
  return entry(entries() - 1);
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
  std::array<std::byte, entry_bytes> encoded{};
  store_be64(encoded.data() + timestamp_at, timestamp.value());
  store_be32(encoded.data() + relative_offset_at, static_cast<std::uint32_t>(relative));
  return file_.append(encoded);
}

std::optional<time_index_entry> time_index::lookup(timestamp_ms target) const noexcept {
  // The entries with timestamp <= target; the last of them is the answer.
  const std::size_t at_or_before = file_.count_leading(
      [&](const std::byte* e) { return load_be64(e + timestamp_at) <= target.value(); });
  if (at_or_before == 0) return std::nullopt;
  return entry(at_or_before - 1);
}

void time_index::truncate_to(offset target) noexcept {
  const std::int64_t relative = target - base_offset_;
  file_.truncate_entries(file_.count_leading([&](const std::byte* e) {
    return std::int64_t{load_be32(e + relative_offset_at)} < relative;
  }));
}

result<void> time_index::sanity_check(offset next_offset) const noexcept {
  for (std::size_t i = 0; i < entries(); ++i) {
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
