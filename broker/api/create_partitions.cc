// CreatePartitions v0-v3 (key 37): grows topics, on a one-broker cluster. Manual
// assignments are accepted only when they place each new partition on this node alone;
// validate_only checks without growing. Errors as Kafka's controller gives them:
// INVALID_PARTITIONS when the count does not grow (or passes the registry's bound),
// UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT, and INVALID_REQUEST for every
// entry of a topic named twice.
#include "net/protocol/generated/create_partitions.h"

#include <memory>
#include <set>
#include <string>

#include "broker/api/api_table.h"
#include "engine/base/log.h"

namespace sluice {
namespace {

using protocol::error_code;
using Request = protocol::CreatePartitionsRequest;
using Response = protocol::CreatePartitionsResponse;

struct refusal {
  error_code code = error_code::none;
  std::string message;
};

// Why growing `topic` as `wanted` asks is refused, or code none.
refusal check_growth(const Request::CreatePartitionsTopic& wanted, const topic_info* topic,
                     std::int32_t node_id) {
  if (topic == nullptr) {
    return {error_code::unknown_topic_or_partition,
            "topic " + std::string(wanted.name) + " does not exist"};
  }
  if (wanted.count <= topic->partitions) {
    return {error_code::invalid_partitions,
            wanted.count == topic->partitions
                ? "topic already has " + std::to_string(topic->partitions) + " partitions"
                : "topic currently has " + std::to_string(topic->partitions) +
                      " partitions, which is higher than the requested " +
                      std::to_string(wanted.count)};
  }
  if (wanted.count > topic_registry::partitions_per_topic_max) {
    return {error_code::invalid_partitions,
            "number of partitions must be at most " +
                std::to_string(topic_registry::partitions_per_topic_max)};
  }
  if (wanted.assignments.has_value()) {
    const auto added = static_cast<std::size_t>(wanted.count - topic->partitions);
    if (wanted.assignments->size() != added) {
      return {error_code::invalid_replica_assignment,
              "increasing the number of partitions by " + std::to_string(added) + " but " +
                  std::to_string(wanted.assignments->size()) + " assignments provided"};
    }
    for (const auto& assignment : *wanted.assignments) {
      if (assignment.broker_ids.size() != 1 || assignment.broker_ids[0] != node_id) {
        return {error_code::invalid_replica_assignment,
                "replica assignments must place each new partition on node " +
                    std::to_string(node_id) + " alone"};
      }
    }
  }
  return {};
}

}  // namespace

handler_status handle_create_partitions(request_context& ctx, protocol::reader& body) {
  Request request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  topic_registry& topics = ctx.broker.topics();
  message_arena arena;
  Response response;
  // Kafka refuses every entry of a name that appears twice in one request.
  std::multiset<std::string_view> names;
  for (const auto& topic : request.topics) names.insert(topic.name);

  response.results.reserve(request.topics.size());
  for (const auto& wanted : request.topics) {
    auto& out = response.results.emplace_back();
    out.name = wanted.name;
    out.error_message = std::nullopt;
    refusal refused;
    if (names.count(wanted.name) > 1) {
      refused = {error_code::invalid_request,
                 "topic " + std::string(wanted.name) + " appears more than once in the request"};
    } else {
      refused = check_growth(wanted, topics.find(wanted.name), ctx.broker.identity().node_id);
    }
    if (refused.code == error_code::none && !request.validate_only) {
      const std::int32_t before = topics.find(wanted.name)->partitions;
      if (auto grown = topics.add_partitions(wanted.name, wanted.count); !grown) {
        refused = {protocol::to_error_code(grown.code()), grown.failure().detail()};
      } else {
        SLUICE_LOG(info, "kafka", "{}: CreatePartitions grew {} from {} to {} partitions",
                   ctx.peer(), wanted.name, before, wanted.count);
      }
    }
    if (refused.code != error_code::none) {
      out.error_code = static_cast<std::int16_t>(refused.code);
      out.error_message = arena.keep(std::move(refused.message));
    }
  }
  respond(slot, ctx.address, response);
  return handler_status::done;
}

}  // namespace sluice
