// Kafka RecordBatch v2: decoding, validation and building. See record_batch.h for the
// byte layout.
//
// Everything here reads bytes that come straight from clients or from disk, so every
// read is bounds-checked, integers are assembled with memcpy (batches sit at any
// alignment inside request buffers and segments), and varints are decoded strictly:
// an encoding longer than the type allows, or one whose last byte carries bits the type
// cannot hold, is rejected rather than silently truncated.
#include "engine/storage/record_batch.h"

#include <bit>
#include <cstring>
#include <limits>
#include <type_traits>

#include "engine/base/assert.h"
#include "engine/storage/compression.h"
#include "engine/storage/crc32c.h"

namespace sluice {
namespace {

// ---- big-endian integers -----------------------------------------------------------------

template <typename Unsigned>
Unsigned to_big_endian(Unsigned value) noexcept {
  static_assert(std::is_unsigned_v<Unsigned>);
  if constexpr (std::endian::native == std::endian::big || sizeof(Unsigned) == 1) {
    return value;
  } else if constexpr (sizeof(Unsigned) == 2) {
    return __builtin_bswap16(value);
  } else if constexpr (sizeof(Unsigned) == 4) {
    return __builtin_bswap32(value);
  } else {
    static_assert(sizeof(Unsigned) == 8);
    return __builtin_bswap64(value);
  }
}

template <typename Integer>
Integer load_big_endian(const std::byte* p) noexcept {
  using Unsigned = std::make_unsigned_t<Integer>;
  Unsigned raw;
  std::memcpy(&raw, p, sizeof raw);
  return static_cast<Integer>(to_big_endian(raw));  // a byte swap is its own inverse
}

template <typename Integer>
void store_big_endian(std::byte* p, Integer value) noexcept {
  using Unsigned = std::make_unsigned_t<Integer>;
  const Unsigned raw = to_big_endian(static_cast<Unsigned>(value));
  std::memcpy(p, &raw, sizeof raw);
}

// ---- varints (Kafka: zigzag, then unsigned LEB128) ----------------------------------------

// The longest encodings: 5 bytes hold 32 bits (the 5th may use its low 4 bits only),
// 10 bytes hold 64 bits (the 10th may use its low bit only).
constexpr int varint_bytes_max = 5;
constexpr int varlong_bytes_max = 10;

// A cursor over untrusted bytes. Every read checks the bytes left.
class reader {
 public:
  explicit reader(std::span<const std::byte> bytes) noexcept : bytes_(bytes) {}

  std::size_t remaining() const noexcept { return bytes_.size() - at_; }
  std::size_t consumed() const noexcept { return at_; }
  std::span<const std::byte> rest() const noexcept { return bytes_.subspan(at_); }

  result<void> read_int8(std::int8_t& out) noexcept {
    if (remaining() < 1) return error(errc::invalid_batch, "record truncated");
    out = static_cast<std::int8_t>(bytes_[at_]);
    ++at_;
    return {};
  }

  result<void> read_varint(std::int32_t& out) noexcept {
    std::uint64_t raw = 0;
    SLUICE_TRY(read_unsigned(raw, varint_bytes_max, 32));
    const auto u = static_cast<std::uint32_t>(raw);
    out = static_cast<std::int32_t>((u >> 1) ^ (0u - (u & 1u)));
    return {};
  }

  result<void> read_varlong(std::int64_t& out) noexcept {
    std::uint64_t u = 0;
    SLUICE_TRY(read_unsigned(u, varlong_bytes_max, 64));
    out = static_cast<std::int64_t>((u >> 1) ^ (std::uint64_t{0} - (u & 1u)));
    return {};
  }

  result<void> read_bytes(std::size_t size, std::span<const std::byte>& out) noexcept {
    if (size > remaining()) return error(errc::invalid_batch, "length past the end of the record");
    out = bytes_.subspan(at_, size);
    at_ += size;
    return {};
  }

  // A varint length followed by that many bytes; -1 is null when `nullable`.
  result<void> read_length_prefixed(bool nullable, std::optional<std::span<const std::byte>>& out,
                                    const char* negative_detail) noexcept {
    std::int32_t length = 0;
    SLUICE_TRY(read_varint(length));
    if (length == -1 && nullable) {
      out.reset();
      return {};
    }
    if (length < 0) return error(errc::invalid_batch, negative_detail);
    std::span<const std::byte> bytes;
    SLUICE_TRY(read_bytes(static_cast<std::size_t>(length), bytes));
    out = bytes;
    return {};
  }

 private:
  result<void> read_unsigned(std::uint64_t& out, int bytes_max, int value_bits) noexcept {
    std::uint64_t value = 0;
    for (int i = 0; i < bytes_max; ++i) {
      if (at_ >= bytes_.size()) return error(errc::invalid_batch, "varint truncated");
      const auto b = static_cast<std::uint8_t>(bytes_[at_++]);
      const int shift = 7 * i;
      if (i == bytes_max - 1) {
        // The last allowed byte: no continuation, and no bits beyond the type's width.
        if ((b & 0x80u) != 0 || (b >> (value_bits - shift)) != 0) {
          return error(errc::invalid_batch, "overlong varint");
        }
      }
      value |= static_cast<std::uint64_t>(b & 0x7fu) << shift;
      if ((b & 0x80u) == 0) {
        out = value;
        return {};
      }
    }
    SLUICE_UNREACHABLE("the last varint byte returns or fails");
  }

  std::span<const std::byte> bytes_;
  std::size_t at_ = 0;
};

result<void> decode_header_from(reader& in, header_view& out) noexcept {
  std::optional<std::span<const std::byte>> key;
  SLUICE_TRY(in.read_length_prefixed(false, key, "null or negative record header key length"));
  out.key = *key;
  return in.read_length_prefixed(true, out.value, "negative record header value length");
}

// ---- encoding ----------------------------------------------------------------------------

std::uint32_t zigzag(std::int32_t v) noexcept {
  return (static_cast<std::uint32_t>(v) << 1) ^ static_cast<std::uint32_t>(v >> 31);
}
std::uint64_t zigzag(std::int64_t v) noexcept {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}

std::size_t unsigned_varint_size(std::uint64_t v) noexcept {
  std::size_t size = 1;
  for (; v >= 0x80; v >>= 7) ++size;
  return size;
}

void put_unsigned_varint(std::vector<std::byte>& out, std::uint64_t v) {
  for (; v >= 0x80; v >>= 7) out.push_back(static_cast<std::byte>((v & 0x7f) | 0x80));
  out.push_back(static_cast<std::byte>(v));
}

void put_varint(std::vector<std::byte>& out, std::int32_t v) {
  put_unsigned_varint(out, zigzag(v));
}
void put_varlong(std::vector<std::byte>& out, std::int64_t v) {
  put_unsigned_varint(out, zigzag(v));
}

std::int32_t length_of(const std::optional<std::span<const std::byte>>& bytes) noexcept {
  if (!bytes) return -1;
  SLUICE_ASSERT(bytes->size() <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()),
                "record field longer than int32 max");
  return static_cast<std::int32_t>(bytes->size());
}

std::size_t length_prefixed_size(const std::optional<std::span<const std::byte>>& bytes) noexcept {
  return unsigned_varint_size(zigzag(length_of(bytes))) + (bytes ? bytes->size() : 0);
}

void put_length_prefixed(std::vector<std::byte>& out,
                         const std::optional<std::span<const std::byte>>& bytes) {
  put_varint(out, length_of(bytes));
  if (bytes) out.insert(out.end(), bytes->begin(), bytes->end());
}

// `a - b` with the wrap-around of two's complement instead of undefined overflow.
std::int64_t wrapping_subtract(std::int64_t a, std::int64_t b) noexcept {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) - static_cast<std::uint64_t>(b));
}

std::int64_t saturating_add(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return b > 0 ? std::numeric_limits<std::int64_t>::max()
                 : std::numeric_limits<std::int64_t>::min();
  }
  return sum;
}

std::int64_t saturating_subtract(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t difference = 0;
  if (__builtin_sub_overflow(a, b, &difference)) {
    return b > 0 ? std::numeric_limits<std::int64_t>::min()
                 : std::numeric_limits<std::int64_t>::max();
  }
  return difference;
}

bool is_known_codec(compression_codec codec) noexcept {
  return static_cast<std::uint8_t>(codec) <= static_cast<std::uint8_t>(compression_codec::zstd);
}

}  // namespace

// ---- decoding of records (called by the templates in record_batch_inl.h) -----------------

namespace detail {

result<void> decode_record(std::span<const std::byte>& rest, record_view& out) noexcept {
  reader framing(rest);
  std::int32_t length = 0;
  SLUICE_TRY(framing.read_varint(length));
  if (length < 0) return error(errc::invalid_batch, "negative record length");
  if (static_cast<std::size_t>(length) > framing.remaining()) {
    return error(errc::invalid_batch, "record length past the end of the records");
  }
  const std::size_t encoded_bytes = framing.consumed() + static_cast<std::size_t>(length);
  out.encoded = rest.first(encoded_bytes);
  reader body(rest.subspan(framing.consumed(), static_cast<std::size_t>(length)));
  rest = rest.subspan(encoded_bytes);

  SLUICE_TRY(body.read_int8(out.attributes));
  SLUICE_TRY(body.read_varlong(out.timestamp_delta));
  SLUICE_TRY(body.read_varint(out.offset_delta));
  SLUICE_TRY(body.read_length_prefixed(true, out.key, "negative record key length"));
  SLUICE_TRY(body.read_length_prefixed(true, out.value, "negative record value length"));
  SLUICE_TRY(body.read_varint(out.headers_count));
  if (out.headers_count < 0) return error(errc::invalid_batch, "negative record headers count");
  const std::span<const std::byte> headers_start = body.rest();
  // Bounded: each header consumes at least two bytes or fails.
  for (std::int32_t i = 0; i < out.headers_count; ++i) {
    header_view header;
    SLUICE_TRY(decode_header_from(body, header));
  }
  if (body.remaining() != 0) {
    return error(errc::invalid_batch, "record length larger than its fields");
  }
  out.headers = headers_start;
  return {};
}

result<void> decode_record_header(std::span<const std::byte>& rest, header_view& out) noexcept {
  reader in(rest);
  SLUICE_TRY(decode_header_from(in, out));
  rest = in.rest();
  return {};
}

}  // namespace detail

// ---- batches -----------------------------------------------------------------------------

std::string_view compression_codec_name(compression_codec codec) noexcept {
  switch (codec) {
    case compression_codec::none: return "none";
    case compression_codec::gzip: return "gzip";
    case compression_codec::snappy: return "snappy";
    case compression_codec::lz4: return "lz4";
    case compression_codec::zstd: return "zstd";
  }
  return "unknown";
}

result<batch_header> decode_batch_header(std::span<const std::byte> bytes) noexcept {
  if (bytes.size() < batch_layout::header_bytes) {
    return error(errc::corrupt_batch, "batch shorter than a batch header");
  }
  const std::byte* p = bytes.data();
  batch_header h;
  h.base_offset = offset(load_big_endian<std::int64_t>(p + batch_layout::base_offset));
  h.batch_length = load_big_endian<std::int32_t>(p + batch_layout::batch_length);
  if (h.batch_length <
      static_cast<std::int32_t>(batch_layout::header_bytes - batch_layout::log_overhead)) {
    return error(errc::corrupt_batch, "batch_length smaller than a batch header");
  }
  h.partition_leader_epoch =
      leader_epoch(load_big_endian<std::int32_t>(p + batch_layout::partition_leader_epoch));
  h.magic = load_big_endian<std::int8_t>(p + batch_layout::magic);
  h.crc = load_big_endian<std::uint32_t>(p + batch_layout::crc);
  h.attributes = load_big_endian<std::int16_t>(p + batch_layout::attributes);
  h.last_offset_delta = load_big_endian<std::int32_t>(p + batch_layout::last_offset_delta);
  h.base_timestamp = timestamp_ms(load_big_endian<std::int64_t>(p + batch_layout::base_timestamp));
  h.max_timestamp = timestamp_ms(load_big_endian<std::int64_t>(p + batch_layout::max_timestamp));
  h.producer_id = load_big_endian<std::int64_t>(p + batch_layout::producer_id);
  h.producer_epoch = load_big_endian<std::int16_t>(p + batch_layout::producer_epoch);
  h.base_sequence = load_big_endian<std::int32_t>(p + batch_layout::base_sequence);
  h.records_count = load_big_endian<std::int32_t>(p + batch_layout::records_count);
  return h;
}

result<batch_header> validate_batch(std::span<const std::byte> bytes, const batch_limits& limits,
                                    timestamp_ms now, batch_source source) noexcept {
  auto decoded = decode_batch_header(bytes);
  if (!decoded) return decoded.failure();
  const batch_header& h = *decoded;
  if (h.total_bytes() != bytes.size()) {
    return error(errc::corrupt_batch, "batch_length does not match the bytes of the batch");
  }
  if (bytes.size() > limits.batch_bytes_max) {
    return error(errc::batch_too_large, "batch larger than the maximum batch size");
  }
  if (h.magic != batch_magic_v2) {
    return error(errc::unsupported_magic, "batch magic is not 2");
  }
  const auto checked = bytes.subspan(batch_layout::crc + 4);
  if (crc32c(checked) != h.crc) {
    return error(errc::corrupt_batch, "batch CRC32C mismatch");
  }
  if (source == batch_source::produced) {
    if (h.records_count < 1) {
      return error(errc::invalid_batch, "batch without records");
    }
    if (h.last_offset_delta != h.records_count - 1) {
      return error(errc::invalid_batch, "last_offset_delta is not records_count - 1");
    }
  } else if (h.last_offset_delta < 0 || h.records_count < 0 ||
             h.records_count - 1 > h.last_offset_delta) {
    // A cleaned batch keeps its offset range but may hold fewer records.
    return error(errc::invalid_batch, "records_count does not fit the batch's offset range");
  }
  if (!is_known_codec(h.compression())) {
    return error(errc::invalid_batch, "unknown compression codec");
  }
  const std::int64_t base = h.base_timestamp.value();
  const std::int64_t max = h.max_timestamp.value();
  if (base < -1 || max < -1) {
    return error(errc::invalid_timestamp, "batch timestamp below -1");
  }
  if (base != -1 && max != -1 && max < base) {
    return error(errc::invalid_timestamp, "max_timestamp before base_timestamp");
  }
  for (const std::int64_t ts : {base, max}) {
    if (ts == -1 || source == batch_source::stored) continue;
    if (limits.timestamp_before_max_ms &&
        ts < saturating_subtract(now.value(), *limits.timestamp_before_max_ms)) {
      return error(errc::invalid_timestamp, "batch timestamp older than allowed before now");
    }
    if (limits.timestamp_after_max_ms &&
        ts > saturating_add(now.value(), *limits.timestamp_after_max_ms)) {
      return error(errc::invalid_timestamp, "batch timestamp newer than allowed after now");
    }
  }
  return h;
}

result<std::span<const std::byte>> batch_records(const batch_header& header,
                                                 std::span<const std::byte> batch,
                                                 std::vector<std::byte>& scratch,
                                                 std::size_t decompressed_bytes_max) {
  if (header.batch_length <
          static_cast<std::int32_t>(batch_layout::header_bytes - batch_layout::log_overhead) ||
      batch.size() < header.total_bytes()) {
    return error(errc::corrupt_batch, "batch shorter than its batch_length");
  }
  const auto section =
      batch.subspan(batch_layout::records, header.total_bytes() - batch_layout::records);
  const compression_codec codec = header.compression();
  if (codec == compression_codec::none) return section;
  if (!is_known_codec(codec)) return error(errc::invalid_batch, "unknown compression codec");
  scratch.clear();
  auto decompressed = decompress(codec, section, scratch, decompressed_bytes_max);
  if (!decompressed) return decompressed.failure();
  return std::span<const std::byte>(scratch);
}

result<void> validate_records(const batch_header& header, std::span<const std::byte> batch,
                              std::vector<std::byte>& scratch, std::size_t decompressed_bytes_max,
                              batch_source source) {
  auto records = batch_records(header, batch, scratch, decompressed_bytes_max);
  if (!records) return records.failure();
  // for_each_record checks every record's structure; nothing more to look at per record.
  return for_each_record(
      header, *records, [](const record_view&) { return true; }, source);
}

void assign_batch_offsets(std::span<std::byte> batch, offset base_offset,
                          leader_epoch epoch) noexcept {
  SLUICE_ASSERT(batch.size() >= batch_layout::header_bytes,
                "assign_batch_offsets on bytes shorter than a batch header");
  store_big_endian(batch.data() + batch_layout::base_offset, base_offset.value());
  store_big_endian(batch.data() + batch_layout::partition_leader_epoch, epoch.value());
}

// ---- batch_builder -----------------------------------------------------------------------

void batch_builder::set_producer(std::int64_t producer_id, std::int16_t producer_epoch,
                                 std::int32_t base_sequence) noexcept {
  producer_id_ = producer_id;
  producer_epoch_ = producer_epoch;
  base_sequence_ = base_sequence;
}

void batch_builder::add(const record& r) {
  SLUICE_ASSERT(count_ < static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()),
                "batch_builder: too many records for one batch");
  if (count_ == 0) {
    first_timestamp_ = r.timestamp;
    max_timestamp_ = r.timestamp;
  } else if (r.timestamp > max_timestamp_) {
    max_timestamp_ = r.timestamp;
  }
  // Deltas are against the first record's timestamp, as the Kafka clients write them.
  const std::int64_t timestamp_delta =
      wrapping_subtract(r.timestamp.value(), first_timestamp_.value());
  const auto offset_delta = static_cast<std::int32_t>(count_);
  SLUICE_ASSERT(
      r.headers.size() <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()),
      "batch_builder: too many headers");
  const auto headers_count = static_cast<std::int32_t>(r.headers.size());

  std::size_t body_bytes = 1 + unsigned_varint_size(zigzag(timestamp_delta)) +
                           unsigned_varint_size(zigzag(offset_delta)) +
                           length_prefixed_size(r.key) + length_prefixed_size(r.value) +
                           unsigned_varint_size(zigzag(headers_count));
  for (const header_view& h : r.headers) {
    body_bytes += length_prefixed_size(h.key) + length_prefixed_size(h.value);
  }
  SLUICE_ASSERT(body_bytes <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()),
                "batch_builder: record longer than int32 max");

  put_varint(records_, static_cast<std::int32_t>(body_bytes));
  const std::size_t body_start = records_.size();
  records_.push_back(std::byte{0});  // record attributes: unused by Kafka
  put_varlong(records_, timestamp_delta);
  put_varint(records_, offset_delta);
  put_length_prefixed(records_, r.key);
  put_length_prefixed(records_, r.value);
  put_varint(records_, headers_count);
  for (const header_view& h : r.headers) {
    put_length_prefixed(records_, h.key);
    put_length_prefixed(records_, h.value);
  }
  SLUICE_ASSERT(records_.size() - body_start == body_bytes,
                "batch_builder: record size computed wrongly");
  ++count_;
}

std::span<std::byte> batch_builder::finish() {
  SLUICE_ASSERT(count_ >= 1, "batch_builder::finish needs at least one record");
  batch_.assign(batch_layout::header_bytes, std::byte{0});
  if (codec_ == compression_codec::none) {
    batch_.insert(batch_.end(), records_.begin(), records_.end());
  } else {
    auto compressed = compress(codec_, records_, batch_);
    SLUICE_ASSERT(compressed.ok(), "batch_builder: compression of the records failed");
  }
  const std::size_t batch_length = batch_.size() - batch_layout::log_overhead;
  SLUICE_ASSERT(batch_length <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()),
                "batch_builder: batch longer than int32 max");

  auto attributes = static_cast<std::int16_t>(static_cast<std::uint8_t>(codec_) & 0x7);
  if (transactional_) attributes = static_cast<std::int16_t>(attributes | 0x10);

  std::byte* p = batch_.data();
  store_big_endian(p + batch_layout::base_offset, std::int64_t{0});
  store_big_endian(p + batch_layout::batch_length, static_cast<std::int32_t>(batch_length));
  store_big_endian(p + batch_layout::partition_leader_epoch, std::int32_t{-1});
  store_big_endian(p + batch_layout::magic, batch_magic_v2);
  store_big_endian(p + batch_layout::attributes, attributes);
  store_big_endian(p + batch_layout::last_offset_delta, static_cast<std::int32_t>(count_ - 1));
  store_big_endian(p + batch_layout::base_timestamp, first_timestamp_.value());
  store_big_endian(p + batch_layout::max_timestamp, max_timestamp_.value());
  store_big_endian(p + batch_layout::producer_id, producer_id_);
  store_big_endian(p + batch_layout::producer_epoch, producer_epoch_);
  store_big_endian(p + batch_layout::base_sequence, base_sequence_);
  store_big_endian(p + batch_layout::records_count, static_cast<std::int32_t>(count_));
  const std::uint32_t crc =
      crc32c(std::span<const std::byte>(batch_).subspan(batch_layout::attributes));
  store_big_endian(p + batch_layout::crc, crc);
  return std::span<std::byte>(batch_);
}

void batch_builder::reset() noexcept {
  // Keeps the codec and producer settings, and the capacity of the buffers.
  count_ = 0;
  first_timestamp_ = timestamp_ms{-1};
  max_timestamp_ = timestamp_ms{-1};
  records_.clear();
  batch_.clear();
  pending_timestamps_.clear();
}

}  // namespace sluice
