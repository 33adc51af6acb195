// OffsetCommit v0-v9 (key 8): commits from group members (generation and member id
// checked) and from outside the group protocol (generation -1, no member id, accepted
// while the group is empty). Answered once the offsets are durable in __consumer_offsets,
// with one error per partition. v2-v4's retention_time_ms is ignored, as Kafka does since
// 2.1 (offsets.retention.minutes applies); v1's commit_timestamp likewise (the broker
// stamps commits with its own clock).
#include "net/protocol/generated/offset_commit.h"

#include "broker/api/api_table.h"
#include "broker/api/group_api.h"

namespace sluice {
namespace {

using Response = protocol::OffsetCommitResponse;

// The request's topics and partitions, owned, in order, to shape the late answer.
struct commit_shape {
  std::vector<std::string> topics;
  std::vector<std::vector<std::int32_t>> partitions;
};

Response shaped(const commit_shape& shape, const std::vector<protocol::error_code>& errors,
                protocol::error_code all) {
  Response response;
  std::size_t next = 0;
  for (std::size_t t = 0; t < shape.topics.size(); ++t) {
    Response::OffsetCommitResponseTopic topic;
    topic.name = shape.topics[t];
    for (std::int32_t p : shape.partitions[t]) {
      auto error = next < errors.size() ? errors[next] : all;
      ++next;
      topic.partitions.push_back({p, code(error)});
    }
    response.topics.push_back(std::move(topic));
  }
  return response;
}

}  // namespace

handler_status handle_offset_commit(request_context& ctx, protocol::reader& body) {
  protocol::OffsetCommitRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;
  const response_address address = ctx.address;

  auto shape = std::make_shared<commit_shape>();
  groups::commit_request commit;
  commit.group_id = owned(request.group_id);
  commit.generation_id = request.generation_id_or_member_epoch;
  commit.member_id = owned(request.member_id);
  commit.group_instance_id = owned(request.group_instance_id);
  for (const auto& t : request.topics) {
    shape->topics.emplace_back(t.name);
    shape->partitions.emplace_back();
    for (const auto& p : t.partitions) {
      shape->partitions.back().push_back(p.partition_index);
      commit.partitions.push_back({owned(t.name), p.partition_index, p.committed_offset,
                                   p.committed_leader_epoch, owned(p.committed_metadata)});
    }
  }
  groups::group_coordinator* coordinator = ctx.broker.group_coordinator();
  if (coordinator == nullptr) {
    respond(slot, address, shaped(*shape, {}, protocol::error_code::coordinator_not_available));
    return handler_status::done;
  }
  coordinator->commit_offsets(
      std::move(commit), steady_now(),
      [slot = share(std::move(slot)), address, shape](std::vector<protocol::error_code> errors) {
        respond(*slot, address, shaped(*shape, errors, protocol::error_code::unknown_server_error));
      });
  return handler_status::done;
}

}  // namespace sluice
