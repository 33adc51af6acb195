// RecordBatch v2: building, decoding, every validation rule, malformed records, offset
// assignment, and compressed batches.
//
// Malformed inputs are assembled here with a tiny encoder of the test's own (zigzag
// varints written from the format description), not with batch_builder, so a bug shared
// by the builder and the decoder cannot hide itself.
#include "engine/storage/record_batch.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "engine/storage/crc32c.h"

namespace sluice {
namespace {

using bytes = std::vector<std::byte>;

bytes bytes_of(std::string_view text) {
  bytes out(text.size());
  if (!text.empty()) std::memcpy(out.data(), text.data(), text.size());
  return out;
}

std::string text_of(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::optional<std::string> text_of(const std::optional<std::span<const std::byte>>& b) {
  if (!b) return std::nullopt;
  return text_of(*b);
}

// ---- the test's own encoder --------------------------------------------------------------

void append(bytes& out, std::initializer_list<int> values) {
  for (int v : values) out.push_back(static_cast<std::byte>(v));
}

void append(bytes& out, std::span<const std::byte> more) {
  out.insert(out.end(), more.begin(), more.end());
}

void append_text(bytes& out, std::string_view text) {
  append(out, bytes_of(text));
}

template <typename T>
void append_big_endian(bytes& out, T value) {
  auto u = static_cast<std::make_unsigned_t<T>>(value);
  for (int shift = 8 * (static_cast<int>(sizeof(T)) - 1); shift >= 0; shift -= 8) {
    out.push_back(static_cast<std::byte>((u >> shift) & 0xff));
  }
}

template <typename T>
void write_big_endian(std::span<std::byte> out, std::size_t at, T value) {
  bytes encoded;
  append_big_endian(encoded, value);
  std::memcpy(out.data() + at, encoded.data(), encoded.size());
}

// Kafka varint: zigzag, then 7 bits a byte, low bits first.
void append_varint(bytes& out, std::int64_t v) {
  std::uint64_t u = (static_cast<std::uint64_t>(v) << 1) ^ (v < 0 ? ~std::uint64_t{0} : 0);
  while (u >= 0x80) {
    out.push_back(static_cast<std::byte>((u & 0x7f) | 0x80));
    u >>= 7;
  }
  out.push_back(static_cast<std::byte>(u));
}

// A record body (everything after its length): the fields in order.
bytes record_body(
    std::int64_t timestamp_delta, std::int32_t offset_delta, std::optional<std::string_view> key,
    std::optional<std::string_view> value,
    std::vector<std::pair<std::string_view, std::optional<std::string_view>>> headers = {}) {
  bytes body;
  append(body, {0});  // attributes
  append_varint(body, timestamp_delta);
  append_varint(body, offset_delta);
  append_varint(body, key ? static_cast<std::int64_t>(key->size()) : -1);
  if (key) append_text(body, *key);
  append_varint(body, value ? static_cast<std::int64_t>(value->size()) : -1);
  if (value) append_text(body, *value);
  append_varint(body, static_cast<std::int64_t>(headers.size()));
  for (const auto& [k, v] : headers) {
    append_varint(body, static_cast<std::int64_t>(k.size()));
    append_text(body, k);
    append_varint(body, v ? static_cast<std::int64_t>(v->size()) : -1);
    if (v) append_text(body, *v);
  }
  return body;
}

bytes framed(const bytes& body) {
  bytes out;
  append_varint(out, static_cast<std::int64_t>(body.size()));
  append(out, body);
  return out;
}

// Recomputes the CRC after a test edited bytes inside the CRC'd range, so that the rule
// under test, not the CRC, is what rejects the batch.
void reseal(std::span<std::byte> batch) {
  const std::uint32_t crc = crc32c(std::span<const std::byte>(batch).subspan(21));
  write_big_endian(batch, 17, crc);
}

// A whole batch around `records` (already encoded), written field by field.
bytes wrap_records(std::span<const std::byte> records, std::int32_t records_count,
                   std::int16_t attributes = 0, std::int64_t base_timestamp = 1000,
                   std::int64_t max_timestamp = 1000) {
  bytes out;
  append_big_endian(out, std::int64_t{0});                                 // base_offset
  append_big_endian(out, static_cast<std::int32_t>(49 + records.size()));  // batch_length
  append_big_endian(out, std::int32_t{-1});                                // leader epoch
  append(out, {2});                                                        // magic
  append_big_endian(out, std::uint32_t{0});                                // crc, below
  append_big_endian(out, attributes);                                      // attributes
  append_big_endian(out, static_cast<std::int32_t>(records_count - 1));    // last delta
  append_big_endian(out, base_timestamp);                                  // base ts
  append_big_endian(out, max_timestamp);                                   // max ts
  append_big_endian(out, std::int64_t{-1});                                // producer id
  append_big_endian(out, std::int16_t{-1});                                // epoch
  append_big_endian(out, std::int32_t{-1});                                // sequence
  append_big_endian(out, records_count);                                   // count
  append(out, records);
  reseal(out);
  return out;
}

result<void> deep_validate(std::span<const std::byte> batch) {
  auto header = validate_batch(batch, batch_limits{}, timestamp_ms(1000));
  if (!header) return header.failure();
  std::vector<std::byte> scratch;
  return validate_records(*header, batch, scratch, 1 << 20);
}

// ---- what a decoded record looks like ----------------------------------------------------

struct decoded_record {
  std::int64_t timestamp = 0;
  std::int32_t offset_delta = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;
};

std::vector<decoded_record> decode_all(const batch_header& header,
                                       std::span<const std::byte> records) {
  std::vector<decoded_record> out;
  auto walked = for_each_record(header, records, [&](const record_view& r) {
    decoded_record d;
    d.timestamp = header.base_timestamp.value() + r.timestamp_delta;
    d.offset_delta = r.offset_delta;
    d.key = text_of(r.key);
    d.value = text_of(r.value);
    auto headers_walked = for_each_header(r, [&](const header_view& h) {
      d.headers.emplace_back(text_of(h.key), text_of(h.value));
      return true;
    });
    EXPECT_TRUE(headers_walked.ok());
    EXPECT_EQ(static_cast<std::size_t>(r.headers_count), d.headers.size());
    out.push_back(std::move(d));
    return true;
  });
  EXPECT_TRUE(walked.ok()) << (walked.ok() ? "" : walked.failure().detail());
  return out;
}

// A fixed set of records covering null keys, null values, header values that are null,
// and timestamps that go down as well as up.
struct sample_records {
  bytes k1 = bytes_of("key-1"), v1 = bytes_of("value-1");
  bytes v2 = bytes_of("value-2, no key");
  bytes k3 = bytes_of("key-3");
  bytes hk1 = bytes_of("trace"), hv1 = bytes_of("abc123"), hk2 = bytes_of("empty");
  bytes big_value = bytes(300, std::byte{'z'});
  std::vector<header_view> headers;

  sample_records() {
    headers.push_back(header_view{hk1, hv1});
    headers.push_back(header_view{hk2, std::nullopt});
  }

  void add_to(batch_builder& b) const {
    b.add({k1, v1, {}, timestamp_ms(1'700'000'000'000)});
    b.add({std::nullopt, v2, {}, timestamp_ms(1'700'000'000'050)});
    b.add({k3, std::nullopt, headers, timestamp_ms(1'699'999'999'990)});  // before the first
    b.add({bytes{}, big_value, {}, timestamp_ms(1'700'000'001'000)});     // empty key
  }

  void expect_matches(const std::vector<decoded_record>& got) const {
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[0].key, "key-1");
    EXPECT_EQ(got[0].value, "value-1");
    EXPECT_EQ(got[0].timestamp, 1'700'000'000'000);
    EXPECT_TRUE(got[0].headers.empty());
    EXPECT_EQ(got[1].key, std::nullopt);
    EXPECT_EQ(got[1].value, "value-2, no key");
    EXPECT_EQ(got[1].timestamp, 1'700'000'000'050);
    EXPECT_EQ(got[2].key, "key-3");
    EXPECT_EQ(got[2].value, std::nullopt);
    EXPECT_EQ(got[2].timestamp, 1'699'999'999'990);
    ASSERT_EQ(got[2].headers.size(), 2u);
    EXPECT_EQ(got[2].headers[0].first, "trace");
    EXPECT_EQ(got[2].headers[0].second, "abc123");
    EXPECT_EQ(got[2].headers[1].first, "empty");
    EXPECT_EQ(got[2].headers[1].second, std::nullopt);
    EXPECT_EQ(got[3].key, "");
    EXPECT_EQ(got[3].value, std::string(300, 'z'));
    EXPECT_EQ(got[3].timestamp, 1'700'000'001'000);
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].offset_delta, static_cast<std::int32_t>(i));
    }
  }
};

constexpr timestamp_ms sample_now{1'700'000'000'500};

// ---- round trips -------------------------------------------------------------------------

TEST(RecordBatch, BuilderRoundTrip) {
  sample_records sample;
  batch_builder builder;
  builder.set_producer(4242, 7, 100);
  sample.add_to(builder);
  EXPECT_EQ(builder.record_count(), 4u);
  auto batch = builder.finish();

  auto header = validate_batch(batch, batch_limits{}, sample_now);
  ASSERT_TRUE(header.ok()) << header.failure().detail();
  EXPECT_EQ(header->base_offset, offset(0));
  EXPECT_EQ(header->partition_leader_epoch, leader_epoch(-1));
  EXPECT_EQ(header->magic, 2);
  EXPECT_EQ(header->total_bytes(), batch.size());
  EXPECT_EQ(header->records_count, 4);
  EXPECT_EQ(header->last_offset_delta, 3);
  EXPECT_EQ(header->next_offset(), offset(4));
  EXPECT_EQ(header->base_timestamp, timestamp_ms(1'700'000'000'000));
  EXPECT_EQ(header->max_timestamp, timestamp_ms(1'700'000'001'000));
  EXPECT_EQ(header->producer_id, 4242);
  EXPECT_EQ(header->producer_epoch, 7);
  EXPECT_EQ(header->base_sequence, 100);
  EXPECT_EQ(header->compression(), compression_codec::none);
  EXPECT_EQ(header->timestamp_kind(), timestamp_type::create_time);
  EXPECT_FALSE(header->is_transactional());
  EXPECT_FALSE(header->is_control());

  std::vector<std::byte> scratch;
  auto records = batch_records(*header, batch, scratch, 1 << 20);
  ASSERT_TRUE(records.ok());
  // Uncompressed records are a view into the batch itself, right after the header.
  EXPECT_EQ(records->data(), batch.data() + batch_layout::records);
  EXPECT_EQ(records->size(), batch.size() - batch_layout::header_bytes);
  sample.expect_matches(decode_all(*header, *records));
  EXPECT_TRUE(validate_records(*header, batch, scratch, 1 << 20).ok());
}

TEST(RecordBatch, EncodedSpansTileTheRecordsSection) {
  sample_records sample;
  batch_builder builder;
  sample.add_to(builder);
  auto batch = builder.finish();
  auto header = decode_batch_header(batch);
  ASSERT_TRUE(header.ok());
  const auto records = std::span<const std::byte>(batch).subspan(batch_layout::records);
  const std::byte* expected_start = records.data();
  auto walked = for_each_record(*header, records, [&](const record_view& r) {
    EXPECT_EQ(r.encoded.data(), expected_start);
    expected_start += r.encoded.size();
    return true;
  });
  ASSERT_TRUE(walked.ok());
  EXPECT_EQ(expected_start, records.data() + records.size());
}

TEST(RecordBatch, VisitorCanStopEarly) {
  sample_records sample;
  batch_builder builder;
  sample.add_to(builder);
  auto batch = builder.finish();
  auto header = decode_batch_header(batch);
  ASSERT_TRUE(header.ok());
  int visited = 0;
  auto walked = for_each_record(*header, std::span<const std::byte>(batch).subspan(61),
                                [&](const record_view&) { return ++visited < 2; });
  EXPECT_TRUE(walked.ok());
  EXPECT_EQ(visited, 2);
}

TEST(RecordBatch, TransactionalBitAndReset) {
  sample_records sample;
  batch_builder builder;
  builder.set_transactional(true);
  builder.add({sample.k1, sample.v1, {}, timestamp_ms(5)});
  auto first = builder.finish();
  auto header = validate_batch(first, batch_limits{}, timestamp_ms(5));
  ASSERT_TRUE(header.ok());
  EXPECT_TRUE(header->is_transactional());
  EXPECT_EQ(header->records_count, 1);

  // After reset the builder makes the same batch a fresh builder makes.
  builder.reset();
  builder.set_transactional(false);
  sample.add_to(builder);
  auto reused_batch = builder.finish();
  const bytes reused(reused_batch.begin(), reused_batch.end());
  batch_builder fresh;
  sample.add_to(fresh);
  auto fresh_batch = fresh.finish();
  EXPECT_EQ(reused, bytes(fresh_batch.begin(), fresh_batch.end()));
}

// A batch assembled byte by byte from the format description in the Kafka protocol
// documentation, independently of batch_builder: the builder must produce exactly these
// bytes, and the decoder must read them back.
TEST(RecordBatch, HandAssembledBatchMatchesBuilder) {
  bytes records;
  // Record 0: key "k", value "v1", timestamp 1000 (delta 0), no headers.
  // Body: attrs 00, ts delta 00, offset delta 00, key len 1 -> zigzag 02, 'k',
  //       value len 2 -> 04, 'v' '1', headers 00. 9 bytes -> length zigzag 18 = 0x12.
  append(records, {0x12, 0x00, 0x00, 0x00, 0x02, 'k', 0x04, 'v', '1', 0x00});
  // Record 1: null key, value "x", timestamp 1005 (delta 5 -> 0x0a), offset delta 1 -> 02,
  //   key -1 -> 01, value len 1 -> 02 'x', one header (02): key "h" (02 'h'), null value (01).
  //   10 bytes -> length 20 = 0x14.
  append(records, {0x14, 0x00, 0x0a, 0x02, 0x01, 0x02, 'x', 0x02, 0x02, 'h', 0x01});
  // Record 2: key "key3", 64 bytes of 'a', timestamp 1100: delta 100 -> zigzag 200 =
  //   0xc8 0x01; offset delta 2 -> 04; key len 4 -> 08; value len 64 -> zigzag 128 =
  //   0x80 0x01; no headers. 1+2+1+1+4+2+64+1 = 76 bytes -> zigzag 152 = 0x98 0x01.
  append(records, {0x98, 0x01, 0x00, 0xc8, 0x01, 0x04, 0x08, 'k', 'e', 'y', '3', 0x80, 0x01});
  append(records, bytes(64, std::byte{'a'}));
  append(records, {0x00});

  bytes expected;
  append(expected, {0, 0, 0, 0, 0, 0, 0, 0});                                   // base offset 0
  append_big_endian(expected, static_cast<std::int32_t>(49 + records.size()));  // batch length
  append(expected, {0xff, 0xff, 0xff, 0xff});                                   // epoch -1
  append(expected, {0x02});                                                     // magic
  append(expected, {0, 0, 0, 0});                                               // crc (below)
  append(expected, {0x00, 0x00});                                               // attributes
  append(expected, {0, 0, 0, 2});                                               // last delta 2
  append(expected, {0, 0, 0, 0, 0, 0, 0x03, 0xe8});                             // base ts 1000
  append(expected, {0, 0, 0, 0, 0, 0, 0x04, 0x4c});                             // max ts 1100
  append(expected, {0, 0, 0, 0, 0, 0, 0, 7});                                   // producer 7
  append(expected, {0, 1});                                                     // epoch 1
  append(expected, {0, 0, 0, 3});                                               // sequence 3
  append(expected, {0, 0, 0, 3});                                               // 3 records
  append(expected, records);
  ASSERT_EQ(expected.size(), 61 + 10 + 11 + 78u);
  const std::uint32_t crc = crc32c_extend_portable(0, expected.data() + 21, expected.size() - 21);
  expected[17] = static_cast<std::byte>(crc >> 24);
  expected[18] = static_cast<std::byte>(crc >> 16);
  expected[19] = static_cast<std::byte>(crc >> 8);
  expected[20] = static_cast<std::byte>(crc);

  // The decoder reads the independent encoding.
  auto header = validate_batch(expected, batch_limits{}, timestamp_ms(1000));
  ASSERT_TRUE(header.ok()) << header.failure().detail();
  EXPECT_EQ(header->producer_id, 7);
  EXPECT_EQ(header->producer_epoch, 1);
  EXPECT_EQ(header->base_sequence, 3);
  EXPECT_EQ(header->base_timestamp, timestamp_ms(1000));
  EXPECT_EQ(header->max_timestamp, timestamp_ms(1100));
  auto got = decode_all(*header, std::span<const std::byte>(expected).subspan(61));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].key, "k");
  EXPECT_EQ(got[0].value, "v1");
  EXPECT_EQ(got[0].timestamp, 1000);
  EXPECT_EQ(got[1].key, std::nullopt);
  EXPECT_EQ(got[1].value, "x");
  EXPECT_EQ(got[1].timestamp, 1005);
  ASSERT_EQ(got[1].headers.size(), 1u);
  EXPECT_EQ(got[1].headers[0].first, "h");
  EXPECT_EQ(got[1].headers[0].second, std::nullopt);
  EXPECT_EQ(got[2].key, "key3");
  EXPECT_EQ(got[2].value, std::string(64, 'a'));
  EXPECT_EQ(got[2].timestamp, 1100);

  // The builder writes the same bytes.
  const bytes k = bytes_of("k"), v1 = bytes_of("v1"), x = bytes_of("x"), h = bytes_of("h");
  const bytes key3 = bytes_of("key3"), a64(64, std::byte{'a'});
  const header_view record1_headers[] = {header_view{h, std::nullopt}};
  batch_builder builder;
  builder.set_producer(7, 1, 3);
  builder.add({k, v1, {}, timestamp_ms(1000)});
  builder.add({std::nullopt, x, record1_headers, timestamp_ms(1005)});
  builder.add({key3, a64, {}, timestamp_ms(1100)});
  auto built = builder.finish();
  EXPECT_EQ(bytes(built.begin(), built.end()), expected);
}

// ---- validate_batch: one test per rule ---------------------------------------------------

bytes sample_batch() {
  sample_records sample;
  batch_builder builder;
  sample.add_to(builder);
  auto batch = builder.finish();
  return bytes(batch.begin(), batch.end());
}

errc validate_code(std::span<const std::byte> batch, const batch_limits& limits = {},
                   timestamp_ms now = sample_now) {
  return validate_batch(batch, limits, now).code();
}

TEST(ValidateBatch, AcceptsTheSample) {
  const bytes batch = sample_batch();
  EXPECT_EQ(validate_code(batch), errc::ok);
}

TEST(ValidateBatch, RejectsTruncatedBatches) {
  const bytes batch = sample_batch();
  const std::span<const std::byte> whole(batch);
  EXPECT_EQ(validate_code(whole.first(0)), errc::corrupt_batch);
  EXPECT_EQ(validate_code(whole.first(60)), errc::corrupt_batch);
  EXPECT_EQ(validate_code(whole.first(61)), errc::corrupt_batch);
  EXPECT_EQ(validate_code(whole.first(batch.size() - 1)), errc::corrupt_batch);
  EXPECT_EQ(decode_batch_header(whole.first(60)).code(), errc::corrupt_batch);
  EXPECT_EQ(decode_batch_header(whole.first(61)).code(), errc::ok);
}

TEST(ValidateBatch, RejectsLengthThatLies) {
  bytes batch = sample_batch();
  const auto length = static_cast<std::int32_t>(batch.size() - 12);
  write_big_endian(std::span(batch), 8, length + 1);
  EXPECT_EQ(validate_code(batch), errc::corrupt_batch);
  write_big_endian(std::span(batch), 8, length - 1);
  EXPECT_EQ(validate_code(batch), errc::corrupt_batch);
  // Trailing bytes after a correct length are not part of this batch either.
  write_big_endian(std::span(batch), 8, length);
  batch.push_back(std::byte{0});
  EXPECT_EQ(validate_code(batch), errc::corrupt_batch);
  // A batch_length too small for the header itself, and a negative one.
  write_big_endian(std::span(batch), 8, std::int32_t{48});
  EXPECT_EQ(decode_batch_header(batch).code(), errc::corrupt_batch);
  write_big_endian(std::span(batch), 8, std::int32_t{-12});
  EXPECT_EQ(decode_batch_header(batch).code(), errc::corrupt_batch);
}

TEST(ValidateBatch, RejectsBatchLargerThanTheLimit) {
  const bytes batch = sample_batch();
  batch_limits limits;
  limits.batch_bytes_max = batch.size();
  EXPECT_EQ(validate_code(batch, limits), errc::ok);
  limits.batch_bytes_max = batch.size() - 1;
  EXPECT_EQ(validate_code(batch, limits), errc::batch_too_large);
}

TEST(ValidateBatch, RejectsWrongMagic) {
  for (int magic : {0, 1, 3, -1}) {
    bytes batch = sample_batch();
    batch[16] = static_cast<std::byte>(magic);  // outside the CRC'd range
    EXPECT_EQ(validate_code(batch), errc::unsupported_magic) << magic;
  }
}

TEST(ValidateBatch, RejectsAnyFlippedByteInsideTheCrcRange) {
  const bytes original = sample_batch();
  for (std::size_t i = 21; i < original.size(); ++i) {
    bytes batch = original;
    batch[i] ^= std::byte{0x01};
    ASSERT_EQ(validate_code(batch), errc::corrupt_batch) << "byte " << i;
  }
  for (std::size_t i = 17; i < 21; ++i) {  // the CRC field itself
    bytes batch = original;
    batch[i] ^= std::byte{0x80};
    ASSERT_EQ(validate_code(batch), errc::corrupt_batch) << "byte " << i;
  }
}

TEST(ValidateBatch, BytesBeforeTheCrcAreOutsideIt) {
  bytes batch = sample_batch();
  for (std::size_t i : {0u, 7u, 12u, 15u}) batch[i] ^= std::byte{0x5a};
  EXPECT_EQ(validate_code(batch), errc::ok);
}

TEST(ValidateBatch, RejectsRecordsCountThatDisagreesWithLastOffsetDelta) {
  bytes batch = sample_batch();  // 4 records
  write_big_endian(std::span(batch), 23, std::int32_t{4});
  reseal(batch);
  EXPECT_EQ(validate_code(batch), errc::invalid_batch);
  write_big_endian(std::span(batch), 23, std::int32_t{2});
  reseal(batch);
  EXPECT_EQ(validate_code(batch), errc::invalid_batch);
  // No records at all.
  write_big_endian(std::span(batch), 23, std::int32_t{-1});
  write_big_endian(std::span(batch), 57, std::int32_t{0});
  reseal(batch);
  EXPECT_EQ(validate_code(batch), errc::invalid_batch);
  write_big_endian(std::span(batch), 23, std::int32_t{-2});
  write_big_endian(std::span(batch), 57, std::int32_t{-1});
  reseal(batch);
  EXPECT_EQ(validate_code(batch), errc::invalid_batch);
}

TEST(ValidateBatch, RejectsUnknownCompressionCodecs) {
  for (std::int16_t codec : {5, 6, 7}) {
    bytes batch = sample_batch();
    write_big_endian(std::span(batch), 21, codec);
    reseal(batch);
    EXPECT_EQ(validate_code(batch), errc::invalid_batch) << codec;
    auto header = decode_batch_header(batch);
    ASSERT_TRUE(header.ok());
    std::vector<std::byte> scratch;
    EXPECT_EQ(batch_records(*header, batch, scratch, 1 << 20).code(), errc::invalid_batch);
  }
}

bytes with_timestamps(std::int64_t base, std::int64_t max) {
  bytes batch = sample_batch();
  write_big_endian(std::span(batch), 27, base);
  write_big_endian(std::span(batch), 35, max);
  reseal(batch);
  return batch;
}

TEST(ValidateBatch, RejectsBadTimestamps) {
  EXPECT_EQ(validate_code(with_timestamps(1000, 2000)), errc::ok);
  EXPECT_EQ(validate_code(with_timestamps(-1, -1)), errc::ok);
  EXPECT_EQ(validate_code(with_timestamps(-1, 2000)), errc::ok);
  EXPECT_EQ(validate_code(with_timestamps(1000, 1000)), errc::ok);
  EXPECT_EQ(validate_code(with_timestamps(-2, 2000)), errc::invalid_timestamp);
  EXPECT_EQ(validate_code(with_timestamps(1000, -5)), errc::invalid_timestamp);
  EXPECT_EQ(validate_code(with_timestamps(std::numeric_limits<std::int64_t>::min(), 0)),
            errc::invalid_timestamp);
  EXPECT_EQ(validate_code(with_timestamps(2000, 1999)), errc::invalid_timestamp);
}

TEST(ValidateBatch, RejectsTimestampsOutsideTheLimits) {
  const timestamp_ms now(1'000'000);
  batch_limits limits;
  limits.timestamp_before_max_ms = 1000;
  limits.timestamp_after_max_ms = 500;
  EXPECT_EQ(validate_code(with_timestamps(999'000, 1'000'500), limits, now), errc::ok);
  EXPECT_EQ(validate_code(with_timestamps(998'999, 1'000'000), limits, now),
            errc::invalid_timestamp);
  EXPECT_EQ(validate_code(with_timestamps(999'500, 1'000'501), limits, now),
            errc::invalid_timestamp);
  // The max timestamp is checked against the "before" limit too, and the base against
  // "after".
  EXPECT_EQ(validate_code(with_timestamps(-1, 998'000), limits, now), errc::invalid_timestamp);
  EXPECT_EQ(validate_code(with_timestamps(1'000'600, -1), limits, now), errc::invalid_timestamp);
  // "No timestamp" is never out of range.
  EXPECT_EQ(validate_code(with_timestamps(-1, -1), limits, now), errc::ok);
  // Without limits any timestamp >= -1 is accepted.
  EXPECT_EQ(validate_code(with_timestamps(0, 1'000'000'000'000), batch_limits{}, now), errc::ok);
  // Huge limits saturate instead of overflowing.
  limits.timestamp_before_max_ms = std::numeric_limits<std::int64_t>::max();
  limits.timestamp_after_max_ms = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(
      validate_code(with_timestamps(0, std::numeric_limits<std::int64_t>::max()), limits, now),
      errc::ok);
}

TEST(ValidateBatch, ChecksRulesInTheDocumentedOrder) {
  // Too large and wrong magic and bad CRC: the size rule comes first.
  bytes batch = sample_batch();
  batch[16] = std::byte{1};
  batch[40] ^= std::byte{1};
  batch_limits small;
  small.batch_bytes_max = 61;
  EXPECT_EQ(validate_code(batch, small), errc::batch_too_large);
  // Wrong magic before the CRC.
  EXPECT_EQ(validate_code(batch), errc::unsupported_magic);
  // The CRC before the record count and the timestamps (not resealed on purpose).
  bytes stale = sample_batch();
  write_big_endian(std::span(stale), 23, std::int32_t{99});
  write_big_endian(std::span(stale), 27, std::int64_t{-7});
  EXPECT_EQ(validate_code(stale), errc::corrupt_batch);
  // The record count before the codec, the codec before the timestamps.
  reseal(stale);
  write_big_endian(std::span(stale), 21, std::int16_t{6});
  reseal(stale);
  EXPECT_EQ(validate_code(stale), errc::invalid_batch);
  write_big_endian(std::span(stale), 23, std::int32_t{3});
  reseal(stale);
  EXPECT_EQ(validate_code(stale), errc::invalid_batch);
  write_big_endian(std::span(stale), 21, std::int16_t{0});
  reseal(stale);
  EXPECT_EQ(validate_code(stale), errc::invalid_timestamp);
}

// ---- assign_batch_offsets ----------------------------------------------------------------

TEST(AssignBatchOffsets, RewritesOffsetAndEpochAndKeepsTheCrcValid) {
  bytes batch = sample_batch();
  assign_batch_offsets(batch, offset(123'456'789'012), leader_epoch(17));
  auto header = validate_batch(batch, batch_limits{}, sample_now);
  ASSERT_TRUE(header.ok()) << header.failure().detail();
  EXPECT_EQ(header->base_offset, offset(123'456'789'012));
  EXPECT_EQ(header->partition_leader_epoch, leader_epoch(17));
  EXPECT_EQ(header->last_offset(), offset(123'456'789'015));
  EXPECT_EQ(header->next_offset(), offset(123'456'789'016));
  // Nothing else moved.
  const bytes original = sample_batch();
  EXPECT_TRUE(std::equal(batch.begin() + 16, batch.end(), original.begin() + 16));
}

// ---- validate_records: malformed records -------------------------------------------------

TEST(ValidateRecords, AcceptsHandAssembledRecords) {
  bytes records = framed(record_body(0, 0, "a", "b"));
  append(records, framed(record_body(3, 1, std::nullopt, std::nullopt, {{"h", std::nullopt}})));
  EXPECT_EQ(deep_validate(wrap_records(records, 2)).code(), errc::ok);
}

TEST(ValidateRecords, RejectsOverlongVarints) {
  // A record length of 10 written in 6 bytes (5 is the most a varint may use).
  bytes body = record_body(0, 0, "k", "v");
  ASSERT_LT(body.size(), 64u);
  bytes records;
  append(records, {static_cast<int>((body.size() * 2) | 0x80), 0x80, 0x80, 0x80, 0x80, 0x00});
  append(records, body);
  EXPECT_EQ(deep_validate(wrap_records(records, 1)).code(), errc::invalid_batch);

  // The same length in exactly 5 bytes is a legal (if wasteful) encoding.
  bytes five;
  append(five, {static_cast<int>((body.size() * 2) | 0x80), 0x80, 0x80, 0x80, 0x00});
  append(five, body);
  EXPECT_EQ(deep_validate(wrap_records(five, 1)).code(), errc::ok);

  // A 5-byte varint whose last byte carries bits beyond 32.
  bytes wide;
  append(wide, {static_cast<int>((body.size() * 2) | 0x80), 0x80, 0x80, 0x80, 0x10});
  append(wide, body);
  EXPECT_EQ(deep_validate(wrap_records(wide, 1)).code(), errc::invalid_batch);

  // A timestamp delta varlong in 11 bytes.
  bytes long_body;
  append(long_body, {0});
  append(long_body, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00});
  append(long_body, {0x00, 0x02, 'k', 0x02, 'v', 0x00});
  EXPECT_EQ(deep_validate(wrap_records(framed(long_body), 1)).code(), errc::invalid_batch);

  // ... and in 10 bytes, the most allowed, it is accepted.
  bytes ten_body;
  append(ten_body, {0});
  append(ten_body, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00});
  append(ten_body, {0x00, 0x02, 'k', 0x02, 'v', 0x00});
  EXPECT_EQ(deep_validate(wrap_records(framed(ten_body), 1)).code(), errc::ok);
}

TEST(ValidateRecords, RejectsTruncatedVarint) {
  bytes records = framed(record_body(0, 0, "k", "v"));
  append(records, {0x80});  // a varint that never ends
  EXPECT_EQ(deep_validate(wrap_records(records, 2)).code(), errc::invalid_batch);
}

TEST(ValidateRecords, RejectsKeyOrValueLengthPastTheEnd) {
  bytes body;
  append(body, {0, 0, 0});
  append_varint(body, 100);  // key length 100, but only 3 bytes follow
  append(body, {'a', 'b', 'c'});
  EXPECT_EQ(deep_validate(wrap_records(framed(body), 1)).code(), errc::invalid_batch);

  bytes value_body;
  append(value_body, {0, 0, 0, 0x01});  // null key
  append_varint(value_body, 5);
  append(value_body, {'a', 0x00});
  EXPECT_EQ(deep_validate(wrap_records(framed(value_body), 1)).code(), errc::invalid_batch);
}

TEST(ValidateRecords, RejectsRecordLengthPastTheEnd) {
  bytes body = record_body(0, 0, "k", "v");
  bytes records;
  append_varint(records, static_cast<std::int64_t>(body.size() + 1));
  append(records, body);
  EXPECT_EQ(deep_validate(wrap_records(records, 1)).code(), errc::invalid_batch);
}

TEST(ValidateRecords, RejectsNegativeLengths) {
  bytes key_minus_two;
  append(key_minus_two, {0, 0, 0});
  append_varint(key_minus_two, -2);
  append(key_minus_two, {0x02, 'v', 0x00});
  EXPECT_EQ(deep_validate(wrap_records(framed(key_minus_two), 1)).code(), errc::invalid_batch);

  bytes negative_headers;
  append(negative_headers, {0, 0, 0, 0x01, 0x01});  // null key, null value
  append_varint(negative_headers, -1);              // headers count -1
  EXPECT_EQ(deep_validate(wrap_records(framed(negative_headers), 1)).code(), errc::invalid_batch);

  bytes null_header_key;
  append(null_header_key, {0, 0, 0, 0x01, 0x01, 0x02});  // one header
  append(null_header_key, {0x01, 0x02, 'v'});            // key -1: header keys cannot be null
  EXPECT_EQ(deep_validate(wrap_records(framed(null_header_key), 1)).code(), errc::invalid_batch);

  bytes negative_record_length;
  append_varint(negative_record_length, -3);
  append(negative_record_length, {0, 0, 0});
  EXPECT_EQ(deep_validate(wrap_records(negative_record_length, 1)).code(), errc::invalid_batch);
}

TEST(ValidateRecords, RejectsMoreHeadersThanBytes) {
  bytes body;
  append(body, {0, 0, 0, 0x01, 0x01});
  append_varint(body, std::numeric_limits<std::int32_t>::max());
  append(body, {0x02, 'h', 0x01});
  EXPECT_EQ(deep_validate(wrap_records(framed(body), 1)).code(), errc::invalid_batch);
}

TEST(ValidateRecords, RejectsWrongRecordCount) {
  bytes records = framed(record_body(0, 0, "a", "1"));
  append(records, framed(record_body(0, 1, "b", "2")));
  EXPECT_EQ(deep_validate(wrap_records(records, 2)).code(), errc::ok);
  EXPECT_EQ(deep_validate(wrap_records(records, 3)).code(), errc::invalid_batch);
  EXPECT_EQ(deep_validate(wrap_records(records, 1)).code(), errc::invalid_batch);
}

TEST(ValidateRecords, RejectsExtraBytes) {
  // Inside a record: its length covers one byte more than its fields.
  bytes body = record_body(0, 0, "k", "v");
  body.push_back(std::byte{0});
  EXPECT_EQ(deep_validate(wrap_records(framed(body), 1)).code(), errc::invalid_batch);
  // After the last record.
  bytes records = framed(record_body(0, 0, "k", "v"));
  records.push_back(std::byte{0});
  EXPECT_EQ(deep_validate(wrap_records(records, 1)).code(), errc::invalid_batch);
}

TEST(ValidateRecords, RejectsNonSequentialOffsetDeltas) {
  bytes skipped = framed(record_body(0, 0, "a", "1"));
  append(skipped, framed(record_body(0, 2, "b", "2")));
  EXPECT_EQ(deep_validate(wrap_records(skipped, 2)).code(), errc::invalid_batch);
  bytes swapped = framed(record_body(0, 1, "a", "1"));
  append(swapped, framed(record_body(0, 0, "b", "2")));
  EXPECT_EQ(deep_validate(wrap_records(swapped, 2)).code(), errc::invalid_batch);
}

TEST(ValidateRecords, ForEachHeaderRejectsMalformedHeaders) {
  const bytes headers = bytes_of("\x02h\x04");  // value length 2, but no bytes
  record_view record;
  record.headers_count = 1;
  record.headers = headers;
  EXPECT_EQ(for_each_header(record, [](const header_view&) { return true; }).code(),
            errc::invalid_batch);
  record.headers_count = 2;  // more headers than encoded
  const bytes one_header = bytes_of("\x02h\x01");
  record.headers = one_header;
  EXPECT_EQ(for_each_header(record, [](const header_view&) { return true; }).code(),
            errc::invalid_batch);
  record.headers_count = 1;
  int seen = 0;
  EXPECT_TRUE(for_each_header(record, [&](const header_view& h) {
                ++seen;
                EXPECT_EQ(text_of(h.key), "h");
                EXPECT_FALSE(h.value.has_value());
              }).ok());
  EXPECT_EQ(seen, 1);
}

// Every truncation of a valid records section is rejected, never read past.
TEST(ValidateRecords, EveryTruncationIsRejected) {
  sample_records sample;
  batch_builder builder;
  sample.add_to(builder);
  auto batch = builder.finish();
  const auto records = std::span<const std::byte>(batch).subspan(61);
  for (std::size_t cut = 0; cut < records.size(); ++cut) {
    const bytes truncated(records.begin(), records.begin() + static_cast<std::ptrdiff_t>(cut));
    ASSERT_EQ(deep_validate(wrap_records(truncated, 4)).code(), errc::invalid_batch) << cut;
  }
}

// ---- names -------------------------------------------------------------------------------

TEST(RecordBatch, CompressionCodecNames) {
  EXPECT_EQ(compression_codec_name(compression_codec::none), "none");
  EXPECT_EQ(compression_codec_name(compression_codec::gzip), "gzip");
  EXPECT_EQ(compression_codec_name(compression_codec::snappy), "snappy");
  EXPECT_EQ(compression_codec_name(compression_codec::lz4), "lz4");
  EXPECT_EQ(compression_codec_name(compression_codec::zstd), "zstd");
  EXPECT_EQ(compression_codec_name(static_cast<compression_codec>(6)), "unknown");
}

// ---- compressed batches ------------------------------------------------------------------

class CompressedBatch : public ::testing::TestWithParam<compression_codec> {};

TEST_P(CompressedBatch, RoundTripThroughBuilderAndBatchRecords) {
  const compression_codec codec = GetParam();
  sample_records sample;
  batch_builder plain;
  sample.add_to(plain);
  auto plain_batch = plain.finish();
  const bytes plain_records(plain_batch.begin() + 61, plain_batch.end());

  batch_builder builder(codec);
  sample.add_to(builder);
  auto batch = builder.finish();
  auto header = validate_batch(batch, batch_limits{}, sample_now);
  ASSERT_TRUE(header.ok()) << header.failure().detail();
  EXPECT_EQ(header->compression(), codec);
  EXPECT_EQ(header->records_count, 4);

  std::vector<std::byte> scratch;
  auto records = batch_records(*header, batch, scratch, 1 << 20);
  ASSERT_TRUE(records.ok()) << records.failure().detail();
  // The decompressed section is exactly the uncompressed encoding of the same records.
  EXPECT_EQ(bytes(records->begin(), records->end()), plain_records);
  sample.expect_matches(decode_all(*header, *records));
  EXPECT_TRUE(validate_records(*header, batch, scratch, 1 << 20).ok());
}

TEST_P(CompressedBatch, DecompressedSizeIsBounded) {
  batch_builder builder(GetParam());
  const bytes value(64 * 1024, std::byte{'q'});  // compresses very well
  builder.add({std::nullopt, value, {}, timestamp_ms(1)});
  auto batch = builder.finish();
  auto header = validate_batch(batch, batch_limits{}, timestamp_ms(1));
  ASSERT_TRUE(header.ok());
  std::vector<std::byte> scratch;
  EXPECT_EQ(batch_records(*header, batch, scratch, 4096).code(), errc::batch_too_large);
  EXPECT_EQ(validate_records(*header, batch, scratch, 4096).code(), errc::batch_too_large);
  EXPECT_TRUE(validate_records(*header, batch, scratch, 1 << 20).ok());
}

TEST_P(CompressedBatch, CorruptCompressedRecordsAreRejected) {
  sample_records sample;
  batch_builder builder(GetParam());
  sample.add_to(builder);
  auto built = builder.finish();
  // Keep the header and half of the compressed section, then fix lengths and CRC so
  // only the compressed payload is wrong.
  bytes batch(built.begin(), built.begin() + 61 + (built.size() - 61) / 2);
  write_big_endian(std::span(batch), 8, static_cast<std::int32_t>(batch.size() - 12));
  reseal(batch);
  auto header = validate_batch(batch, batch_limits{}, sample_now);
  ASSERT_TRUE(header.ok());
  std::vector<std::byte> scratch;
  EXPECT_EQ(validate_records(*header, batch, scratch, 1 << 20).code(), errc::corrupt_batch);
}

INSTANTIATE_TEST_SUITE_P(Codecs, CompressedBatch,
                         ::testing::Values(compression_codec::gzip, compression_codec::snappy,
                                           compression_codec::lz4, compression_codec::zstd),
                         [](const auto& info) {
                           return std::string(compression_codec_name(info.param));
                         });

}  // namespace
}  // namespace sluice
