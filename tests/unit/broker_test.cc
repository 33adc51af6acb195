// The broker's topic registry (persisted, reloaded, deleted, reconciled with the data
// directory), Kafka UUID text form, and the API dispatch table.
#include <gtest/gtest.h>

#include "broker/api/api_table.h"
#include "broker/api/api_versions.h"
#include "broker/kafka_uuid.h"
#include "broker/meta_properties.h"
#include "broker/topic_registry.h"
#include "net/protocol/generated/headers.h"
#include "tests/support/storage_fixture.h"

namespace sluice {
namespace {

using test::temp_dir;

class TopicRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto made = reactor::create(reactor_config{});
    ASSERT_TRUE(made.ok());
    ring_ = std::move(*made);
    disk_ = std::make_unique<uring_disk>(*ring_);
  }
  void open() {
    log_manager_config config;
    config.data_dir = dir_.path();
    auto m = log_manager::open(config, *disk_);
    ASSERT_TRUE(m.ok()) << m.failure().detail();
    logs_ = std::move(*m);
    auto r = topic_registry::open(dir_.path(), *logs_, log_config{});
    ASSERT_TRUE(r.ok()) << r.failure().detail();
    topics_ = std::move(*r);
  }
  void close() {
    topics_.reset();
    ASSERT_TRUE(logs_->shutdown().ok());
    logs_.reset();
  }
  void TearDown() override {
    if (logs_) close();
  }

  temp_dir dir_;
  std::unique_ptr<reactor> ring_;
  std::unique_ptr<uring_disk> disk_;
  std::unique_ptr<log_manager> logs_;
  std::unique_ptr<topic_registry> topics_;
};

TEST_F(TopicRegistryTest, CreatedTopicsSurviveARestartWithTheirIds) {
  open();
  auto orders = topics_->create("orders", 3, {{"retention.ms", "1000"}});
  ASSERT_TRUE(orders.ok());
  auto clicks = topics_->create("clicks", 1, {});
  ASSERT_TRUE(clicks.ok());
  const protocol::uuid orders_id = (*orders)->id;
  const protocol::uuid clicks_id = (*clicks)->id;
  EXPECT_FALSE(orders_id == clicks_id);
  EXPECT_FALSE(is_zero(orders_id));
  for (int p = 0; p < 3; ++p) EXPECT_NE(logs_->get({"orders", p}), nullptr);
  close();

  open();
  ASSERT_EQ(topics_->size(), 2u);
  const topic_info* again = topics_->find("orders");
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->id, orders_id);
  EXPECT_EQ(again->partitions, 3);
  EXPECT_EQ(again->overrides.at("retention.ms"), "1000");
  EXPECT_EQ(again->log.retention_ms, std::chrono::milliseconds(1000));
  // The override reached the reopened log, which the log manager opened with defaults.
  EXPECT_EQ(logs_->get({"orders", 0})->config().retention_ms, std::chrono::milliseconds(1000));
  EXPECT_EQ(topics_->find(clicks_id), topics_->find("clicks"));
}

TEST_F(TopicRegistryTest, CreationIsCheckedBeforeAnythingHappens) {
  open();
  std::string problem;
  using E = topic_registry::create_error;
  EXPECT_EQ(topics_->check_create("bad name", 1, {}, problem), E::invalid_name);
  EXPECT_EQ(topics_->check_create("..", 1, {}, problem), E::invalid_name);
  EXPECT_EQ(topics_->check_create("t", 0, {}, problem), E::invalid_partitions);
  EXPECT_EQ(topics_->check_create("t", 1, {{"cleanup.policy", "compact"}}, problem),
            E::invalid_config);
  EXPECT_NE(problem.find("cleanup.policy"), std::string::npos);
  EXPECT_EQ(topics_->check_create("t", 1, {{"no.such.config", "1"}}, problem), E::invalid_config);
  EXPECT_EQ(topics_->check_create("t", 1, {{"retention.ms", "soon"}}, problem), E::invalid_config);
  EXPECT_EQ(topics_->check_create("t", 1, {{"min.insync.replicas", "2"}}, problem), E::none);
  ASSERT_TRUE(topics_->create("t", 1, {}).ok());
  EXPECT_EQ(topics_->check_create("t", 1, {}, problem), E::exists);
}

TEST_F(TopicRegistryTest, DeletedTopicsLoseTheirLogsAndStayDeleted) {
  open();
  ASSERT_TRUE(topics_->create("gone", 2, {}).ok());
  ASSERT_TRUE(topics_->create("kept", 1, {}).ok());
  ASSERT_TRUE(topics_->remove_topic("gone").ok());
  EXPECT_EQ(topics_->find("gone"), nullptr);
  EXPECT_TRUE(topics_->being_deleted("gone"));
  std::vector<topic_partition> detached;
  EXPECT_EQ(topics_->remove_idle_logs([&](const topic_partition& tp) { detached.push_back(tp); }),
            0u);
  EXPECT_EQ(detached.size(), 2u);
  EXPECT_FALSE(topics_->being_deleted("gone"));
  EXPECT_EQ(logs_->get({"gone", 0}), nullptr);
  EXPECT_FALSE(path_exists(dir_.path() + "/gone-0"));
  EXPECT_EQ(topics_->remove_topic("gone").code(), errc::not_found);
  close();
  open();
  EXPECT_EQ(topics_->find("gone"), nullptr);
  EXPECT_NE(topics_->find("kept"), nullptr);
}

TEST_F(TopicRegistryTest, AnInterruptedDeletionFinishesAtTheNextStart) {
  open();
  ASSERT_TRUE(topics_->create("half", 1, {}).ok());
  ASSERT_TRUE(topics_->remove_topic("half").ok());  // logs not removed yet: "crash" now
  close();
  EXPECT_TRUE(path_exists(dir_.path() + "/half-0"));
  open();
  EXPECT_EQ(topics_->find("half"), nullptr);
  EXPECT_TRUE(topics_->being_deleted("half"));
  topics_->remove_idle_logs([](const topic_partition&) {});
  EXPECT_FALSE(path_exists(dir_.path() + "/half-0"));
}

TEST_F(TopicRegistryTest, UnlistedPartitionDirectoriesAreAdopted) {
  open();
  ASSERT_TRUE(logs_->create({"stray", 0}, log_config{}).ok());
  ASSERT_TRUE(logs_->create({"stray", 1}, log_config{}).ok());
  close();
  open();
  const topic_info* stray = topics_->find("stray");
  ASSERT_NE(stray, nullptr);
  EXPECT_EQ(stray->partitions, 2);
  const protocol::uuid id = stray->id;
  close();
  open();  // adopted once, then stable
  ASSERT_NE(topics_->find("stray"), nullptr);
  EXPECT_EQ(topics_->find("stray")->id, id);
}

TEST_F(TopicRegistryTest, AddingPartitionsCreatesTheirLogs) {
  open();
  ASSERT_TRUE(topics_->create("grow", 1, {}).ok());
  ASSERT_TRUE(topics_->add_partitions("grow", 4).ok());
  EXPECT_EQ(topics_->find("grow")->partitions, 4);
  EXPECT_NE(logs_->get({"grow", 3}), nullptr);
  close();
  open();
  EXPECT_EQ(topics_->find("grow")->partitions, 4);
}

TEST_F(TopicRegistryTest, AMalformedTopicsFileIsRefused) {
  std::string text = "sluice-topics 1\ntopic orders not-a-uuid 3\n";
  ASSERT_TRUE(write_file_atomically(dir_.path() + "/topics", test::as_bytes(text)).ok());
  log_manager_config config;
  config.data_dir = dir_.path();
  auto m = log_manager::open(config, *disk_);
  ASSERT_TRUE(m.ok());
  logs_ = std::move(*m);
  EXPECT_FALSE(topic_registry::open(dir_.path(), *logs_, log_config{}).ok());
}

TEST(KafkaUuid, TextFormRoundTripsAndMatchesKafka) {
  // Kafka's Uuid.toString() of the UUID with most significant bits 0x1 and least 0x2 is
  // "AAAAAAAAAAEAAAAAAAAAAg" (URL-safe base64 of the 16 bytes, no padding).
  protocol::uuid known;
  known.bytes[7] = 1;
  known.bytes[15] = 2;
  EXPECT_EQ(uuid_to_kafka_string(known), "AAAAAAAAAAEAAAAAAAAAAg");
  EXPECT_EQ(uuid_from_kafka_string("AAAAAAAAAAEAAAAAAAAAAg"), known);
  for (int i = 0; i < 100; ++i) {
    auto id = random_uuid();
    EXPECT_EQ(id.bytes[6] >> 4, 4);  // version 4
    auto text = uuid_to_kafka_string(id);
    EXPECT_EQ(text.size(), 22u);
    EXPECT_EQ(uuid_from_kafka_string(text), id);
  }
  EXPECT_FALSE(uuid_from_kafka_string("too-short").has_value());
  EXPECT_FALSE(uuid_from_kafka_string("AAAAAAAAAAEAAAAAAAAAA+").has_value());
}

TEST(MetaProperties, ClusterIdIsGeneratedOnceAndKept) {
  temp_dir dir;
  auto first = load_or_create_meta_properties(dir.path(), 0);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(uuid_from_kafka_string(first->cluster_id).has_value());
  auto second = load_or_create_meta_properties(dir.path(), 0);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->cluster_id, first->cluster_id);
}

TEST(ApiDispatch, UnknownKeysAndUnsupportedVersionsCloseAsKafkaDoes) {
  EXPECT_EQ(verdict_for(9999, 0), dispatch_verdict::close_connection);
  EXPECT_EQ(verdict_for(-1, 0), dispatch_verdict::close_connection);
  EXPECT_EQ(verdict_for(10, 4), dispatch_verdict::close_connection);  // FindCoordinator
  EXPECT_EQ(verdict_for(0, 2), dispatch_verdict::close_connection);   // Produce v2: magic 1
  EXPECT_EQ(verdict_for(0, 12), dispatch_verdict::close_connection);  // newer than the schema
  EXPECT_EQ(verdict_for(1, 3), dispatch_verdict::close_connection);   // Fetch v3
  EXPECT_EQ(verdict_for(0, 3), dispatch_verdict::handle);
  EXPECT_EQ(verdict_for(1, 17), dispatch_verdict::handle);
  EXPECT_EQ(verdict_for(3, 0), dispatch_verdict::handle);
  EXPECT_EQ(verdict_for(18, 4), dispatch_verdict::handle);
  EXPECT_EQ(verdict_for(18, 5), dispatch_verdict::api_versions_unsupported);
  EXPECT_EQ(verdict_for(18, -1), dispatch_verdict::api_versions_unsupported);
}

TEST(ApiDispatch, TableRowsLieWithinTheCodecAndMatchTheirKeys) {
  for (const auto& row : api_handlers) {
    const auto* codec = protocol::find_api(static_cast<std::int16_t>(row.key));
    ASSERT_NE(codec, nullptr);
    EXPECT_GE(row.min_version, codec->min_version) << codec->name;
    EXPECT_LE(row.max_version, codec->max_version) << codec->name;
    EXPECT_EQ(find_api_handler(static_cast<std::int16_t>(row.key)), &row);
    EXPECT_NE(row.handle, nullptr);
  }
}

TEST(ApiDispatch, UnsupportedApiVersionsAnswerIsReadableAtV0) {
  response_address address{18, 0, 42};
  auto frame =
      encode_response(address, api_versions_response(protocol::error_code::unsupported_version));
  ASSERT_TRUE(frame.has_value());
  frame->seal();
  std::vector<iovec> pieces(16);
  auto n = frame->fill_iovecs(4, pieces);  // skip the size prefix
  std::vector<std::byte> bytes;
  for (std::size_t i = 0; i < n; ++i) {
    auto* base = static_cast<const std::byte*>(pieces[i].iov_base);
    bytes.insert(bytes.end(), base, base + pieces[i].iov_len);
  }
  protocol::reader in(bytes);
  protocol::ResponseHeader header;
  header.decode(in, 0);
  protocol::ApiVersionsResponse body;
  body.decode(in, 0);
  ASSERT_TRUE(in.ok()) << in.error_detail();
  EXPECT_EQ(in.remaining(), 0u);
  EXPECT_EQ(header.correlation_id, 42);
  EXPECT_EQ(body.error_code, 35);
  ASSERT_EQ(body.api_keys.size(), api_handlers.size());
  for (std::size_t i = 0; i < api_handlers.size(); ++i) {
    EXPECT_EQ(body.api_keys[i].api_key, static_cast<std::int16_t>(api_handlers[i].key));
    EXPECT_EQ(body.api_keys[i].min_version, api_handlers[i].min_version);
    EXPECT_EQ(body.api_keys[i].max_version, api_handlers[i].max_version);
  }
}

}  // namespace
}  // namespace sluice
