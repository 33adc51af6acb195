// CreateTopics v0-v7 (key 19), on a one-broker cluster: replication factor -1 or 1,
// num_partitions -1 (v4+) for the broker default, manual assignments only onto this
// node, configs validated (topic_config.h), validate_only honoured.
#include "net/protocol/generated/create_topics.h"

#include <set>

#include "broker/api/api_table.h"
#include "engine/base/log.h"

namespace sluice {
namespace {

using protocol::error_code;
using Request = protocol::CreateTopicsRequest;
using Response = protocol::CreateTopicsResponse;

}  // namespace

handler_status handle_create_topics(request_context& ctx, protocol::reader& body) {
  Request request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  const broker_identity& self = ctx.broker.identity();
  topic_registry& topics = ctx.broker.topics();
  message_arena arena;
  Response response;
  // Kafka refuses every entry of a name that appears twice in one request.
  std::multiset<std::string_view> names;
  for (const auto& topic : request.topics) names.insert(topic.name);

  response.topics.reserve(request.topics.size());
  for (const auto& topic : request.topics) {
    auto& out = response.topics.emplace_back();
    out.name = topic.name;
    out.error_message = std::nullopt;
    auto fail = [&](error_code code, std::string message) {
      out.error_code = static_cast<std::int16_t>(code);
      out.error_message = arena.keep(std::move(message));
      out.configs = std::nullopt;
      out.topic_config_error_code = 0;
    };
    if (names.count(topic.name) > 1) {
      fail(error_code::invalid_request,
           "topic " + std::string(topic.name) + " appears more than once in the request");
      continue;
    }
    std::int32_t partitions = topic.num_partitions;
    if (!topic.assignments.empty()) {
      if (topic.num_partitions != -1 || topic.replication_factor != -1) {
        fail(error_code::invalid_request,
             "give either assignments or num_partitions and replication_factor, not both");
        continue;
      }
      bool only_here = true;
      std::set<std::int32_t> indexes;
      for (const auto& assignment : topic.assignments) {
        only_here = only_here && assignment.broker_ids.size() == 1 &&
                    assignment.broker_ids[0] == self.node_id;
        indexes.insert(assignment.partition_index);
      }
      // Partitions 0..n-1, each on this node alone.
      if (!only_here || indexes.size() != topic.assignments.size() || *indexes.begin() != 0 ||
          *indexes.rbegin() != static_cast<std::int32_t>(indexes.size()) - 1) {
        fail(error_code::invalid_replica_assignment,
             "replica assignments must place partitions 0..n-1 on node " +
                 std::to_string(self.node_id) + " alone");
        continue;
      }
      partitions = static_cast<std::int32_t>(topic.assignments.size());
    } else {
      if (partitions == -1) partitions = self.default_partitions;
      if (topic.replication_factor != -1 && topic.replication_factor != 1) {
        fail(error_code::invalid_replication_factor,
             "replication factor " + std::to_string(topic.replication_factor) +
                 " is impossible: this cluster has 1 broker");
        continue;
      }
    }
    topic_config_overrides overrides;
    for (const auto& config : topic.configs) {
      if (config.value.has_value())
        overrides[std::string(config.name)] = std::string(*config.value);
    }
    std::string problem;
    switch (topics.check_create(topic.name, partitions, overrides, problem)) {
      case topic_registry::create_error::none: break;
      case topic_registry::create_error::invalid_name:
        fail(error_code::invalid_topic_exception,
             "topic names are 1 to 249 characters of [a-zA-Z0-9._-], not . or ..");
        continue;
      case topic_registry::create_error::exists:
        fail(error_code::topic_already_exists,
             topics.being_deleted(topic.name)
                 ? "topic " + std::string(topic.name) + " is being deleted; retry shortly"
                 : "topic " + std::string(topic.name) + " already exists");
        continue;
      case topic_registry::create_error::invalid_partitions:
        fail(error_code::invalid_partitions,
             "number of partitions must be between 1 and " +
                 std::to_string(topic_registry::partitions_per_topic_max));
        continue;
      case topic_registry::create_error::invalid_config:
        fail(error_code::invalid_config, problem);
        continue;
    }
    const topic_info* created = nullptr;
    if (!request.validate_only) {
      auto made = ctx.broker.create_topic(topic.name, partitions, overrides);
      if (!made) {
        fail(protocol::to_error_code(made.code()), made.failure().detail());
        continue;
      }
      created = *made;
      SLUICE_LOG(info, "kafka", "{}: CreateTopics created {} ({} partitions)", ctx.peer(),
                 topic.name, partitions);
    }
    out.num_partitions = partitions;
    out.replication_factor = 1;
    if (created != nullptr) out.topic_id = created->id;
    out.configs.emplace();
    for (const auto& [name, value] : overrides) {
      Response::CreatableTopicConfigs config;
      config.name = arena.keep(name);
      config.value = arena.keep(value);
      config.config_source = 1;  // DYNAMIC_TOPIC_CONFIG
      out.configs->push_back(config);
    }
  }
  respond(slot, ctx.address, response);
  return handler_status::done;
}

}  // namespace sluice
