#include "broker/options.h"

#include <boost/program_options.hpp>
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

}  // namespace

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
    ("open-partitions-max", po::value(&open_partitions_max)->default_value(open_partitions_max), "partitions whose files stay open at once; 0 = derive from the file descriptor limit");
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
  return out;
}

}  // namespace sluice
