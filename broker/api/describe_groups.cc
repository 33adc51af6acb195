// DescribeGroups v0-v5 (key 15): state, protocol, and members with their metadata and
// assignments. A group that does not exist is described as Dead with no error (Kafka
// answers so); authorized operations are not provided (no authorizer).
#include "net/protocol/generated/describe_groups.h"

#include "broker/api/api_table.h"
#include "broker/api/group_api.h"

namespace sluice {

handler_status handle_describe_groups(request_context& ctx, protocol::reader& body) {
  protocol::DescribeGroupsRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  protocol::DescribeGroupsResponse response;
  std::vector<groups::described_group> described;
  described.reserve(request.groups.size());
  groups::group_coordinator* coordinator = ctx.broker.group_coordinator();
  for (std::string_view id : request.groups) {
    if (coordinator == nullptr) {
      groups::described_group none;
      none.error = protocol::error_code::coordinator_not_available;
      none.group_id = std::string(id);
      described.push_back(std::move(none));
    } else {
      described.push_back(coordinator->describe(id));
    }
    const auto& g = described.back();
    protocol::DescribeGroupsResponse::DescribedGroup out;
    out.error_code = code(g.error);
    out.group_id = id;
    out.group_state = groups::state_name(g.state);
    out.protocol_type = g.protocol_type;
    out.protocol_data = g.protocol;
    for (const auto& m : g.members) {
      out.members.push_back({m.member_id, m.group_instance_id, m.client_id, m.client_host,
                             as_bytes(m.metadata), as_bytes(m.assignment)});
    }
    response.groups.push_back(std::move(out));
  }
  respond(slot, ctx.address, response);
  return handler_status::done;
}

}  // namespace sluice
