// reader: bounds-checked decoding of Kafka protocol primitives from one byte buffer.
//
// The reader never throws and never reads outside its buffer. The first malformed value
// (too few bytes, a varint longer than its type allows, a negative length other than the
// null marker -1, a length or count larger than the bytes left) puts it in a sticky
// failed state: it keeps the first error's detail, and every later read returns a zero
// value without touching the buffer. Callers decode a whole message and check ok() once.
//
// Strings and byte fields are returned as views into the buffer, so the buffer must
// outlive what is decoded from it.
//
// Owned by one request or response decoder; not thread-safe; cheap to copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "net/protocol/field_types.h"

namespace sluice::protocol {

class reader {
 public:
  explicit reader(std::span<const std::byte> bytes) noexcept : bytes_(bytes) {}

  bool ok() const noexcept { return error_detail_ == nullptr; }
  // Why decoding failed, a string literal; nullptr while ok().
  const char* error_detail() const noexcept { return error_detail_; }
  // Marks the reader failed; only the first failure is kept.
  void fail(const char* detail) noexcept;
  // Copies the failure of a reader derived from this one (see read_tagged_field()).
  void take_failure(const reader& other) noexcept;

  std::size_t position() const noexcept { return position_; }
  std::size_t remaining() const noexcept { return bytes_.size() - position_; }
  // The bytes not read yet.
  std::span<const std::byte> rest() const noexcept { return bytes_.subspan(position_); }

  // Fixed-size integers, big-endian as everything in the Kafka protocol.
  std::int8_t read_int8() noexcept;
  std::int16_t read_int16() noexcept;
  std::int32_t read_int32() noexcept;
  std::int64_t read_int64() noexcept;
  std::uint16_t read_uint16() noexcept;
  std::uint32_t read_uint32() noexcept;
  double read_float64() noexcept;
  // One byte; any value other than 0 is true, as Kafka reads it.
  bool read_bool() noexcept;
  uuid read_uuid() noexcept;

  // Variable-length integers: 7 bits a byte, low bits first. Unsigned varints take at
  // most 5 bytes, varlongs at most 10; signed ones are zigzag encoded.
  std::uint32_t read_uvarint() noexcept;
  std::uint64_t read_uvarlong() noexcept;
  std::int32_t read_varint() noexcept;
  std::int64_t read_varlong() noexcept;

  // A string: int16 length (classic) or uvarint length + 1 (compact), then UTF-8 bytes
  // (not validated). read_string() fails on null; read_nullable_string() returns nullopt.
  std::string_view read_string(bool compact) noexcept;
  std::optional<std::string_view> read_nullable_string(bool compact) noexcept;
  // Bytes and records: int32 length (classic) or uvarint length + 1 (compact).
  bytes_view read_bytes(bool compact) noexcept;
  std::optional<bytes_view> read_nullable_bytes(bool compact) noexcept;

  // An array count: int32 (classic) or uvarint count + 1 (compact). Returns -1 for a null
  // array when `nullable`, and fails on null otherwise. A count whose elements, each at
  // least `element_bytes_min` long (taken as 1 when 0), would need more bytes than remain
  // fails, so a lying count cannot make the caller allocate.
  std::int32_t read_array_length(bool compact, std::size_t element_bytes_min,
                                 bool nullable) noexcept;

  // The count that starts a tagged-field section, bounded by the bytes left (a tagged
  // field takes at least two bytes).
  std::uint32_t read_tag_count() noexcept;
  // After a tag number: reads the field's size and returns a reader over exactly that
  // many bytes, which this reader skips. Decode the value from the returned reader, then
  // take_failure() from it.
  reader read_tagged_field() noexcept;
  // Reads a whole tagged-field section, skipping every field.
  void skip_tagged_fields() noexcept;

  // Skips `count` bytes, failing if fewer remain.
  void skip(std::size_t count) noexcept;

 private:
  // Returns the next `count` bytes and advances, or fails and returns an empty span.
  std::span<const std::byte> take(std::size_t count, const char* detail) noexcept;
  // Reads a length: classic int16/int32 or compact uvarint - 1. Returns -1 for null,
  // -2 after a failure.
  std::int64_t read_length(bool compact, bool wide) noexcept;

  std::span<const std::byte> bytes_;
  std::size_t position_ = 0;
  const char* error_detail_ = nullptr;
};

}  // namespace sluice::protocol
