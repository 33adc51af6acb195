// OffsetDelete v0 (key 47): deletes committed offsets of a group for partitions it no
// longer consumes (GROUP_SUBSCRIBED_TO_TOPIC for topics it still subscribes to).
#include "net/protocol/generated/offset_delete.h"

#include "broker/api/api_table.h"
#include "broker/api/group_api.h"

namespace sluice {
namespace {

using Response = protocol::OffsetDeleteResponse;

struct delete_shape {
  std::vector<std::string> topics;
  std::vector<std::vector<std::int32_t>> partitions;
};

Response shaped(const delete_shape& shape, protocol::error_code group_error,
                const std::vector<protocol::error_code>& errors) {
  Response response;
  response.error_code = code(group_error);
  if (group_error != protocol::error_code::none) return response;
  std::size_t next = 0;
  for (std::size_t t = 0; t < shape.topics.size(); ++t) {
    Response::OffsetDeleteResponseTopic topic;
    topic.name = shape.topics[t];
    for (std::int32_t p : shape.partitions[t]) {
      auto error = next < errors.size() ? errors[next] : protocol::error_code::unknown_server_error;
      ++next;
      topic.partitions.push_back({p, code(error)});
    }
    response.topics.push_back(std::move(topic));
  }
  return response;
}

}  // namespace

handler_status handle_offset_delete(request_context& ctx, protocol::reader& body) {
  protocol::OffsetDeleteRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;
  const response_address address = ctx.address;

  auto shape = std::make_shared<delete_shape>();
  std::vector<groups::topic_partition_ref> partitions;
  for (const auto& t : request.topics) {
    shape->topics.emplace_back(t.name);
    shape->partitions.emplace_back();
    for (const auto& p : t.partitions) {
      shape->partitions.back().push_back(p.partition_index);
      partitions.push_back({std::string(t.name), p.partition_index});
    }
  }
  groups::group_coordinator* coordinator = ctx.broker.group_coordinator();
  if (coordinator == nullptr) {
    respond(slot, address, shaped(*shape, protocol::error_code::coordinator_not_available, {}));
    return handler_status::done;
  }
  coordinator->delete_offsets(
      request.group_id, std::move(partitions),
      [slot = share(std::move(slot)), address, shape](protocol::error_code group_error,
                                                      std::vector<protocol::error_code> errors) {
        respond(*slot, address, shaped(*shape, group_error, errors));
      });
  return handler_status::done;
}

}  // namespace sluice
