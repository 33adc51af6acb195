// Heartbeat v0-v4 (key 12): keeps a member alive; REBALANCE_IN_PROGRESS tells it to
// rejoin.
#include "net/protocol/generated/heartbeat.h"

#include "broker/api/api_table.h"
#include "broker/api/group_api.h"

namespace sluice {

handler_status handle_heartbeat(request_context& ctx, protocol::reader& body) {
  protocol::HeartbeatRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  protocol::HeartbeatResponse response;
  groups::group_coordinator* coordinator = ctx.broker.group_coordinator();
  if (coordinator == nullptr) {
    response.error_code = code(protocol::error_code::coordinator_not_available);
  } else {
    groups::heartbeat_request beat;
    beat.group_id = owned(request.group_id);
    beat.generation_id = request.generation_id;
    beat.member_id = owned(request.member_id);
    beat.group_instance_id = owned(request.group_instance_id);
    response.error_code = code(coordinator->heartbeat(beat, steady_now()));
  }
  respond(slot, ctx.address, response);
  return handler_status::done;
}

}  // namespace sluice
