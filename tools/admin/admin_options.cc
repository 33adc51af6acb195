#include "tools/admin/admin_options.h"

#include <boost/program_options.hpp>
#include <charconv>
#include <set>
#include <sstream>

namespace sluice::admin {
namespace po = boost::program_options;

namespace {

constexpr const char* usage_text =
    "Usage: sluice-admin [--bootstrap HOST:PORT] [--json] COMMAND ...\n"
    "\n"
    "Administers Kafka topics and consumer groups on any Kafka-protocol broker.\n"
    "\n"
    "Commands:\n"
    "  topics list\n"
    "  topics describe TOPIC...\n"
    "  topics create TOPIC [--partitions N] [--config KEY=VALUE ...]\n"
    "  topics delete TOPIC...\n"
    "  topics alter-config TOPIC [--set KEY=VALUE ...] [--delete KEY ...]\n"
    "  groups list\n"
    "  groups describe GROUP...\n"
    "  groups reset-offsets GROUP --topic TOPIC [--partition P]\n"
    "      (--to-earliest | --to-latest | --to-timestamp MS | --to-offset N) [--dry-run]\n"
    "  groups delete GROUP...\n"
    "\n"
    "Exit status: 0 on success, 1 when the broker reports a failure, 2 for a usage error.\n";

// The flags each command takes besides the global ones.
struct command_row {
  const char* noun;
  const char* verb;
  // How many names follow the verb: exactly one, one or more, or none.
  enum class names_rule { none, one, some } names;
  std::set<std::string> flags;
};

const std::vector<command_row>& commands() {
  using rule = command_row::names_rule;
  static const std::vector<command_row> rows = {
      {"topics", "list", rule::none, {}},
      {"topics", "describe", rule::some, {}},
      {"topics", "create", rule::one, {"partitions", "config"}},
      {"topics", "delete", rule::some, {}},
      {"topics", "alter-config", rule::one, {"set", "delete"}},
      {"groups", "list", rule::none, {}},
      {"groups", "describe", rule::some, {}},
      {"groups",
       "reset-offsets",
       rule::one,
       {"topic", "partition", "to-earliest", "to-latest", "to-timestamp", "to-offset", "dry-run"}},
      {"groups", "delete", rule::some, {}},
  };
  return rows;
}

std::optional<std::pair<std::string, std::string>> split_key_value(const std::string& text) {
  const auto equals = text.find('=');
  if (equals == std::string::npos || equals == 0) return std::nullopt;
  return std::make_pair(text.substr(0, equals), text.substr(equals + 1));
}

}  // namespace

std::optional<std::pair<std::string, std::uint16_t>> parse_bootstrap(const std::string& text) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) return std::nullopt;  // IPv6 needs brackets
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || port.empty() || ec != std::errc() || end != port.data() + port.size() ||
      value == 0 || value > 65535) {
    return std::nullopt;
  }
  return std::make_pair(host, static_cast<std::uint16_t>(value));
}

admin_parse_outcome parse_admin_command(int argc, const char* const* argv) {
  admin_command out;
  std::string bootstrap = "localhost:9092";
  std::int64_t timeout_ms = out.timeout.count();
  std::vector<std::string> words;
  std::vector<std::string> configs;
  std::vector<std::string> sets;
  std::int64_t partitions = 0;
  std::int64_t partition = 0;
  std::int64_t to_timestamp = 0;
  std::int64_t to_offset = 0;

  po::options_description flags("Options");
  // clang-format off
  flags.add_options()
    ("help,h", "print this help")
    ("bootstrap", po::value(&bootstrap)->default_value(bootstrap), "HOST:PORT of a broker")
    ("json", po::bool_switch(&out.json), "print one JSON document instead of tables")
    ("timeout-ms", po::value(&timeout_ms)->default_value(timeout_ms), "deadline of each request")
    ("partitions", po::value(&partitions), "topics create: number of partitions (default: the broker's)")
    ("config", po::value(&configs)->multitoken(), "topics create: KEY=VALUE topic configs")
    ("set", po::value(&sets)->multitoken(), "topics alter-config: KEY=VALUE configs to set")
    ("delete", po::value(&out.deletes)->multitoken(), "topics alter-config: KEYs to return to their defaults")
    ("topic", po::value(&out.topic), "groups reset-offsets: the topic")
    ("partition", po::value(&partition), "groups reset-offsets: only this partition")
    ("to-earliest", "groups reset-offsets: to the log start offset")
    ("to-latest", "groups reset-offsets: to the log end offset")
    ("to-timestamp", po::value(&to_timestamp), "groups reset-offsets: to the first offset at or after MS (epoch ms)")
    ("to-offset", po::value(&to_offset), "groups reset-offsets: to offset N (kept within the log)")
    ("dry-run", po::bool_switch(&out.dry_run), "groups reset-offsets: show the new offsets, commit nothing");
  // clang-format on
  po::options_description hidden;
  hidden.add_options()("words", po::value(&words));
  po::options_description all;
  all.add(flags).add(hidden);
  po::positional_options_description positional;
  positional.add("words", -1);

  po::variables_map values;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(),
              values);
    po::notify(values);
  } catch (const po::error& e) {
    return admin_usage_error{e.what()};
  }
  if (values.count("help") != 0) {
    std::ostringstream text;
    text << usage_text << "\n" << flags;
    return admin_help{text.str()};
  }
  if (words.size() < 2) {
    return admin_usage_error{words.empty() ? "no command given"
                                           : "'" + words[0] + "' needs a subcommand"};
  }
  out.noun = words[0];
  out.verb = words[1];
  out.names.assign(words.begin() + 2, words.end());
  const command_row* row = nullptr;
  for (const auto& candidate : commands()) {
    if (out.noun == candidate.noun && out.verb == candidate.verb) row = &candidate;
  }
  if (row == nullptr) return admin_usage_error{"unknown command '" + out.name() + "'"};

  for (const auto& [flag, value] : values) {
    static const std::set<std::string> global = {"help", "bootstrap", "json", "timeout-ms",
                                                 "words"};
    if (global.count(flag) != 0 || value.defaulted()) continue;
    // bool_switch flags are always stored; only a true one counts as given.
    if ((flag == "dry-run") && !out.dry_run) continue;
    if (row->flags.count(flag) == 0) {
      return admin_usage_error{"--" + flag + " is not an option of '" + out.name() + "'"};
    }
  }
  using rule = command_row::names_rule;
  const char* what = out.noun == "topics" ? "TOPIC" : "GROUP";
  if (row->names == rule::none && !out.names.empty()) {
    return admin_usage_error{"'" + out.name() + "' takes no names, got '" + out.names[0] + "'"};
  }
  if (row->names == rule::one && out.names.size() != 1) {
    return admin_usage_error{"'" + out.name() + "' takes exactly one " + what};
  }
  if (row->names == rule::some && out.names.empty()) {
    return admin_usage_error{"'" + out.name() + "' needs at least one " + what};
  }

  auto address = parse_bootstrap(bootstrap);
  if (!address) return admin_usage_error{"--bootstrap: '" + bootstrap + "' is not HOST:PORT"};
  out.bootstrap_host = address->first;
  out.bootstrap_port = address->second;
  if (timeout_ms < 1 || timeout_ms > 3600 * 1000) {
    return admin_usage_error{"--timeout-ms: must be between 1 and 3600000"};
  }
  out.timeout = std::chrono::milliseconds(timeout_ms);

  if (values.count("partitions") != 0) {
    if (partitions < 1 || partitions > 1000000) {
      return admin_usage_error{"--partitions: must be between 1 and 1000000"};
    }
    out.partitions = static_cast<std::int32_t>(partitions);
  }
  for (const auto& text : configs) {
    auto pair = split_key_value(text);
    if (!pair) return admin_usage_error{"--config: '" + text + "' is not KEY=VALUE"};
    out.configs.push_back(*pair);
  }
  for (const auto& text : sets) {
    auto pair = split_key_value(text);
    if (!pair) return admin_usage_error{"--set: '" + text + "' is not KEY=VALUE"};
    out.sets.push_back(*pair);
  }
  for (const auto& key : out.deletes) {
    if (key.empty() || key.find('=') != std::string::npos) {
      return admin_usage_error{"--delete: '" + key + "' is not a config name"};
    }
  }
  if (out.verb == "alter-config" && out.sets.empty() && out.deletes.empty()) {
    return admin_usage_error{"'topics alter-config' needs --set KEY=VALUE or --delete KEY"};
  }

  if (out.verb == "reset-offsets") {
    if (out.topic.empty()) return admin_usage_error{"'groups reset-offsets' needs --topic"};
    if (values.count("partition") != 0) {
      if (partition < 0 || partition > std::numeric_limits<std::int32_t>::max()) {
        return admin_usage_error{"--partition: must be between 0 and 2147483647"};
      }
      out.partition = static_cast<std::int32_t>(partition);
    }
    int targets = 0;
    if (values.count("to-earliest") != 0) {
      out.target = reset_target::earliest;
      ++targets;
    }
    if (values.count("to-latest") != 0) {
      out.target = reset_target::latest;
      ++targets;
    }
    if (values.count("to-timestamp") != 0) {
      if (to_timestamp < 0) return admin_usage_error{"--to-timestamp: must not be negative"};
      out.target = reset_target::timestamp;
      out.target_value = to_timestamp;
      ++targets;
    }
    if (values.count("to-offset") != 0) {
      if (to_offset < 0) return admin_usage_error{"--to-offset: must not be negative"};
      out.target = reset_target::offset;
      out.target_value = to_offset;
      ++targets;
    }
    if (targets != 1) {
      return admin_usage_error{
          "'groups reset-offsets' needs exactly one of --to-earliest, --to-latest, "
          "--to-timestamp, --to-offset"};
    }
  }
  return out;
}

}  // namespace sluice::admin
