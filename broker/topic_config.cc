#include "broker/topic_config.h"

#include <array>
#include <charconv>
#include <limits>
#include <optional>
#include <string_view>

namespace sluice {
namespace {

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Kafka topic configs that only matter with replication, compaction or tiered storage:
// accepted so that clients passing them (often with their defaults) are not refused,
// without effect on a single node.
constexpr std::array<std::string_view, 13> accepted_without_effect = {
    "compression.type",
    "file.delete.delay.ms",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "message.downconversion.enable",
    "message.format.version",
    "min.insync.replicas",
    "preallocate",
    "remote.storage.enable",
    "unclean.leader.election.enable",
};

std::string bad(std::string_view name, std::string_view value, std::string_view why) {
  return std::string(name) + "=" + std::string(value) + ": " + std::string(why);
}

// cleanup.policy is a list of "delete" and "compact" (Kafka writes "compact,delete").
bool parse_cleanup_policy(std::string_view value, log_config& out) {
  bool compact = false;
  bool delete_old = false;
  // Bounded by the value's length: each pass consumes one item and its comma.
  while (true) {
    std::size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    if (item == "compact" && !compact) {
      compact = true;
    } else if (item == "delete" && !delete_old) {
      delete_old = true;
    } else {
      return false;
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  out.compact = compact;
  out.delete_old = delete_old;
  return true;
}

std::optional<double> parse_double(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

config_resolution resolve_topic_config(const log_config& defaults,
                                       const topic_config_overrides& overrides) {
  log_config out = defaults;
  for (const auto& [name, value] : overrides) {
    // The topics file separates fields by spaces: keep values to one token.
    if (value.empty() || value.find_first_of(" \t\r\n") != std::string::npos) {
      return bad(name, value, "value must be one word without spaces");
    }
    if (name == "cleanup.policy") {
      if (!parse_cleanup_policy(value, out)) {
        return bad(name, value, "must be delete, compact, or both separated by a comma");
      }
      continue;
    }
    if (name == "min.cleanable.dirty.ratio") {
      auto ratio = parse_double(value);
      if (!ratio || !(*ratio >= 0.0 && *ratio <= 1.0)) {
        return bad(name, value, "must be a number between 0 and 1");
      }
      out.min_cleanable_dirty_ratio = *ratio;
      continue;
    }
    if (name == "message.timestamp.type") {
      if (value != "CreateTime") {
        return bad(name, value, "Sluice supports only message.timestamp.type=CreateTime");
      }
      continue;
    }
    bool ignored = false;
    for (auto accepted : accepted_without_effect) ignored = ignored || accepted == name;
    if (ignored) {
      if (name == "remote.storage.enable" && value != "false") {
        return bad(name, value, "tiered storage is not supported");
      }
      continue;
    }
    auto number = parse_int(value);
    if (!number) {
      if (name == "retention.ms" || name == "retention.bytes" || name == "segment.bytes" ||
          name == "segment.ms" || name == "segment.index.bytes" || name == "index.interval.bytes" ||
          name == "flush.messages" || name == "flush.ms" || name == "max.message.bytes" ||
          name == "message.timestamp.before.max.ms" || name == "message.timestamp.after.max.ms" ||
          name == "message.timestamp.difference.max.ms" || name == "delete.retention.ms" ||
          name == "min.compaction.lag.ms") {
        return bad(name, value, "not an integer");
      }
      return bad(name, value, "unknown topic config");
    }
    std::int64_t v = *number;
    if (name == "retention.ms") {
      if (v < -1) return bad(name, value, "must be -1 or more");
      out.retention_ms =
          v < 0 ? std::nullopt
                : std::optional<std::chrono::milliseconds>(std::chrono::milliseconds(v));
    } else if (name == "retention.bytes") {
      if (v < -1) return bad(name, value, "must be -1 or more");
      out.retention_bytes = v < 0 ? std::nullopt : std::optional<std::uint64_t>(v);
    } else if (name == "segment.bytes") {
      if (v < 14 || v > std::numeric_limits<std::int32_t>::max()) {
        return bad(name, value, "must be between 14 and 2147483647");
      }
      out.segment_bytes = static_cast<std::uint64_t>(v);
    } else if (name == "segment.ms") {
      if (v < 1) return bad(name, value, "must be positive");
      out.segment_ms = std::chrono::milliseconds(v);
    } else if (name == "segment.index.bytes") {
      if (v < 12 || v > std::numeric_limits<std::int32_t>::max()) {
        return bad(name, value, "must be between 12 and 2147483647");
      }
      out.index_bytes_max = static_cast<std::size_t>(v);
    } else if (name == "index.interval.bytes") {
      if (v < 0) return bad(name, value, "must not be negative");
      out.index_interval_bytes = static_cast<std::size_t>(v);
    } else if (name == "flush.messages") {
      if (v < 1) return bad(name, value, "must be positive");
      // Kafka's default, Long.MAX_VALUE, means "never on count".
      out.flush.every_messages = v == std::numeric_limits<std::int64_t>::max()
                                     ? std::nullopt
                                     : std::optional<std::uint64_t>(v);
    } else if (name == "flush.ms") {
      if (v < 1) return bad(name, value, "must be positive");
      out.flush.every_ms = v == std::numeric_limits<std::int64_t>::max()
                               ? std::nullopt
                               : std::optional<std::chrono::milliseconds>(v);
    } else if (name == "max.message.bytes") {
      if (v < 0 || v > std::numeric_limits<std::int32_t>::max()) {
        return bad(name, value, "must be between 0 and 2147483647");
      }
      out.limits.batch_bytes_max = static_cast<std::size_t>(v);
    } else if (name == "message.timestamp.before.max.ms" ||
               name == "message.timestamp.difference.max.ms") {
      if (v < 0) return bad(name, value, "must not be negative");
      out.limits.timestamp_before_max_ms = v;
      if (name == "message.timestamp.difference.max.ms") out.limits.timestamp_after_max_ms = v;
    } else if (name == "delete.retention.ms") {
      if (v < 0) return bad(name, value, "must not be negative");
      out.delete_retention = std::chrono::milliseconds(v);
    } else if (name == "min.compaction.lag.ms") {
      if (v < 0) return bad(name, value, "must not be negative");
      out.min_compaction_lag = std::chrono::milliseconds(v);
    } else if (name == "message.timestamp.after.max.ms") {
      if (v < 0) return bad(name, value, "must not be negative");
      out.limits.timestamp_after_max_ms = v;
    } else {
      return bad(name, value, "unknown topic config");
    }
  }
  return out;
}

}  // namespace sluice
