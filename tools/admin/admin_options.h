// The command line of sluice-admin: which command, on what, against which broker.
//
// Parsing never exits and never throws: it returns the command, the help text, or one
// line naming what is wrong (main prints it and exits 2). Each command accepts only
// its own flags, so a flag given to the wrong command is an error, not silently ignored.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace sluice::admin {

enum class reset_target : std::uint8_t { earliest, latest, timestamp, offset };

struct admin_command {
  std::string bootstrap_host = "localhost";
  std::uint16_t bootstrap_port = 9092;
  bool json = false;
  std::chrono::milliseconds timeout{30000};

  std::string noun;  // "topics" or "groups"
  std::string verb;  // "list", "describe", "create", "delete", "alter-config", "reset-offsets"
  std::vector<std::string> names;  // topics or groups named after the verb

  // topics create
  std::optional<std::int32_t> partitions;
  std::vector<std::pair<std::string, std::string>> configs;
  // topics alter-config
  std::vector<std::pair<std::string, std::string>> sets;
  std::vector<std::string> deletes;
  // groups reset-offsets
  std::string topic;
  std::optional<std::int32_t> partition;
  reset_target target = reset_target::earliest;
  std::int64_t target_value = 0;  // the timestamp (ms) or the offset
  bool dry_run = false;

  // "topics create" and the like, for messages.
  std::string name() const { return noun + " " + verb; }
};

struct admin_help {
  std::string text;
};
struct admin_usage_error {
  std::string message;
};
using admin_parse_outcome = std::variant<admin_command, admin_help, admin_usage_error>;

admin_parse_outcome parse_admin_command(int argc, const char* const* argv);

// "HOST:PORT" or "[IPv6]:PORT".
std::optional<std::pair<std::string, std::uint16_t>> parse_bootstrap(const std::string& text);

}  // namespace sluice::admin
