// OffsetFetch v0-v9 (key 9): the committed offsets of one group (v0-v7) or of several
// (v8+), for the partitions named or -- topics null, v2+ -- every partition the group
// committed. A partition without a commit gets offset -1. Before v2 there is no
// group-level error field, so a group-level error is given on every partition.
#include "net/protocol/generated/offset_fetch.h"

#include <map>

#include "broker/api/api_table.h"
#include "broker/api/group_api.h"

namespace sluice {
namespace {

using protocol::error_code;
using Response = protocol::OffsetFetchResponse;

std::optional<std::vector<groups::topic_partition_ref>> wanted(
    const auto& topics /* optional<vector<{name, partition_indexes}>> */) {
  if (!topics) return std::nullopt;
  std::vector<groups::topic_partition_ref> out;
  for (const auto& t : *topics) {
    for (std::int32_t p : t.partition_indexes) out.push_back({std::string(t.name), p});
  }
  return out;
}

groups::fetch_offsets_result fetch(
    request_context& ctx, std::string_view group,
    const std::optional<std::vector<groups::topic_partition_ref>>& parts, bool require_stable) {
  groups::group_coordinator* coordinator = ctx.broker.group_coordinator();
  if (coordinator == nullptr) {
    groups::fetch_offsets_result none;
    none.error = error_code::coordinator_not_available;
    if (parts) {
      for (const auto& p : *parts) none.partitions.push_back({p.topic, p.partition});
    }
    return none;
  }
  return coordinator->fetch_offsets(group, parts, require_stable);
}

// Groups the coordinator's flat list by topic, keeping the order of first appearance.
template <typename Topic, typename Partition>
std::vector<Topic> by_topic(const groups::fetch_offsets_result& result, bool errors_on_partitions) {
  std::vector<Topic> topics;
  std::map<std::string_view, std::size_t> index;
  for (const auto& p : result.partitions) {
    auto [at, fresh] = index.try_emplace(p.topic, topics.size());
    if (fresh) {
      topics.emplace_back();
      topics.back().name = p.topic;
    }
    Partition out;
    out.partition_index = p.partition;
    out.committed_offset = p.committed_offset;
    out.committed_leader_epoch = p.leader_epoch;
    if (p.metadata) {
      out.metadata = *p.metadata;
    } else {
      out.metadata = "";
    }
    auto error = p.error;
    if (errors_on_partitions && result.error != error_code::none) error = result.error;
    out.error_code = code(error);
    topics[at->second].partitions.push_back(out);
  }
  return topics;
}

}  // namespace

handler_status handle_offset_fetch(request_context& ctx, protocol::reader& body) {
  protocol::OffsetFetchRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  Response response;
  // Kept alive until the response is encoded: it holds the strings the response views.
  std::vector<groups::fetch_offsets_result> results;
  if (ctx.version() >= 8) {
    results.reserve(request.groups.size());
    for (const auto& g : request.groups) {
      results.push_back(fetch(ctx, g.group_id, wanted(g.topics), request.require_stable));
      const auto& result = results.back();
      Response::OffsetFetchResponseGroup group;
      group.group_id = g.group_id;
      group.error_code = code(result.error);
      group.topics =
          by_topic<Response::OffsetFetchResponseTopics, Response::OffsetFetchResponsePartitions>(
              result, false);
      response.groups.push_back(std::move(group));
    }
  } else {
    results.push_back(fetch(ctx, request.group_id, wanted(request.topics),
                            ctx.version() >= 7 && request.require_stable));
    const auto& result = results.back();
    const bool group_error_field = ctx.version() >= 2;
    response.error_code = code(result.error);
    response.topics =
        by_topic<Response::OffsetFetchResponseTopic, Response::OffsetFetchResponsePartition>(
            result, !group_error_field);
  }
  respond(slot, ctx.address, response);
  return handler_status::done;
}

}  // namespace sluice
