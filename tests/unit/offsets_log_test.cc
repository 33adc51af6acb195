// The offsets log (broker/groups/offsets_log.h, offsets_format.h): Kafka's record layouts
// of __consumer_offsets checked against byte vectors derived by hand from Kafka's message
// definitions, Java's String.hashCode partitioning, and the store over a real broker
// context (reactor, faulty disk, temporary data directory): answers only once durable,
// errors on failed writes, replay after clean and unclean restarts, damaged data skipped.
#include "broker/groups/offsets_log.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "broker/broker_context.h"
#include "broker/groups/offsets_format.h"
#include "broker/topic_registry.h"
#include "engine/io/faulty_disk.h"
#include "engine/storage/segment.h"
#include "tests/support/storage_fixture.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using groups::group_metadata_record;
using groups::member_record;
using groups::offset_commit_record;
using groups::record_kind;
using groups::topic_partition_ref;
using protocol::error_code;
using test::temp_dir;

// "00 01 ff" -> bytes; spaces are ignored.
std::vector<std::byte> hex(std::string_view text) {
  std::vector<std::byte> out;
  int high = -1;
  for (char c : text) {
    if (c == ' ') continue;
    const int nibble = c <= '9' ? c - '0' : c - 'a' + 10;
    if (high < 0) {
      high = nibble;
    } else {
      out.push_back(static_cast<std::byte>(high * 16 + nibble));
      high = -1;
    }
  }
  EXPECT_EQ(high, -1) << "odd number of hex digits";
  return out;
}

std::vector<std::byte> value_of(result<std::vector<std::byte>> encoded) {
  EXPECT_TRUE(encoded.ok());
  return encoded.ok() ? std::move(*encoded) : std::vector<std::byte>{};
}

bool same_offset(const offset_commit_record& a, const offset_commit_record& b) {
  return a.group == b.group && a.topic == b.topic && a.partition == b.partition &&
         a.committed_offset == b.committed_offset && a.leader_epoch == b.leader_epoch &&
         a.metadata == b.metadata && a.commit_timestamp_ms == b.commit_timestamp_ms;
}

bool same_member(const member_record& a, const member_record& b) {
  return a.member_id == b.member_id && a.group_instance_id == b.group_instance_id &&
         a.client_id == b.client_id && a.client_host == b.client_host &&
         a.rebalance_timeout_ms == b.rebalance_timeout_ms &&
         a.session_timeout_ms == b.session_timeout_ms && a.subscription == b.subscription &&
         a.assignment == b.assignment;
}

bool same_group(const group_metadata_record& a, const group_metadata_record& b) {
  if (a.group != b.group || a.protocol_type != b.protocol_type || a.generation != b.generation ||
      a.protocol != b.protocol || a.leader != b.leader ||
      a.state_timestamp_ms != b.state_timestamp_ms || a.members.size() != b.members.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.members.size(); ++i) {
    if (!same_member(a.members[i], b.members[i])) return false;
  }
  return true;
}

// The group of the hand-derived GroupMetadataValue vectors below.
group_metadata_record sample_group() {
  group_metadata_record g;
  g.group = "g1";
  g.protocol_type = "consumer";
  g.generation = 3;
  g.protocol = "range";
  g.leader = "m1";
  g.state_timestamp_ms = 1000;
  member_record m;
  m.member_id = "m1";
  m.client_id = "c";
  m.client_host = "/h";
  m.rebalance_timeout_ms = 300000;
  m.session_timeout_ms = 10000;
  m.subscription = std::string("\x00\x01", 2);
  m.assignment = "";
  g.members.push_back(m);
  return g;
}

// ---- Record formats -------------------------------------------------------------------

TEST(OffsetsFormat, OffsetCommitKeyIsKafkasVersion1Layout) {
  // version 1 | group "g" (int16 length 1, 0x67) | topic "t" (0x74) | partition 5
  EXPECT_EQ(value_of(groups::encode_offset_commit_key("g", "t", 5)),
            hex("0001 0001 67 0001 74 00000005"));
  auto key = groups::decode_key(hex("0001 0001 67 0001 74 00000005"));
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->kind, record_kind::offset_commit);
  EXPECT_EQ(key->group, "g");
  EXPECT_EQ(key->topic, "t");
  EXPECT_EQ(key->partition, 5);
  // Version 0 is the same key, as Kafka's readers take it.
  auto legacy = groups::decode_key(hex("0000 0001 67 0001 74 00000005"));
  ASSERT_TRUE(legacy.ok());
  EXPECT_EQ(legacy->kind, record_kind::offset_commit);
  EXPECT_EQ(legacy->partition, 5);
}

TEST(OffsetsFormat, GroupMetadataKeyIsKafkasVersion2Layout) {
  // version 2 | group "grp" = 67 72 70
  EXPECT_EQ(value_of(groups::encode_group_metadata_key("grp")), hex("0002 0003 677270"));
  auto key = groups::decode_key(hex("0002 0003 677270"));
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->kind, record_kind::group_metadata);
  EXPECT_EQ(key->group, "grp");
}

TEST(OffsetsFormat, UnknownKeyVersionsAreReportedNotMisread) {
  // Version 3: a KIP-848 ConsumerGroupMetadataKey, which Sluice does not read.
  auto key = groups::decode_key(hex("0003 0001 67"));
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->kind, record_kind::unknown);
  EXPECT_EQ(key->version, 3);
  EXPECT_FALSE(groups::decode_key(hex("00")).ok());
  EXPECT_FALSE(groups::decode_key(hex("0001 0005 67")).ok()) << "string longer than the key";
  EXPECT_FALSE(groups::decode_key(hex("0001 0001 67 0001 74 0000")).ok()) << "truncated";
}

TEST(OffsetsFormat, OffsetCommitValueIsKafkasVersion3Layout) {
  offset_commit_record r;
  r.group = "g";
  r.topic = "t";
  r.partition = 5;
  r.committed_offset = 16;
  r.leader_epoch = 7;
  r.metadata = "m";
  r.commit_timestamp_ms = 1000;
  // version 3 | offset 16 | leader epoch 7 | metadata "m" (6d) | commit timestamp 1000
  const auto expected = hex("0003 0000000000000010 00000007 0001 6d 00000000000003e8");
  EXPECT_EQ(value_of(groups::encode_offset_commit_value(r)), expected);
  auto key = groups::decode_key(value_of(groups::encode_offset_commit_key("g", "t", 5)));
  ASSERT_TRUE(key.ok());
  auto back = groups::decode_offset_commit_value(*key, expected);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(same_offset(*back, r));
}

TEST(OffsetsFormat, NullMetadataIsStoredAsEmptyAsKafkaStoresIt) {
  offset_commit_record r;
  r.metadata = std::nullopt;
  r.leader_epoch = -1;
  EXPECT_EQ(value_of(groups::encode_offset_commit_value(r)),
            hex("0003 0000000000000000 ffffffff 0000 0000000000000000"));
}

TEST(OffsetsFormat, OlderAndFlexibleOffsetCommitValuesDecode) {
  groups::record_key key;
  key.kind = record_kind::offset_commit;
  key.group = "g";
  key.topic = "t";
  key.partition = 1;
  struct vector {
    const char* bytes;
    std::int32_t leader_epoch;
  };
  // offset 16, metadata "m", commit timestamp 1000 in every version; leader epoch 7 from 3.
  const vector vectors[] = {
      {"0000 0000000000000010 0001 6d 00000000000003e8", -1},
      // version 1 adds the expire timestamp (2000) after the commit timestamp
      {"0001 0000000000000010 0001 6d 00000000000003e8 00000000000007d0", -1},
      {"0002 0000000000000010 0001 6d 00000000000003e8", -1},
      {"0003 0000000000000010 00000007 0001 6d 00000000000003e8", 7},
      // version 4: compact string (length + 1 = 02) and an empty tagged-field section
      {"0004 0000000000000010 00000007 02 6d 00000000000003e8 00", 7},
      // ... with one unknown tagged field (tag 5, 2 bytes) that is skipped
      {"0004 0000000000000010 00000007 02 6d 00000000000003e8 01 05 02 abcd", 7},
  };
  for (const auto& v : vectors) {
    auto decoded = groups::decode_offset_commit_value(key, hex(v.bytes));
    ASSERT_TRUE(decoded.ok()) << v.bytes;
    EXPECT_EQ(decoded->committed_offset, 16) << v.bytes;
    EXPECT_EQ(decoded->leader_epoch, v.leader_epoch) << v.bytes;
    EXPECT_EQ(decoded->metadata, "m") << v.bytes;
    EXPECT_EQ(decoded->commit_timestamp_ms, 1000) << v.bytes;
    EXPECT_EQ(decoded->group, "g");
    EXPECT_EQ(decoded->topic, "t");
    EXPECT_EQ(decoded->partition, 1);
  }
  EXPECT_EQ(groups::decode_offset_commit_value(key, hex("0005 0000000000000010")).code(),
            errc::invalid_argument);
  EXPECT_EQ(groups::decode_offset_commit_value(key, hex("0003 0000000000000010 0000")).code(),
            errc::invalid_batch);
}

TEST(OffsetsFormat, GroupMetadataValueIsKafkasVersion3Layout) {
  const auto expected =
      hex("0003"                   // version 3
          "0008 636f6e73756d6572"  // protocol_type "consumer"
          "00000003"               // generation 3
          "0005 72616e6765"        // protocol "range"
          "0002 6d31"              // leader "m1"
          "00000000000003e8"       // current_state_timestamp 1000
          "00000001"               // one member:
          "0002 6d31"              //   member_id "m1"
          "ffff"                   //   group_instance_id null
          "0001 63"                //   client_id "c"
          "0002 2f68"              //   client_host "/h"
          "000493e0"               //   rebalance_timeout 300000
          "00002710"               //   session_timeout 10000
          "00000002 0001"          //   subscription 00 01
          "00000000");             //   assignment (empty)
  const group_metadata_record g = sample_group();
  EXPECT_EQ(value_of(groups::encode_group_metadata_value(g)), expected);
  auto back = groups::decode_group_metadata_value("g1", expected);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(same_group(*back, g));
}

TEST(OffsetsFormat, OlderAndFlexibleGroupMetadataValuesDecode) {
  // Version 0: no state timestamp, no instance id, no rebalance timeout (it is the
  // session timeout then).
  auto v0 = groups::decode_group_metadata_value(
      "g1", hex("0000 0008 636f6e73756d6572 00000003 0005 72616e6765 0002 6d31 00000001"
                "0002 6d31 0001 63 0002 2f68 00002710 00000002 0001 00000000"));
  ASSERT_TRUE(v0.ok());
  EXPECT_EQ(v0->state_timestamp_ms, -1);
  ASSERT_EQ(v0->members.size(), 1u);
  EXPECT_EQ(v0->members[0].session_timeout_ms, 10000);
  EXPECT_EQ(v0->members[0].rebalance_timeout_ms, 10000);
  EXPECT_EQ(v0->members[0].subscription, std::string("\x00\x01", 2));

  // Version 4, flexible: compact strings/bytes/array (length + 1), tags after the member
  // and after the value. Same content as sample_group().
  auto v4 = groups::decode_group_metadata_value(
      "g1", hex("0004 09 636f6e73756d6572 00000003 06 72616e6765 03 6d31 00000000000003e8"
                "02"  // one member
                "03 6d31 00 02 63 03 2f68 000493e0 00002710 03 0001 01 00"
                "00"));
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(same_group(*v4, sample_group()));

  // An empty group as Kafka writes it: protocol and leader null, no members.
  auto empty = groups::decode_group_metadata_value(
      "g1", hex("0003 0000 00000005 ffff ffff 00000000000003e8 00000000"));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->protocol_type, "");
  EXPECT_EQ(empty->generation, 5);
  EXPECT_FALSE(empty->protocol.has_value());
  EXPECT_FALSE(empty->leader.has_value());
  EXPECT_TRUE(empty->members.empty());

  EXPECT_EQ(groups::decode_group_metadata_value("g1", hex("0009 0000")).code(),
            errc::invalid_argument);
  // A member count that the bytes cannot hold is refused, not allocated.
  EXPECT_EQ(groups::decode_group_metadata_value(
                "g1", hex("0003 0000 00000005 ffff ffff 00000000000003e8 7fffffff"))
                .code(),
            errc::invalid_batch);
}

TEST(OffsetsFormat, GroupMetadataRoundTripsWithStaticMembersAndBinaryBytes) {
  group_metadata_record g = sample_group();
  g.members[0].group_instance_id = "instance-1";
  member_record second;
  second.member_id = "m2-\xc3\xa9";
  second.client_id = "";
  second.client_host = "/10.0.0.2";
  second.rebalance_timeout_ms = 1;
  second.session_timeout_ms = 2;
  second.subscription = std::string("\xff\x00\x7f", 3);
  second.assignment = std::string(5000, '\x01');
  g.members.push_back(second);
  auto encoded = groups::encode_group_metadata_value(g);
  ASSERT_TRUE(encoded.ok());
  auto back = groups::decode_group_metadata_value("g1", *encoded);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(same_group(*back, g));
  // Every proper prefix is refused: no field is optional in a version.
  for (std::size_t cut = 0; cut < encoded->size(); cut += 7) {
    std::span<const std::byte> prefix(encoded->data(), cut);
    EXPECT_FALSE(groups::decode_group_metadata_value("g1", prefix).ok()) << cut;
  }
}

TEST(OffsetsFormat, TheWorkedExampleOfTheDocs) {
  // docs/consumer-groups.md, "Worked example": 1700000000000 = 0x0000018bcfe56800.
  offset_commit_record r;
  r.committed_offset = 42;
  r.leader_epoch = 0;
  r.metadata = "";
  r.commit_timestamp_ms = 1700000000000;
  EXPECT_EQ(value_of(groups::encode_offset_commit_key("g1", "orders", 1)),
            hex("0001 0002 6731 0006 6f7264657273 00000001"));
  EXPECT_EQ(value_of(groups::encode_offset_commit_value(r)),
            hex("0003 000000000000002a 00000000 0000 0000018bcfe56800"));
  EXPECT_EQ(value_of(groups::encode_group_metadata_key("g1")), hex("0002 0002 6731"));
  // "g1": 103*31 + 49 = 3242; % 50 = 42.
  EXPECT_EQ(offsets_partition_for("g1", 50), 42);
}

TEST(OffsetsFormat, TooLongStringsCannotBeEncoded) {
  EXPECT_EQ(groups::encode_group_metadata_key(std::string(40000, 'g')).code(),
            errc::invalid_argument);
}

// ---- Partitioning ---------------------------------------------------------------------

TEST(OffsetsPartitioning, JavaStringHashCode) {
  // s[0]*31^(n-1) + ... + s[n-1] in 32-bit int arithmetic over UTF-16 code units.
  EXPECT_EQ(java_string_hash(""), 0);
  EXPECT_EQ(java_string_hash("a"), 97);
  // "group" = g r o u p = 103 114 111 117 112:
  // 103*31+114 = 3307; *31+111 = 102628; *31+117 = 3181585; *31+112 = 98629247.
  EXPECT_EQ(java_string_hash("group"), 98629247);
  // Published in countless Java references.
  EXPECT_EQ(java_string_hash("hello"), 99162322);
  EXPECT_EQ(java_string_hash("Hello World"), -862545276);
  // U+00E9 (UTF-8 c3 a9) is one code unit, 233; U+20AC (e2 82 ac) is 8364.
  EXPECT_EQ(java_string_hash("\xc3\xa9"), 233);
  EXPECT_EQ(java_string_hash("\xe2\x82\xac"), 8364);
  // U+1F600 (f0 9f 98 80) is a surrogate pair d83d de00: 55357*31 + 56832 = 1772899.
  EXPECT_EQ(java_string_hash("\xf0\x9f\x98\x80"), 1772899);
  // "é€": 233*31 + 8364 = 15587.
  EXPECT_EQ(java_string_hash("\xc3\xa9\xe2\x82\xac"), 15587);
  // Ill-formed UTF-8 counts as U+FFFD (65533), as Java decodes it: a lone ff, and "a"
  // followed by a truncated 3-byte sequence (e2 82): 97*31 + 65533 = 68540.
  EXPECT_EQ(java_string_hash("\xff"), 65533);
  EXPECT_EQ(java_string_hash("a\xe2\x82"), 68540);
}

TEST(OffsetsPartitioning, PartitionIsAbsHashModuloPartitionsAsKafka) {
  EXPECT_EQ(offsets_partition_for("a", 50), 97 % 50);
  EXPECT_EQ(offsets_partition_for("group", 50), 98629247 % 50);
  // Negative hash: Kafka's Utils.abs clears the sign bit (not Math.abs).
  // -862545276 & 0x7fffffff = 2147483648 - 862545276 = 1284938372; % 50 = 22.
  EXPECT_EQ(offsets_partition_for("Hello World", 50), 22);
  // "polygenelubricants".hashCode() is Integer.MIN_VALUE, whose Utils.abs is 0.
  EXPECT_EQ(java_string_hash("polygenelubricants"), std::numeric_limits<std::int32_t>::min());
  EXPECT_EQ(offsets_partition_for("polygenelubricants", 50), 0);
  // Non-ASCII: U+1F600, hash 1772899; % 50 = 49.
  EXPECT_EQ(offsets_partition_for("\xf0\x9f\x98\x80", 50), 49);
  // The owning core follows the partition.
  EXPECT_EQ(owner_core("group", 50, 4), static_cast<std::size_t>(98629247 % 50 % 4));
  EXPECT_EQ(owner_core("group", 50, 1), 0u);
}

// ---- The store over a real broker -----------------------------------------------------

// Records what a replay delivers, and the state it leaves.
struct recording_loader final : groups::group_loader {
  using offset_key = std::tuple<std::string, std::string, std::int32_t>;
  std::map<offset_key, offset_commit_record> offsets;
  std::map<std::string, group_metadata_record> groups;
  std::size_t calls = 0;

  void load_offset(const offset_commit_record& r) noexcept override {
    ++calls;
    offsets[{r.group, r.topic, r.partition}] = r;
  }
  void unload_offset(std::string_view group, std::string_view topic,
                     std::int32_t partition) noexcept override {
    ++calls;
    offsets.erase({std::string(group), std::string(topic), partition});
  }
  void load_group(const group_metadata_record& r) noexcept override {
    ++calls;
    groups[r.group] = r;
  }
  void unload_group(std::string_view group) noexcept override {
    ++calls;
    groups.erase(std::string(group));
  }
};

offset_commit_record commit(std::string group, std::string topic, std::int32_t partition,
                            std::int64_t at, std::optional<std::string> metadata = "",
                            std::int32_t epoch = -1) {
  offset_commit_record r;
  r.group = std::move(group);
  r.topic = std::move(topic);
  r.partition = partition;
  r.committed_offset = at;
  r.leader_epoch = epoch;
  r.metadata = std::move(metadata);
  r.commit_timestamp_ms = 1700000000000 + at;
  return r;
}

class OffsetsLogTest : public ::testing::Test {
 protected:
  static constexpr std::int32_t partitions = 4;

  void SetUp() override {
    auto made = reactor::create(reactor_config{});
    ASSERT_TRUE(made.ok());
    ring_ = std::move(*made);
    disk_ = std::make_unique<uring_disk>(*ring_);
    faulty_ = std::make_unique<faulty_disk>(*disk_);
    open_broker(partitions);
  }

  void TearDown() override {
    if (broker_) close_broker(true);
    ring_->run_until([&] { return ring_->in_flight() == 0; });
  }

  void open_broker(std::int32_t count) {
    log_manager_config config;
    config.data_dir = dir_.path();
    auto logs = log_manager::open(config, *faulty_);
    ASSERT_TRUE(logs.ok()) << logs.failure().detail();
    logs_ = std::move(*logs);
    auto topics = topic_registry::open(dir_.path(), *logs_, log_config{});
    ASSERT_TRUE(topics.ok()) << topics.failure().detail();
    topics_ = std::move(*topics);
    broker_identity identity;
    identity.cluster_id = "offsets-log-test";
    broker_ = std::make_unique<broker_context>(*ring_, *logs_, *topics_, identity);
    auto store = offsets_log::open(*broker_, count);
    ASSERT_TRUE(store.ok()) << store.failure().detail();
    store_ = std::move(*store);
  }

  // Stops as the broker would; without `clean`, as a crash that happens once every write
  // has returned (no shutdown, no clean-shutdown marker, no checkpoints).
  void close_broker(bool clean) {
    faulty_->release_syncs();
    settle();
    store_.reset();
    broker_->stop();
    ASSERT_TRUE(ring_->run_until([&] {
      bool idle = true;
      logs_->for_each([&](const topic_partition&, partition_log& log) { idle &= log.idle(); });
      return idle && broker_->idle();
    }));
    broker_.reset();
    topics_.reset();
    if (clean) {
      EXPECT_TRUE(logs_->shutdown().ok());
    }
    logs_.reset();
  }

  void reopen(bool clean) {
    close_broker(clean);
    open_broker(partitions);
  }

  // One reactor turn as the server runs it.
  void turn() {
    ring_->run_once(1ms);
    store_->run_deferred();
  }
  // Runs until every store was answered.
  void settle() {
    ASSERT_TRUE(ring_->run_until([&] {
      store_->run_deferred();
      return store_->idle();
    }));
  }

  // A callback that records its answers under `name` and checks it was not called from
  // inside the store call.
  groups::store_callback answer_to(std::string name) {
    return [this, name](error_code code) {
      EXPECT_FALSE(in_store_call_) << name << " answered inside the store call";
      answers_[name].push_back(code);
    };
  }
  template <typename Call>
  void storing(Call&& call) {
    in_store_call_ = true;
    call();
    in_store_call_ = false;
  }
  void store_offsets(const std::string& group, const std::vector<offset_commit_record>& offsets,
                     const std::string& name) {
    storing([&] { store_->store_offsets(group, offsets, answer_to(name)); });
  }
  void expect_answer(const std::string& name, error_code code) {
    ASSERT_EQ(answers_[name].size(), 1u) << name << " must be answered exactly once";
    EXPECT_EQ(answers_[name][0], code)
        << name << ": " << protocol::error_code_name(answers_[name][0]);
  }

  partition_log& log_of(std::int32_t partition) {
    partition_state* state = broker_->partition(offsets_log::topic_name, partition);
    SLUICE_ASSERT(state != nullptr, "missing offsets partition");
    return state->log();
  }
  // Every batch of a partition, validated (CRC included).
  std::vector<batch_header> batches_of(std::int32_t partition) {
    partition_log& log = log_of(partition);
    auto read = log.read(log.log_start_offset(), 1 << 20);
    EXPECT_TRUE(read.ok());
    return read.ok() ? test::batches_in(read->bytes) : std::vector<batch_header>{};
  }
  std::string segment_path(std::int32_t partition) {
    return dir_.path() + "/" + std::string(offsets_log::topic_name) + "-" +
           std::to_string(partition) + "/" + segment_file_name(offset(0), ".log");
  }

  temp_dir dir_;
  std::unique_ptr<reactor> ring_;
  std::unique_ptr<uring_disk> disk_;
  std::unique_ptr<faulty_disk> faulty_;
  std::unique_ptr<log_manager> logs_;
  std::unique_ptr<topic_registry> topics_;
  std::unique_ptr<broker_context> broker_;
  std::unique_ptr<offsets_log> store_;
  std::map<std::string, std::vector<error_code>> answers_;
  bool in_store_call_ = false;
};

TEST_F(OffsetsLogTest, TheFirstStoreCreatesTheTopicAsKafkaDoesAndItKeepsItsPartitionCount) {
  // Not before a group needs it: a broker that never served a group has no internal topic.
  EXPECT_EQ(topics_->find("__consumer_offsets"), nullptr);
  EXPECT_EQ(store_->partitions(), partitions);
  store_offsets("g1", {commit("g1", "orders", 0, 42)}, "commit");
  settle();
  expect_answer("commit", error_code::none);
  const topic_info* topic = topics_->find("__consumer_offsets");
  ASSERT_NE(topic, nullptr);
  EXPECT_EQ(topic->partitions, partitions);
  EXPECT_EQ(store_->partitions(), partitions);
  EXPECT_EQ(topic->overrides.at("segment.bytes"), "104857600");
  EXPECT_EQ(topic->log.segment_bytes, 104857600u);
  EXPECT_EQ(topic->overrides.at("cleanup.policy"), "compact");
  EXPECT_TRUE(topic->log.compact);
  EXPECT_TRUE(offsets_log::is_internal("__consumer_offsets"));
  EXPECT_FALSE(offsets_log::is_internal("orders"));
  // A restart with another configured count keeps the topic's.
  close_broker(true);
  open_broker(partitions + 3);
  EXPECT_EQ(store_->partitions(), partitions);
  EXPECT_EQ(topics_->find("__consumer_offsets")->partitions, partitions);
  EXPECT_EQ(store_->partition_for("group"), 98629247 % partitions);
}

TEST_F(OffsetsLogTest, StoresAreAnsweredOnlyOnceFlushed) {
  faulty_->hold_syncs();
  store_offsets("g1", {commit("g1", "orders", 0, 42)}, "commit");
  EXPECT_TRUE(answers_["commit"].empty());
  const std::int32_t p = store_->partition_for("g1");
  ASSERT_TRUE(ring_->run_until([&] {
    store_->run_deferred();
    return log_of(p).written_end() == offset(1);
  }));
  for (int i = 0; i < 20; ++i) turn();
  EXPECT_GE(faulty_->held_syncs(), 1u) << "the batch was never synced: the test is moot";
  EXPECT_EQ(log_of(p).flushed_end(), offset(0));
  EXPECT_TRUE(answers_["commit"].empty()) << "answered before the flush";
  EXPECT_FALSE(store_->idle());
  EXPECT_EQ(store_->stores_in_flight(), 1u);
  faulty_->release_syncs();
  settle();
  expect_answer("commit", error_code::none);
  EXPECT_EQ(log_of(p).flushed_end(), offset(1));
}

TEST_F(OffsetsLogTest, EachStoreIsOneUncompressedBatchInTheGroupsPartition) {
  const std::int64_t before = broker_context::now().value();
  store_offsets("g1", {commit("g1", "orders", 0, 1), commit("g1", "orders", 1, 2)}, "a");
  storing([&] { store_->store_group(sample_group(), answer_to("b")); });
  settle();
  const std::int64_t after = broker_context::now().value();
  expect_answer("a", error_code::none);
  expect_answer("b", error_code::none);
  const std::int32_t p = store_->partition_for("g1");
  auto batches = batches_of(p);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].records_count, 2);
  EXPECT_EQ(batches[1].records_count, 1);
  for (const auto& b : batches) {
    EXPECT_EQ(b.compression(), compression_codec::none);
    EXPECT_EQ(b.timestamp_kind(), timestamp_type::create_time);
    EXPECT_GE(b.max_timestamp.value(), before);
    EXPECT_LE(b.max_timestamp.value(), after);
  }
  for (std::int32_t other = 0; other < partitions; ++other) {
    if (other != p) {
      EXPECT_EQ(log_of(other).log_end_offset(), offset(0));
    }
  }
  // The first record's key is byte for byte Kafka's OffsetCommitKey.
  auto read = log_of(p).read(offset(0), 1 << 20);
  ASSERT_TRUE(read.ok());
  auto header = decode_batch_header(read->bytes);
  ASSERT_TRUE(header.ok());
  std::vector<std::byte> scratch;
  auto records = batch_records(*header, read->bytes.first(header->total_bytes()), scratch, 1 << 20);
  ASSERT_TRUE(records.ok());
  std::vector<std::vector<std::byte>> keys;
  ASSERT_TRUE(for_each_record(*header, *records, [&](const record_view& r) {
                keys.emplace_back(r.key->begin(), r.key->end());
              }).ok());
  ASSERT_EQ(keys.size(), 2u);
  // version 1 | "g1" | "orders" | partition 1
  EXPECT_EQ(keys[1], hex("0001 0002 6731 0006 6f7264657273 00000001"));
}

TEST_F(OffsetsLogTest, ReplayAfterARestartLeavesTheLatestStateOfEveryKey) {
  // "g1".hashCode() = 103*31 + 49 = 3242 -> partition 2 of 4; "g2" = 3243 -> 3.
  ASSERT_EQ(store_->partition_for("g1"), 2);
  ASSERT_EQ(store_->partition_for("g2"), 3);
  store_offsets("g1", {commit("g1", "t0", 0, 10), commit("g1", "t0", 1, 20)}, "1");
  store_offsets("g1", {commit("g1", "t0", 0, 15, "m", 3)}, "2");
  store_offsets("g2", {commit("g2", "t1", 0, 7, std::nullopt)}, "3");
  group_metadata_record g1 = sample_group();
  storing([&] { store_->store_group(g1, answer_to("4")); });
  g1.generation = 4;
  g1.members[0].assignment = "assigned";
  g1.members[0].group_instance_id = "static-1";
  storing([&] { store_->store_group(g1, answer_to("5")); });
  group_metadata_record g2 = sample_group();
  g2.group = "g2";
  storing([&] { store_->store_group(g2, answer_to("6")); });
  storing([&] { store_->delete_group("g2", answer_to("7")); });
  const std::vector<topic_partition_ref> gone{{"t0", 1}};
  storing([&] { store_->delete_offsets("g1", gone, answer_to("8")); });
  settle();
  for (const char* name : {"1", "2", "3", "4", "5", "6", "7", "8"}) {
    expect_answer(name, error_code::none);
  }
  EXPECT_EQ(log_of(2).log_end_offset(), offset(6));
  EXPECT_EQ(log_of(3).log_end_offset(), offset(3));

  reopen(true);
  recording_loader loader;
  auto stats = store_->load(loader);
  ASSERT_TRUE(stats.ok()) << stats.failure().detail();
  EXPECT_EQ(stats->partitions, partitions);
  EXPECT_EQ(stats->batches, 8u);
  EXPECT_EQ(stats->records, 9u);
  EXPECT_EQ(stats->offsets_loaded, 4u);
  EXPECT_EQ(stats->offsets_unloaded, 1u);
  EXPECT_EQ(stats->groups_loaded, 3u);
  EXPECT_EQ(stats->groups_unloaded, 1u);
  EXPECT_EQ(stats->batches_skipped, 0u);
  EXPECT_EQ(stats->records_skipped, 0u);
  EXPECT_EQ(loader.calls, 9u);

  ASSERT_EQ(loader.offsets.size(), 2u);
  offset_commit_record latest = commit("g1", "t0", 0, 15, "m", 3);
  ASSERT_EQ(loader.offsets.count({"g1", "t0", 0}), 1u);
  EXPECT_TRUE(same_offset(loader.offsets.at({"g1", "t0", 0}), latest));
  ASSERT_EQ(loader.offsets.count({"g2", "t1", 0}), 1u);
  offset_commit_record null_metadata = commit("g2", "t1", 0, 7, "");  // null stored as ""
  EXPECT_TRUE(same_offset(loader.offsets.at({"g2", "t1", 0}), null_metadata));
  ASSERT_EQ(loader.groups.size(), 1u);
  ASSERT_EQ(loader.groups.count("g1"), 1u);
  EXPECT_TRUE(same_group(loader.groups.at("g1"), g1));
}

TEST_F(OffsetsLogTest, AFailedWriteIsAnsweredCoordinatorNotAvailableAndNotReplayed) {
  faulty_->fail_writes(-EIO);
  store_offsets("g1", {commit("g1", "t", 0, 1)}, "failed");
  EXPECT_TRUE(answers_["failed"].empty());
  settle();
  expect_answer("failed", error_code::coordinator_not_available);
  faulty_->heal();
  store_offsets("g1", {commit("g1", "t", 0, 2)}, "next");
  settle();
  expect_answer("next", error_code::none);

  reopen(true);
  recording_loader loader;
  ASSERT_TRUE(store_->load(loader).ok());
  ASSERT_EQ(loader.offsets.size(), 1u);
  EXPECT_EQ(loader.offsets.begin()->second.committed_offset, 2);
}

TEST_F(OffsetsLogTest, AFailedSyncIsAnsweredCoordinatorNotAvailable) {
  faulty_->fail_syncs(-EIO);
  store_offsets("g1", {commit("g1", "t", 0, 1)}, "failed");
  settle();
  expect_answer("failed", error_code::coordinator_not_available);
  // The partition is offline until reopened: later stores fail too, still answered later.
  faulty_->heal();
  store_offsets("g1", {commit("g1", "t", 0, 2)}, "after");
  EXPECT_TRUE(answers_["after"].empty());
  settle();
  expect_answer("after", error_code::coordinator_not_available);
}

TEST_F(OffsetsLogTest, WhileTheTopicCannotBeCreatedStoresAreAnsweredNotAvailableAfterTheCall) {
  store_offsets("g0", {commit("g0", "t", 0, 1)}, "first");
  settle();
  expect_answer("first", error_code::none);
  // Deleted and its logs still there (a write in flight keeps them): the name cannot be
  // created again yet, as Kafka refuses a topic marked for deletion.
  faulty_->hold_syncs();
  store_offsets("g0", {commit("g0", "t", 0, 2)}, "held");
  ASSERT_TRUE(broker_->delete_topic(offsets_log::topic_name).ok());
  store_offsets("g1", {commit("g1", "t", 0, 1)}, "commit");
  storing([&] { store_->delete_group("g1", answer_to("delete")); });
  EXPECT_TRUE(answers_["commit"].empty());
  EXPECT_TRUE(answers_["delete"].empty());
  store_->run_deferred();
  expect_answer("commit", error_code::coordinator_not_available);
  expect_answer("delete", error_code::coordinator_not_available);
  faulty_->release_syncs();
  settle();
}

TEST_F(OffsetsLogTest, AnEmptyStoreIsAnsweredWithoutWriting) {
  store_offsets("g1", {}, "empty");
  EXPECT_TRUE(answers_["empty"].empty());
  store_->run_deferred();
  expect_answer("empty", error_code::none);
  // Nothing written: not even the topic was created.
  EXPECT_EQ(topics_->find("__consumer_offsets"), nullptr);
}

TEST_F(OffsetsLogTest, StoresInFlightAreBounded) {
  faulty_->hold_syncs();
  const std::size_t limit = offsets_log::stores_in_flight_max;
  for (std::size_t i = 0; i < limit; ++i) {
    store_offsets("g1", {commit("g1", "t", 0, static_cast<std::int64_t>(i))}, "bulk");
    if (i % 64 == 63) turn();  // lets the writes drain the log's queue
  }
  EXPECT_EQ(store_->stores_in_flight(), limit);
  store_offsets("g1", {commit("g1", "t", 0, -5)}, "over");
  store_->run_deferred();
  expect_answer("over", error_code::coordinator_not_available);
  EXPECT_TRUE(answers_["bulk"].empty());
  faulty_->release_syncs();
  settle();
  ASSERT_EQ(answers_["bulk"].size(), limit);
  for (error_code code : answers_["bulk"]) ASSERT_EQ(code, error_code::none);
  // Room again.
  store_offsets("g1", {commit("g1", "t", 0, 1)}, "later");
  settle();
  expect_answer("later", error_code::none);
}

TEST_F(OffsetsLogTest, AnUncleanRestartRecoversWhatWasDurableAndDropsATornTail) {
  store_offsets("g1", {commit("g1", "t", 0, 10)}, "1");
  group_metadata_record g1 = sample_group();
  storing([&] { store_->store_group(g1, answer_to("2")); });
  settle();
  expect_answer("1", error_code::none);
  expect_answer("2", error_code::none);
  const std::int32_t p = store_->partition_for("g1");
  const offset end = log_of(p).log_end_offset();
  close_broker(false);
  {
    // A write torn by the crash: the first 40 bytes of a batch after the durable ones.
    auto torn = test::make_batch(1, "torn");
    std::ofstream out(segment_path(p), std::ios::binary | std::ios::app);
    out.write(reinterpret_cast<const char*>(torn.bytes.data()), 40);
  }
  open_broker(partitions);
  EXPECT_EQ(log_of(p).log_end_offset(), end);
  recording_loader loader;
  auto stats = store_->load(loader);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->batches_skipped, 0u);
  ASSERT_EQ(loader.offsets.size(), 1u);
  EXPECT_EQ(loader.offsets.begin()->second.committed_offset, 10);
  ASSERT_EQ(loader.groups.size(), 1u);
  EXPECT_TRUE(same_group(loader.groups.at("g1"), g1));
  // And the store works on after recovery.
  store_offsets("g1", {commit("g1", "t", 0, 11)}, "3");
  settle();
  expect_answer("3", error_code::none);
}

TEST_F(OffsetsLogTest, DamagedBatchesAndUnreadableRecordsAreSkippedOthersLoad) {
  const std::int32_t p = store_->partition_for("g1");
  store_offsets("g1", {commit("g1", "t", 0, 1)}, "A");
  settle();
  {
    // A batch written by someone else: a key of unknown version (a KIP-848 record), a
    // record without key, an OffsetCommitValue of version 7, a truncated key, and one
    // good record -- each record is judged alone.
    const auto unknown_key = hex("0003 0002 6731");
    const auto unknown_value = hex("0000");
    const auto commit_key = value_of(groups::encode_offset_commit_key("g1", "t", 9));
    const auto future_value = hex("0007 0000000000000001");
    const auto truncated_key = hex("0001 0002 67");
    const auto good_key = value_of(groups::encode_offset_commit_key("g1", "t", 3));
    const auto good_value = value_of(groups::encode_offset_commit_value(commit("g1", "t", 3, 33)));
    batch_builder builder;
    auto add = [&](std::optional<std::span<const std::byte>> key,
                   std::optional<std::span<const std::byte>> value) {
      batch_builder::record r;
      r.key = key;
      r.value = value;
      r.timestamp = timestamp_ms(1);
      builder.add(r);
    };
    add(unknown_key, unknown_value);
    add(std::nullopt, unknown_value);
    add(commit_key, future_value);
    add(truncated_key, unknown_value);
    add(good_key, good_value);
    auto bytes = builder.finish();
    std::vector<std::byte> owned(bytes.begin(), bytes.end());
    ASSERT_TRUE(log_of(p).append(owned, broker_context::now(), leader_epoch(0)).ok());
    ASSERT_TRUE(ring_->run_until([&] { return log_of(p).idle(); }));
  }
  store_offsets("g1", {commit("g1", "t", 1, 2)}, "C");  // to be damaged on disk
  settle();
  store_offsets("g1", {commit("g1", "t", 2, 3)}, "B");
  settle();
  auto batches = batches_of(p);
  ASSERT_EQ(batches.size(), 4u);
  const std::size_t damaged_at =
      batches[0].total_bytes() + batches[1].total_bytes() + batches[2].total_bytes() - 1;
  close_broker(true);
  {
    // Flip the last byte of batch C (inside its records: the CRC no longer matches). The
    // shutdown was clean, so the next start does not validate the segment.
    std::fstream file(segment_path(p), std::ios::binary | std::ios::in | std::ios::out);
    file.seekg(static_cast<std::streamoff>(damaged_at));
    char byte = 0;
    file.read(&byte, 1);
    file.seekp(static_cast<std::streamoff>(damaged_at));
    byte = static_cast<char>(byte ^ 0x5a);
    file.write(&byte, 1);
  }
  open_broker(partitions);
  recording_loader loader;
  auto stats = store_->load(loader);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->batches, 4u);
  EXPECT_EQ(stats->batches_skipped, 1u);
  EXPECT_EQ(stats->records_skipped, 4u);
  EXPECT_EQ(stats->offsets_loaded, 3u);
  ASSERT_EQ(loader.offsets.size(), 3u);
  EXPECT_EQ(loader.offsets.count({"g1", "t", 0}), 1u);  // A
  EXPECT_EQ(loader.offsets.count({"g1", "t", 3}), 1u);  // the good record of the foreign batch
  EXPECT_EQ(loader.offsets.count({"g1", "t", 2}), 1u);  // B, after the damaged C
  EXPECT_EQ(loader.offsets.count({"g1", "t", 1}), 0u);  // C
  EXPECT_EQ(loader.offsets.count({"g1", "t", 9}), 0u);
}

}  // namespace
}  // namespace sluice
