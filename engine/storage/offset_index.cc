#include "engine/storage/offset_index.h"

#include <array>
#include <limits>
#include <utility>

#include "engine/base/assert.h"

namespace sluice {
namespace {

using index_field::load_be32;
using index_field::store_be32;

// Byte layout of one entry; see the header comment for the format.
constexpr std::size_t relative_offset_at = 0;
constexpr std::size_t position_at = 4;
static_assert(position_at + sizeof(std::uint32_t) == offset_index::entry_bytes);

// Positions are stored in 32 bits, as in Kafka; a segment never grows past that.
constexpr std::uint64_t position_max = std::numeric_limits<std::uint32_t>::max();
constexpr std::int64_t relative_offset_max = std::numeric_limits<std::uint32_t>::max();

std::int64_t relative_offset_of(const std::byte* entry) noexcept {
  return load_be32(entry + relative_offset_at);
}

// Recovery rule for an untrimmed file: each entry is strictly greater than the one before
// in both relative offset and position. A lone all-zero entry 0 counts as no entry, which
// loses nothing: lookup() then returns nullopt and the caller scans from position 0 --
// exactly where the (0, 0) entry would have sent it.
bool follows(const std::byte* previous, const std::byte* current) noexcept {
  return load_be32(current + relative_offset_at) > load_be32(previous + relative_offset_at) &&
         load_be32(current + position_at) > load_be32(previous + position_at);
}

constexpr index_entry_order entry_order{&follows, /*lone_zero_entry_is_empty=*/true};

}  // namespace

result<offset_index> offset_index::open(const std::string& path, offset base_offset,
                                        std::size_t index_bytes_max, index_open_mode mode) {
  auto file = index_file::open(path, entry_bytes, index_bytes_max, mode, entry_order);
  if (!file.ok()) return file.failure();
  return offset_index(base_offset, std::move(file).value());
}

offset_index_entry offset_index::entry(std::size_t i) const noexcept {
  const std::byte* p = file_.entry_at(i);
  return {base_offset_ + load_be32(p + relative_offset_at), file_pos(load_be32(p + position_at))};
}

std::optional<offset_index_entry> offset_index::last_entry() const noexcept {
  if (entries() == 0) return std::nullopt;
  return entry(entries() - 1);
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
  std::array<std::byte, entry_bytes> encoded{};
  store_be32(encoded.data() + relative_offset_at, static_cast<std::uint32_t>(relative));
  store_be32(encoded.data() + position_at, static_cast<std::uint32_t>(position.value()));
  (void)file_.append(encoded);  // a skipped entry was logged; lookups only scan further
}

std::optional<offset_index_entry> offset_index::lookup(offset target) const noexcept {
  if (entries() == 0 || target < base_offset_) return std::nullopt;
  const std::int64_t relative = target - base_offset_;
  // The entries with offset <= target; the last of them is the answer.
  const std::size_t at_or_before =
      file_.count_leading([&](const std::byte* e) { return relative_offset_of(e) <= relative; });
  if (at_or_before == 0) return std::nullopt;
  return entry(at_or_before - 1);
}

void offset_index::truncate_to(offset target) noexcept {
  const std::int64_t relative = target - base_offset_;
  file_.truncate_entries(
      file_.count_leading([&](const std::byte* e) { return relative_offset_of(e) < relative; }));
}

result<void> offset_index::sanity_check(std::size_t log_bytes) const noexcept {
  for (std::size_t i = 0; i < entries(); ++i) {
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
