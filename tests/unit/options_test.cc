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

}  // namespace
}  // namespace sluice
