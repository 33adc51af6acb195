// ApiVersions v0-v4 (key 18).
#include "broker/api/api_versions.h"

#include "broker/api/api_table.h"

namespace sluice {

protocol::ApiVersionsResponse api_versions_response(protocol::error_code error) {
  protocol::ApiVersionsResponse response;
  response.error_code = static_cast<std::int16_t>(error);
  response.api_keys.reserve(api_handlers.size());
  for (const auto& row : api_handlers) {
    response.api_keys.push_back(
        {static_cast<std::int16_t>(row.key), row.min_version, row.max_version});
  }
  return response;
}

void answer_unsupported_api_versions(request_context& ctx) noexcept {
  response_slot slot = ctx.reserve();
  if (!slot) return;
  response_address v0 = ctx.address;
  v0.api_version = 0;
  respond(slot, v0, api_versions_response(protocol::error_code::unsupported_version));
}

handler_status handle_api_versions(request_context& ctx, protocol::reader& body) {
  protocol::ApiVersionsRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;
  respond(slot, ctx.address, api_versions_response(protocol::error_code::none));
  return handler_status::done;
}

}  // namespace sluice
