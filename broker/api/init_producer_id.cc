// InitProducerId v0-v5 (key 22). See init_producer_id.h.
#include "broker/api/init_producer_id.h"

#include "engine/base/log.h"

namespace sluice {
namespace {

using protocol::error_code;
using Response = protocol::InitProducerIdResponse;

constexpr std::int64_t no_producer_id = -1;
constexpr std::int16_t no_producer_epoch = -1;

Response failed(error_code code) {
  Response response;
  response.error_code = static_cast<std::int16_t>(code);
  response.producer_id = no_producer_id;
  response.producer_epoch = no_producer_epoch;
  return response;
}

}  // namespace

protocol::InitProducerIdResponse init_producer_id_response(
    const protocol::InitProducerIdRequest& request, std::int16_t version,
    producer_id_allocator& ids) {
  if (version >= 3 &&
      (request.producer_id == no_producer_id) != (request.producer_epoch == no_producer_epoch)) {
    return failed(error_code::invalid_request);
  }
  if (request.transactional_id.has_value()) {
    if (request.transactional_id->empty()) return failed(error_code::invalid_request);
    return failed(error_code::coordinator_not_available);
  }
  auto id = ids.next();
  if (!id) {
    SLUICE_LOG(warn, "kafka", "cannot reserve producer ids in {}: {}", ids.path(),
               id.failure().detail());
    return failed(error_code::coordinator_load_in_progress);
  }
  Response response;
  response.producer_id = *id;
  response.producer_epoch = 0;
  return response;
}

handler_status handle_init_producer_id(request_context& ctx, protocol::reader& body) {
  protocol::InitProducerIdRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;
  respond(slot, ctx.address,
          init_producer_id_response(request, ctx.version(), ctx.broker.producer_ids()));
  return handler_status::done;
}

}  // namespace sluice
