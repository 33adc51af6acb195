#include "tools/dump_log/segment_files.h"

#include <fcntl.h>
#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "engine/base/assert.h"
#include "engine/storage/crc32c.h"

namespace sluice::dump_log {
namespace {

constexpr std::string_view log_suffix = ".log";
constexpr std::string_view offset_index_suffix = ".index";
constexpr std::string_view time_index_suffix = ".timeindex";

// Offsets in index files are 32 bits relative to the base; a base offset this close to the
// top of int64 would make base + relative overflow.
constexpr std::int64_t base_offset_max =
    std::numeric_limits<std::int64_t>::max() - std::numeric_limits<std::uint32_t>::max();

// A batch's last offset is base + last_offset_delta (int32); refuse base offsets that would
// overflow it, so that the header's own arithmetic stays defined on any bytes.
constexpr std::int64_t batch_base_offset_max =
    std::numeric_limits<std::int64_t>::max() - std::numeric_limits<std::int32_t>::max() - 1;

std::uint64_t load_be(const std::byte* p, std::size_t bytes) noexcept {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i)
    value = (value << 8) | std::to_integer<std::uint64_t>(p[i]);
  return value;
}

std::string_view base_name(std::string_view path) noexcept {
  const auto slash = path.find_last_of('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool all_zero(std::span<const std::byte> bytes) noexcept {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

}  // namespace

std::optional<file_kind> file_kind_of(std::string_view path) noexcept {
  const std::string_view name = base_name(path);
  // ".timeindex" is tested before ".index" only for clarity; neither is a suffix of the other.
  for (file_kind kind : {file_kind::time_index, file_kind::offset_index, file_kind::log}) {
    const std::string_view suffix = file_kind_suffix(kind);
    if (name.size() > suffix.size() && name.ends_with(suffix)) return kind;
  }
  return std::nullopt;
}

std::string_view file_kind_suffix(file_kind kind) noexcept {
  switch (kind) {
    case file_kind::log: return log_suffix;
    case file_kind::offset_index: return offset_index_suffix;
    case file_kind::time_index: return time_index_suffix;
  }
  SLUICE_UNREACHABLE("unknown file kind");
}

std::optional<offset> base_offset_of(std::string_view path) noexcept {
  const auto kind = file_kind_of(path);
  if (!kind) return std::nullopt;
  const std::string_view name = base_name(path);
  const std::string_view stem = name.substr(0, name.size() - file_kind_suffix(*kind).size());
  if (stem.empty() || stem.size() > 20) return std::nullopt;
  std::int64_t value = 0;
  for (char c : stem) {
    if (c < '0' || c > '9') return std::nullopt;
    const int digit = c - '0';
    if (value > (base_offset_max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return offset(value);
}

std::string sibling_path(std::string_view path, file_kind kind) {
  const auto own = file_kind_of(path);
  SLUICE_ASSERT(own.has_value(), "sibling_path of a file that is not a segment file");
  std::string sibling(path.substr(0, path.size() - file_kind_suffix(*own).size()));
  sibling += file_kind_suffix(kind);
  return sibling;
}

result<read_only_file> read_only_file::open(const std::string& path, std::uint64_t bytes_max) {
  auto handle = open_file(path, O_RDONLY);
  if (!handle) return handle.failure();
  auto size = file_size(handle->get());
  if (!size) return size.failure();
  if (*size > bytes_max) return error(errc::invalid_argument, "file is larger than allowed");
  read_only_file file;
  if (*size == 0) return file;
  auto mapping = mapped_file::map(handle->get(), static_cast<std::size_t>(*size));
  if (!mapping) return mapping.failure();
  // The mapping stays valid after the descriptor is closed.
  file.mapping_ = std::move(*mapping);
  return file;
}

std::span<const std::byte> read_only_file::bytes() const noexcept {
  if (!mapping_) return {};
  return {mapping_->data(), mapping_->length()};
}

std::optional<problem> frame_batch(std::span<const std::byte> log, std::uint64_t position,
                                   offset expected, framed_batch& out) {
  SLUICE_ASSERT(position < log.size(), "frame_batch past the end of the log");
  const std::uint64_t left = log.size() - position;
  if (left < batch_layout::header_bytes) {
    return problem{fmt::format("truncated batch header ({} bytes left, a header needs {})", left,
                               batch_layout::header_bytes),
                   position, expected};
  }
  const auto rest = log.subspan(static_cast<std::size_t>(position));
  auto header = decode_batch_header(rest);
  if (!header) {
    return problem{
        fmt::format(
            "unreadable batch header: {} (batch_length {})", header.failure().detail(),
            static_cast<std::int32_t>(load_be(rest.data() + batch_layout::batch_length, 4))),
        position, expected};
  }
  const batch_header& h = *header;
  if (h.base_offset.value() < 0 || h.base_offset.value() > batch_base_offset_max ||
      h.last_offset_delta < 0) {
    return problem{fmt::format("impossible offsets in the batch header (base offset {}, "
                               "last_offset_delta {})",
                               h.base_offset, h.last_offset_delta),
                   position, expected};
  }
  if (h.total_bytes() > left) {
    return problem{fmt::format("truncated batch ({} bytes by its batch_length, {} left in the "
                               "file)",
                               h.total_bytes(), left),
                   position, h.base_offset};
  }
  out.position = position;
  out.header = h;
  out.bytes = rest.first(h.total_bytes());
  return std::nullopt;
}

std::uint32_t computed_crc(const framed_batch& batch) noexcept {
  return crc32c(batch.bytes.subspan(batch_layout::crc + 4));
}

index_layout read_index_layout(std::span<const std::byte> bytes, std::size_t entry_bytes) noexcept {
  SLUICE_ASSERT(entry_bytes > 0, "index entries of zero bytes");
  index_layout layout;
  const std::size_t whole = bytes.size() / entry_bytes;
  layout.stray_bytes = bytes.size() % entry_bytes;
  // Bounded by the file length: walk back over the all-zero tail.
  std::size_t used = whole;
  while (used > 0 && all_zero(bytes.subspan((used - 1) * entry_bytes, entry_bytes))) --used;
  // A file of exactly one all-zero entry is a trimmed index holding (base offset, 0).
  if (used == 0 && whole == 1) used = 1;
  layout.entries = used;
  layout.unused_entries = whole - used;
  return layout;
}

offset_index_entry offset_index_entry_at(std::span<const std::byte> bytes, offset base,
                                         std::size_t i) noexcept {
  SLUICE_ASSERT((i + 1) * offset_index::entry_bytes <= bytes.size(), "offset index entry past end");
  const std::byte* p = bytes.data() + i * offset_index::entry_bytes;
  const auto relative = static_cast<std::int64_t>(load_be(p, 4));
  return offset_index_entry{base + relative, file_pos(load_be(p + 4, 4))};
}

time_index_entry time_index_entry_at(std::span<const std::byte> bytes, offset base,
                                     std::size_t i) noexcept {
  SLUICE_ASSERT((i + 1) * time_index::entry_bytes <= bytes.size(), "time index entry past end");
  const std::byte* p = bytes.data() + i * time_index::entry_bytes;
  const auto timestamp = static_cast<std::int64_t>(load_be(p, 8));
  const auto relative = static_cast<std::int64_t>(load_be(p + 8, 4));
  return time_index_entry{timestamp_ms(timestamp), base + relative};
}

}  // namespace sluice::dump_log
