// writer: encoding of Kafka protocol primitives into a growable buffer.
//
// Values are appended big-endian. Encoding cannot run out of room, but a message can ask
// for something the wire cannot carry (a string longer than 32767 bytes in a classic
// string, a null in a version where the field is not nullable, an unsupported version):
// then the writer enters a sticky failed state, keeping the first detail, and the bytes
// must not be sent. Callers encode a whole message and check ok() once.
//
// Owned by one connection's response path or one client request; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "net/protocol/field_types.h"

namespace sluice::protocol {

class writer {
 public:
  writer() = default;
  // Starts with room for `bytes_expected` bytes, to avoid regrowing on the hot path.
  explicit writer(std::size_t bytes_expected) { buffer_.reserve(bytes_expected); }

  bool ok() const noexcept { return error_detail_ == nullptr; }
  // Why encoding failed, a string literal; nullptr while ok().
  const char* error_detail() const noexcept { return error_detail_; }
  void fail(const char* detail) noexcept;

  std::size_t size() const noexcept { return buffer_.size(); }
  std::span<const std::byte> bytes() const noexcept { return buffer_; }
  // Moves the buffer out; the writer is then empty (and keeps its failure state).
  std::vector<std::byte> take() noexcept { return std::move(buffer_); }

  void write_int8(std::int8_t value);
  void write_int16(std::int16_t value);
  void write_int32(std::int32_t value);
  void write_int64(std::int64_t value);
  void write_uint16(std::uint16_t value);
  void write_uint32(std::uint32_t value);
  void write_float64(double value);
  void write_bool(bool value);
  void write_uuid(const uuid& value);
  void write_uvarint(std::uint32_t value);
  void write_uvarlong(std::uint64_t value);
  void write_varint(std::int32_t value);
  void write_varlong(std::int64_t value);
  void write_raw(std::span<const std::byte> bytes);

  // Strings and bytes, classic or compact (see reader). The overloads taking an optional
  // are for fields that are nullable in some versions only: they fail on null, naming
  // `field_name`.
  void write_string(std::string_view value, bool compact);
  void write_string(const std::optional<std::string_view>& value, bool compact,
                    const char* field_name);
  void write_nullable_string(const std::optional<std::string_view>& value, bool compact);
  void write_bytes(bytes_view value, bool compact);
  void write_bytes(const std::optional<bytes_view>& value, bool compact, const char* field_name);
  void write_nullable_bytes(const std::optional<bytes_view>& value, bool compact);
  void write_array_length(std::size_t count, bool compact);
  void write_null_array(bool compact);

  // A length-prefixed region whose length is only known after it is written:
  //   mark = begin_size_prefix(); ...write...; end_size_prefix(mark);
  // writes a 4-byte big-endian length of the bytes after the prefix (a Kafka frame).
  std::size_t begin_size_prefix();
  void end_size_prefix(std::size_t mark);
  // The same with a uvarint length (a tagged field's size). The length goes in front of
  // the region once its size is known; regions are small, so moving them is cheap.
  std::size_t begin_uvarint_size() const noexcept { return buffer_.size(); }
  void end_uvarint_size(std::size_t mark);

 private:
  std::byte* grow(std::size_t count);

  std::vector<std::byte> buffer_;
  const char* error_detail_ = nullptr;
};

}  // namespace sluice::protocol
