#include "net/protocol/writer.h"

#include <array>
#include <bit>
#include <cstring>
#include <limits>

#include "engine/base/assert.h"

namespace sluice::protocol {
namespace {

template <typename Unsigned>
void store_big_endian(std::byte* out, Unsigned value) noexcept {
  for (std::size_t i = 0; i < sizeof(Unsigned); ++i) {
    out[sizeof(Unsigned) - 1 - i] = static_cast<std::byte>(value & 0xff);
    value = static_cast<Unsigned>(value >> 8);
  }
}

// Encodes `value` as an unsigned varint into `out`; returns the number of bytes.
std::size_t encode_uvarlong(std::uint64_t value, std::array<std::byte, 10>& out) noexcept {
  std::size_t size = 0;
  while (value >= 0x80) {
    out[size++] = static_cast<std::byte>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  out[size++] = static_cast<std::byte>(value);
  return size;
}

constexpr std::size_t string_length_max = std::numeric_limits<std::int16_t>::max();
constexpr std::size_t bytes_length_max = std::numeric_limits<std::int32_t>::max();

}  // namespace

void writer::fail(const char* detail) noexcept {
  if (error_detail_ == nullptr) error_detail_ = detail;
}

std::byte* writer::grow(std::size_t count) {
  const std::size_t old_size = buffer_.size();
  buffer_.resize(old_size + count);
  return buffer_.data() + old_size;
}

void writer::write_int8(std::int8_t value) {
  *grow(1) = static_cast<std::byte>(value);
}
void writer::write_int16(std::int16_t value) {
  store_big_endian(grow(2), static_cast<std::uint16_t>(value));
}
void writer::write_int32(std::int32_t value) {
  store_big_endian(grow(4), static_cast<std::uint32_t>(value));
}
void writer::write_int64(std::int64_t value) {
  store_big_endian(grow(8), static_cast<std::uint64_t>(value));
}
void writer::write_uint16(std::uint16_t value) {
  store_big_endian(grow(2), value);
}
void writer::write_uint32(std::uint32_t value) {
  store_big_endian(grow(4), value);
}
void writer::write_float64(double value) {
  store_big_endian(grow(8), std::bit_cast<std::uint64_t>(value));
}
void writer::write_bool(bool value) {
  *grow(1) = std::byte{value ? std::uint8_t{1} : std::uint8_t{0}};
}

void writer::write_uuid(const uuid& value) {
  std::memcpy(grow(value.bytes.size()), value.bytes.data(), value.bytes.size());
}

void writer::write_uvarlong(std::uint64_t value) {
  std::array<std::byte, 10> encoded;
  const std::size_t size = encode_uvarlong(value, encoded);
  std::memcpy(grow(size), encoded.data(), size);
}

void writer::write_uvarint(std::uint32_t value) {
  write_uvarlong(value);
}

void writer::write_varint(std::int32_t value) {
  const auto bits = static_cast<std::uint32_t>(value);
  write_uvarint((bits << 1) ^ (value < 0 ? ~std::uint32_t{0} : 0));
}

void writer::write_varlong(std::int64_t value) {
  const auto bits = static_cast<std::uint64_t>(value);
  write_uvarlong((bits << 1) ^ (value < 0 ? ~std::uint64_t{0} : 0));
}

void writer::write_raw(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  std::memcpy(grow(bytes.size()), bytes.data(), bytes.size());
}

void writer::write_string(std::string_view value, bool compact) {
  if (value.size() > string_length_max) {
    fail("string longer than 32767 bytes");
    return;
  }
  if (compact) {
    write_uvarint(static_cast<std::uint32_t>(value.size() + 1));
  } else {
    write_int16(static_cast<std::int16_t>(value.size()));
  }
  write_raw(std::as_bytes(std::span(value.data(), value.size())));
}

void writer::write_string(const std::optional<std::string_view>& value, bool compact,
                          const char* field_name) {
  if (!value) {
    (void)field_name;  // Kept in the signature so that call sites say which field.
    fail("null string in a version where the field is not nullable");
    return;
  }
  write_string(*value, compact);
}

void writer::write_nullable_string(const std::optional<std::string_view>& value, bool compact) {
  if (value) {
    write_string(*value, compact);
  } else if (compact) {
    write_uvarint(0);
  } else {
    write_int16(-1);
  }
}

void writer::write_bytes(bytes_view value, bool compact) {
  if (value.size() > bytes_length_max - 1) {
    fail("bytes longer than 2147483646");
    return;
  }
  if (compact) {
    write_uvarint(static_cast<std::uint32_t>(value.size() + 1));
  } else {
    write_int32(static_cast<std::int32_t>(value.size()));
  }
  write_raw(value);
}

void writer::write_bytes(const std::optional<bytes_view>& value, bool compact,
                         const char* field_name) {
  if (!value) {
    (void)field_name;
    fail("null bytes in a version where the field is not nullable");
    return;
  }
  write_bytes(*value, compact);
}

void writer::write_nullable_bytes(const std::optional<bytes_view>& value, bool compact) {
  if (value) {
    write_bytes(*value, compact);
  } else if (compact) {
    write_uvarint(0);
  } else {
    write_int32(-1);
  }
}

void writer::write_array_length(std::size_t count, bool compact) {
  if (count > bytes_length_max - 1) {
    fail("array longer than 2147483646 elements");
    return;
  }
  if (compact) {
    write_uvarint(static_cast<std::uint32_t>(count + 1));
  } else {
    write_int32(static_cast<std::int32_t>(count));
  }
}

void writer::write_null_array(bool compact) {
  if (compact) {
    write_uvarint(0);
  } else {
    write_int32(-1);
  }
}

std::size_t writer::begin_size_prefix() {
  const std::size_t mark = buffer_.size();
  write_int32(0);
  return mark;
}

void writer::end_size_prefix(std::size_t mark) {
  SLUICE_ASSERT(mark + 4 <= buffer_.size(), "end_size_prefix without begin_size_prefix");
  const std::size_t size = buffer_.size() - mark - 4;
  if (size > bytes_length_max) {
    fail("size-prefixed region larger than 2 GiB");
    return;
  }
  store_big_endian(buffer_.data() + mark, static_cast<std::uint32_t>(size));
}

void writer::end_uvarint_size(std::size_t mark) {
  SLUICE_ASSERT(mark <= buffer_.size(), "end_uvarint_size without begin_uvarint_size");
  const std::size_t size = buffer_.size() - mark;
  if (size > std::numeric_limits<std::uint32_t>::max()) {
    fail("tagged field larger than 4 GiB");
    return;
  }
  std::array<std::byte, 10> encoded;
  const std::size_t prefix_size = encode_uvarlong(size, encoded);
  buffer_.insert(buffer_.begin() + static_cast<std::ptrdiff_t>(mark), encoded.begin(),
                 encoded.begin() + static_cast<std::ptrdiff_t>(prefix_size));
}

}  // namespace sluice::protocol
