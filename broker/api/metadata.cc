// Metadata v0-v12 (key 3): this broker as the only broker, controller and leader of
// every partition; topics requested or all, auto-created when allowed.
#include "net/protocol/generated/metadata.h"

#include <set>

#include "broker/api/api_table.h"
#include "broker/groups/offsets_log.h"
#include "engine/base/log.h"
#include "engine/storage/checkpoint.h"

namespace sluice {
namespace {

using protocol::error_code;
using Response = protocol::MetadataResponse;

Response::MetadataResponseTopic describe(const topic_info& topic, std::int32_t node_id) {
  Response::MetadataResponseTopic out;
  out.name = topic.name;
  out.is_internal = offsets_log::is_internal(topic.name);
  out.topic_id = topic.id;
  out.partitions.reserve(static_cast<std::size_t>(topic.partitions));
  for (std::int32_t p = 0; p < topic.partitions; ++p) {
    Response::MetadataResponsePartition partition;
    partition.partition_index = p;
    partition.leader_id = node_id;
    partition.leader_epoch = 0;
    partition.replica_nodes = {node_id};
    partition.isr_nodes = {node_id};
    out.partitions.push_back(std::move(partition));
  }
  return out;
}

Response::MetadataResponseTopic failed(std::optional<std::string_view> name, error_code code) {
  Response::MetadataResponseTopic out;
  out.name = name;
  out.error_code = static_cast<std::int16_t>(code);
  return out;
}

}  // namespace

handler_status handle_metadata(request_context& ctx, protocol::reader& body) {
  protocol::MetadataRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  broker_context& broker = ctx.broker;
  const broker_identity& self = broker.identity();
  // Before v4 the request cannot say; the broker's setting decides alone.
  const bool auto_create =
      self.auto_create_topics && (ctx.version() < 4 || request.allow_auto_topic_creation);
  // Creating a topic is core 0's work: another core hands the whole request over when a
  // topic it names would be created.
  if (auto_create && broker.registry() == nullptr && request.topics.has_value()) {
    for (const auto& wanted : *request.topics) {
      if (wanted.name.has_value() && broker.table().find(*wanted.name) == nullptr &&
          is_legal_topic_name(*wanted.name) && !broker.table().being_deleted(*wanted.name)) {
        return handler_status::forward;
      }
    }
  }
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  Response response;
  response.brokers.push_back(
      {self.node_id, self.advertised_host, self.advertised_port, std::nullopt});
  response.cluster_id = self.cluster_id;
  response.controller_id = self.node_id;

  // v0 has no null: an empty list means every topic there. From v1 null means all.
  const bool all_topics =
      !request.topics.has_value() || (ctx.version() == 0 && request.topics->empty());
  if (all_topics) {
    broker.table().for_each(
        [&](const topic_info& topic) { response.topics.push_back(describe(topic, self.node_id)); });
  } else {
    std::set<std::string_view> seen;
    std::set<protocol::uuid, bool (*)(const protocol::uuid&, const protocol::uuid&)> seen_ids(
        [](const protocol::uuid& a, const protocol::uuid& b) { return a.bytes < b.bytes; });
    for (const auto& wanted : *request.topics) {
      if (!wanted.name.has_value()) {
        // By topic id (v10+).
        if (!seen_ids.insert(wanted.topic_id).second) continue;
        const topic_info* topic = broker.table().find(wanted.topic_id);
        if (topic == nullptr) {
          auto out = failed(std::nullopt, error_code::unknown_topic_id);
          out.topic_id = wanted.topic_id;
          response.topics.push_back(std::move(out));
        } else {
          response.topics.push_back(describe(*topic, self.node_id));
        }
        continue;
      }
      std::string_view name = *wanted.name;
      if (!seen.insert(name).second) continue;
      if (const topic_info* topic = broker.table().find(name)) {
        response.topics.push_back(describe(*topic, self.node_id));
      } else if (!is_legal_topic_name(name)) {
        response.topics.push_back(failed(name, error_code::invalid_topic_exception));
      } else if (!auto_create || broker.table().being_deleted(name)) {
        response.topics.push_back(failed(name, error_code::unknown_topic_or_partition));
      } else {
        auto created = broker.create_topic(name, self.default_partitions, {});
        if (created) {
          SLUICE_LOG(info, "kafka", "{}: auto-created topic {} ({} partitions) for Metadata",
                     ctx.peer(), name, self.default_partitions);
          response.topics.push_back(describe(**created, self.node_id));
        } else {
          SLUICE_LOG(warn, "kafka", "{}: auto-creating topic {} failed: {}", ctx.peer(), name,
                     created.failure().detail());
          response.topics.push_back(failed(name, protocol::to_error_code(created.code())));
        }
      }
    }
  }
  respond(slot, ctx.address, response);
  return handler_status::done;
}

}  // namespace sluice
