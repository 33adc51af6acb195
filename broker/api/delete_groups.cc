// DeleteGroups v0-v2 (key 42): removes empty groups and their committed offsets
// (tombstones in __consumer_offsets); answered once every group's outcome is known.
#include "net/protocol/generated/delete_groups.h"

#include "broker/api/api_table.h"
#include "broker/api/group_api.h"

namespace sluice {
namespace {

struct pending_delete {
  shared_slot slot;
  response_address address;
  std::vector<std::string> groups;
  std::vector<protocol::error_code> errors;
  std::size_t outstanding = 0;

  void answer() {
    protocol::DeleteGroupsResponse response;
    for (std::size_t i = 0; i < groups.size(); ++i) {
      response.results.push_back({groups[i], code(errors[i])});
    }
    respond(*slot, address, response);
  }
};

}  // namespace

handler_status handle_delete_groups(request_context& ctx, protocol::reader& body) {
  protocol::DeleteGroupsRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  auto pending = std::make_shared<pending_delete>();
  pending->slot = share(std::move(slot));
  pending->address = ctx.address;
  for (std::string_view g : request.groups_names) pending->groups.emplace_back(g);
  pending->errors.assign(pending->groups.size(), protocol::error_code::none);
  groups::group_coordinator* coordinator = ctx.broker.group_coordinator();
  if (coordinator == nullptr || pending->groups.empty()) {
    pending->errors.assign(pending->groups.size(), protocol::error_code::coordinator_not_available);
    pending->answer();
    return handler_status::done;
  }
  pending->outstanding = pending->groups.size();
  for (std::size_t i = 0; i < pending->groups.size(); ++i) {
    coordinator->delete_group(pending->groups[i], [pending, i](protocol::error_code error) {
      pending->errors[i] = error;
      if (--pending->outstanding == 0) pending->answer();
    });
  }
  return handler_status::done;
}

}  // namespace sluice
