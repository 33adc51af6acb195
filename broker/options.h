// The command line and config file of the `sluice` binary.
//
// Every flag is also accepted in a `--config FILE` (one `name = value` per line, the
// flag's name without dashes); the command line wins over the file. Parsing never
// exits: it returns the options, or a one-line error naming the bad flag, so main() can
// print it and exit 2.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "engine/base/log.h"
#include "engine/storage/log_config.h"

namespace sluice {

// A host and port as given on the command line ("HOST:PORT", "[IPv6]:PORT").
struct host_port {
  std::string host;
  std::uint16_t port = 0;
  friend bool operator==(const host_port&, const host_port&) = default;
};

// Parses "HOST:PORT" or "[V6ADDRESS]:PORT"; nullopt when malformed or the port is out of
// range. The host is not resolved.
std::optional<host_port> parse_host_port(std::string_view text);

// The host advertised when listening on a wildcard address (0.0.0.0 or ::): this
// machine's host name when it resolves, otherwise 127.0.0.1. Kafka advertises the
// canonical host name in that case too, which is what remote clients need; a name that
// does not resolve would break every client, local ones included, hence the fallback.
std::string default_advertised_host();

struct broker_options {
  std::string data_dir = "./sluice-data";
  // Where the Kafka listener binds (port 0 picks a free port).
  host_port listen{"0.0.0.0", 9092};
  // What Metadata tells clients to connect to. Port 0 means "the port bound".
  host_port advertise{"", 0};
  std::int32_t node_id = 0;
  // Kafka's auto.create.topics.enable and num.partitions.
  bool auto_create_topics = true;
  std::int32_t default_partitions = 1;
  // Kafka's max.connections and socket.request.max.bytes.
  std::size_t connections_max = 10000;
  // Reactor threads, each owning a share of the partitions (broker/cores.h).
  std::size_t cores = 0;  // 0: one per CPU the process may run on
  std::size_t request_bytes_max = 104857600;
  log_level level = log_level::info;
  log_config log;
  std::size_t open_partitions_max = 0;  // 0: derived from RLIMIT_NOFILE
  // Kafka's log.cleaner.enable and log.cleaner.backoff.ms: whether compacted topics are
  // cleaned, and how often the cleaner looks for logs that are due.
  bool log_cleaner_enable = true;
  std::chrono::milliseconds log_cleaner_backoff{15000};
  // Kafka's log.retention.check.interval.ms.
  std::chrono::milliseconds retention_check_interval{300000};
  // Consumer groups: Kafka's offsets.topic.num.partitions, group.initial.rebalance.delay.ms,
  // group.min/max.session.timeout.ms, group.max.size, offsets.retention.minutes.
  std::int32_t offsets_topic_partitions = 50;
  std::chrono::milliseconds group_initial_rebalance_delay{3000};
  std::chrono::milliseconds group_min_session_timeout{6000};
  std::chrono::milliseconds group_max_session_timeout{1800000};
  std::int32_t group_max_size = 1000;
  std::chrono::minutes offsets_retention{7 * 24 * 60};
};

// What parsing produced: options to run with, help text to print (exit 0), or an error
// line to print (exit 2).
struct parse_help {
  std::string text;
};
struct parse_error {
  std::string message;
};
using parse_outcome = std::variant<broker_options, parse_help, parse_error>;

parse_outcome parse_broker_options(int argc, const char* const* argv);

}  // namespace sluice
