// IncrementalAlterConfigs v0-v1 (key 44): changes topic config overrides.
//
// TOPIC resources (type 2): SET and DELETE, applied in request order to the topic's
// overrides; the result is validated exactly as CreateTopics validates configs
// (resolve_topic_config), then persisted in the topic registry and applied to the live
// partition logs at once -- or, with validate_only, only validated. APPEND and SUBTRACT
// are for list configs; the only list configs Sluice accepts (cleanup.policy, the
// replication throttles) allow a single value or none, so both answer INVALID_CONFIG, as
// Kafka answers APPEND to a non-list config.
//
// BROKER resources (type 4): Sluice has no dynamic broker configs, so every broker
// config is static; Kafka refuses a change to a static config with INVALID_REQUEST
// ("Cannot update these configs dynamically"), and so does Sluice. A broker resource
// with no configs changes nothing and succeeds. A broker name other than this node's id
// (or empty, for cluster-wide defaults) gets INVALID_REQUEST as well.
//
// Other resource types, an unknown operation, a null value for SET, or a config named
// twice in one resource: INVALID_REQUEST. An unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
#include "net/protocol/generated/incremental_alter_configs.h"

#include <memory>
#include <set>
#include <string>

#include "broker/api/api_table.h"
#include "engine/base/log.h"
#include "engine/storage/checkpoint.h"

namespace sluice {
namespace {

using protocol::error_code;
using Request = protocol::IncrementalAlterConfigsRequest;
using Response = protocol::IncrementalAlterConfigsResponse;

// Kafka's ConfigResource.Type ids.
constexpr std::int8_t resource_topic = 2;
constexpr std::int8_t resource_broker = 4;

// Kafka's AlterConfigOp.OpType ids.
constexpr std::int8_t op_set = 0;
constexpr std::int8_t op_delete = 1;
constexpr std::int8_t op_append = 2;
constexpr std::int8_t op_subtract = 3;

struct outcome {
  error_code code = error_code::none;
  std::string message;
};

// The topic's overrides after the resource's operations, or why they cannot apply.
outcome apply_operations(const Request::AlterConfigsResource& resource,
                         topic_config_overrides& overrides) {
  std::set<std::string_view> seen;
  for (const auto& config : resource.configs) {
    if (!seen.insert(config.name).second) {
      return {error_code::invalid_request,
              "config " + std::string(config.name) + " appears more than once"};
    }
  }
  for (const auto& config : resource.configs) {
    const std::string name(config.name);
    switch (config.config_operation) {
      case op_set:
        if (!config.value.has_value()) {
          return {error_code::invalid_request, "null value not supported for " + name};
        }
        overrides[name] = std::string(*config.value);
        break;
      case op_delete: overrides.erase(name); break;
      case op_append:
      case op_subtract:
        return {error_code::invalid_config,
                "config value " +
                    std::string(config.config_operation == op_append ? "append" : "subtract") +
                    " is not allowed for config key " + name +
                    ": Sluice supports no multi-valued topic config"};
      default:
        return {error_code::invalid_request,
                "unknown config operation " + std::to_string(config.config_operation)};
    }
  }
  return {};
}

outcome alter_topic(request_context& ctx, const Request::AlterConfigsResource& resource,
                    bool validate_only) {
  topic_registry& topics = ctx.broker.topics();
  const std::string name(resource.resource_name);
  if (!is_legal_topic_name(name)) {
    return {error_code::invalid_topic_exception, "topic name " + name + " is illegal"};
  }
  const topic_info* topic = topics.find(name);
  if (topic == nullptr) {
    return {error_code::unknown_topic_or_partition, "topic " + name + " does not exist"};
  }
  topic_config_overrides overrides = topic->overrides;
  if (outcome applied = apply_operations(resource, overrides); applied.code != error_code::none) {
    return applied;
  }
  auto resolved = resolve_topic_config(topics.defaults(), overrides);
  if (auto* problem = std::get_if<std::string>(&resolved)) {
    return {error_code::invalid_config, *problem};
  }
  if (validate_only) return {};
  if (auto stored = topics.set_overrides(name, overrides); !stored) {
    return {protocol::to_error_code(stored.code()), stored.failure().detail()};
  }
  SLUICE_LOG(info, "kafka", "{}: IncrementalAlterConfigs changed {} configs of topic {}",
             ctx.peer(), resource.configs.size(), name);
  return {};
}

outcome alter_broker(request_context& ctx, const Request::AlterConfigsResource& resource) {
  const std::string node_id = std::to_string(ctx.broker.identity().node_id);
  if (resource.resource_name != node_id) {
    return {error_code::invalid_request,
            "unexpected broker id, expected " + node_id + ", but received " +
                std::string(resource.resource_name) +
                " (Sluice has no cluster-wide dynamic broker configs)"};
  }
  if (resource.configs.empty()) return {};
  std::string names;
  for (const auto& config : resource.configs) {
    if (!names.empty()) names += ", ";
    names += config.name;
  }
  return {error_code::invalid_request,
          "cannot update these configs dynamically: " + names +
              " (Sluice broker configs are static: set them with flags and restart)"};
}

}  // namespace

handler_status handle_incremental_alter_configs(request_context& ctx, protocol::reader& body) {
  Request request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  // Kafka refuses every entry of a resource that appears twice in one request.
  std::multiset<std::pair<std::int8_t, std::string_view>> resources;
  for (const auto& resource : request.resources) {
    resources.insert({resource.resource_type, resource.resource_name});
  }
  std::vector<std::unique_ptr<std::string>> messages;  // outlive encoding
  Response response;
  response.responses.reserve(request.resources.size());
  for (const auto& resource : request.resources) {
    outcome result;
    if (resources.count({resource.resource_type, resource.resource_name}) > 1) {
      result = {error_code::invalid_request, "resource " + std::string(resource.resource_name) +
                                                 " appears more than once in the request"};
    } else if (resource.resource_type == resource_topic) {
      result = alter_topic(ctx, resource, request.validate_only);
    } else if (resource.resource_type == resource_broker) {
      result = alter_broker(ctx, resource);
    } else {
      result = {error_code::invalid_request,
                "unsupported resource type " + std::to_string(resource.resource_type)};
    }
    auto& out = response.responses.emplace_back();
    out.resource_type = resource.resource_type;
    out.resource_name = resource.resource_name;
    out.error_code = static_cast<std::int16_t>(result.code);
    if (result.code == error_code::none) {
      out.error_message = std::nullopt;
    } else {
      messages.push_back(std::make_unique<std::string>(std::move(result.message)));
      out.error_message = *messages.back();
    }
  }
  respond(slot, ctx.address, response);
  return handler_status::done;
}

}  // namespace sluice
