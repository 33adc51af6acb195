// JoinGroup v0-v9 (key 11). The coordinator holds the answer until the rebalance
// completes; v4+ members joining without a member id get MEMBER_ID_REQUIRED first
// (KIP-394). v0 has no rebalance timeout: it is the session timeout, as in Kafka.
#include "net/protocol/generated/join_group.h"

#include "broker/api/api_table.h"
#include "broker/api/group_api.h"

namespace sluice {

handler_status handle_join_group(request_context& ctx, protocol::reader& body) {
  protocol::JoinGroupRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;
  const response_address address = ctx.address;

  groups::group_coordinator* coordinator = ctx.broker.group_coordinator();
  if (coordinator == nullptr) {
    protocol::JoinGroupResponse response;
    response.error_code = code(protocol::error_code::coordinator_not_available);
    respond(slot, address, response);
    return handler_status::done;
  }
  groups::join_request join;
  join.group_id = owned(request.group_id);
  join.member_id = owned(request.member_id);
  join.group_instance_id = owned(request.group_instance_id);
  join.protocol_type = owned(request.protocol_type);
  for (const auto& p : request.protocols) {
    join.protocols.push_back({owned(p.name), owned_bytes(p.metadata)});
  }
  join.session_timeout = std::chrono::milliseconds(request.session_timeout_ms);
  join.rebalance_timeout = std::chrono::milliseconds(
      ctx.version() >= 1 ? request.rebalance_timeout_ms : request.session_timeout_ms);
  join.client_id = owned(ctx.client_id.value_or(""));
  join.client_host = client_host(ctx);
  join.require_known_member_id = ctx.version() >= 4;
  join.supports_skip_assignment = ctx.version() >= 9;
  join.reason = owned(request.reason);

  coordinator->join(
      std::move(join), steady_now(),
      [slot = share(std::move(slot)), address](groups::join_result result) {
        protocol::JoinGroupResponse response;
        response.error_code = code(result.error);
        response.generation_id = result.generation_id;
        response.protocol_type = result.protocol_type;
        // Non-nullable before v7: an empty name stands for "none yet".
        if (result.protocol_name) {
          response.protocol_name = *result.protocol_name;
        } else if (address.api_version >= 7) {
          response.protocol_name = std::nullopt;
        }
        response.leader = result.leader;
        response.skip_assignment = result.skip_assignment;
        response.member_id = result.member_id;
        for (const auto& m : result.members) {
          response.members.push_back({m.member_id, m.group_instance_id, as_bytes(m.metadata)});
        }
        respond(*slot, address, response);
      });
  return handler_status::done;
}

}  // namespace sluice
