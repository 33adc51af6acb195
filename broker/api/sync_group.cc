// SyncGroup v0-v5 (key 14): the leader hands in the assignment; every member gets its
// own once it is durable in __consumer_offsets.
#include "net/protocol/generated/sync_group.h"

#include "broker/api/api_table.h"
#include "broker/api/group_api.h"

namespace sluice {

handler_status handle_sync_group(request_context& ctx, protocol::reader& body) {
  protocol::SyncGroupRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;
  const response_address address = ctx.address;

  groups::group_coordinator* coordinator = ctx.broker.group_coordinator();
  if (coordinator == nullptr) {
    protocol::SyncGroupResponse response;
    response.error_code = code(protocol::error_code::coordinator_not_available);
    respond(slot, address, response);
    return handler_status::done;
  }
  groups::sync_request sync;
  sync.group_id = owned(request.group_id);
  sync.generation_id = request.generation_id;
  sync.member_id = owned(request.member_id);
  sync.group_instance_id = owned(request.group_instance_id);
  if (ctx.version() >= 5) {
    sync.protocol_type = owned(request.protocol_type);
    sync.protocol_name = owned(request.protocol_name);
  }
  for (const auto& a : request.assignments) {
    sync.assignments.push_back({owned(a.member_id), owned_bytes(a.assignment)});
  }
  coordinator->sync(std::move(sync), steady_now(),
                    [slot = share(std::move(slot)), address](groups::sync_result result) {
                      protocol::SyncGroupResponse response;
                      response.error_code = code(result.error);
                      response.protocol_type = result.protocol_type;
                      response.protocol_name = result.protocol_name;
                      response.assignment = as_bytes(result.assignment);
                      respond(*slot, address, response);
                    });
  return handler_status::done;
}

}  // namespace sluice
