// ApiVersions: the APIs and versions of api_table.h.
#pragma once

#include "broker/api/request_context.h"
#include "net/protocol/generated/api_versions.h"

namespace sluice {

// The response body listing every handler of api_table.h, with `error`.
protocol::ApiVersionsResponse api_versions_response(protocol::error_code error);

// Answers a request at a version this broker does not know: UNSUPPORTED_VERSION and the
// list, encoded at v0 so the client can read it whatever it sent (KIP-511).
void answer_unsupported_api_versions(request_context& ctx) noexcept;

}  // namespace sluice
