// FindCoordinator v0-v6 (key 10): this broker coordinates every group, so the answer is
// always this node -- for one key (v0-v3) or for each key of the batched form (v4+).
// Transaction coordination is not served (no transactions): COORDINATOR_NOT_AVAILABLE,
// which clients retry and report, as a Kafka cluster without transaction support would.
#include "net/protocol/generated/find_coordinator.h"

#include "broker/api/api_table.h"
#include "broker/api/group_api.h"

namespace sluice {
namespace {

using protocol::error_code;
using Response = protocol::FindCoordinatorResponse;

constexpr std::int8_t key_type_group = 0;

struct answer {
  error_code error = error_code::none;
  const char* message = nullptr;
};

answer answer_for(std::int8_t key_type, std::string_view key, const broker_context& broker) {
  if (key_type != key_type_group) {
    return {error_code::coordinator_not_available,
            "this broker has no transaction or share-group coordinator"};
  }
  if (key.empty()) return {error_code::invalid_request, "the group id is empty"};
  if (broker.group_coordinator() == nullptr) {
    return {error_code::coordinator_not_available, "the group coordinator is not running"};
  }
  return {};
}

}  // namespace

handler_status handle_find_coordinator(request_context& ctx, protocol::reader& body) {
  protocol::FindCoordinatorRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  const broker_identity& self = ctx.broker.identity();
  Response response;
  if (ctx.version() >= 4) {
    for (std::string_view key : request.coordinator_keys) {
      answer a = answer_for(request.key_type, key, ctx.broker);
      Response::Coordinator c;
      c.key = key;
      c.error_code = code(a.error);
      if (a.error == error_code::none) {
        c.node_id = self.node_id;
        c.host = self.advertised_host;
        c.port = self.advertised_port;
        c.error_message = std::nullopt;
      } else {
        c.node_id = -1;
        c.port = -1;
        c.error_message = a.message;
      }
      response.coordinators.push_back(c);
    }
  } else {
    answer a = answer_for(request.key_type, request.key, ctx.broker);
    response.error_code = code(a.error);
    if (a.error == error_code::none) {
      response.node_id = self.node_id;
      response.host = self.advertised_host;
      response.port = self.advertised_port;
      response.error_message = std::nullopt;
    } else {
      response.node_id = -1;
      response.port = -1;
      response.error_message = a.message;
    }
  }
  respond(slot, ctx.address, response);
  return handler_status::done;
}

}  // namespace sluice
