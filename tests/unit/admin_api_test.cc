// The admin APIs (CreatePartitions, DescribeConfigs, IncrementalAlterConfigs,
// DescribeCluster), called as kafka_handler calls them: a request encoded with the
// generated structs, the handler run against a broker_context over a temporary data
// directory, and the response read back from the other end of a socket pair, decoded at
// the same version, every field checked.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "broker/api/api_table.h"
#include "broker/broker_context.h"
#include "broker/topic_registry.h"
#include "net/buffer_ring.h"
#include "net/connection.h"
#include "net/protocol/generated/create_partitions.h"
#include "net/protocol/generated/describe_cluster.h"
#include "net/protocol/generated/describe_configs.h"
#include "net/protocol/generated/headers.h"
#include "net/protocol/generated/incremental_alter_configs.h"
#include "tests/support/storage_fixture.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using test::temp_dir;

constexpr std::int32_t node_id = 7;
constexpr std::int16_t no_error = 0;
constexpr std::int16_t unknown_topic = 3;
constexpr std::int16_t invalid_partitions = 37;
constexpr std::int16_t invalid_replica_assignment = 39;
constexpr std::int16_t invalid_config = 40;
constexpr std::int16_t invalid_request = 42;
constexpr std::int8_t topic_resource = 2;
constexpr std::int8_t broker_resource = 4;
constexpr std::int8_t dynamic_topic_config = 1;
constexpr std::int8_t static_broker_config = 4;
constexpr std::int8_t default_config = 5;
// Kafka's defaults, worked out by hand: 7 days and 1 GiB.
constexpr std::string_view seven_days_ms = "604800000";
constexpr std::string_view one_gib = "1073741824";

class ignore_frames final : public request_handler {
 public:
  void on_frame(connection&, std::span<const std::byte>) noexcept override {}
};

class owner final : public connection_owner {
 public:
  void connection_finished(connection*) noexcept override { finished = true; }
  bool finished = false;
};

class AdminApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto made = reactor::create(reactor_config{});
    ASSERT_TRUE(made.ok());
    ring_ = std::move(*made);
    disk_ = std::make_unique<uring_disk>(*ring_);
    auto buffers = buffer_ring::create(*ring_, buffer_ring_config{});
    ASSERT_TRUE(buffers.ok()) << buffers.failure().detail();
    buffers_ = std::move(*buffers);
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    peer_fd_ = fds[1];
    conn_ = std::make_unique<connection>(*ring_, *buffers_, owner_, metrics_, connection_config{},
                                         fds[0], "admin-test");
    conn_->start(std::make_unique<ignore_frames>());
  }

  void TearDown() override {
    close_broker();
    conn_->close();
    for (int i = 0; i < 500 && !owner_.finished; ++i) ring_->run_once(10ms);
    EXPECT_TRUE(owner_.finished);
    conn_.reset();
    ::close(peer_fd_);
  }

  // Opens (or reopens) the broker over the data directory, with `defaults` standing for
  // the broker's flags.
  void open_broker(const log_config& defaults = log_config{}) {
    defaults_ = defaults;
    log_manager_config config;
    config.data_dir = dir_.path();
    config.defaults = defaults;
    auto logs = log_manager::open(config, *disk_);
    ASSERT_TRUE(logs.ok()) << logs.failure().detail();
    logs_ = std::move(*logs);
    auto topics = topic_registry::open(dir_.path(), *logs_, defaults);
    ASSERT_TRUE(topics.ok()) << topics.failure().detail();
    topics_ = std::move(*topics);
    broker_identity identity;
    identity.node_id = node_id;
    identity.advertised_host = "broker.test";
    identity.advertised_port = 19092;
    identity.cluster_id = "cluster-of-one";
    identity.auto_create_topics = false;
    identity.default_partitions = 3;
    broker_ = std::make_unique<broker_context>(*ring_, *logs_, *topics_, identity);
  }

  void close_broker() {
    broker_.reset();
    topics_.reset();
    if (logs_) {
      EXPECT_TRUE(logs_->shutdown().ok());
      logs_.reset();
    }
  }

  void reopen_broker() {
    close_broker();
    open_broker(defaults_);
  }

  // Runs `handle` on `request` at `version` and decodes the response it sent.
  template <typename Response, typename Request>
  Response call(api_handler_function handle, std::int16_t version, const Request& request) {
    protocol::writer out;
    request.encode(out, version);
    EXPECT_TRUE(out.ok());
    const std::vector<std::byte> body(out.bytes().begin(), out.bytes().end());
    protocol::reader in(body);
    const std::int32_t correlation_id = ++correlation_id_;
    request_context ctx{*broker_,
                        conn_.get(),
                        {Request::api_key, version, correlation_id},
                        "admin-test",
                        conn_->peer()};
    EXPECT_EQ(handle(ctx, in), handler_status::done);
    EXPECT_EQ(in.remaining(), 0u);

    // The decoded response views the frame's bytes: they live as long as the test.
    frames_.push_back(read_frame());
    protocol::reader reply(frames_.back());
    protocol::ResponseHeader header;
    header.decode(reply, *protocol::response_header_version(Request::api_key, version));
    EXPECT_EQ(header.correlation_id, correlation_id);
    Response response;
    response.decode(reply, version);
    EXPECT_TRUE(reply.ok()) << reply.error_detail();
    EXPECT_EQ(reply.remaining(), 0u);
    return response;
  }

  // One frame from the peer's end, running the reactor until it has been sent.
  std::vector<std::byte> read_frame() {
    std::vector<std::byte> bytes;
    for (int turn = 0; turn < 500; ++turn) {
      ring_->run_once(1ms);
      std::byte chunk[65536];
      const ssize_t got = ::recv(peer_fd_, chunk, sizeof chunk, MSG_DONTWAIT);
      if (got > 0) bytes.insert(bytes.end(), chunk, chunk + got);
      if (bytes.size() >= 4) {
        const std::size_t size = (std::to_integer<std::size_t>(bytes[0]) << 24) |
                                 (std::to_integer<std::size_t>(bytes[1]) << 16) |
                                 (std::to_integer<std::size_t>(bytes[2]) << 8) |
                                 std::to_integer<std::size_t>(bytes[3]);
        if (bytes.size() == size + 4) return {bytes.begin() + 4, bytes.end()};
        if (bytes.size() > size + 4) break;
      }
    }
    ADD_FAILURE() << "no complete response frame (" << bytes.size() << " bytes)";
    return {};
  }

  void create_topic(const std::string& name, std::int32_t partitions,
                    const topic_config_overrides& overrides = {}) {
    ASSERT_TRUE(broker_->create_topic(name, partitions, overrides).ok());
  }

  temp_dir dir_;
  std::unique_ptr<reactor> ring_;
  std::unique_ptr<uring_disk> disk_;
  std::unique_ptr<buffer_ring> buffers_;
  owner owner_;
  net_metrics metrics_;
  std::unique_ptr<connection> conn_;
  int peer_fd_ = -1;
  log_config defaults_;
  std::unique_ptr<log_manager> logs_;
  std::unique_ptr<topic_registry> topics_;
  std::unique_ptr<broker_context> broker_;
  std::int32_t correlation_id_ = 100;
  std::deque<std::vector<std::byte>> frames_;
};

// ---- CreatePartitions -------------------------------------------------------------------

using CreatePartitionsRequest = protocol::CreatePartitionsRequest;
using CreatePartitionsResponse = protocol::CreatePartitionsResponse;

CreatePartitionsRequest::CreatePartitionsTopic grow(std::string_view name, std::int32_t count) {
  CreatePartitionsRequest::CreatePartitionsTopic topic;
  topic.name = name;
  topic.count = count;
  topic.assignments = std::nullopt;
  return topic;
}

TEST_F(AdminApiTest, CreatePartitionsGrowsTopicsDurably) {
  open_broker();
  create_topic("grow", 1);
  for (std::int16_t version : {0, 2, 3}) {
    SCOPED_TRACE(version);
    const std::int32_t before = topics_->find("grow")->partitions;
    CreatePartitionsRequest request;
    request.topics = {grow("grow", before + 2)};
    request.timeout_ms = 1000;
    auto response = call<CreatePartitionsResponse>(handle_create_partitions, version, request);
    EXPECT_EQ(response.throttle_time_ms, 0);
    ASSERT_EQ(response.results.size(), 1u);
    EXPECT_EQ(response.results[0].name, "grow");
    EXPECT_EQ(response.results[0].error_code, no_error);
    EXPECT_EQ(response.results[0].error_message, std::nullopt);
    EXPECT_EQ(topics_->find("grow")->partitions, before + 2);
    EXPECT_NE(logs_->get({"grow", before + 1}), nullptr);
    EXPECT_NE(broker_->partition("grow", before + 1), nullptr);
  }
  reopen_broker();
  EXPECT_EQ(topics_->find("grow")->partitions, 7);
  EXPECT_NE(logs_->get({"grow", 6}), nullptr);
}

TEST_F(AdminApiTest, CreatePartitionsValidateOnlyChangesNothing) {
  open_broker();
  create_topic("same", 2);
  CreatePartitionsRequest request;
  request.topics = {grow("same", 5)};
  request.validate_only = true;
  auto response = call<CreatePartitionsResponse>(handle_create_partitions, 1, request);
  ASSERT_EQ(response.results.size(), 1u);
  EXPECT_EQ(response.results[0].error_code, no_error);
  EXPECT_EQ(response.results[0].error_message, std::nullopt);
  EXPECT_EQ(topics_->find("same")->partitions, 2);
  EXPECT_EQ(logs_->get({"same", 2}), nullptr);
  // A refusal is reported with validate_only too.
  request.topics = {grow("same", 2)};
  response = call<CreatePartitionsResponse>(handle_create_partitions, 1, request);
  EXPECT_EQ(response.results[0].error_code, invalid_partitions);
}

TEST_F(AdminApiTest, CreatePartitionsRefusesAsKafka) {
  open_broker();
  create_topic("three", 3);
  create_topic("twice", 1);
  CreatePartitionsRequest request;
  request.topics = {grow("three", 3), grow("three-not", 4),
                    grow("twice", 2), grow("twice", 3),
                    grow("three", 2), grow("three", topic_registry::partitions_per_topic_max + 1)};
  auto response = call<CreatePartitionsResponse>(handle_create_partitions, 3, request);
  ASSERT_EQ(response.results.size(), 6u);
  const std::vector<std::pair<std::string_view, std::int16_t>> expected = {
      {"three", invalid_request},  // named more than once: every entry refused
      {"three-not", unknown_topic}, {"twice", invalid_request}, {"twice", invalid_request},
      {"three", invalid_request},   {"three", invalid_request},
  };
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(response.results[i].name, expected[i].first) << i;
    EXPECT_EQ(response.results[i].error_code, expected[i].second) << i;
    ASSERT_TRUE(response.results[i].error_message.has_value()) << i;
    EXPECT_FALSE(response.results[i].error_message->empty()) << i;
  }
  EXPECT_EQ(topics_->find("twice")->partitions, 1);

  // One at a time, each refusal has its own code.
  for (auto [count, code] :
       {std::pair{3, invalid_partitions}, std::pair{2, invalid_partitions},
        std::pair{topic_registry::partitions_per_topic_max + 1, invalid_partitions}}) {
    request.topics = {grow("three", count)};
    response = call<CreatePartitionsResponse>(handle_create_partitions, 3, request);
    ASSERT_EQ(response.results.size(), 1u);
    EXPECT_EQ(response.results[0].error_code, code) << count;
  }
  EXPECT_EQ(topics_->find("three")->partitions, 3);
}

TEST_F(AdminApiTest, CreatePartitionsAcceptsAssignmentsOnlyOntoThisNode) {
  open_broker();
  create_topic("placed", 1);
  auto with = [](std::vector<std::vector<std::int32_t>> brokers, std::int32_t count) {
    auto topic = grow("placed", count);
    topic.assignments.emplace();
    for (auto& ids : brokers) {
      CreatePartitionsRequest::CreatePartitionsAssignment assignment;
      assignment.broker_ids = ids;
      topic.assignments->push_back(assignment);
    }
    return topic;
  };
  CreatePartitionsRequest request;
  for (auto refused : {with({{node_id + 1}}, 2), with({{node_id, node_id + 1}}, 2),
                       with({{node_id}}, 3), with({{}}, 2)}) {
    request.topics = {refused};
    auto response = call<CreatePartitionsResponse>(handle_create_partitions, 1, request);
    ASSERT_EQ(response.results.size(), 1u);
    EXPECT_EQ(response.results[0].error_code, invalid_replica_assignment);
    EXPECT_EQ(topics_->find("placed")->partitions, 1);
  }
  request.topics = {with({{node_id}, {node_id}}, 3)};
  auto response = call<CreatePartitionsResponse>(handle_create_partitions, 1, request);
  EXPECT_EQ(response.results[0].error_code, no_error);
  EXPECT_EQ(topics_->find("placed")->partitions, 3);
}

// ---- DescribeConfigs --------------------------------------------------------------------

using DescribeConfigsRequest = protocol::DescribeConfigsRequest;
using DescribeConfigsResponse = protocol::DescribeConfigsResponse;
using ConfigResult = DescribeConfigsResponse::DescribeConfigsResourceResult;

DescribeConfigsRequest::DescribeConfigsResource resource(
    std::int8_t type, std::string_view name,
    std::optional<std::vector<std::string_view>> keys = std::nullopt) {
  DescribeConfigsRequest::DescribeConfigsResource out;
  out.resource_type = type;
  out.resource_name = name;
  out.configuration_keys = std::move(keys);
  return out;
}

const ConfigResult* find_config(const DescribeConfigsResponse::DescribeConfigsResult& result,
                                std::string_view name) {
  for (const auto& config : result.configs) {
    if (config.name == name) return &config;
  }
  return nullptr;
}

TEST_F(AdminApiTest, DescribeConfigsOfATopicGivesValuesAndTheirSources) {
  // The broker's flags set retention.ms to one hour; the topic overrides segment.bytes.
  log_config flags;
  flags.retention_ms = std::chrono::hours(1);
  open_broker(flags);
  create_topic("described", 1, {{"segment.bytes", "1048576"}});

  DescribeConfigsRequest request;
  request.resources = {resource(topic_resource, "described")};
  request.include_synonyms = true;
  request.include_documentation = true;
  auto response = call<DescribeConfigsResponse>(handle_describe_configs, 4, request);
  EXPECT_EQ(response.throttle_time_ms, 0);
  ASSERT_EQ(response.results.size(), 1u);
  const auto& result = response.results[0];
  EXPECT_EQ(result.error_code, no_error);
  EXPECT_EQ(result.error_message, std::nullopt);
  EXPECT_EQ(result.resource_type, topic_resource);
  EXPECT_EQ(result.resource_name, "described");
  // Every config Sluice accepts on a topic is listed, each once, none sensitive or
  // read-only.
  for (std::string_view name :
       {"cleanup.policy", "retention.ms", "retention.bytes", "segment.bytes", "segment.ms",
        "segment.index.bytes", "index.interval.bytes", "flush.messages", "flush.ms",
        "max.message.bytes", "message.timestamp.type", "min.insync.replicas", "compression.type",
        "unclean.leader.election.enable", "preallocate"}) {
    EXPECT_NE(find_config(result, name), nullptr) << name;
  }
  for (const auto& config : result.configs) {
    SCOPED_TRACE(std::string(config.name));
    EXPECT_FALSE(config.read_only);
    EXPECT_FALSE(config.is_sensitive);
    EXPECT_TRUE(config.value.has_value());
    EXPECT_TRUE(config.documentation.has_value());
    EXPECT_FALSE(config.synonyms.empty());
    EXPECT_NE(config.config_type, 0);
    std::set<std::string_view> names;
    for (const auto& other : result.configs) names.insert(other.name);
    EXPECT_EQ(names.size(), result.configs.size());
    // The effective value and source are the first synonym's.
    EXPECT_EQ(config.synonyms[0].value, config.value);
    EXPECT_EQ(config.synonyms[0].source, config.config_source);
  }

  const ConfigResult* segment = find_config(result, "segment.bytes");
  ASSERT_NE(segment, nullptr);
  EXPECT_EQ(segment->value, "1048576");
  EXPECT_EQ(segment->config_source, dynamic_topic_config);
  EXPECT_EQ(segment->config_type, 3);  // INT
  ASSERT_EQ(segment->synonyms.size(), 2u);
  EXPECT_EQ(segment->synonyms[0].name, "segment.bytes");
  EXPECT_EQ(segment->synonyms[1].name, "log.segment.bytes");
  EXPECT_EQ(segment->synonyms[1].value, one_gib);
  EXPECT_EQ(segment->synonyms[1].source, default_config);

  const ConfigResult* retention = find_config(result, "retention.ms");
  ASSERT_NE(retention, nullptr);
  EXPECT_EQ(retention->value, "3600000");
  EXPECT_EQ(retention->config_source, static_broker_config);
  EXPECT_EQ(retention->config_type, 5);  // LONG
  ASSERT_EQ(retention->synonyms.size(), 2u);
  EXPECT_EQ(retention->synonyms[0].name, "log.retention.ms");
  EXPECT_EQ(retention->synonyms[1].name, "log.retention.ms");
  EXPECT_EQ(retention->synonyms[1].value, seven_days_ms);
  EXPECT_EQ(retention->synonyms[1].source, default_config);

  const ConfigResult* cleanup = find_config(result, "cleanup.policy");
  ASSERT_NE(cleanup, nullptr);
  EXPECT_EQ(cleanup->value, "delete");
  EXPECT_EQ(cleanup->config_source, default_config);
  EXPECT_EQ(cleanup->config_type, 7);  // LIST
  const ConfigResult* unlimited = find_config(result, "retention.bytes");
  ASSERT_NE(unlimited, nullptr);
  EXPECT_EQ(unlimited->value, "-1");
  EXPECT_EQ(unlimited->config_source, default_config);
}

TEST_F(AdminApiTest, DescribeConfigsHonoursKeysVersionsAndOptions) {
  open_broker();
  create_topic("keys", 1, {{"retention.ms", "1000"}});
  DescribeConfigsRequest request;
  request.resources = {
      resource(topic_resource, "keys",
               std::vector<std::string_view>{"retention.ms", "no.such.config", "segment.ms"})};
  // v0: no synonyms, no source; is_default instead.
  auto response = call<DescribeConfigsResponse>(handle_describe_configs, 0, request);
  ASSERT_EQ(response.results.size(), 1u);
  ASSERT_EQ(response.results[0].configs.size(), 2u);
  const auto& retention = response.results[0].configs[0];
  EXPECT_EQ(retention.name, "retention.ms");
  EXPECT_EQ(retention.value, "1000");
  EXPECT_FALSE(retention.is_default);
  EXPECT_EQ(retention.config_source, -1);  // not on the wire at v0: the decoder's default
  EXPECT_TRUE(retention.synonyms.empty());
  const auto& segment = response.results[0].configs[1];
  EXPECT_EQ(segment.name, "segment.ms");
  EXPECT_EQ(segment.value, seven_days_ms);
  EXPECT_TRUE(segment.is_default);

  // v1 without include_synonyms: sources, no synonyms.
  response = call<DescribeConfigsResponse>(handle_describe_configs, 1, request);
  ASSERT_EQ(response.results[0].configs.size(), 2u);
  EXPECT_EQ(response.results[0].configs[0].config_source, dynamic_topic_config);
  EXPECT_EQ(response.results[0].configs[1].config_source, default_config);
  EXPECT_TRUE(response.results[0].configs[0].synonyms.empty());

  // v3 without include_documentation: the type, documentation null.
  response = call<DescribeConfigsResponse>(handle_describe_configs, 3, request);
  ASSERT_EQ(response.results[0].configs.size(), 2u);
  EXPECT_EQ(response.results[0].configs[0].config_type, 5);
  EXPECT_EQ(response.results[0].configs[0].documentation, std::nullopt);

  // An empty key list asks for nothing.
  request.resources = {resource(topic_resource, "keys", std::vector<std::string_view>{})};
  response = call<DescribeConfigsResponse>(handle_describe_configs, 4, request);
  EXPECT_EQ(response.results[0].error_code, no_error);
  EXPECT_TRUE(response.results[0].configs.empty());
}

TEST_F(AdminApiTest, DescribeConfigsOfThisBrokerAreReadOnlyFlags) {
  log_config flags;
  flags.segment_bytes = 4096;
  open_broker(flags);
  DescribeConfigsRequest request;
  const std::string self = std::to_string(node_id);
  request.resources = {resource(broker_resource, self)};
  request.include_synonyms = true;
  auto response = call<DescribeConfigsResponse>(handle_describe_configs, 2, request);
  ASSERT_EQ(response.results.size(), 1u);
  const auto& result = response.results[0];
  EXPECT_EQ(result.error_code, no_error);
  EXPECT_EQ(result.resource_type, broker_resource);
  EXPECT_EQ(result.resource_name, std::to_string(node_id));
  for (const auto& config : result.configs) {
    EXPECT_TRUE(config.read_only) << config.name;
    EXPECT_FALSE(config.is_sensitive) << config.name;
  }
  auto expect = [&](std::string_view name, std::string_view value, std::int8_t source) {
    const ConfigResult* config = find_config(result, name);
    ASSERT_NE(config, nullptr) << name;
    EXPECT_EQ(config->value, value) << name;
    EXPECT_EQ(config->config_source, source) << name;
  };
  expect("log.segment.bytes", "4096", static_broker_config);
  expect("log.retention.ms", seven_days_ms, default_config);
  expect("num.partitions", "3", static_broker_config);
  expect("auto.create.topics.enable", "false", static_broker_config);
  expect("node.id", std::to_string(node_id), static_broker_config);
  expect("broker.id", std::to_string(node_id), static_broker_config);
  expect("advertised.listeners", "PLAINTEXT://broker.test:19092", static_broker_config);
  expect("log.cleanup.policy", "delete", default_config);
  // No topic config names in a broker's list.
  EXPECT_EQ(find_config(result, "segment.bytes"), nullptr);
}

TEST_F(AdminApiTest, DescribeConfigsRefusesUnknownResources) {
  open_broker();
  DescribeConfigsRequest request;
  request.resources = {resource(topic_resource, "absent"), resource(broker_resource, "8"),
                       resource(broker_resource, ""), resource(8, "root"),
                       resource(topic_resource, "bad name")};
  auto response = call<DescribeConfigsResponse>(handle_describe_configs, 4, request);
  ASSERT_EQ(response.results.size(), 5u);
  const std::int16_t expected[] = {unknown_topic, invalid_request, no_error, invalid_request,
                                   17 /* INVALID_TOPIC_EXCEPTION */};
  for (std::size_t i = 0; i < 5; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(response.results[i].error_code, expected[i]);
    EXPECT_EQ(response.results[i].resource_type, request.resources[i].resource_type);
    EXPECT_EQ(response.results[i].resource_name, request.resources[i].resource_name);
    EXPECT_TRUE(response.results[i].configs.empty());
    EXPECT_EQ(response.results[i].error_message.has_value(), expected[i] != no_error);
  }
}

// ---- IncrementalAlterConfigs ------------------------------------------------------------

using AlterRequest = protocol::IncrementalAlterConfigsRequest;
using AlterResponse = protocol::IncrementalAlterConfigsResponse;

AlterRequest::AlterConfigsResource alter(
    std::int8_t type, std::string_view name,
    std::vector<std::tuple<std::string_view, std::int8_t, std::optional<std::string_view>>>
        changes) {
  AlterRequest::AlterConfigsResource out;
  out.resource_type = type;
  out.resource_name = name;
  for (auto& [config, operation, value] : changes) {
    AlterRequest::AlterableConfig change;
    change.name = config;
    change.config_operation = operation;
    change.value = value;
    out.configs.push_back(change);
  }
  return out;
}

constexpr std::int8_t op_set = 0;
constexpr std::int8_t op_delete = 1;
constexpr std::int8_t op_append = 2;

TEST_F(AdminApiTest, IncrementalAlterConfigsSetsAndDeletesLiveAndDurably) {
  open_broker();
  create_topic("tuned", 2, {{"segment.ms", "60000"}});
  AlterRequest request;
  request.resources = {alter(topic_resource, "tuned",
                             {{"retention.ms", op_set, "1000"}, {"segment.ms", op_delete, {}}})};
  auto response = call<AlterResponse>(handle_incremental_alter_configs, 1, request);
  EXPECT_EQ(response.throttle_time_ms, 0);
  ASSERT_EQ(response.responses.size(), 1u);
  EXPECT_EQ(response.responses[0].error_code, no_error);
  EXPECT_EQ(response.responses[0].error_message, std::nullopt);
  EXPECT_EQ(response.responses[0].resource_type, topic_resource);
  EXPECT_EQ(response.responses[0].resource_name, "tuned");
  const topic_info* topic = topics_->find("tuned");
  EXPECT_EQ(topic->overrides, (topic_config_overrides{{"retention.ms", "1000"}}));
  // Applied to the live logs at once.
  for (int p = 0; p < 2; ++p) {
    EXPECT_EQ(logs_->get({"tuned", p})->config().retention_ms, 1000ms);
    EXPECT_EQ(logs_->get({"tuned", p})->config().segment_ms, log_config{}.segment_ms);
  }
  reopen_broker();
  EXPECT_EQ(topics_->find("tuned")->overrides, (topic_config_overrides{{"retention.ms", "1000"}}));
  EXPECT_EQ(logs_->get({"tuned", 1})->config().retention_ms, 1000ms);

  request.resources = {alter(topic_resource, "tuned", {{"retention.ms", op_delete, {}}})};
  response = call<AlterResponse>(handle_incremental_alter_configs, 0, request);
  EXPECT_EQ(response.responses[0].error_code, no_error);
  EXPECT_TRUE(topics_->find("tuned")->overrides.empty());
  EXPECT_EQ(logs_->get({"tuned", 0})->config().retention_ms, log_config{}.retention_ms);
}

TEST_F(AdminApiTest, IncrementalAlterConfigsValidateOnlyChangesNothing) {
  open_broker();
  create_topic("kept", 1);
  AlterRequest request;
  request.validate_only = true;
  request.resources = {alter(topic_resource, "kept", {{"retention.ms", op_set, "1000"}})};
  auto response = call<AlterResponse>(handle_incremental_alter_configs, 1, request);
  EXPECT_EQ(response.responses[0].error_code, no_error);
  EXPECT_TRUE(topics_->find("kept")->overrides.empty());
  EXPECT_EQ(logs_->get({"kept", 0})->config().retention_ms, log_config{}.retention_ms);
  request.resources = {alter(topic_resource, "kept", {{"retention.ms", op_set, "-5"}})};
  response = call<AlterResponse>(handle_incremental_alter_configs, 1, request);
  EXPECT_EQ(response.responses[0].error_code, invalid_config);
}

TEST_F(AdminApiTest, IncrementalAlterConfigsRefusesAsKafka) {
  open_broker();
  create_topic("strict", 1, {{"retention.ms", "5000"}});
  const std::string self = std::to_string(node_id);
  struct refusal {
    AlterRequest::AlterConfigsResource resource;
    std::int16_t code;
    std::string_view message_part;
  };
  const std::vector<refusal> refusals = {
      {alter(topic_resource, "strict", {{"cleanup.policy", op_set, "shred"}}), invalid_config,
       "cleanup.policy"},
      {alter(topic_resource, "strict", {{"no.such.config", op_set, "1"}}), invalid_config,
       "no.such.config"},
      {alter(topic_resource, "strict", {{"retention.ms", op_set, "soon"}}), invalid_config,
       "retention.ms"},
      {alter(topic_resource, "strict", {{"cleanup.policy", op_append, "delete"}}), invalid_config,
       "append"},
      {alter(topic_resource, "strict", {{"retention.ms", 3, "1"}}), invalid_config, "subtract"},
      {alter(topic_resource, "strict", {{"retention.ms", 9, "1"}}), invalid_request, "operation"},
      {alter(topic_resource, "strict", {{"retention.ms", op_set, std::nullopt}}), invalid_request,
       "null"},
      {alter(topic_resource, "strict",
             {{"retention.ms", op_set, "1"}, {"retention.ms", op_delete, {}}}),
       invalid_request, "more than once"},
      {alter(topic_resource, "absent", {{"retention.ms", op_set, "1"}}), unknown_topic, "absent"},
      {alter(broker_resource, self, {{"log.retention.ms", op_set, "1"}}), invalid_request,
       "log.retention.ms"},
      {alter(broker_resource, "", {{"log.retention.ms", op_set, "1"}}), invalid_request,
       "broker id"},
      {alter(6, "group", {{"x", op_set, "1"}}), invalid_request, "resource type"},
  };
  for (const auto& [resource, code, part] : refusals) {
    SCOPED_TRACE(std::string(part));
    AlterRequest request;
    request.resources = {resource};
    auto response = call<AlterResponse>(handle_incremental_alter_configs, 1, request);
    ASSERT_EQ(response.responses.size(), 1u);
    EXPECT_EQ(response.responses[0].error_code, code);
    ASSERT_TRUE(response.responses[0].error_message.has_value());
    EXPECT_NE(response.responses[0].error_message->find(part), std::string_view::npos)
        << *response.responses[0].error_message;
    EXPECT_EQ(response.responses[0].resource_type, resource.resource_type);
    EXPECT_EQ(response.responses[0].resource_name, resource.resource_name);
  }
  // Nothing changed, in the registry or the log.
  EXPECT_EQ(topics_->find("strict")->overrides, (topic_config_overrides{{"retention.ms", "5000"}}));
  EXPECT_EQ(logs_->get({"strict", 0})->config().retention_ms, 5000ms);

  // A broker resource with nothing to change succeeds; the same topic twice does not.
  AlterRequest request;
  request.resources = {alter(broker_resource, self, {}),
                       alter(topic_resource, "strict", {{"retention.ms", op_set, "1"}}),
                       alter(topic_resource, "strict", {{"retention.ms", op_set, "2"}})};
  auto response = call<AlterResponse>(handle_incremental_alter_configs, 0, request);
  ASSERT_EQ(response.responses.size(), 3u);
  EXPECT_EQ(response.responses[0].error_code, no_error);
  EXPECT_EQ(response.responses[1].error_code, invalid_request);
  EXPECT_EQ(response.responses[2].error_code, invalid_request);
  EXPECT_EQ(topics_->find("strict")->overrides.at("retention.ms"), "5000");
}

// ---- DescribeCluster --------------------------------------------------------------------

TEST_F(AdminApiTest, DescribeClusterNamesThisBrokerAsTheCluster) {
  open_broker();
  for (std::int16_t version : {0, 1}) {
    SCOPED_TRACE(version);
    protocol::DescribeClusterRequest request;
    request.include_cluster_authorized_operations = true;
    auto response =
        call<protocol::DescribeClusterResponse>(handle_describe_cluster, version, request);
    EXPECT_EQ(response.throttle_time_ms, 0);
    EXPECT_EQ(response.error_code, no_error);
    EXPECT_EQ(response.error_message, std::nullopt);
    EXPECT_EQ(response.endpoint_type, 1);
    EXPECT_EQ(response.cluster_id, "cluster-of-one");
    EXPECT_EQ(response.controller_id, node_id);
    ASSERT_EQ(response.brokers.size(), 1u);
    EXPECT_EQ(response.brokers[0].broker_id, node_id);
    EXPECT_EQ(response.brokers[0].host, "broker.test");
    EXPECT_EQ(response.brokers[0].port, 19092);
    EXPECT_EQ(response.brokers[0].rack, std::nullopt);
    EXPECT_EQ(response.cluster_authorized_operations, std::numeric_limits<std::int32_t>::min());
  }
}

TEST_F(AdminApiTest, DescribeClusterRefusesOtherEndpointTypes) {
  open_broker();
  protocol::DescribeClusterRequest request;
  request.endpoint_type = 2;  // controllers
  auto response = call<protocol::DescribeClusterResponse>(handle_describe_cluster, 1, request);
  EXPECT_EQ(response.error_code, 114);  // MISMATCHED_ENDPOINT_TYPE
  EXPECT_TRUE(response.error_message.has_value());
  EXPECT_TRUE(response.brokers.empty());
  request.endpoint_type = 9;
  response = call<protocol::DescribeClusterResponse>(handle_describe_cluster, 1, request);
  EXPECT_EQ(response.error_code, 115);  // UNSUPPORTED_ENDPOINT_TYPE
}

// ---- dispatch ---------------------------------------------------------------------------

TEST_F(AdminApiTest, TheTableDispatchesEachVersionAndAMalformedBodyCloses) {
  for (auto [key, max] : {std::pair{32, 4}, std::pair{37, 3}, std::pair{44, 1}, std::pair{60, 1}}) {
    for (std::int16_t v = 0; v <= max; ++v) {
      EXPECT_EQ(verdict_for(static_cast<std::int16_t>(key), v), dispatch_verdict::handle);
    }
    EXPECT_EQ(verdict_for(static_cast<std::int16_t>(key), static_cast<std::int16_t>(max + 1)),
              dispatch_verdict::close_connection);
  }
  open_broker();
  const std::byte truncated[] = {std::byte{0}, std::byte{0}, std::byte{0}};
  for (auto handle :
       {handle_create_partitions, handle_describe_configs, handle_incremental_alter_configs}) {
    protocol::reader in(truncated);
    request_context ctx{*broker_, conn_.get(), {0, 0, 1}, std::nullopt, conn_->peer()};
    EXPECT_EQ(handle(ctx, in), handler_status::malformed);
  }
}

}  // namespace
}  // namespace sluice
