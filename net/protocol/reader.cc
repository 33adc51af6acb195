#include "net/protocol/reader.h"

#include <bit>
#include <limits>

namespace sluice::protocol {
namespace {

// Assembles a big-endian unsigned integer byte by byte; compilers turn this into one
// load and a byte swap.
template <typename Unsigned>
Unsigned load_big_endian(std::span<const std::byte> bytes) noexcept {
  Unsigned value = 0;
  for (std::size_t i = 0; i < sizeof(Unsigned); ++i) {
    value = static_cast<Unsigned>(value << 8) | static_cast<Unsigned>(bytes[i]);
  }
  return value;
}

}  // namespace

void reader::fail(const char* detail) noexcept {
  if (error_detail_ == nullptr) error_detail_ = detail;
  // Nothing more is read once failed: this keeps loops over lying counts short.
  position_ = bytes_.size();
}

void reader::take_failure(const reader& other) noexcept {
  if (!other.ok()) fail(other.error_detail());
}

std::span<const std::byte> reader::take(std::size_t count, const char* detail) noexcept {
  if (!ok()) return {};
  if (count > remaining()) {
    fail(detail);
    return {};
  }
  auto bytes = bytes_.subspan(position_, count);
  position_ += count;
  return bytes;
}

void reader::skip(std::size_t count) noexcept {
  (void)take(count, "skip past the end");
}

std::int8_t reader::read_int8() noexcept {
  auto bytes = take(1, "truncated int8");
  return bytes.empty() ? 0 : static_cast<std::int8_t>(bytes[0]);
}

std::int16_t reader::read_int16() noexcept {
  return static_cast<std::int16_t>(read_uint16());
}

std::int32_t reader::read_int32() noexcept {
  return static_cast<std::int32_t>(read_uint32());
}

std::int64_t reader::read_int64() noexcept {
  auto bytes = take(8, "truncated int64");
  return bytes.empty() ? 0 : static_cast<std::int64_t>(load_big_endian<std::uint64_t>(bytes));
}

std::uint16_t reader::read_uint16() noexcept {
  auto bytes = take(2, "truncated int16");
  return bytes.empty() ? 0 : load_big_endian<std::uint16_t>(bytes);
}

std::uint32_t reader::read_uint32() noexcept {
  auto bytes = take(4, "truncated int32");
  return bytes.empty() ? 0 : load_big_endian<std::uint32_t>(bytes);
}

double reader::read_float64() noexcept {
  auto bytes = take(8, "truncated float64");
  return bytes.empty() ? 0.0 : std::bit_cast<double>(load_big_endian<std::uint64_t>(bytes));
}

bool reader::read_bool() noexcept {
  auto bytes = take(1, "truncated bool");
  return !bytes.empty() && bytes[0] != std::byte{0};
}

uuid reader::read_uuid() noexcept {
  uuid value;
  auto bytes = take(16, "truncated uuid");
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    value.bytes[i] = static_cast<std::uint8_t>(bytes[i]);
  }
  return value;
}

std::uint64_t reader::read_uvarlong() noexcept {
  std::uint64_t value = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    auto bytes = take(1, "truncated varint");
    if (bytes.empty()) return 0;
    const auto byte = static_cast<std::uint8_t>(bytes[0]);
    // The tenth byte may only carry the single top bit of a 64-bit value.
    if (shift == 63 && byte > 1) {
      fail("varlong longer than 64 bits");
      return 0;
    }
    value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return value;
  }
  fail("varlong longer than 10 bytes");
  return 0;
}

std::uint32_t reader::read_uvarint() noexcept {
  std::uint32_t value = 0;
  for (int shift = 0; shift < 35; shift += 7) {
    auto bytes = take(1, "truncated varint");
    if (bytes.empty()) return 0;
    const auto byte = static_cast<std::uint8_t>(bytes[0]);
    // The fifth byte may only carry the top four bits of a 32-bit value.
    if (shift == 28 && byte > 0x0f) {
      fail("varint longer than 32 bits");
      return 0;
    }
    value |= static_cast<std::uint32_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return value;
  }
  fail("varint longer than 5 bytes");
  return 0;
}

std::int32_t reader::read_varint() noexcept {
  const std::uint32_t zigzag = read_uvarint();
  return static_cast<std::int32_t>((zigzag >> 1) ^ (~(zigzag & 1) + 1));
}

std::int64_t reader::read_varlong() noexcept {
  const std::uint64_t zigzag = read_uvarlong();
  return static_cast<std::int64_t>((zigzag >> 1) ^ (~(zigzag & 1) + 1));
}

std::int64_t reader::read_length(bool compact, bool wide) noexcept {
  std::int64_t length = 0;
  if (compact) {
    length = static_cast<std::int64_t>(read_uvarint()) - 1;
  } else if (wide) {
    length = read_int32();
  } else {
    length = read_int16();
  }
  if (!ok()) return -2;
  if (length < -1) {
    fail("negative length");
    return -2;
  }
  return length;
}

std::optional<std::string_view> reader::read_nullable_string(bool compact) noexcept {
  const std::int64_t length = read_length(compact, /*wide=*/false);
  if (length < 0) return std::nullopt;
  if (compact && length > std::numeric_limits<std::int16_t>::max()) {
    // Kafka caps strings at 32767 bytes in both encodings.
    fail("string longer than 32767 bytes");
    return std::nullopt;
  }
  auto bytes = take(static_cast<std::size_t>(length), "string longer than the bytes left");
  if (!ok()) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::string_view reader::read_string(bool compact) noexcept {
  const bool was_ok = ok();
  auto value = read_nullable_string(compact);
  if (!value) {
    if (was_ok && ok()) fail("null in a non-nullable string");
    return {};
  }
  return *value;
}

std::optional<bytes_view> reader::read_nullable_bytes(bool compact) noexcept {
  const std::int64_t length = read_length(compact, /*wide=*/true);
  if (length < 0) return std::nullopt;
  auto bytes = take(static_cast<std::size_t>(length), "bytes longer than the bytes left");
  if (!ok()) return std::nullopt;
  return bytes;
}

bytes_view reader::read_bytes(bool compact) noexcept {
  const bool was_ok = ok();
  auto value = read_nullable_bytes(compact);
  if (!value) {
    if (was_ok && ok()) fail("null in non-nullable bytes");
    return {};
  }
  return *value;
}

std::int32_t reader::read_array_length(bool compact, std::size_t element_bytes_min,
                                       bool nullable) noexcept {
  const std::int64_t count = read_length(compact, /*wide=*/true);
  if (count == -2) return 0;
  if (count == -1) {
    if (nullable) return -1;
    fail("null in a non-nullable array");
    return 0;
  }
  const std::size_t element_bytes = element_bytes_min == 0 ? 1 : element_bytes_min;
  if (static_cast<std::uint64_t>(count) > remaining() / element_bytes) {
    fail("array count larger than the bytes left can hold");
    return 0;
  }
  return static_cast<std::int32_t>(count);
}

std::uint32_t reader::read_tag_count() noexcept {
  const std::uint32_t count = read_uvarint();
  if (count > remaining() / 2) {
    fail("tagged field count larger than the bytes left can hold");
    return 0;
  }
  return count;
}

reader reader::read_tagged_field() noexcept {
  const std::uint32_t size = read_uvarint();
  auto bytes = take(size, "tagged field longer than the bytes left");
  reader field(bytes);
  if (!ok()) field.fail(error_detail_);
  return field;
}

void reader::skip_tagged_fields() noexcept {
  const std::uint32_t count = read_tag_count();
  for (std::uint32_t i = 0; i < count && ok(); ++i) {
    (void)read_uvarint();  // The tag.
    (void)read_tagged_field();
  }
}

}  // namespace sluice::protocol
