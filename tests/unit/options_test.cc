#include "broker/options.h"

#include <gtest/gtest.h>

#include <fstream>
#include <vector>

namespace sluice {
namespace {

parse_outcome parse(std::vector<const char*> args) {
  args.insert(args.begin(), "sluice");
  return parse_broker_options(static_cast<int>(args.size()), args.data());
}

std::string error_of(const parse_outcome& outcome) {
  auto* failure = std::get_if<parse_error>(&outcome);
  return failure ? failure->message : "";
}

TEST(BrokerOptions, DefaultsAreDurable) {
  auto outcome = parse({});
  auto* options = std::get_if<broker_options>(&outcome);
  ASSERT_NE(options, nullptr);
  EXPECT_EQ(options->data_dir, "./sluice-data");
  EXPECT_EQ(options->log.flush.every_messages, std::optional<std::uint64_t>(1));
  EXPECT_FALSE(options->log.retention_bytes.has_value());
  EXPECT_EQ(options->log.segment_bytes, 1024u * 1024 * 1024);
}

TEST(BrokerOptions, StorageKnobsParse) {
  auto outcome = parse({"--segment-bytes", "1048576", "--retention-ms", "-1", "--flush-messages",
                        "-1", "--flush-ms", "250", "--log-level", "debug", "--data-dir", "/x"});
  auto* options = std::get_if<broker_options>(&outcome);
  ASSERT_NE(options, nullptr) << error_of(outcome);
  EXPECT_EQ(options->log.segment_bytes, 1048576u);
  EXPECT_FALSE(options->log.retention_ms.has_value());
  EXPECT_FALSE(options->log.flush.every_messages.has_value());
  EXPECT_EQ(options->log.flush.every_ms, std::chrono::milliseconds(250));
  EXPECT_EQ(options->level, log_level::debug);
  EXPECT_EQ(options->data_dir, "/x");
}

TEST(BrokerOptions, BadFlagsNameTheFlag) {
  EXPECT_NE(error_of(parse({"--no-such-flag"})).find("--no-such-flag"), std::string::npos);
  EXPECT_NE(error_of(parse({"--segment-bytes", "abc"})).find("--segment-bytes"), std::string::npos);
  EXPECT_NE(error_of(parse({"--segment-bytes", "0"})).find("--segment-bytes"), std::string::npos);
  EXPECT_NE(error_of(parse({"--log-level", "loud"})).find("--log-level"), std::string::npos);
  EXPECT_NE(error_of(parse({"--flush-messages", "0"})).find("--flush-messages"), std::string::npos);
}

TEST(BrokerOptions, HelpListsEveryFlagWithItsDefault) {
  auto outcome = parse({"--help"});
  auto* help = std::get_if<parse_help>(&outcome);
  ASSERT_NE(help, nullptr);
  for (const char* flag : {"--data-dir", "--log-level", "--segment-bytes", "--segment-ms",
                           "--retention-bytes", "--retention-ms", "--index-interval-bytes",
                           "--flush-messages", "--flush-ms", "--max-message-bytes", "--config"}) {
    EXPECT_NE(help->text.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(help->text.find("(=1073741824)"), std::string::npos);
}

TEST(BrokerOptions, RetentionCheckIntervalIsKafkasAndMustBePositive) {
  EXPECT_EQ(std::get<broker_options>(parse({})).retention_check_interval, std::chrono::minutes(5));
  auto outcome = parse({"--log-retention-check-interval-ms", "5000"});
  ASSERT_NE(std::get_if<broker_options>(&outcome), nullptr) << error_of(outcome);
  EXPECT_EQ(std::get<broker_options>(outcome).retention_check_interval, std::chrono::seconds(5));
  EXPECT_NE(error_of(parse({"--log-retention-check-interval-ms", "0"}))
                .find("--log-retention-check-interval-ms"),
            std::string::npos);
}

TEST(BrokerOptions, CoresDefaultsToEveryAvailableCpuAndIsBounded) {
  auto outcome = parse({"--cores", "1"});
  ASSERT_NE(std::get_if<broker_options>(&outcome), nullptr) << error_of(outcome);
  EXPECT_EQ(std::get<broker_options>(outcome).cores, 1u);
  EXPECT_EQ(std::get<broker_options>(parse({"--cores", "2"})).cores, 2u);
  EXPECT_EQ(std::get<broker_options>(parse({})).cores, 0u);  // one per available CPU
  EXPECT_NE(error_of(parse({"--cores", "65"})).find("--cores"), std::string::npos);
  EXPECT_NE(error_of(parse({"--cores", "-1"})).find("--cores"), std::string::npos);
}

TEST(BrokerOptions, ConfigFileAndCommandLineWins) {
  std::string path = ::testing::TempDir() + "sluice-options-test.conf";
  {
    std::ofstream file(path);
    file << "segment-bytes = 4096\nretention-bytes = 99\n";
  }
  auto outcome = parse({"--config", path.c_str(), "--segment-bytes", "8192"});
  auto* options = std::get_if<broker_options>(&outcome);
  ASSERT_NE(options, nullptr) << error_of(outcome);
  EXPECT_EQ(options->log.segment_bytes, 8192u);
  EXPECT_EQ(options->log.retention_bytes, std::optional<std::uint64_t>(99));
  EXPECT_NE(error_of(parse({"--config", "/nonexistent/file"})).find("--config"), std::string::npos);
}

TEST(BrokerOptions, KafkaListenerDefaults) {
  auto outcome = parse({});
  auto* options = std::get_if<broker_options>(&outcome);
  ASSERT_NE(options, nullptr);
  EXPECT_EQ(options->listen, (host_port{"0.0.0.0", 9092}));
  // A wildcard listen address is advertised as this host's name (or 127.0.0.1).
  EXPECT_EQ(options->advertise.host, default_advertised_host());
  EXPECT_EQ(options->advertise.port, 9092);
  EXPECT_EQ(options->node_id, 0);
  EXPECT_TRUE(options->auto_create_topics);
  EXPECT_EQ(options->default_partitions, 1);
  EXPECT_EQ(options->connections_max, 10000u);
  EXPECT_EQ(options->request_bytes_max, 104857600u);
}

TEST(BrokerOptions, KafkaListenerFlagsParse) {
  auto outcome =
      parse({"--listen", "127.0.0.1:0", "--node-id", "7", "--auto-create-topics", "false",
             "--default-partitions", "3", "--max-connections", "5", "--max-request-bytes", "2048"});
  auto* options = std::get_if<broker_options>(&outcome);
  ASSERT_NE(options, nullptr) << error_of(outcome);
  EXPECT_EQ(options->listen, (host_port{"127.0.0.1", 0}));
  // A specific listen address is advertised as is; port 0 is filled in once bound.
  EXPECT_EQ(options->advertise, (host_port{"127.0.0.1", 0}));
  EXPECT_EQ(options->node_id, 7);
  EXPECT_FALSE(options->auto_create_topics);
  EXPECT_EQ(options->default_partitions, 3);
  EXPECT_EQ(options->connections_max, 5u);
  EXPECT_EQ(options->request_bytes_max, 2048u);

  auto advertised = parse({"--listen", "[::]:9093", "--advertise", "kafka.example.com:19093"});
  options = std::get_if<broker_options>(&advertised);
  ASSERT_NE(options, nullptr) << error_of(advertised);
  EXPECT_EQ(options->listen, (host_port{"::", 9093}));
  EXPECT_EQ(options->advertise, (host_port{"kafka.example.com", 19093}));
}

TEST(BrokerOptions, BadKafkaListenerFlagsNameTheFlag) {
  for (auto [flag, value] :
       std::vector<std::pair<const char*, const char*>>{{"--listen", "nocolon"},
                                                        {"--listen", "host:99999"},
                                                        {"--listen", "::1:9092"},
                                                        {"--advertise", "0.0.0.0:9092"},
                                                        {"--advertise", "host:"},
                                                        {"--node-id", "-1"},
                                                        {"--auto-create-topics", "maybe"},
                                                        {"--default-partitions", "0"},
                                                        {"--max-connections", "0"},
                                                        {"--max-request-bytes", "10"}}) {
    EXPECT_NE(error_of(parse({flag, value})).find(flag), std::string::npos) << flag << " " << value;
  }
}

TEST(BrokerOptions, HelpListsTheKafkaFlags) {
  auto outcome = parse({"--help"});
  auto* help = std::get_if<parse_help>(&outcome);
  ASSERT_NE(help, nullptr);
  for (const char* flag : {"--listen", "--advertise", "--node-id", "--auto-create-topics",
                           "--default-partitions", "--max-connections", "--max-request-bytes"}) {
    EXPECT_NE(help->text.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(help->text.find("(=0.0.0.0:9092)"), std::string::npos);
  EXPECT_NE(help->text.find("(=104857600)"), std::string::npos);
}

TEST(HostPort, ParsesNamesAddressesAndBracketedIpv6) {
  EXPECT_EQ(parse_host_port("localhost:9092"), (host_port{"localhost", 9092}));
  EXPECT_EQ(parse_host_port("[::1]:0"), (host_port{"::1", 0}));
  EXPECT_FALSE(parse_host_port(":9092").has_value());
  EXPECT_FALSE(parse_host_port("[::1]9092").has_value());
  EXPECT_FALSE(parse_host_port("h:-1").has_value());
  EXPECT_FALSE(parse_host_port("h:65536").has_value());
}

}  // namespace
}  // namespace sluice
