// Template definitions for record_batch.h. Include record_batch.h, not this file.
//
// The byte-level decoding lives in record_batch.cc (detail::decode_record and
// detail::decode_record_header); the templates here only drive it and call the visitor.
#pragma once

#include <type_traits>
#include <utility>

namespace sluice {
namespace detail {

// Decodes the record at the front of `rest` into `out` and advances `rest` past it.
// Checks every varint (no overlong encodings), every length against the bytes left, that
// the record's fields fill its length exactly, and the structure of its headers.
result<void> decode_record(std::span<const std::byte>& rest, record_view& out) noexcept;

// Decodes the record header at the front of `rest` into `out` and advances `rest`.
result<void> decode_record_header(std::span<const std::byte>& rest, header_view& out) noexcept;

// Calls `visit(argument)`; a visitor returning void never stops the walk.
template <typename Visit, typename Argument>
bool visit_continues(Visit& visit, const Argument& argument) {
  if constexpr (std::is_void_v<std::invoke_result_t<Visit&, const Argument&>>) {
    visit(argument);
    return true;
  } else {
    return static_cast<bool>(visit(argument));
  }
}

}  // namespace detail

template <typename Visit>
result<void> for_each_record(const batch_header& header, std::span<const std::byte> records_bytes,
                             Visit&& visit, batch_source source) {
  if (header.records_count < 0) {
    return error(errc::invalid_batch, "negative records_count");
  }
  std::span<const std::byte> rest = records_bytes;
  std::int32_t count = 0;
  std::int32_t previous_delta = -1;
  // Bounded: every record consumes at least one byte, and count <= records_count.
  while (!rest.empty()) {
    if (count >= header.records_count) {
      return error(errc::invalid_batch, "more records than records_count");
    }
    record_view record;
    SLUICE_TRY(detail::decode_record(rest, record));
    if (source == batch_source::produced) {
      if (record.offset_delta != count) {
        return error(errc::invalid_batch, "record offset deltas are not 0, 1, 2, ... in order");
      }
    } else if (record.offset_delta <= previous_delta ||
               record.offset_delta > header.last_offset_delta) {
      return error(errc::invalid_batch,
                   "record offset deltas do not increase within the batch's offset range");
    }
    previous_delta = record.offset_delta;
    ++count;
    if (!detail::visit_continues(visit, std::as_const(record))) return {};
  }
  if (count != header.records_count) {
    return error(errc::invalid_batch, "fewer records than records_count");
  }
  return {};
}

template <typename Visit>
result<void> for_each_header(const record_view& record, Visit&& visit) {
  if (record.headers_count < 0) {
    return error(errc::invalid_batch, "negative record headers count");
  }
  std::span<const std::byte> rest = record.headers;
  for (std::int32_t i = 0; i < record.headers_count; ++i) {
    header_view header;
    SLUICE_TRY(detail::decode_record_header(rest, header));
    if (!detail::visit_continues(visit, std::as_const(header))) return {};
  }
  if (!rest.empty()) {
    return error(errc::invalid_batch, "bytes left after the record headers");
  }
  return {};
}

}  // namespace sluice
