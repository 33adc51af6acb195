// sluice-admin topics: list, describe, create, delete, alter-config.
#include <fmt/format.h>

#include "net/protocol/error_codes.h"
#include "net/protocol/generated/create_topics.h"
#include "net/protocol/generated/delete_topics.h"
#include "net/protocol/generated/describe_configs.h"
#include "net/protocol/generated/incremental_alter_configs.h"
#include "tools/admin/cluster_view.h"
#include "tools/admin/commands.h"
#include "tools/admin/text_table.h"

namespace sluice::admin {

namespace {

constexpr std::int8_t topic_resource = 2;  // ConfigResource.Type.TOPIC
constexpr std::int8_t config_set = 0;      // IncrementalAlterConfigs operations
constexpr std::int8_t config_delete = 1;

std::string topic_subject(std::string_view name) {
  return "topic '" + std::string(name) + "'";
}

std::string join_ints(const std::vector<std::int32_t>& values) {
  return fmt::format("{}", fmt::join(values, ","));
}

void write_ints(json_writer& json, const std::vector<std::int32_t>& values) {
  json.begin_array();
  for (std::int32_t v : values) json.value(static_cast<std::int64_t>(v));
  json.end_array();
}

struct config_entry {
  std::string name;
  std::optional<std::string> value;
  std::int8_t source = -1;
  bool read_only = false;
  bool sensitive = false;
};

// The configs of `topics` through DescribeConfigs; topics whose describe fails are
// reported and missing from the map.
std::map<std::string, std::vector<config_entry>> describe_configs(
    admin_session& session, const std::vector<std::string>& topics) {
  std::map<std::string, std::vector<config_entry>> out;
  if (topics.empty()) return out;
  protocol::DescribeConfigsRequest request;
  for (const auto& name : topics) {
    auto& resource = request.resources.emplace_back();
    resource.resource_type = topic_resource;
    resource.resource_name = name;
    resource.configuration_keys = std::nullopt;  // every key
  }
  auto answer = session.call<protocol::DescribeConfigsResponse>(session.bootstrap(), request,
                                                                "DescribeConfigs request");
  if (!answer) return out;
  for (const auto& result : answer->message.results) {
    const std::string name(result.resource_name);
    if (session.report_kafka_error(topic_subject(name), result.error_code, result.error_message)) {
      continue;
    }
    auto& entries = out[name];
    for (const auto& config : result.configs) {
      config_entry entry;
      entry.name = std::string(config.name);
      if (config.value) entry.value = std::string(*config.value);
      // v0 has only IsDefault; later versions say where the value comes from.
      entry.source = config.config_source >= 0
                         ? config.config_source
                         : static_cast<std::int8_t>(config.is_default ? 5 : 1);
      entry.read_only = config.read_only;
      entry.sensitive = config.is_sensitive;
      entries.push_back(std::move(entry));
    }
  }
  return out;
}

}  // namespace

int topics_list(admin_session& session) {
  auto cluster = fetch_cluster(session, nullptr);
  if (!cluster) return session.exit_code();
  if (session.command().json) {
    json_writer json;
    json.begin_object();
    json.key("topics");
    json.begin_array();
    for (const auto& topic : cluster->topics) {
      json.begin_object();
      json.field("name", topic.name);
      json.field("topic_id", topic_id_text(topic.id));
      json.field("partitions", static_cast<std::int64_t>(topic.partitions.size()));
      json.field("internal", topic.internal);
      json.end_object();
    }
    json.end_array();
    json.end_object();
    session.out() << json.text() << '\n';
  } else {
    text_table table({"TOPIC", "PARTITIONS", "TOPIC-ID"});
    for (const auto& topic : cluster->topics) {
      table.add({topic.name, std::to_string(topic.partitions.size()), topic_id_text(topic.id)});
    }
    session.out() << table.render();
  }
  return session.exit_code();
}

int topics_describe(admin_session& session) {
  const auto& names = session.command().names;
  auto cluster = fetch_cluster(session, &names);
  if (!cluster) return session.exit_code();
  std::vector<const topic_view*> found;
  std::vector<std::string> found_names;
  for (const auto& name : names) {
    const topic_view* topic = cluster->find(name);
    if (topic == nullptr) {
      session.report(topic_subject(name) +
                     ": UNKNOWN_TOPIC_OR_PARTITION: not in the Metadata answer");
      continue;
    }
    if (session.report_kafka_error(topic_subject(name), topic->error_code)) continue;
    found.push_back(topic);
    found_names.push_back(name);
  }
  auto configs = describe_configs(session, found_names);

  if (session.command().json) {
    json_writer json;
    json.begin_object();
    json.key("topics");
    json.begin_array();
    for (const topic_view* topic : found) {
      json.begin_object();
      json.field("name", topic->name);
      json.field("topic_id", topic_id_text(topic->id));
      json.field("internal", topic->internal);
      json.key("partitions");
      json.begin_array();
      for (const auto& p : topic->partitions) {
        json.begin_object();
        json.field("partition", static_cast<std::int64_t>(p.partition));
        json.field("leader", static_cast<std::int64_t>(p.leader));
        json.field("leader_epoch", static_cast<std::int64_t>(p.leader_epoch));
        json.key("replicas");
        write_ints(json, p.replicas);
        json.key("isr");
        write_ints(json, p.isr);
        json.key("offline_replicas");
        write_ints(json, p.offline_replicas);
        json.field("error",
                   protocol::error_code_name(static_cast<protocol::error_code>(p.error_code)));
        json.end_object();
      }
      json.end_array();
      json.key("configs");
      json.begin_array();
      for (const auto& entry : configs[topic->name]) {
        json.begin_object();
        json.field("name", entry.name);
        json.key("value");
        if (entry.value) {
          json.value(*entry.value);
        } else {
          json.null();
        }
        json.field("source", config_source_name(entry.source));
        json.field("read_only", entry.read_only);
        json.field("sensitive", entry.sensitive);
        json.end_object();
      }
      json.end_array();
      json.end_object();
    }
    json.end_array();
    json.end_object();
    session.out() << json.text() << '\n';
    return session.exit_code();
  }

  bool first = true;
  for (const topic_view* topic : found) {
    if (!first) session.out() << '\n';
    first = false;
    session.out() << fmt::format("Topic: {}  TopicId: {}  PartitionCount: {}\n", topic->name,
                                 topic_id_text(topic->id), topic->partitions.size());
    std::vector<std::string> overrides;
    for (const auto& entry : configs[topic->name]) {
      if (entry.source == 1) {
        overrides.push_back(entry.name + "=" +
                            (entry.sensitive ? "(sensitive)" : entry.value.value_or("null")));
      }
    }
    session.out() << "Configs: "
                  << (overrides.empty() ? "(all defaults)"
                                        : fmt::format("{}", fmt::join(overrides, ", ")))
                  << '\n';
    text_table table({"PARTITION", "LEADER", "REPLICAS", "ISR"});
    for (const auto& p : topic->partitions) {
      table.add({std::to_string(p.partition), std::to_string(p.leader), join_ints(p.replicas),
                 join_ints(p.isr)});
    }
    session.out() << table.render();
  }
  return session.exit_code();
}

int topics_create(admin_session& session) {
  const admin_command& command = session.command();
  const std::string& name = command.names.at(0);
  kafka_client* client = session.bootstrap();
  if (client == nullptr) return session.exit_code();
  auto version = client->version_for(protocol::api_key::create_topics, 0, 7);
  if (!version.ok()) {
    session.report_client_error("CreateTopics", version.failure());
    return session.exit_code();
  }
  // The broker's defaults (-1) need v4 (KIP-464); before, both must be given.
  if (!command.partitions && *version < 4) {
    session.report(topic_subject(name) + ": this broker needs --partitions (CreateTopics v" +
                   std::to_string(*version) + ")");
    return session.exit_code();
  }
  protocol::CreateTopicsRequest request;
  request.timeout_ms = static_cast<std::int32_t>(command.timeout.count());
  auto& topic = request.topics.emplace_back();
  topic.name = name;
  topic.num_partitions = command.partitions.value_or(-1);
  topic.replication_factor = static_cast<std::int16_t>(*version >= 4 ? -1 : 1);
  for (const auto& [key, value] : command.configs) {
    auto& config = topic.configs.emplace_back();
    config.name = key;
    config.value = value;
  }
  auto answer =
      client->call_sync_at<protocol::CreateTopicsResponse>(*version, request, command.timeout);
  if (!answer.ok()) {
    session.report_client_error("CreateTopics request", answer.failure());
    return session.exit_code();
  }
  for (const auto& result : answer->message.topics) {
    if (session.report_kafka_error(topic_subject(result.name), result.error_code,
                                   result.error_message)) {
      continue;
    }
    const std::int32_t partitions =
        result.num_partitions > 0 ? result.num_partitions : command.partitions.value_or(-1);
    if (command.json) {
      json_writer json;
      json.begin_object();
      json.key("created");
      json.begin_object();
      json.field("name", result.name);
      json.field("topic_id", topic_id_text(result.topic_id));
      json.field("partitions", static_cast<std::int64_t>(partitions));
      json.end_object();
      json.end_object();
      session.out() << json.text() << '\n';
    } else {
      session.out() << fmt::format("Created topic {} with {} partitions.\n", result.name,
                                   partitions > 0 ? std::to_string(partitions) : "the default");
    }
  }
  return session.exit_code();
}

int topics_delete(admin_session& session) {
  const admin_command& command = session.command();
  protocol::DeleteTopicsRequest request;
  request.timeout_ms = static_cast<std::int32_t>(command.timeout.count());
  for (const auto& name : command.names) {
    request.topic_names.push_back(name);        // v0-5
    request.topics.emplace_back().name = name;  // v6+
  }
  auto answer = session.call<protocol::DeleteTopicsResponse>(session.bootstrap(), request,
                                                             "DeleteTopics request");
  if (!answer) return session.exit_code();
  std::vector<std::string> deleted;
  for (const auto& result : answer->message.responses) {
    const std::string name(result.name.value_or(topic_id_text(result.topic_id)));
    if (session.report_kafka_error(topic_subject(name), result.error_code, result.error_message)) {
      continue;
    }
    deleted.push_back(name);
  }
  if (command.json) {
    json_writer json;
    json.begin_object();
    json.key("deleted");
    json.begin_array();
    for (const auto& name : deleted) json.value(name);
    json.end_array();
    json.end_object();
    session.out() << json.text() << '\n';
  } else {
    for (const auto& name : deleted) session.out() << "Deleted topic " << name << ".\n";
  }
  return session.exit_code();
}

int topics_alter_config(admin_session& session) {
  const admin_command& command = session.command();
  const std::string& name = command.names.at(0);
  protocol::IncrementalAlterConfigsRequest request;
  auto& resource = request.resources.emplace_back();
  resource.resource_type = topic_resource;
  resource.resource_name = name;
  for (const auto& [key, value] : command.sets) {
    auto& config = resource.configs.emplace_back();
    config.name = key;
    config.config_operation = config_set;
    config.value = value;
  }
  for (const auto& key : command.deletes) {
    auto& config = resource.configs.emplace_back();
    config.name = key;
    config.config_operation = config_delete;
    config.value = std::nullopt;
  }
  auto answer = session.call<protocol::IncrementalAlterConfigsResponse>(
      session.bootstrap(), request, topic_subject(name) + ": IncrementalAlterConfigs request");
  if (!answer) return session.exit_code();
  bool changed = false;
  for (const auto& result : answer->message.responses) {
    if (!session.report_kafka_error(topic_subject(result.resource_name), result.error_code,
                                    result.error_message)) {
      changed = true;
    }
  }
  if (answer->message.responses.empty()) {
    session.report(topic_subject(name) +
                   ": the broker answered IncrementalAlterConfigs with no result");
  }
  if (!changed) return session.exit_code();
  if (command.json) {
    json_writer json;
    json.begin_object();
    json.field("topic", name);
    json.key("set");
    json.begin_object();
    for (const auto& [key, value] : command.sets) json.field(key, value);
    json.end_object();
    json.key("deleted");
    json.begin_array();
    for (const auto& key : command.deletes) json.value(key);
    json.end_array();
    json.end_object();
    session.out() << json.text() << '\n';
  } else {
    session.out() << "Updated the configs of topic " << name << ".\n";
  }
  return session.exit_code();
}

}  // namespace sluice::admin
