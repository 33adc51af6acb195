#include "broker/api/request_context.h"

#include "engine/base/log.h"
#include "net/protocol/generated/headers.h"

namespace sluice {

void write_response_header(protocol::writer& out, const response_address& address) {
  protocol::ResponseHeader header;
  header.correlation_id = address.correlation_id;
  auto version = protocol::response_header_version(address.api_key, address.api_version);
  header.encode(out, version.value_or(0));
}

void log_encode_failure(const response_address& address, const char* detail) noexcept {
  SLUICE_LOG(error, "kafka",
             "cannot encode the {} v{} response (correlation id {}): {}; the "
             "request goes unanswered (a bug: please report it)",
             protocol::api_name(static_cast<protocol::api_key>(address.api_key)),
             address.api_version, address.correlation_id, detail);
}

}  // namespace sluice
