// ListGroups v0-v5 (key 16): every group, filtered by state (v4+) and type (v5+).
#include "net/protocol/generated/list_groups.h"

#include "broker/api/api_table.h"
#include "broker/api/group_api.h"

namespace sluice {

handler_status handle_list_groups(request_context& ctx, protocol::reader& body) {
  protocol::ListGroupsRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  protocol::ListGroupsResponse response;
  std::vector<groups::listed_group> listed;
  groups::group_coordinator* coordinator = ctx.broker.group_coordinator();
  if (coordinator == nullptr) {
    response.error_code = code(protocol::error_code::coordinator_not_available);
  } else {
    std::vector<std::string> states(request.states_filter.begin(), request.states_filter.end());
    std::vector<std::string> types;
    for (std::string_view t : request.types_filter) {
      // Every group here is a classic group; the type filter names group types
      // ("classic", "consumer", "share"), not protocol types.
      types.emplace_back(t);
    }
    bool classic_wanted = types.empty();
    for (const auto& t : types) {
      if (t.size() == 7 && std::equal(t.begin(), t.end(), "classic", [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) == b;
          })) {
        classic_wanted = true;
      }
    }
    if (classic_wanted) listed = coordinator->list_groups(states, {});
    for (const auto& g : listed) {
      protocol::ListGroupsResponse::ListedGroup out;
      out.group_id = g.group_id;
      out.protocol_type = g.protocol_type;
      out.group_state = groups::state_name(g.state);
      out.group_type = "classic";
      response.groups.push_back(out);
    }
  }
  respond(slot, ctx.address, response);
  return handler_status::done;
}

}  // namespace sluice
