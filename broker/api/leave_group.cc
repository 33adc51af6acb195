// LeaveGroup v0-v5 (key 13): one member (v0-v2) or a batch of members by member id or
// group instance id (v3+, KIP-345), each with its own error.
#include "net/protocol/generated/leave_group.h"

#include "broker/api/api_table.h"
#include "broker/api/group_api.h"

namespace sluice {

handler_status handle_leave_group(request_context& ctx, protocol::reader& body) {
  protocol::LeaveGroupRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  protocol::LeaveGroupResponse response;
  groups::group_coordinator* coordinator = ctx.broker.group_coordinator();
  if (coordinator == nullptr) {
    response.error_code = code(protocol::error_code::coordinator_not_available);
    respond(slot, ctx.address, response);
    return handler_status::done;
  }
  std::vector<groups::leave_member> members;
  if (ctx.version() >= 3) {
    for (const auto& m : request.members) {
      members.push_back({owned(m.member_id), owned(m.group_instance_id), owned(m.reason)});
    }
  } else {
    members.push_back({owned(request.member_id), std::nullopt, std::nullopt});
  }
  groups::leave_result result = coordinator->leave(request.group_id, members, steady_now());
  if (ctx.version() >= 3) {
    response.error_code = code(result.error);
    for (std::size_t i = 0; i < members.size(); ++i) {
      protocol::LeaveGroupResponse::MemberResponse m;
      m.member_id = request.members[i].member_id;
      m.group_instance_id = request.members[i].group_instance_id;
      m.error_code = code(i < result.members.size() ? result.members[i] : result.error);
      response.members.push_back(m);
    }
  } else {
    // One member: its error is the answer.
    auto error = result.error;
    if (error == protocol::error_code::none && !result.members.empty()) error = result.members[0];
    response.error_code = code(error);
  }
  respond(slot, ctx.address, response);
  return handler_status::done;
}

}  // namespace sluice
