// Tests of the Kafka protocol codec: primitives, generated messages at every version,
// byte-exact encodings built by hand from the rules of protocol.html, malformed input.
#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <initializer_list>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "net/protocol/api_keys.h"
#include "net/protocol/error_codes.h"
#include "net/protocol/generated/messages.h"
#include "net/protocol/reader.h"
#include "net/protocol/writer.h"

namespace sluice::protocol {
namespace {

std::vector<std::byte> bytes_of(std::initializer_list<int> values) {
  std::vector<std::byte> out;
  for (int value : values) out.push_back(static_cast<std::byte>(value));
  return out;
}

void append(std::vector<std::byte>& out, std::initializer_list<int> values) {
  for (int value : values) out.push_back(static_cast<std::byte>(value));
}

void append_text(std::vector<std::byte>& out, std::string_view text) {
  for (char c : text) out.push_back(static_cast<std::byte>(c));
}

// ---------------------------------------------------------------------------------------
// Primitives

TEST(ProtocolReader, FixedWidthIntegersAreBigEndian) {
  auto bytes =
      bytes_of({0x01, 0x02, 0xff, 0xfe, 0x00, 0x00, 0x00, 0x2a, 0x80, 0, 0, 0, 0, 0, 0, 0x01});
  reader in(bytes);
  EXPECT_EQ(in.read_int16(), 0x0102);
  EXPECT_EQ(in.read_int16(), -2);
  EXPECT_EQ(in.read_int32(), 42);
  EXPECT_EQ(in.read_int64(), std::numeric_limits<std::int64_t>::min() + 1);
  EXPECT_TRUE(in.ok());
  EXPECT_EQ(in.remaining(), 0u);
  EXPECT_EQ(in.read_int8(), 0);
  EXPECT_FALSE(in.ok());
}

TEST(ProtocolReader, VarintsFollowTheZigzagRule) {
  // Zigzag: 0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3, 150 -> 300 = 0xac 0x02 (protobuf's rules,
  // which Kafka's record format uses).
  auto bytes = bytes_of({0x00, 0x01, 0x02, 0x03, 0xac, 0x02, 0xff, 0xff, 0xff, 0xff, 0x0f});
  reader in(bytes);
  EXPECT_EQ(in.read_varint(), 0);
  EXPECT_EQ(in.read_varint(), -1);
  EXPECT_EQ(in.read_varint(), 1);
  EXPECT_EQ(in.read_varint(), -2);
  EXPECT_EQ(in.read_varint(), 150);
  EXPECT_EQ(in.read_varint(), std::numeric_limits<std::int32_t>::min());
  EXPECT_TRUE(in.ok());

  for (std::int64_t value :
       {std::int64_t{0}, std::int64_t{-1}, std::int64_t{300},
        std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()}) {
    writer out;
    out.write_varlong(value);
    reader back(out.bytes());
    EXPECT_EQ(back.read_varlong(), value);
    EXPECT_TRUE(back.ok());
    EXPECT_EQ(back.remaining(), 0u);
  }
}

TEST(ProtocolReader, VarintLongerThanFiveBytesFails) {
  auto six = bytes_of({0x80, 0x80, 0x80, 0x80, 0x80, 0x00});
  reader in(six);
  (void)in.read_uvarint();
  EXPECT_FALSE(in.ok());

  auto too_big = bytes_of({0xff, 0xff, 0xff, 0xff, 0x1f});  // 35 bits
  reader big(too_big);
  (void)big.read_uvarint();
  EXPECT_FALSE(big.ok());

  auto eleven = bytes_of({0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00});
  reader longer(eleven);
  (void)longer.read_uvarlong();
  EXPECT_FALSE(longer.ok());

  auto ten = bytes_of({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01});
  reader max(ten);
  EXPECT_EQ(max.read_uvarlong(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_TRUE(max.ok());
}

TEST(ProtocolReader, NegativeLengthsOtherThanNullFail) {
  auto minus_two = bytes_of({0xff, 0xfe, 'a', 'b'});
  reader strings(minus_two);
  EXPECT_FALSE(strings.read_nullable_string(false).has_value());
  EXPECT_FALSE(strings.ok());

  auto null_string = bytes_of({0xff, 0xff});
  reader nulls(null_string);
  EXPECT_FALSE(nulls.read_nullable_string(false).has_value());
  EXPECT_TRUE(nulls.ok());
  reader not_nullable(null_string);
  (void)not_nullable.read_string(false);
  EXPECT_FALSE(not_nullable.ok());

  auto bytes_minus_two = bytes_of({0xff, 0xff, 0xff, 0xfe});
  reader bytes_in(bytes_minus_two);
  (void)bytes_in.read_nullable_bytes(false);
  EXPECT_FALSE(bytes_in.ok());
}

TEST(ProtocolReader, StringLongerThanTheBytesLeftFails) {
  auto classic = bytes_of({0x00, 0x05, 'a', 'b', 'c'});
  reader in(classic);
  (void)in.read_string(false);
  EXPECT_FALSE(in.ok());

  auto compact = bytes_of({0x06, 'a', 'b', 'c'});  // length 5
  reader compact_in(compact);
  (void)compact_in.read_string(true);
  EXPECT_FALSE(compact_in.ok());

  auto fits = bytes_of({0x04, 'a', 'b', 'c'});
  reader fits_in(fits);
  EXPECT_EQ(fits_in.read_string(true), "abc");
  EXPECT_TRUE(fits_in.ok());
}

TEST(ProtocolReader, ErrorsAreStickyAndKeepTheFirstDetail) {
  auto bytes = bytes_of({0x00});
  reader in(bytes);
  (void)in.read_int32();
  ASSERT_FALSE(in.ok());
  const char* first = in.error_detail();
  in.fail("second");
  EXPECT_STREQ(in.error_detail(), first);
  EXPECT_EQ(in.read_int8(), 0);
}

TEST(ProtocolReader, ArrayCountIsBoundedByTheBytesLeft) {
  // Three int32 elements announced, two present.
  auto bytes = bytes_of({0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2});
  reader in(bytes);
  EXPECT_EQ(in.read_array_length(false, 4, false), 0);
  EXPECT_FALSE(in.ok());

  auto two = bytes_of({0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2});
  reader ok_in(two);
  EXPECT_EQ(ok_in.read_array_length(false, 4, false), 2);
  EXPECT_TRUE(ok_in.ok());

  auto null_array = bytes_of({0xff, 0xff, 0xff, 0xff});
  reader nullable(null_array);
  EXPECT_EQ(nullable.read_array_length(false, 4, true), -1);
  EXPECT_TRUE(nullable.ok());
  reader not_nullable(null_array);
  (void)not_nullable.read_array_length(false, 4, false);
  EXPECT_FALSE(not_nullable.ok());
}

TEST(ProtocolWriter, SizePrefixIsPatchedAfterTheBody) {
  writer out;
  const std::size_t mark = out.begin_size_prefix();
  out.write_int32(7);
  out.write_string("ab", false);
  out.end_size_prefix(mark);
  EXPECT_EQ(std::vector<std::byte>(out.bytes().begin(), out.bytes().end()),
            bytes_of({0, 0, 0, 8, 0, 0, 0, 7, 0, 2, 'a', 'b'}));
}

TEST(ProtocolWriter, UvarintSizeGoesInFrontOfTheRegion) {
  writer out;
  out.write_int8(9);
  const std::size_t mark = out.begin_uvarint_size();
  std::vector<std::byte> payload(200, std::byte{0x5a});
  out.write_raw(payload);
  out.end_uvarint_size(mark);
  ASSERT_EQ(out.size(), 1u + 2u + 200u);
  // 200 = 0b1'1001000: low seven bits with the continuation bit, then 1.
  EXPECT_EQ(out.bytes()[1], std::byte{0xc8});
  EXPECT_EQ(out.bytes()[2], std::byte{0x01});
  EXPECT_EQ(out.bytes()[3], std::byte{0x5a});
}

TEST(ProtocolWriter, OversizedStringFails) {
  writer out;
  std::string long_string(40000, 'x');
  out.write_string(long_string, false);
  EXPECT_FALSE(out.ok());
}

// ---------------------------------------------------------------------------------------
// Generic population of every field, through the generated visit_fields()

template <typename T>
concept generated_struct = requires(T& value) {
  T::visit_fields(value, [](const field_info&, auto&) {});
};

// Deterministic, field-specific values: the same field gets the same value whatever the
// version, so a message filled at one version can be compared with one filled at another.
std::uint32_t name_hash(std::string_view name) {
  std::uint32_t hash = 2166136261u;
  for (char c : name) hash = (hash ^ static_cast<std::uint8_t>(c)) * 16777619u;
  return hash;
}

// Keeps strings and byte blobs alive for views in filled messages.
std::deque<std::string>& storage() {
  static std::deque<std::string> strings;
  return strings;
}

template <typename T>
void fill(T& value, std::uint32_t seed, std::int16_t version);

// Fills fields of all versions, including those that the newest version no longer has.
constexpr std::int16_t every_version = -1;

template <generated_struct T>
void fill_struct(T& value, std::uint32_t seed, std::int16_t version) {
  T::visit_fields(value, [&](const field_info& info, auto& member) {
    if (version != every_version && !info.present_in(version)) return;
    fill(member, name_hash(info.name) ^ seed, version);
  });
}

template <generated_struct T>
bool has_fields_in(std::int16_t version) {
  bool any = false;
  T value;
  T::visit_fields(value, [&](const field_info& info, auto&) { any |= info.present_in(version); });
  return any;
}

template <typename T>
void fill(T& value, std::uint32_t seed, std::int16_t version) {
  if constexpr (generated_struct<T>) {
    fill_struct(value, seed, version);
  } else if constexpr (std::is_same_v<T, bool>) {
    value = !value;
  } else if constexpr (std::is_integral_v<T>) {
    // Flipping low bits always changes the value, whatever the default was.
    value = static_cast<T>(value ^ static_cast<T>(1 + seed % 100));
  } else if constexpr (std::is_same_v<T, double>) {
    value = 1.5 + seed % 7;
  } else if constexpr (std::is_same_v<T, uuid>) {
    for (std::size_t i = 0; i < value.bytes.size(); ++i) {
      value.bytes[i] =
          static_cast<std::uint8_t>(seed >> (i % 4 * 8)) ^ static_cast<std::uint8_t>(i);
    }
  } else if constexpr (std::is_same_v<T, std::string_view>) {
    value = storage().emplace_back("v" + std::to_string(seed % 100000));
  } else if constexpr (std::is_same_v<T, bytes_view>) {
    const std::string& text = storage().emplace_back("blob-" + std::to_string(seed % 1000));
    value = std::as_bytes(std::span(text.data(), text.size()));
  } else if constexpr (requires {
                         value.has_value();
                         value.emplace();
                       }) {
    auto& inner = value.emplace();
    fill(inner, seed, version);
  } else if constexpr (requires { value.push_back(typename T::value_type{}); }) {
    value.clear();
    for (std::uint32_t i = 0; i < 2; ++i) {
      typename T::value_type element{};
      fill(element, seed + i * 7919, version);
      value.push_back(element);
    }
  } else {
    static_assert(sizeof(T) == 0, "a field type the test does not know how to fill");
  }
}

template <typename Message>
Message filled(std::int16_t version) {
  Message message;
  fill_struct(message, 0, version);
  return message;
}

template <typename Message>
std::vector<std::byte> encode(const Message& message, std::int16_t version) {
  writer out;
  message.encode(out, version);
  EXPECT_TRUE(out.ok()) << Message::name << " v" << version << ": " << out.error_detail();
  return out.take();
}

template <typename Message>
void expect_round_trip(std::int16_t version) {
  SCOPED_TRACE(std::string(Message::name) + " v" + std::to_string(version));
  const Message original = filled<Message>(version);
  const auto bytes = encode(original, version);
  reader in(bytes);
  Message decoded;
  decoded.decode(in, version);
  ASSERT_TRUE(in.ok()) << in.error_detail();
  EXPECT_EQ(in.remaining(), 0u);
  EXPECT_TRUE(decoded == original);
  // Every populated field differs from its default, so a message that decodes equal to
  // a default one would mean fields were dropped.
  if (has_fields_in<Message>(version)) {
    EXPECT_FALSE(decoded == Message{});
  }
  EXPECT_EQ(encode(decoded, version), bytes);
}

template <typename Message>
void for_each_version(auto&& body) {
  for (std::int16_t version = Message::min_version; version <= Message::max_version; ++version) {
    body(version);
  }
}

template <typename Visit>
void for_each_message(Visit&& visit) {
  for (std::int16_t key : generated_api_keys) {
    visit_request_type(key, visit);
    visit_response_type(key, visit);
  }
  visit(std::type_identity<RequestHeader>{});
  visit(std::type_identity<ResponseHeader>{});
  visit_data_types(visit);
}

TEST(ProtocolMessages, EveryMessageRoundTripsAtEveryVersion) {
  int checked = 0;
  for_each_message([&]<typename Message>(std::type_identity<Message>) {
    for_each_version<Message>([&](std::int16_t version) {
      expect_round_trip<Message>(version);
      ++checked;
    });
  });
  // 23 APIs over their full version ranges, requests and responses, the 5 header
  // versions and the data messages (consumer protocol, __consumer_offsets records): a
  // change to the count means a message or version went missing.
  constexpr int first_apis = 5 + 13 + 12 + 18 + 11 + 6 + 8 + 7 + 4 + 5 + 2 + 2;
  // OffsetCommit, OffsetFetch, FindCoordinator, JoinGroup, Heartbeat, LeaveGroup,
  // SyncGroup, DescribeGroups, ListGroups, DeleteGroups, OffsetDelete.
  constexpr int group_apis = 10 + 10 + 7 + 10 + 5 + 6 + 6 + 6 + 6 + 3 + 1;
  // ConsumerProtocolSubscription, ConsumerProtocolAssignment, OffsetCommitKey,
  // OffsetCommitValue, GroupMetadataKey, GroupMetadataValue.
  constexpr int data_messages = 4 + 4 + 2 + 5 + 1 + 5;
  EXPECT_EQ(checked, 2 * (first_apis + group_apis) + 3 + 2 + data_messages);
}

TEST(ProtocolMessages, FieldsAbsentFromAVersionAreNotWritten) {
  for_each_message([&]<typename Message>(std::type_identity<Message>) {
    const Message everything = filled<Message>(every_version);
    for_each_version<Message>([&](std::int16_t version) {
      SCOPED_TRACE(std::string(Message::name) + " v" + std::to_string(version));
      // A message with every field of every version filled, written at one version,
      // reads back as the message filled for that version only.
      const auto bytes = encode(everything, version);
      reader in(bytes);
      Message decoded;
      decoded.decode(in, version);
      ASSERT_TRUE(in.ok()) << in.error_detail();
      EXPECT_TRUE(decoded == filled<Message>(version));
    });
  });
}

TEST(ProtocolMessages, EveryTruncationFailsCleanly) {
  for_each_message([&]<typename Message>(std::type_identity<Message>) {
    for_each_version<Message>([&](std::int16_t version) {
      SCOPED_TRACE(std::string(Message::name) + " v" + std::to_string(version));
      const auto bytes = encode(filled<Message>(version), version);
      for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
        // A copy of exactly `cut` bytes, so that AddressSanitizer sees any overread.
        std::vector<std::byte> prefix(bytes.begin(), bytes.begin() + cut);
        reader in(prefix);
        Message decoded;
        decoded.decode(in, version);
        ASSERT_FALSE(in.ok()) << "decoding stopped at " << cut << " of " << bytes.size();
      }
    });
  });
}

TEST(ProtocolMessages, UnsupportedVersionFailsToDecodeAndEncode) {
  auto bytes = bytes_of({0, 0, 0, 0});
  reader in(bytes);
  MetadataRequest request;
  request.decode(in, 13);
  EXPECT_FALSE(in.ok());
  writer out;
  request.encode(out, -1);
  EXPECT_FALSE(out.ok());
}

TEST(ProtocolMessages, NullInAVersionWhereTheFieldIsNotNullableFailsToEncode) {
  MetadataRequest request;
  request.topics.reset();  // Null means "all topics" from v1; v0 has no such value.
  writer v0;
  request.encode(v0, 0);
  EXPECT_FALSE(v0.ok());
  writer v1;
  request.encode(v1, 1);
  EXPECT_TRUE(v1.ok());
  // Null array, then AllowAutoTopicCreation is absent in v1.
  EXPECT_EQ(std::vector<std::byte>(v1.bytes().begin(), v1.bytes().end()),
            bytes_of({0xff, 0xff, 0xff, 0xff}));

  MetadataRequest::MetadataRequestTopic topic;
  topic.name.reset();
  request.topics.emplace().push_back(topic);
  writer v9;
  request.encode(v9, 9);  // Topic names become nullable only in v10.
  EXPECT_FALSE(v9.ok());
  writer v10;
  request.encode(v10, 10);
  EXPECT_TRUE(v10.ok());
}

// ---------------------------------------------------------------------------------------
// Byte-exact encodings, each written out by hand from protocol.html's rules.

// The request header v2 that librdkafka sends: classic (int16) client id even though the
// header is flexible, then an empty tagged-field section.
void append_request_header_v2(std::vector<std::byte>& out, int api, int version, int correlation_id,
                              std::string_view client_id) {
  append(out, {0, api, 0, version});
  append(out, {(correlation_id >> 24) & 0xff, (correlation_id >> 16) & 0xff,
               (correlation_id >> 8) & 0xff, correlation_id & 0xff});
  append(out, {0, static_cast<int>(client_id.size())});
  append_text(out, client_id);
  append(out, {0x00});  // No tagged fields.
}

TEST(ProtocolBytes, ApiVersionsV3RequestAsLibrdkafkaSendsIt) {
  std::vector<std::byte> expected;
  append_request_header_v2(expected, 18, 3, 1, "rdkafka");
  append(expected, {0x0b});  // Compact string: length 10 + 1.
  append_text(expected, "librdkafka");
  append(expected, {0x06});
  append_text(expected, "2.3.0");
  append(expected, {0x00});  // No tagged fields.

  RequestHeader header;
  header.request_api_key = 18;
  header.request_api_version = 3;
  header.correlation_id = 1;
  header.client_id = "rdkafka";
  ApiVersionsRequest request;
  request.client_software_name = "librdkafka";
  request.client_software_version = "2.3.0";
  writer out;
  header.encode(out, *request_header_version(18, 3));
  request.encode(out, 3);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(std::vector<std::byte>(out.bytes().begin(), out.bytes().end()), expected);

  reader in(expected);
  RequestHeader decoded_header;
  decoded_header.decode(in, 2);
  ApiVersionsRequest decoded;
  decoded.decode(in, 3);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in.remaining(), 0u);
  EXPECT_EQ(decoded_header.client_id, "rdkafka");
  EXPECT_EQ(decoded.client_software_version, "2.3.0");
}

TEST(ProtocolBytes, MetadataV12Request) {
  uuid topic_id;
  for (std::size_t i = 0; i < 16; ++i) topic_id.bytes[i] = static_cast<std::uint8_t>(0xa0 + i);
  std::vector<std::byte> expected;
  append_request_header_v2(expected, 3, 12, 0x01020304, "c");
  append(expected, {0x02});  // Compact array of one topic.
  for (std::uint8_t b : topic_id.bytes) append(expected, {b});
  append(expected, {0x06});
  append_text(expected, "topic");
  append(expected, {0x00});  // The topic's tagged fields.
  append(expected, {0x01});  // AllowAutoTopicCreation.
  append(expected, {0x00});  // IncludeTopicAuthorizedOperations (8+).
  append(expected, {0x00});  // The request's tagged fields.

  RequestHeader header;
  header.request_api_key = 3;
  header.request_api_version = 12;
  header.correlation_id = 0x01020304;
  header.client_id = "c";
  MetadataRequest request;
  request.topics.emplace().push_back({topic_id, "topic"});
  request.include_cluster_authorized_operations = true;  // Absent from v11: not written.
  writer out;
  header.encode(out, 2);
  request.encode(out, 12);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(std::vector<std::byte>(out.bytes().begin(), out.bytes().end()), expected);
}

TEST(ProtocolBytes, ProduceV9RequestWithARecordsBlob) {
  const auto records = bytes_of({0xde, 0xad, 0xbe, 0xef, 0x01});
  std::vector<std::byte> expected;
  append_request_header_v2(expected, 0, 9, 7, "p");
  append(expected, {0x00});                    // TransactionalId: compact null.
  append(expected, {0xff, 0xff});              // Acks -1.
  append(expected, {0x00, 0x00, 0x75, 0x30});  // TimeoutMs 30000.
  append(expected, {0x02});                    // One topic.
  append(expected, {0x04});
  append_text(expected, "abc");
  append(expected, {0x02});        // One partition.
  append(expected, {0, 0, 0, 5});  // Index 5.
  append(expected, {0x06});        // Compact bytes: 5 + 1.
  expected.insert(expected.end(), records.begin(), records.end());
  append(expected, {0x00, 0x00, 0x00});  // Tagged fields: partition, topic, request.

  RequestHeader header;
  header.request_api_key = 0;
  header.request_api_version = 9;
  header.correlation_id = 7;
  header.client_id = "p";
  ProduceRequest request;
  request.acks = -1;
  request.timeout_ms = 30000;
  auto& topic = request.topic_data.emplace_back();
  topic.name = "abc";
  auto& partition = topic.partition_data.emplace_back();
  partition.index = 5;
  partition.records = bytes_view(records);
  writer out;
  header.encode(out, 2);
  request.encode(out, 9);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(std::vector<std::byte>(out.bytes().begin(), out.bytes().end()), expected);

  reader in(expected);
  RequestHeader decoded_header;
  decoded_header.decode(in, 2);
  ProduceRequest decoded;
  decoded.decode(in, 9);
  ASSERT_TRUE(in.ok());
  ASSERT_EQ(decoded.topic_data.size(), 1u);
  ASSERT_TRUE(decoded.topic_data[0].partition_data[0].records.has_value());
  // Zero copy: the records view points into the request buffer.
  EXPECT_EQ(decoded.topic_data[0].partition_data[0].records->data(),
            expected.data() + (expected.size() - 3 - records.size()));
}

TEST(ProtocolBytes, ProduceV3RequestUsesClassicEncoding) {
  std::vector<std::byte> expected;
  append(expected, {0xff, 0xff});              // TransactionalId: classic null.
  append(expected, {0x00, 0x01});              // Acks 1.
  append(expected, {0x00, 0x00, 0x03, 0xe8});  // TimeoutMs 1000.
  append(expected, {0, 0, 0, 1});              // One topic.
  append(expected, {0, 1, 't'});
  append(expected, {0, 0, 0, 1});              // One partition.
  append(expected, {0, 0, 0, 0});              // Index 0.
  append(expected, {0xff, 0xff, 0xff, 0xff});  // Records: null.

  ProduceRequest request;
  request.acks = 1;
  request.timeout_ms = 1000;
  auto& topic = request.topic_data.emplace_back();
  topic.name = "t";
  topic.partition_data.emplace_back();
  EXPECT_EQ(encode(request, 3), expected);
}

TEST(ProtocolBytes, ApiVersionsV3ResponseWithTaggedFields) {
  ApiVersionsResponse response;
  response.api_keys.push_back({18, 0, 4});
  response.throttle_time_ms = 0;
  response.finalized_features_epoch = 5;  // Tag 1: not the default (-1), so written.
  response.zk_migration_ready = false;    // Tag 3: the default, so not written.

  std::vector<std::byte> expected;
  append(expected, {0x00, 0x00});               // ErrorCode.
  append(expected, {0x02});                     // One API key.
  append(expected, {0, 18, 0, 0, 0, 4, 0x00});  // Key, min, max, tagged fields.
  append(expected, {0, 0, 0, 0});               // ThrottleTimeMs.
  append(expected, {0x01});                     // One tagged field:
  append(expected, {0x01, 0x08});               //   tag 1, 8 bytes,
  append(expected, {0, 0, 0, 0, 0, 0, 0, 5});   //   FinalizedFeaturesEpoch 5.
  EXPECT_EQ(encode(response, 3), expected);

  reader in(expected);
  ApiVersionsResponse decoded;
  decoded.decode(in, 3);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(decoded.finalized_features_epoch, 5);
  EXPECT_TRUE(decoded == response);
}

TEST(ProtocolBytes, CompactOrClassicFollowsTheVersion) {
  MetadataRequest request;
  request.topics.emplace().push_back({uuid{}, "ab"});
  // v8: classic array (int32 count) and string (int16 length), no tagged fields.
  // Then AllowAutoTopicCreation (true) and the two Include...AuthorizedOperations flags.
  std::vector<std::byte> v8 = bytes_of({0, 0, 0, 1, 0, 2, 'a', 'b', 1, 0, 0});
  EXPECT_EQ(encode(request, 8), v8);
  // v9: compact array and string, tagged fields after the topic and the request.
  std::vector<std::byte> v9 = bytes_of({2, 3, 'a', 'b', 0, 1, 0, 0, 0});
  EXPECT_EQ(encode(request, 9), v9);
}

// The request header v1 of a classic request: int16 key and version, int32 correlation
// id, int16-length client id, no tagged fields.
void append_request_header_v1(std::vector<std::byte>& out, int api, int version, int correlation_id,
                              std::string_view client_id) {
  append(out, {0, api, 0, version});
  append(out, {(correlation_id >> 24) & 0xff, (correlation_id >> 16) & 0xff,
               (correlation_id >> 8) & 0xff, correlation_id & 0xff});
  append(out, {0, static_cast<int>(client_id.size())});
  append_text(out, client_id);
}

// FindCoordinator v0 (API key 10), as a consumer sends it before joining its group:
// header v1, then only Key as a classic string (KeyType arrives in v1, CoordinatorKeys in
// v4, so neither is written whatever its value).
TEST(ProtocolBytes, FindCoordinatorV0Request) {
  std::vector<std::byte> expected;
  append_request_header_v1(expected, 10, 0, 9, "cli");
  append(expected, {0x00, 0x06});   // Key: int16 length 6,
  append_text(expected, "group1");  // then its bytes.

  RequestHeader header;
  header.request_api_key = 10;
  header.request_api_version = 0;
  header.correlation_id = 9;
  header.client_id = "cli";
  FindCoordinatorRequest request;
  request.key = "group1";
  request.key_type = 1;                     // Absent from v0: not written.
  request.coordinator_keys.push_back("x");  // Absent from v0: not written.
  writer out;
  ASSERT_EQ(request_header_version(10, 0), 1);
  header.encode(out, 1);
  request.encode(out, 0);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(std::vector<std::byte>(out.bytes().begin(), out.bytes().end()), expected);

  reader in(expected);
  RequestHeader decoded_header;
  decoded_header.decode(in, 1);
  FindCoordinatorRequest decoded;
  decoded.decode(in, 0);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in.remaining(), 0u);
  EXPECT_EQ(decoded_header.request_api_key, 10);
  EXPECT_EQ(decoded_header.correlation_id, 9);
  EXPECT_EQ(decoded.key, "group1");
  EXPECT_EQ(decoded.key_type, 0);  // The default of a field v0 lacks.
  EXPECT_TRUE(decoded.coordinator_keys.empty());
}

// JoinGroup v5 response (classic: flexible from v6) to the leader, with two members.
// Fields present at v5, in schema order: ThrottleTimeMs (2+), ErrorCode, GenerationId,
// ProtocolName (a plain string: nullable only from v7), Leader, MemberId, Members; each
// member: MemberId, GroupInstanceId (5+, nullable), Metadata (int32-length bytes).
// ProtocolType (7+) and SkipAssignment (9+) are absent.
TEST(ProtocolBytes, JoinGroupV5ResponseWithTwoMembers) {
  const auto metadata = bytes_of({0x01, 0x02});
  std::vector<std::byte> expected;
  append(expected, {0, 0, 0, 0});              // ThrottleTimeMs 0.
  append(expected, {0, 0});                    // ErrorCode 0.
  append(expected, {0, 0, 0, 3});              // GenerationId 3.
  append(expected, {0, 5});                    // ProtocolName: int16 length 5,
  append_text(expected, "range");              //   "range".
  append(expected, {0, 2, 'm', '1'});          // Leader "m1".
  append(expected, {0, 2, 'm', '1'});          // MemberId "m1" (the leader itself).
  append(expected, {0, 0, 0, 2});              // Members: int32 count 2.
  append(expected, {0, 2, 'm', '1'});          //   MemberId "m1",
  append(expected, {0xff, 0xff});              //   GroupInstanceId null (int16 -1),
  append(expected, {0, 0, 0, 2, 0x01, 0x02});  //   Metadata: int32 length 2, 01 02.
  append(expected, {0, 2, 'm', '2'});          //   MemberId "m2",
  append(expected, {0, 2, 'i', '2'});          //   GroupInstanceId "i2",
  append(expected, {0, 0, 0, 0});              //   Metadata: empty.

  JoinGroupResponse response;
  response.generation_id = 3;
  response.protocol_type = "consumer";  // Absent from v5: not written.
  response.protocol_name = "range";
  response.leader = "m1";
  response.skip_assignment = true;  // Absent from v5: not written.
  response.member_id = "m1";
  auto& first = response.members.emplace_back();
  first.member_id = "m1";
  first.metadata = bytes_view(metadata);
  auto& second = response.members.emplace_back();
  second.member_id = "m2";
  second.group_instance_id = "i2";
  EXPECT_EQ(encode(response, 5), expected);

  reader in(expected);
  JoinGroupResponse decoded;
  decoded.decode(in, 5);
  ASSERT_TRUE(in.ok()) << in.error_detail();
  EXPECT_EQ(in.remaining(), 0u);
  ASSERT_EQ(decoded.members.size(), 2u);
  EXPECT_FALSE(decoded.members[0].group_instance_id.has_value());
  EXPECT_EQ(decoded.members[1].group_instance_id, "i2");
  ASSERT_EQ(decoded.members[0].metadata.size(), 2u);
  EXPECT_EQ(decoded.members[0].metadata[1], std::byte{0x02});
  EXPECT_EQ(decoded.protocol_name, "range");
  EXPECT_FALSE(decoded.protocol_type.has_value());  // v5 lacks it: its default, null.
  EXPECT_FALSE(decoded.skip_assignment);
}

// OffsetCommitValue v3, the value of an offset-commit record in __consumer_offsets.
// v3 is classic (flexible from v4) and has, in order: offset int64, leaderEpoch int32
// (3+), metadata string (int16 length), commitTimestamp int64; expireTimestamp exists in
// v1 only. The int16 version in front is the record's, written by the caller, not by the
// struct. 1700000000000 = 0x0000018bcfe56800 (395 * 2^32 + 0xcfe56800).
TEST(ProtocolBytes, OffsetCommitValueV3) {
  std::vector<std::byte> expected;
  append(expected, {0, 3});                     // Record value version 3 (caller's).
  append(expected, {0, 0, 0, 0, 0, 0, 0, 42});  // offset 42.
  append(expected, {0, 0, 0, 5});               // leaderEpoch 5.
  append(expected, {0, 1, 'm'});                // metadata "m".
  append(expected, {0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00});  // commitTimestamp.

  OffsetCommitValue value;
  value.offset = 42;
  value.leader_epoch = 5;
  value.metadata = "m";
  value.commit_timestamp = 1700000000000;
  value.expire_timestamp = 1800000000000;  // v1 only: not written at v3.
  writer out;
  out.write_int16(3);
  value.encode(out, 3);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(std::vector<std::byte>(out.bytes().begin(), out.bytes().end()), expected);

  reader in(expected);
  const std::int16_t version = in.read_int16();
  OffsetCommitValue decoded;
  decoded.decode(in, version);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in.remaining(), 0u);
  EXPECT_EQ(decoded.offset, 42);
  EXPECT_EQ(decoded.leader_epoch, 5);
  EXPECT_EQ(decoded.metadata, "m");
  EXPECT_EQ(decoded.commit_timestamp, 1700000000000);
  EXPECT_EQ(decoded.expire_timestamp, -1);  // v3 lacks it: its default.

  // v4 is flexible: the same fields with a compact string (length 1 + 1), then an empty
  // tagged-field section.
  std::vector<std::byte> v4;
  append(v4, {0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 5, 0x02, 'm'});
  append(v4, {0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, 0x00});
  EXPECT_EQ(encode(value, 4), v4);
}

// ConsumerProtocolSubscription v0, what a consumer puts in JoinGroup's protocol metadata
// after the int16 version: Topics (int32 count, int16-length strings), then UserData
// (int32-length bytes, -1 for null). Never flexible, whatever the version.
TEST(ProtocolBytes, ConsumerProtocolSubscriptionV0AndV3) {
  ConsumerProtocolSubscription subscription;
  subscription.topics = {"t", "uv"};
  subscription.generation_id = 7;  // v2+.
  subscription.rack_id = "r";      // v3+.
  const auto v0 = bytes_of({0, 0, 0, 2, 0, 1, 't', 0, 2, 'u', 'v', 0xff, 0xff, 0xff, 0xff});
  EXPECT_EQ(encode(subscription, 0), v0);
  // v3 adds OwnedPartitions (here an empty array), GenerationId and RackId, classic.
  std::vector<std::byte> v3 = v0;
  append(v3, {0, 0, 0, 0});  // OwnedPartitions: int32 count 0.
  append(v3, {0, 0, 0, 7});  // GenerationId 7.
  append(v3, {0, 1, 'r'});   // RackId "r".
  EXPECT_EQ(encode(subscription, 3), v3);

  reader in(v3);
  ConsumerProtocolSubscription decoded;
  decoded.decode(in, 3);
  ASSERT_TRUE(in.ok());
  EXPECT_TRUE(decoded == subscription);
}

// ---------------------------------------------------------------------------------------
// Malformed input

TEST(ProtocolMalformed, UnknownTaggedFieldsAreSkipped) {
  std::vector<std::byte> body;
  append(body, {0x02, 'n', 0x02, 'v'});  // ClientSoftwareName "n", version "v".
  append(body, {0x02});                  // Two tagged fields:
  append(body, {0x07, 0x03, 1, 2, 3});   //   tag 7, three bytes,
  append(body, {0x7f, 0x00});            //   tag 127, empty.
  reader in(body);
  ApiVersionsRequest request;
  request.decode(in, 3);
  ASSERT_TRUE(in.ok()) << in.error_detail();
  EXPECT_EQ(in.remaining(), 0u);
  EXPECT_EQ(request.client_software_name, "n");
  EXPECT_EQ(request.client_software_version, "v");

  // A known tag among unknown ones is still read.
  std::vector<std::byte> response;
  append(response, {0, 0, 0x01, 0, 0, 0, 0});  // ErrorCode, no keys, ThrottleTimeMs.
  append(response, {0x02});
  append(response, {0x09, 0x01, 0xaa});  // Unknown tag 9.
  append(response, {0x03, 0x01, 0x01});  // ZkMigrationReady true.
  reader response_in(response);
  ApiVersionsResponse decoded;
  decoded.decode(response_in, 3);
  ASSERT_TRUE(response_in.ok()) << response_in.error_detail();
  EXPECT_TRUE(decoded.zk_migration_ready);
}

TEST(ProtocolMalformed, TaggedFieldSizeLargerThanTheBytesLeftFails) {
  auto body = bytes_of({0x02, 'n', 0x02, 'v', 0x01, 0x07, 0x09, 1, 2});
  reader in(body);
  ApiVersionsRequest request;
  request.decode(in, 3);
  EXPECT_FALSE(in.ok());
}

TEST(ProtocolMalformed, KnownTaggedFieldShorterThanItsValueFails) {
  // Tag 1 (FinalizedFeaturesEpoch, an int64) announced with 2 bytes.
  auto body = bytes_of({0, 0, 0x01, 0, 0, 0, 0, 0x01, 0x01, 0x02, 0, 5});
  reader in(body);
  ApiVersionsResponse response;
  response.decode(in, 3);
  EXPECT_FALSE(in.ok());
}

TEST(ProtocolMalformed, LyingArrayCountFailsWithoutAHugeAllocation) {
  // Metadata v1: a topic array claiming 2^31 - 1 topics, followed by a few bytes.
  auto classic = bytes_of({0x7f, 0xff, 0xff, 0xff, 0, 1, 'a', 0, 1, 'b'});
  MetadataRequest v1;
  reader in_v1(classic);
  v1.decode(in_v1, 1);
  EXPECT_FALSE(in_v1.ok());
  ASSERT_TRUE(v1.topics.has_value());
  EXPECT_EQ(v1.topics->capacity(), 0u);

  // Metadata v9: the same as a compact array, uvarint 2^32 - 1 (count 2^32 - 2).
  auto compact = bytes_of({0xff, 0xff, 0xff, 0xff, 0x0f, 2, 'a', 0, 2, 'b', 0});
  MetadataRequest v9;
  reader in_v9(compact);
  v9.decode(in_v9, 9);
  EXPECT_FALSE(in_v9.ok());
  EXPECT_EQ(v9.topics->capacity(), 0u);

  // Deep inside a message: the replica list of a partition of a topic, Metadata v0.
  std::vector<std::byte> lying = bytes_of({0, 0, 0, 0});  // No brokers.
  append(lying, {0, 0, 0, 1});                            // One topic:
  append(lying, {0, 0, 0, 1, 't'});                       //   error 0, name "t",
  append(lying, {0, 0, 0, 1});                            //   one partition:
  append(lying, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0});          //   error, index, leader,
  append(lying, {0x00, 0x10, 0x00, 0x00});                //   1M replica ids announced,
  append(lying, {0, 0, 0, 1});                            //   one present.
  MetadataResponse response;
  reader lying_in(lying);
  response.decode(lying_in, 0);
  EXPECT_FALSE(lying_in.ok());
  ASSERT_EQ(response.topics.size(), 1u);
  ASSERT_EQ(response.topics[0].partitions.size(), 1u);
  EXPECT_EQ(response.topics[0].partitions[0].replica_nodes.capacity(), 0u);

  // A count the bytes could hold, for elements that then fail to decode: at most
  // reserve_hint() elements are reserved, not the count.
  std::vector<std::byte> many = bytes_of({0x00, 0x00, 0x27, 0x10});  // 10000 topic names,
  many.resize(many.size() + 2 * 10000 - 1, std::byte{0});            // one byte short.
  DeleteTopicsRequest delete_request;
  reader many_in(many);
  delete_request.decode(many_in, 0);
  EXPECT_FALSE(many_in.ok());
  EXPECT_LE(delete_request.topic_names.capacity(), reserve_hint(10000));
  EXPECT_LT(reserve_hint(10000), std::size_t{10000});
}

TEST(ProtocolMalformed, NegativeArrayCountFails) {
  auto bytes = bytes_of({0xff, 0xff, 0xff, 0xfe});
  reader in(bytes);
  MetadataRequest request;
  request.decode(in, 1);
  EXPECT_FALSE(in.ok());
}

// ---------------------------------------------------------------------------------------
// API keys, header versions, error codes

TEST(ProtocolApiKeys, SupportedVersionsLieWithinTheSchema) {
  for (const auto& row : supported_versions) {
    SCOPED_TRACE(std::string(row.name));
    const bool known = visit_request_type(
        static_cast<std::int16_t>(row.key), [&]<typename Request>(std::type_identity<Request>) {
          EXPECT_GE(row.min_version, Request::min_version);
          EXPECT_LE(row.max_version, Request::max_version);
          EXPECT_EQ(row.first_flexible_version, Request::first_flexible_version);
          EXPECT_EQ(std::string(Request::name), std::string(row.name) + "Request");
        });
    EXPECT_TRUE(known);
    visit_response_type(static_cast<std::int16_t>(row.key),
                        [&]<typename Response>(std::type_identity<Response>) {
                          EXPECT_EQ(row.first_flexible_version, Response::first_flexible_version);
                        });
  }
  EXPECT_EQ(std::size(generated_api_keys), supported_versions.size());
}

TEST(ProtocolApiKeys, HeaderVersionsFollowFlexibility) {
  // Metadata is flexible from v9.
  EXPECT_EQ(request_header_version(3, 8), 1);
  EXPECT_EQ(request_header_version(3, 9), 2);
  EXPECT_EQ(response_header_version(3, 8), 0);
  EXPECT_EQ(response_header_version(3, 9), 1);
  // ApiVersions: request header v2 from v3, but its response header is always v0.
  EXPECT_EQ(request_header_version(18, 2), 1);
  EXPECT_EQ(request_header_version(18, 3), 2);
  EXPECT_EQ(response_header_version(18, 3), 0);
  EXPECT_EQ(response_header_version(18, 4), 0);
  // DescribeCluster is flexible from v0.
  EXPECT_EQ(request_header_version(60, 0), 2);
  EXPECT_EQ(response_header_version(60, 0), 1);
  // A version newer than any known still gets the flexible header.
  EXPECT_EQ(request_header_version(18, 99), 2);
  // OffsetDelete has no flexible version at all, not even a too-new one.
  EXPECT_EQ(request_header_version(47, 0), 1);
  EXPECT_EQ(response_header_version(47, 0), 0);
  EXPECT_EQ(request_header_version(47, 99), 1);
  // JoinGroup is flexible from v6.
  EXPECT_EQ(request_header_version(11, 5), 1);
  EXPECT_EQ(request_header_version(11, 6), 2);
  EXPECT_EQ(response_header_version(11, 6), 1);
  // Unknown APIs.
  EXPECT_FALSE(request_header_version(9999, 0).has_value());
  EXPECT_FALSE(response_header_version(-1, 0).has_value());
  EXPECT_TRUE(is_supported(0, 3));
  EXPECT_FALSE(is_supported(0, 2));
  EXPECT_EQ(api_name(api_key::incremental_alter_configs), "IncrementalAlterConfigs");
  EXPECT_EQ(api_name(api_key::find_coordinator), "FindCoordinator");
}

TEST(ProtocolErrorCodes, NumbersAreKafkas) {
  // Published values of Kafka's error table.
  EXPECT_EQ(static_cast<int>(error_code::unknown_server_error), -1);
  EXPECT_EQ(static_cast<int>(error_code::none), 0);
  EXPECT_EQ(static_cast<int>(error_code::offset_out_of_range), 1);
  EXPECT_EQ(static_cast<int>(error_code::corrupt_message), 2);
  EXPECT_EQ(static_cast<int>(error_code::unknown_topic_or_partition), 3);
  EXPECT_EQ(static_cast<int>(error_code::not_leader_or_follower), 6);
  EXPECT_EQ(static_cast<int>(error_code::request_timed_out), 7);
  EXPECT_EQ(static_cast<int>(error_code::message_too_large), 10);
  EXPECT_EQ(static_cast<int>(error_code::record_list_too_large), 18);
  EXPECT_EQ(static_cast<int>(error_code::invalid_timestamp), 32);
  EXPECT_EQ(static_cast<int>(error_code::unsupported_version), 35);
  EXPECT_EQ(static_cast<int>(error_code::topic_already_exists), 36);
  EXPECT_EQ(static_cast<int>(error_code::invalid_request), 42);
  EXPECT_EQ(static_cast<int>(error_code::unsupported_for_message_format), 43);
  EXPECT_EQ(static_cast<int>(error_code::kafka_storage_error), 56);
  EXPECT_EQ(static_cast<int>(error_code::invalid_record), 87);
  EXPECT_EQ(static_cast<int>(error_code::unknown_topic_id), 100);
  EXPECT_EQ(error_code_name(error_code::kafka_storage_error), "KAFKA_STORAGE_ERROR");
  EXPECT_EQ(error_code_name(static_cast<error_code>(30000)), "UNKNOWN");
}

TEST(ProtocolErrorCodes, EngineErrorsMapOneToOne) {
  EXPECT_EQ(to_error_code(errc::ok), error_code::none);
  EXPECT_EQ(to_error_code(errc::corrupt_batch), error_code::corrupt_message);
  EXPECT_EQ(to_error_code(errc::invalid_batch), error_code::invalid_record);
  EXPECT_EQ(to_error_code(errc::unsupported_magic), error_code::unsupported_for_message_format);
  EXPECT_EQ(to_error_code(errc::batch_too_large), error_code::message_too_large);
  EXPECT_EQ(to_error_code(errc::invalid_timestamp), error_code::invalid_timestamp);
  EXPECT_EQ(to_error_code(errc::offset_out_of_range), error_code::offset_out_of_range);
  EXPECT_EQ(to_error_code(errc::no_space), error_code::kafka_storage_error);
  EXPECT_EQ(to_error_code(errc::io_error), error_code::kafka_storage_error);
  EXPECT_EQ(to_error_code(errc::backpressure), error_code::request_timed_out);
  EXPECT_EQ(to_error_code(errc::not_found), error_code::unknown_topic_or_partition);
  EXPECT_EQ(to_error_code(errc::invalid_argument), error_code::invalid_request);
  EXPECT_EQ(to_error_code(errc::closed), error_code::not_leader_or_follower);
  EXPECT_TRUE(is_retriable(error_code::not_leader_or_follower));
  EXPECT_FALSE(is_retriable(error_code::invalid_record));
}

}  // namespace
}  // namespace sluice::protocol
