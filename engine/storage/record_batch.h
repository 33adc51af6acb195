// Kafka RecordBatch v2 ("magic 2"): the unit Sluice stores, byte for byte.
//
// Batch header, all integers big-endian (see docs/formats/segment.md):
//
//   offset  size  field
//   0       8     base_offset            int64   rewritten by the log on append
//   8       4     batch_length           int32   bytes after this field (total - 12)
//   12      4     partition_leader_epoch int32   rewritten by the log on append
//   16      1     magic                  int8    always 2
//   17      4     crc                    uint32  CRC32C of bytes [21, end)
//   21      2     attributes             int16   bits 0-2 compression, 3 timestamp type,
//                                                4 transactional, 5 control, 6 delete horizon
//   23      4     last_offset_delta      int32
//   27      8     base_timestamp         int64
//   35      8     max_timestamp          int64
//   43      8     producer_id            int64
//   51      2     producer_epoch         int16
//   53      4     base_sequence          int32
//   57      4     records_count          int32
//   61      ...   records (compressed as a whole when bits 0-2 are not 0)
//
// Each record (inside the possibly compressed records section):
//   length varint (zigzag), attributes int8, timestamp_delta varlong, offset_delta varint,
//   key_length varint (-1 = null), key, value_length varint (-1 = null), value,
//   headers_count varint, then per header: key_length varint, key, value_length varint
//   (-1 = null), value.
//
// Because base_offset and partition_leader_epoch lie before the CRC'd range, the log can
// assign offsets by rewriting them without touching the CRC.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "engine/base/result.h"
#include "engine/base/types.h"

namespace sluice {

namespace batch_layout {
inline constexpr std::size_t base_offset = 0;
inline constexpr std::size_t batch_length = 8;
inline constexpr std::size_t partition_leader_epoch = 12;
inline constexpr std::size_t magic = 16;
inline constexpr std::size_t crc = 17;
inline constexpr std::size_t attributes = 21;
inline constexpr std::size_t last_offset_delta = 23;
inline constexpr std::size_t base_timestamp = 27;
inline constexpr std::size_t max_timestamp = 35;
inline constexpr std::size_t producer_id = 43;
inline constexpr std::size_t producer_epoch = 51;
inline constexpr std::size_t base_sequence = 53;
inline constexpr std::size_t records_count = 57;
inline constexpr std::size_t records = 61;
// The size of the header, and so of the smallest possible batch.
inline constexpr std::size_t header_bytes = 61;
// base_offset + batch_length: the bytes that batch_length does not count.
inline constexpr std::size_t log_overhead = 12;
static_assert(records == header_bytes);
}  // namespace batch_layout

inline constexpr std::int8_t batch_magic_v2 = 2;

enum class compression_codec : std::uint8_t { none = 0, gzip = 1, snappy = 2, lz4 = 3, zstd = 4 };
std::string_view compression_codec_name(compression_codec codec) noexcept;

enum class timestamp_type : std::uint8_t { create_time = 0, log_append_time = 1 };

// The decoded header of one batch. Plain values; no pointers into the batch.
struct batch_header {
  offset base_offset;
  std::int32_t batch_length = 0;  // bytes after the batch_length field
  leader_epoch partition_leader_epoch;
  std::int8_t magic = 0;
  std::uint32_t crc = 0;
  std::int16_t attributes = 0;
  std::int32_t last_offset_delta = 0;
  timestamp_ms base_timestamp;
  timestamp_ms max_timestamp;
  std::int64_t producer_id = -1;
  std::int16_t producer_epoch = -1;
  std::int32_t base_sequence = -1;
  std::int32_t records_count = 0;

  // The whole batch, header included.
  std::size_t total_bytes() const noexcept {
    return batch_layout::log_overhead + static_cast<std::size_t>(batch_length);
  }
  offset last_offset() const noexcept { return base_offset + last_offset_delta; }
  offset next_offset() const noexcept { return last_offset() + 1; }
  compression_codec compression() const noexcept {
    return static_cast<compression_codec>(attributes & 0x7);
  }
  timestamp_type timestamp_kind() const noexcept {
    return (attributes & 0x8) ? timestamp_type::log_append_time : timestamp_type::create_time;
  }
  bool is_transactional() const noexcept { return attributes & 0x10; }
  bool is_control() const noexcept { return attributes & 0x20; }
  bool has_delete_horizon() const noexcept { return attributes & 0x40; }
};

// Decodes the header at the start of `bytes`. Checks only that there are at least
// header_bytes and that batch_length is at least header_bytes - log_overhead; it does
// not check the CRC or that the whole batch is present.
result<batch_header> decode_batch_header(std::span<const std::byte> bytes) noexcept;

// Where a batch comes from, which decides how strictly its record count is checked.
//   produced: a producer (or a replica) wants to append it. Kafka's rules for new data
//             hold: at least one record, last_offset_delta == records_count - 1, and the
//             records' offset deltas are exactly 0, 1, 2, ...
//   stored:   it was read back from a segment. The log cleaner drops records from a batch
//             but keeps its base offset and last_offset_delta (so the offset after the
//             batch, and the producer's sequence range, do not move), so a stored batch
//             may hold fewer records than its offset range: 0 <= records_count <=
//             last_offset_delta + 1, and offset deltas only need to be strictly
//             increasing within [0, last_offset_delta]. Timestamp limits relative to
//             "now" are not applied to stored data either.
enum class batch_source : std::uint8_t { produced, stored };

// Limits a batch is checked against before it is appended.
struct batch_limits {
  // The largest batch accepted, header included (Kafka's message.max.bytes).
  std::size_t batch_bytes_max = 1024 * 1024 + batch_layout::header_bytes;
  // Timestamps (other than -1, "none") must lie within [now - before, now + after] when
  // these are set, as Kafka's message.timestamp.before.max.ms / after.max.ms.
  std::optional<std::int64_t> timestamp_before_max_ms;
  std::optional<std::int64_t> timestamp_after_max_ms;
};

// Validates one complete batch that a producer or a replica wants to append. `bytes` must
// be exactly one batch. Checks, in this order, and fails with the first broken rule:
//   - at least header_bytes, and batch_length + log_overhead == bytes.size()
//     (errc::corrupt_batch)
//   - total size <= limits.batch_bytes_max (errc::batch_too_large)
//   - magic == 2 (errc::unsupported_magic)
//   - CRC32C over [crc + 4, end) equals the crc field (errc::corrupt_batch)
//   - produced: records_count >= 1 (0 only for a control batch is not accepted from
//     producers: errc::invalid_batch), last_offset_delta == records_count - 1
//     (errc::invalid_batch). stored: last_offset_delta >= 0 and 0 <= records_count <=
//     last_offset_delta + 1 (errc::invalid_batch)
//   - a known compression codec (errc::invalid_batch)
//   - base/max timestamps >= -1, max >= base when both set, and (produced only) within
//     the limits relative to `now` (errc::invalid_timestamp)
// The error detail names the broken rule in words.
result<batch_header> validate_batch(std::span<const std::byte> bytes, const batch_limits& limits,
                                    timestamp_ms now,
                                    batch_source source = batch_source::produced) noexcept;

// One record of a batch, as views into the (decompressed) records bytes.
struct record_view {
  std::int8_t attributes = 0;
  std::int64_t timestamp_delta = 0;
  std::int32_t offset_delta = 0;
  std::optional<std::span<const std::byte>> key;    // nullopt = null key
  std::optional<std::span<const std::byte>> value;  // nullopt = null value
  std::int32_t headers_count = 0;
  // The encoded headers, to be walked with for_each_header().
  std::span<const std::byte> headers;
  // The whole encoded record, length prefix included.
  std::span<const std::byte> encoded;
};

struct header_view {
  std::span<const std::byte> key;
  std::optional<std::span<const std::byte>> value;
};

// Walks the records in `records_bytes` (the uncompressed records section of a batch with
// header `header`), calling `visit(const record_view&)` for each; `visit` returns false to
// stop early. Fails with errc::invalid_batch when a record is malformed, when the records
// do not fill records_bytes exactly, when there are not exactly records_count records, or
// when the offset deltas break the rule of `source`: 0, 1, 2, ... in order for produced
// batches; strictly increasing within [0, last_offset_delta] for stored ones (a cleaned
// batch has gaps). The default is `stored`, the rule every batch read back from a log
// obeys; for a batch that also passed validate_batch(produced) both rules are the same.
template <typename Visit>
result<void> for_each_record(const batch_header& header, std::span<const std::byte> records_bytes,
                             Visit&& visit, batch_source source = batch_source::stored);

// Walks the headers of one record.
template <typename Visit>
result<void> for_each_header(const record_view& record, Visit&& visit);

// Reads the records section of the batch `batch` (header `header`), decompressing it into
// `scratch` when the batch is compressed, and returns a view of the uncompressed records
// bytes (into the batch or into scratch). Decompressed output larger than
// `decompressed_bytes_max` fails with errc::batch_too_large.
result<std::span<const std::byte>> batch_records(const batch_header& header,
                                                 std::span<const std::byte> batch,
                                                 std::vector<std::byte>& scratch,
                                                 std::size_t decompressed_bytes_max);

// Deep validation: batch_records() then for_each_record() under the rule of `source`,
// checking each record (lengths, varints, header counts). Fails with errc::invalid_batch,
// or errc::corrupt_batch when decompression fails.
result<void> validate_records(const batch_header& header, std::span<const std::byte> batch,
                              std::vector<std::byte>& scratch, std::size_t decompressed_bytes_max,
                              batch_source source = batch_source::produced);

// Rewrites base_offset and partition_leader_epoch in place (outside the CRC).
void assign_batch_offsets(std::span<std::byte> batch, offset base_offset,
                          leader_epoch epoch) noexcept;

// Builds valid batches, for tests, tools and the load generator. Not a hot path for the
// broker; reuses its buffers between batches.
class batch_builder {
 public:
  struct record {
    std::optional<std::span<const std::byte>> key;
    std::optional<std::span<const std::byte>> value;
    std::span<const header_view> headers;
    timestamp_ms timestamp{0};
  };

  explicit batch_builder(compression_codec codec = compression_codec::none) : codec_(codec) {}
  void set_producer(std::int64_t producer_id, std::int16_t producer_epoch,
                    std::int32_t base_sequence) noexcept;
  void set_transactional(bool transactional) noexcept { transactional_ = transactional; }
  void add(const record& r);
  std::size_t record_count() const noexcept { return count_; }
  // Finishes the batch (base offset 0, epoch -1), computes the CRC, and returns its bytes,
  // valid until the next call to add() or reset(). Needs at least one record.
  std::span<std::byte> finish();
  void reset() noexcept;

 private:
  compression_codec codec_;
  std::int64_t producer_id_ = -1;
  std::int16_t producer_epoch_ = -1;
  std::int32_t base_sequence_ = -1;
  bool transactional_ = false;
  std::size_t count_ = 0;
  timestamp_ms first_timestamp_{-1};
  timestamp_ms max_timestamp_{-1};
  std::vector<std::byte> records_;  // encoded records, uncompressed
  std::vector<std::byte> batch_;    // the finished batch
  std::vector<std::pair<std::int64_t, std::size_t>> pending_timestamps_;
};

}  // namespace sluice

#include "engine/storage/record_batch_inl.h"
