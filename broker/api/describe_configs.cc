// DescribeConfigs v0-v4 (key 32): the configs of topics (resource type 2) and of this
// broker (type 4, named by its node id), as Kafka reports them.
//
// Topic configs: every topic config Sluice accepts (broker/topic_config.cc). Each value
// comes from, in order: the topic's override (DYNAMIC_TOPIC_CONFIG), the broker's flag
// when it differs from the built-in default (STATIC_BROKER_CONFIG), or the built-in
// default (DEFAULT_CONFIG). A flag given with its default value therefore reads as
// DEFAULT_CONFIG: the broker keeps the resolved values, not which flags were typed.
// Configs without a flag (kept for compatibility, no effect on one node) are always
// DEFAULT_CONFIG with Kafka's default. Topic configs are not read-only.
//
// Broker configs: the Kafka broker settings the flags stand for, all read-only (Sluice
// has no dynamic broker configs, so IncrementalAlterConfigs refuses them). An empty
// broker name asks for the cluster-wide dynamic defaults: there are none.
//
// Other resource types, and a broker name other than this node's id, get INVALID_REQUEST
// as from Kafka.
#include "net/protocol/generated/describe_configs.h"

#include <fmt/format.h>

#include <array>
#include <limits>
#include <memory>
#include <string>

#include "broker/api/api_table.h"
#include "engine/storage/checkpoint.h"

namespace sluice {
namespace {

using protocol::error_code;
using Request = protocol::DescribeConfigsRequest;
using Response = protocol::DescribeConfigsResponse;

// Kafka's ConfigResource.Type ids.
constexpr std::int8_t resource_topic = 2;
constexpr std::int8_t resource_broker = 4;

// Kafka's ConfigSource ids.
constexpr std::int8_t source_dynamic_topic = 1;
constexpr std::int8_t source_static_broker = 4;
constexpr std::int8_t source_default = 5;

// Kafka's ConfigType ids (v3+).
enum config_type : std::int8_t {
  type_boolean = 1,
  type_string = 2,
  type_int = 3,
  type_long = 5,
  type_double = 6,
  type_list = 7,
};

constexpr std::string_view long_max = "9223372036854775807";

template <typename Number>
std::string text(Number value) {
  return std::to_string(value);
}
std::string text_or(const auto& optional, std::string_view absent) {
  return optional.has_value() ? std::to_string(static_cast<std::int64_t>(*optional))
                              : std::string(absent);
}

// A log_config field as Kafka writes the config.
using render_function = std::string (*)(const log_config&);

struct config_row {
  std::string_view topic_name;   // the topic config
  std::string_view broker_name;  // the broker config giving its default ("" when none)
  config_type type;
  // The value from the broker's log_config; nullptr for configs without a flag, whose
  // value is `fixed`.
  render_function render;
  std::string_view fixed;
  std::string_view documentation;
};

// Alphabetical by topic config name, as Kafka lists them.
const std::array<config_row, 30> topic_configs = {{
    {"cleanup.policy", "log.cleanup.policy", type_list,
     [](const log_config& c) {
       return std::string(c.compact && c.delete_old ? "compact,delete"
                          : c.compact               ? "compact"
                                                    : "delete");
     },
     "",
     "delete: retention deletes old segments; compact: the log cleaner keeps the latest "
     "record of each key; or both."},
    {"compression.type", "compression.type", type_string, nullptr, "producer",
     "Batches are stored as the producer compressed them."},
    {"delete.retention.ms", "log.cleaner.delete.retention.ms", type_long,
     [](const log_config& c) { return text(c.delete_retention.count()); }, "",
     "How long tombstones stay in a compacted log after their batch's max timestamp."},
    {"file.delete.delay.ms", "log.segment.delete.delay.ms", type_long, nullptr, "60000",
     "Accepted for compatibility; Sluice deletes segments once idle."},
    {"flush.messages", "log.flush.interval.messages", type_long,
     [](const log_config& c) { return text_or(c.flush.every_messages, long_max); }, "",
     "fdatasync once this many messages are unflushed."},
    {"flush.ms", "log.flush.interval.ms", type_long,
     [](const log_config& c) {
       return c.flush.every_ms ? text(c.flush.every_ms->count()) : std::string(long_max);
     },
     "", "fdatasync once written data has waited this long."},
    {"follower.replication.throttled.replicas", "", type_list, nullptr, "",
     "Replication throttling; no effect on one node."},
    {"index.interval.bytes", "log.index.interval.bytes", type_int,
     [](const log_config& c) { return text(c.index_interval_bytes); }, "",
     "Log bytes between two offset index entries."},
    {"leader.replication.throttled.replicas", "", type_list, nullptr, "",
     "Replication throttling; no effect on one node."},
    {"local.retention.bytes", "log.local.retention.bytes", type_long, nullptr, "-2",
     "Tiered storage; not supported."},
    {"local.retention.ms", "log.local.retention.ms", type_long, nullptr, "-2",
     "Tiered storage; not supported."},
    {"max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", type_long, nullptr, long_max,
     "Accepted for compatibility; Sluice cleans by dirty ratio and tombstone expiry only."},
    {"max.message.bytes", "message.max.bytes", type_int,
     [](const log_config& c) { return text(c.limits.batch_bytes_max); }, "",
     "The largest record batch accepted."},
    {"message.downconversion.enable", "log.message.downconversion.enable", type_boolean, nullptr,
     "true", "Accepted for compatibility; Sluice serves message format v2 only."},
    {"message.format.version", "log.message.format.version", type_string, nullptr, "3.0-IV1",
     "Deprecated in Kafka; Sluice stores message format v2."},
    {"message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms", type_long,
     [](const log_config& c) { return text_or(c.limits.timestamp_after_max_ms, long_max); }, "",
     "How far in the future a record's timestamp may be."},
    {"message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms", type_long,
     [](const log_config& c) { return text_or(c.limits.timestamp_before_max_ms, long_max); }, "",
     "How far in the past a record's timestamp may be."},
    {"message.timestamp.difference.max.ms", "log.message.timestamp.difference.max.ms", type_long,
     nullptr, long_max, "Deprecated: sets both timestamp bounds."},
    {"message.timestamp.type", "log.message.timestamp.type", type_string, nullptr, "CreateTime",
     "Which timestamp records keep; Sluice supports CreateTime only."},
    {"min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", type_double,
     [](const log_config& c) { return fmt::format("{}", c.min_cleanable_dirty_ratio); }, "",
     "Clean a compacted log once this share of its sealed bytes was written since its last "
     "cleaning."},
    {"min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", type_long,
     [](const log_config& c) { return text(c.min_compaction_lag.count()); }, "",
     "A segment is cleaned only once its newest record is this old."},
    {"min.insync.replicas", "min.insync.replicas", type_int, nullptr, "1",
     "Replicas that must acknowledge acks=all; one node is always enough."},
    {"preallocate", "log.preallocate", type_boolean, nullptr, "false",
     "Accepted for compatibility; no effect in Sluice."},
    {"remote.storage.enable", "", type_boolean, nullptr, "false", "Tiered storage; not supported."},
    {"retention.bytes", "log.retention.bytes", type_long,
     [](const log_config& c) { return text_or(c.retention_bytes, "-1"); }, "",
     "Delete old segments while a partition is larger; -1 for no limit."},
    {"retention.ms", "log.retention.ms", type_long,
     [](const log_config& c) {
       return c.retention_ms ? text(c.retention_ms->count()) : std::string("-1");
     },
     "", "Delete segments whose newest record is older; -1 to keep forever."},
    {"segment.bytes", "log.segment.bytes", type_int,
     [](const log_config& c) { return text(c.segment_bytes); }, "",
     "Roll a segment when it would grow past this size."},
    {"segment.index.bytes", "log.index.size.max.bytes", type_int,
     [](const log_config& c) { return text(c.index_bytes_max); }, "",
     "Preallocated size of each index file."},
    {"segment.ms", "log.roll.ms", type_long,
     [](const log_config& c) { return text(c.segment_ms.count()); }, "",
     "Roll a segment this long after its first append."},
    {"unclean.leader.election.enable", "unclean.leader.election.enable", type_boolean, nullptr,
     "false", "Leader election among out-of-sync replicas; no effect on one node."},
}};

// Strings the response points at must outlive encoding: kept here for one request.
struct arena {
  std::vector<std::unique_ptr<std::string>> strings;
  std::string_view keep(std::string value) {
    strings.push_back(std::make_unique<std::string>(std::move(value)));
    return *strings.back();
  }
};

// What one request asks for, beyond the resource.
struct describe_options {
  std::int16_t version = 0;
  bool synonyms = false;
  bool documentation = false;
  const std::optional<std::vector<std::string_view>>* keys = nullptr;

  bool wants(std::string_view name) const {
    if (!keys->has_value()) return true;
    for (auto key : **keys) {
      if (key == name) return true;
    }
    return false;
  }
};

// A value, where it comes from, and the levels below it (Kafka's synonyms, most
// specific first).
struct resolved_value {
  std::string value;
  std::int8_t source = source_default;
  struct level {
    std::string_view name;
    std::string value;
    std::int8_t source;
  };
  std::vector<level> levels;
};

// The broker's value of `row` and the built-in default under it.
resolved_value broker_value(const config_row& row, const log_config& broker_defaults) {
  const std::string_view name = row.broker_name.empty() ? row.topic_name : row.broker_name;
  resolved_value out;
  const std::string builtin = row.render ? row.render(log_config{}) : std::string(row.fixed);
  if (row.render != nullptr) {
    std::string configured = row.render(broker_defaults);
    if (configured != builtin) {
      out.levels.push_back({name, configured, source_static_broker});
      out.value = std::move(configured);
      out.source = source_static_broker;
    }
  }
  if (out.levels.empty()) {
    out.value = builtin;
    out.source = source_default;
  }
  out.levels.push_back({name, builtin, source_default});
  return out;
}

void add_config(Response::DescribeConfigsResult& result, arena& strings,
                const describe_options& options, std::string_view name, resolved_value resolved,
                bool read_only, config_type type, std::string_view documentation) {
  Response::DescribeConfigsResourceResult config;
  config.name = name;
  config.value = strings.keep(std::move(resolved.value));
  config.read_only = read_only;
  config.is_default = resolved.source == source_default;
  config.config_source = resolved.source;
  config.is_sensitive = false;
  if (options.synonyms && options.version >= 1) {
    for (auto& level : resolved.levels) {
      config.synonyms.push_back({level.name, strings.keep(std::move(level.value)), level.source});
    }
  }
  config.config_type = type;
  config.documentation =
      options.documentation ? std::optional<std::string_view>(documentation) : std::nullopt;
  result.configs.push_back(std::move(config));
}

void describe_topic(Response::DescribeConfigsResult& result, arena& strings,
                    const describe_options& options, const topic_info& topic,
                    const log_config& broker_defaults) {
  for (const auto& row : topic_configs) {
    if (!options.wants(row.topic_name)) continue;
    resolved_value resolved = broker_value(row, broker_defaults);
    if (auto it = topic.overrides.find(row.topic_name); it != topic.overrides.end()) {
      resolved.value = it->second;
      resolved.source = source_dynamic_topic;
      resolved.levels.insert(resolved.levels.begin(),
                             {row.topic_name, it->second, source_dynamic_topic});
    }
    add_config(result, strings, options, row.topic_name, std::move(resolved), false, row.type,
               row.documentation);
  }
}

// A broker setting that is not a topic config's default.
struct broker_row {
  std::string_view name;
  config_type type;
  std::string value;
  std::string builtin;
  std::string_view documentation;
};

void describe_broker(Response::DescribeConfigsResult& result, arena& strings,
                     const describe_options& options, const broker_identity& self,
                     const log_config& broker_defaults) {
  const broker_identity builtin;
  const std::string listener =
      "PLAINTEXT://" + self.advertised_host + ":" + std::to_string(self.advertised_port);
  const std::array<broker_row, 6> own = {{
      {"advertised.listeners", type_string, listener, "",
       "Where clients connect, as Metadata tells them."},
      {"auto.create.topics.enable", type_boolean, self.auto_create_topics ? "true" : "false",
       builtin.auto_create_topics ? "true" : "false",
       "Create unknown topics that a client asks Metadata for."},
      {"broker.id", type_int, std::to_string(self.node_id), std::to_string(builtin.node_id),
       "This broker's id (the same as node.id)."},
      {"default.replication.factor", type_int, "1", "1", "Replicas of new topics: one node."},
      {"node.id", type_int, std::to_string(self.node_id), std::to_string(builtin.node_id),
       "This broker's id."},
      {"num.partitions", type_int, std::to_string(self.default_partitions),
       std::to_string(builtin.default_partitions),
       "Partitions of auto-created topics and of CreateTopics with -1."},
  }};
  for (const auto& row : own) {
    if (!options.wants(row.name)) continue;
    resolved_value resolved;
    resolved.value = row.value;
    // The advertised listener is always derived from flags.
    resolved.source = row.value == row.builtin && row.name != "advertised.listeners"
                          ? source_default
                          : source_static_broker;
    resolved.levels.push_back({row.name, row.value, resolved.source});
    if (resolved.source == source_static_broker && row.name != "advertised.listeners") {
      resolved.levels.push_back({row.name, row.builtin, source_default});
    }
    add_config(result, strings, options, row.name, std::move(resolved), true, row.type,
               row.documentation);
  }
  for (const auto& row : topic_configs) {
    if (row.broker_name.empty() || !options.wants(row.broker_name)) continue;
    add_config(result, strings, options, row.broker_name, broker_value(row, broker_defaults), true,
               row.type, row.documentation);
  }
}

}  // namespace

handler_status handle_describe_configs(request_context& ctx, protocol::reader& body) {
  Request request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  const broker_identity& self = ctx.broker.identity();
  topic_registry& topics = ctx.broker.topics();
  arena strings;
  Response response;
  response.results.reserve(request.resources.size());
  for (const auto& resource : request.resources) {
    auto& out = response.results.emplace_back();
    out.error_message = std::nullopt;
    out.resource_type = resource.resource_type;
    out.resource_name = resource.resource_name;
    describe_options options{ctx.version(), request.include_synonyms, request.include_documentation,
                             &resource.configuration_keys};
    auto fail = [&](error_code code, std::string message) {
      out.error_code = static_cast<std::int16_t>(code);
      out.error_message = strings.keep(std::move(message));
      out.configs.clear();
    };
    if (resource.resource_type == resource_topic) {
      const topic_info* topic = topics.find(resource.resource_name);
      if (!is_legal_topic_name(resource.resource_name)) {
        fail(error_code::invalid_topic_exception,
             "topic name " + std::string(resource.resource_name) + " is illegal");
      } else if (topic == nullptr) {
        fail(error_code::unknown_topic_or_partition,
             "topic " + std::string(resource.resource_name) + " does not exist");
      } else {
        describe_topic(out, strings, options, *topic, topics.defaults());
      }
    } else if (resource.resource_type == resource_broker) {
      if (resource.resource_name.empty()) continue;  // cluster-wide dynamic defaults: none
      if (resource.resource_name != std::to_string(self.node_id)) {
        fail(error_code::invalid_request,
             "unexpected broker id, expected " + std::to_string(self.node_id) +
                 " or empty string, but received " + std::string(resource.resource_name));
      } else {
        describe_broker(out, strings, options, self, topics.defaults());
      }
    } else {
      fail(error_code::invalid_request,
           "unsupported resource type " + std::to_string(resource.resource_type));
    }
  }
  respond(slot, ctx.address, response);
  return handler_status::done;
}

}  // namespace sluice
