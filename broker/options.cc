#include "broker/options.h"

#include <netdb.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <charconv>
#include <fstream>
#include <sstream>

namespace sluice {
namespace po = boost::program_options;

namespace {

// Flags that take "-1" for "unlimited", as Kafka's retention settings do.
std::optional<std::uint64_t> optional_bytes(std::int64_t value) {
  if (value < 0) return std::nullopt;
  return static_cast<std::uint64_t>(value);
}

std::optional<std::chrono::milliseconds> optional_ms(std::int64_t value) {
  if (value < 0) return std::nullopt;
  return std::chrono::milliseconds(value);
}

bool is_wildcard(const std::string& host) {
  return host == "0.0.0.0" || host == "::";
}

}  // namespace

std::optional<host_port> parse_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
  }
  if (host.empty() || port.empty()) return std::nullopt;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value > 65535) return std::nullopt;
  return host_port{std::string(host), static_cast<std::uint16_t>(value)};
}

std::string default_advertised_host() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "127.0.0.1";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(name, nullptr, &hints, &found) != 0 || found == nullptr) return "127.0.0.1";
  ::freeaddrinfo(found);
  return name;
}

parse_outcome parse_broker_options(int argc, const char* const* argv) {
  broker_options out;
  const log_config defaults;
  std::string level = "info";
  std::string config_file;
  std::int64_t segment_bytes = static_cast<std::int64_t>(defaults.segment_bytes);
  std::int64_t segment_ms = defaults.segment_ms.count();
  std::int64_t retention_bytes = -1;
  std::int64_t retention_ms = defaults.retention_ms->count();
  std::int64_t index_interval_bytes = static_cast<std::int64_t>(defaults.index_interval_bytes);
  std::int64_t index_bytes = static_cast<std::int64_t>(defaults.index_bytes_max);
  std::int64_t flush_messages = 1;
  std::int64_t flush_ms = -1;
  std::int64_t max_message_bytes = static_cast<std::int64_t>(defaults.limits.batch_bytes_max);
  std::int64_t open_partitions_max = 0;
  std::string listen = "0.0.0.0:9092";
  std::string advertise;
  std::int64_t node_id = 0;
  bool auto_create_topics = true;
  std::int64_t default_partitions = 1;
  std::int64_t connections_max = 10000;
  std::int64_t cores = 0;
  std::int64_t request_bytes_max = 104857600;
  bool log_cleaner_enable = out.log_cleaner_enable;
  std::int64_t log_cleaner_backoff_ms = out.log_cleaner_backoff.count();
  std::int64_t retention_check_interval_ms = out.retention_check_interval.count();
  std::int64_t offsets_topic_partitions = out.offsets_topic_partitions;
  std::int64_t group_initial_rebalance_delay_ms = out.group_initial_rebalance_delay.count();
  std::int64_t group_min_session_timeout_ms = out.group_min_session_timeout.count();
  std::int64_t group_max_session_timeout_ms = out.group_max_session_timeout.count();
  std::int64_t group_max_size = out.group_max_size;
  std::int64_t offsets_retention_minutes = out.offsets_retention.count();

  po::options_description flags("Options");
  // clang-format off
  flags.add_options()
    ("help,h", "print this help and exit")
    ("config", po::value(&config_file), "read flags from FILE (lines of name = value); the command line wins")
    ("data-dir", po::value(&out.data_dir)->default_value(out.data_dir), "directory holding the partition logs")
    ("log-level", po::value(&level)->default_value(level), "trace, debug, info, warn, error or off")
    ("segment-bytes", po::value(&segment_bytes)->default_value(segment_bytes), "roll a segment when it would grow past this many bytes (segment.bytes)")
    ("segment-ms", po::value(&segment_ms)->default_value(segment_ms), "roll a segment this long after its first append (segment.ms)")
    ("retention-bytes", po::value(&retention_bytes)->default_value(retention_bytes), "delete old segments while a partition is larger; -1 = no limit (retention.bytes)")
    ("retention-ms", po::value(&retention_ms)->default_value(retention_ms), "delete segments whose newest record is older; -1 = keep forever (retention.ms)")
    ("index-interval-bytes", po::value(&index_interval_bytes)->default_value(index_interval_bytes), "log bytes between two offset index entries (index.interval.bytes)")
    ("segment-index-bytes", po::value(&index_bytes)->default_value(index_bytes), "preallocated size of each index file (segment.index.bytes)")
    ("flush-messages", po::value(&flush_messages)->default_value(flush_messages), "fdatasync once this many messages are unflushed; 1 = every batch with group commit; -1 = never on count (flush.messages)")
    ("flush-ms", po::value(&flush_ms)->default_value(flush_ms), "fdatasync once written data waited this long; -1 = never on time (flush.ms)")
    ("max-message-bytes", po::value(&max_message_bytes)->default_value(max_message_bytes), "largest record batch accepted, in bytes (message.max.bytes)")
    ("log-cleaner-enable", po::value(&log_cleaner_enable)->default_value(log_cleaner_enable), "clean topics with cleanup.policy=compact (keep the latest record per key): true or false (log.cleaner.enable)")
    ("log-retention-check-interval-ms", po::value(&retention_check_interval_ms)->default_value(retention_check_interval_ms), "how often segments past retention.ms or retention.bytes are deleted, in ms (log.retention.check.interval.ms)")
    ("log-cleaner-backoff-ms", po::value(&log_cleaner_backoff_ms)->default_value(log_cleaner_backoff_ms), "how often the log cleaner looks for compacted partitions to clean, in ms (log.cleaner.backoff.ms)")
    ("offsets-topic-partitions", po::value(&offsets_topic_partitions)->default_value(offsets_topic_partitions), "partitions of __consumer_offsets when it is created (offsets.topic.num.partitions); an existing topic keeps its count")
    ("group-initial-rebalance-delay-ms", po::value(&group_initial_rebalance_delay_ms)->default_value(group_initial_rebalance_delay_ms), "how long the first rebalance of an empty group waits for more members, in ms (group.initial.rebalance.delay.ms)")
    ("group-min-session-timeout-ms", po::value(&group_min_session_timeout_ms)->default_value(group_min_session_timeout_ms), "smallest session timeout a group member may ask for, in ms (group.min.session.timeout.ms)")
    ("group-max-session-timeout-ms", po::value(&group_max_session_timeout_ms)->default_value(group_max_session_timeout_ms), "largest session timeout a group member may ask for, in ms (group.max.session.timeout.ms)")
    ("group-max-size", po::value(&group_max_size)->default_value(group_max_size), "members one consumer group may have (group.max.size)")
    ("offsets-retention-minutes", po::value(&offsets_retention_minutes)->default_value(offsets_retention_minutes), "committed offsets of a group with no members expire this long after it became empty (offsets.retention.minutes)")
    ("open-partitions-max", po::value(&open_partitions_max)->default_value(open_partitions_max), "partitions whose files stay open at once; 0 = derive from the file descriptor limit")
    ("listen", po::value(&listen)->default_value(listen), "HOST:PORT the Kafka listener binds; port 0 picks a free port (listeners)")
    ("advertise", po::value(&advertise)->default_value("", "the listen address, 0.0.0.0 replaced by the host name if it resolves, else 127.0.0.1"), "HOST:PORT given to clients in Metadata (advertised.listeners)")
    ("node-id", po::value(&node_id)->default_value(node_id), "this broker's id in Metadata (node.id)")
    ("auto-create-topics", po::value(&auto_create_topics)->default_value(auto_create_topics), "create unknown topics a client asks Metadata for: true or false (auto.create.topics.enable)")
    ("default-partitions", po::value(&default_partitions)->default_value(default_partitions), "partitions of auto-created topics and of CreateTopics with -1 (num.partitions)")
    ("max-connections", po::value(&connections_max)->default_value(connections_max), "open client connections at most; more are closed at once (max.connections)")
    ("cores", po::value(&cores)->default_value(cores), "reactor threads (one per core), each owning a share of the partitions; 0 = one per CPU this process may run on, at most 64")
    ("max-request-bytes", po::value(&request_bytes_max)->default_value(request_bytes_max), "largest request accepted, in bytes; larger closes the connection (socket.request.max.bytes)");
  // clang-format on

  po::variables_map values;
  try {
    po::store(po::parse_command_line(argc, argv, flags), values);
    if (values.count("help")) {
      std::ostringstream text;
      text << "Usage: sluice [options]\n\nSluice, a Kafka-compatible event-streaming broker.\n\n"
           << flags;
      return parse_help{text.str()};
    }
    if (values.count("config")) {
      std::ifstream file(values["config"].as<std::string>());
      if (!file) {
        return parse_error{"--config: cannot read " + values["config"].as<std::string>()};
      }
      po::store(po::parse_config_file(file, flags), values);
    }
    po::notify(values);
  } catch (const po::error& e) {
    return parse_error{e.what()};
  }

  auto positive = [](std::int64_t v) { return v > 0; };
  if (auto parsed = parse_log_level(level)) {
    out.level = *parsed;
  } else {
    return parse_error{"--log-level: '" + level +
                       "' is not one of trace, debug, info, warn, error, off"};
  }
  if (!positive(segment_bytes) || segment_bytes > std::numeric_limits<std::int32_t>::max()) {
    return parse_error{"--segment-bytes: must be between 1 and 2147483647"};
  }
  if (!positive(segment_ms)) return parse_error{"--segment-ms: must be positive"};
  if (retention_bytes < -1) return parse_error{"--retention-bytes: must be -1 or more"};
  if (retention_ms < -1) return parse_error{"--retention-ms: must be -1 or more"};
  if (index_interval_bytes < 0) return parse_error{"--index-interval-bytes: must not be negative"};
  if (index_bytes < 12) return parse_error{"--segment-index-bytes: must be at least 12"};
  if (flush_messages == 0 || flush_messages < -1) {
    return parse_error{"--flush-messages: must be -1 or positive"};
  }
  if (flush_ms == 0 || flush_ms < -1) return parse_error{"--flush-ms: must be -1 or positive"};
  if (!positive(max_message_bytes)) return parse_error{"--max-message-bytes: must be positive"};
  if (open_partitions_max < 0) return parse_error{"--open-partitions-max: must not be negative"};
  if (!positive(retention_check_interval_ms)) {
    return parse_error{
        "--log-retention-check-interval-ms: must be a positive number of milliseconds"};
  }
  if (!positive(log_cleaner_backoff_ms)) {
    return parse_error{"--log-cleaner-backoff-ms: must be positive"};
  }
  if (offsets_topic_partitions < 1 || offsets_topic_partitions > 10000) {
    return parse_error{"--offsets-topic-partitions: must be between 1 and 10000"};
  }
  if (group_initial_rebalance_delay_ms < 0 || group_initial_rebalance_delay_ms > 3600000) {
    return parse_error{"--group-initial-rebalance-delay-ms: must be between 0 and 3600000"};
  }
  if (!positive(group_min_session_timeout_ms) ||
      group_max_session_timeout_ms < group_min_session_timeout_ms ||
      group_max_session_timeout_ms > std::numeric_limits<std::int32_t>::max()) {
    return parse_error{
        "--group-min-session-timeout-ms / --group-max-session-timeout-ms: need 0 < min <= "
        "max <= 2147483647"};
  }
  if (group_max_size < 1 || group_max_size > std::numeric_limits<std::int32_t>::max()) {
    return parse_error{"--group-max-size: must be positive"};
  }
  if (!positive(offsets_retention_minutes) || offsets_retention_minutes > 100LL * 365 * 24 * 60) {
    return parse_error{"--offsets-retention-minutes: must be between 1 and 52560000"};
  }
  auto listen_address = parse_host_port(listen);
  if (!listen_address) return parse_error{"--listen: '" + listen + "' is not HOST:PORT"};
  std::optional<host_port> advertised;
  if (!advertise.empty()) {
    advertised = parse_host_port(advertise);
    if (!advertised) return parse_error{"--advertise: '" + advertise + "' is not HOST:PORT"};
    if (is_wildcard(advertised->host)) {
      return parse_error{"--advertise: clients cannot connect to " + advertised->host};
    }
  }
  if (node_id < 0 || node_id > std::numeric_limits<std::int32_t>::max()) {
    return parse_error{"--node-id: must be between 0 and 2147483647"};
  }
  if (default_partitions < 1 || default_partitions > 10000) {
    return parse_error{"--default-partitions: must be between 1 and 10000"};
  }
  if (connections_max < 1) return parse_error{"--max-connections: must be positive"};
  if (cores < 0 || cores > 64) {
    return parse_error{"--cores: must be between 1 and 64, or 0 for one per available CPU"};
  }
  if (request_bytes_max < 1024 || request_bytes_max > std::numeric_limits<std::int32_t>::max()) {
    return parse_error{"--max-request-bytes: must be between 1024 and 2147483647"};
  }

  out.log.segment_bytes = static_cast<std::uint64_t>(segment_bytes);
  out.log.segment_ms = std::chrono::milliseconds(segment_ms);
  out.log.retention_bytes = optional_bytes(retention_bytes);
  out.log.retention_ms = optional_ms(retention_ms);
  out.log.index_interval_bytes = static_cast<std::size_t>(index_interval_bytes);
  out.log.index_bytes_max = static_cast<std::size_t>(index_bytes);
  out.log.flush.every_messages =
      flush_messages < 0 ? std::nullopt : std::optional<std::uint64_t>(flush_messages);
  out.log.flush.every_ms = optional_ms(flush_ms);
  out.log.limits.batch_bytes_max = static_cast<std::size_t>(max_message_bytes);
  out.open_partitions_max = static_cast<std::size_t>(open_partitions_max);
  out.log_cleaner_enable = log_cleaner_enable;
  out.log_cleaner_backoff = std::chrono::milliseconds(log_cleaner_backoff_ms);
  out.retention_check_interval = std::chrono::milliseconds(retention_check_interval_ms);
  out.offsets_topic_partitions = static_cast<std::int32_t>(offsets_topic_partitions);
  out.group_initial_rebalance_delay = std::chrono::milliseconds(group_initial_rebalance_delay_ms);
  out.group_min_session_timeout = std::chrono::milliseconds(group_min_session_timeout_ms);
  out.group_max_session_timeout = std::chrono::milliseconds(group_max_session_timeout_ms);
  out.group_max_size = static_cast<std::int32_t>(group_max_size);
  out.offsets_retention = std::chrono::minutes(offsets_retention_minutes);
  out.listen = *listen_address;
  if (advertised) {
    out.advertise = *advertised;
  } else {
    out.advertise.host = is_wildcard(out.listen.host) ? default_advertised_host() : out.listen.host;
    out.advertise.port = out.listen.port;  // 0 stays 0: main() puts the bound port there
  }
  out.node_id = static_cast<std::int32_t>(node_id);
  out.auto_create_topics = auto_create_topics;
  out.default_partitions = static_cast<std::int32_t>(default_partitions);
  out.connections_max = static_cast<std::size_t>(connections_max);
  out.cores = static_cast<std::size_t>(cores);
  out.request_bytes_max = static_cast<std::size_t>(request_bytes_max);
  return out;
}

}  // namespace sluice
