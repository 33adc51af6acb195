#include "broker/kafka_handler.h"

#include "broker/api/api_table.h"
#include "broker/api/api_versions.h"
#include "engine/base/log.h"
#include "net/protocol/generated/headers.h"

namespace sluice {
namespace {

std::int16_t read_be16(std::span<const std::byte> bytes, std::size_t at) noexcept {
  return static_cast<std::int16_t>((std::to_integer<unsigned>(bytes[at]) << 8) |
                                   std::to_integer<unsigned>(bytes[at + 1]));
}

std::string_view name_of(std::int16_t key) noexcept {
  return protocol::api_name(static_cast<protocol::api_key>(key));
}

}  // namespace

void kafka_handler::on_frame(connection& from, std::span<const std::byte> frame) noexcept {
  // api key, api version, correlation id: the fixed start of every request header.
  if (frame.size() < 8) {
    SLUICE_LOG(warn, "kafka",
               "{}: request of {} bytes is too short for a header; closing the "
               "connection (is this a Kafka client?)",
               from.peer(), frame.size());
    from.close();
    return;
  }
  const std::int16_t key = read_be16(frame, 0);
  const std::int16_t version = read_be16(frame, 2);
  const dispatch_verdict verdict = verdict_for(key, version);
  if (verdict == dispatch_verdict::close_connection) {
    SLUICE_LOG(warn, "kafka",
               "{}: {} (key {}) v{} is not supported by this broker; closing the "
               "connection as Kafka does (the client should use the versions ApiVersions lists)",
               from.peer(), name_of(key), key, version);
    from.close();
    return;
  }
  // ApiVersions at an unknown version still has a header this broker can read: a newer
  // client uses header v2 for every ApiVersions version from 3 on.
  auto header_version = protocol::request_header_version(key, version);
  protocol::reader in(frame);
  protocol::RequestHeader header;
  header.decode(in, header_version.value_or(1));
  if (!in.ok()) {
    SLUICE_LOG(warn, "kafka", "{}: malformed {} v{} request header ({}); closing the connection",
               from.peer(), name_of(key), version, in.error_detail());
    from.close();
    return;
  }
  request_context ctx{broker_, from, response_address{key, version, header.correlation_id},
                      header.client_id};
  if (verdict == dispatch_verdict::api_versions_unsupported) {
    answer_unsupported_api_versions(ctx);
    return;
  }
  const api_handler* handler = find_api_handler(key);
  SLUICE_ASSERT(handler != nullptr, "verdict handle without a handler");
  if (handler->handle(ctx, in) == handler_status::malformed) {
    SLUICE_LOG(warn, "kafka",
               "{}: malformed {} v{} request (correlation id {}, client {}): {}; "
               "closing the connection as Kafka does",
               from.peer(), name_of(key), version, header.correlation_id,
               header.client_id.value_or("-"), in.ok() ? "invalid content" : in.error_detail());
    from.close();
  }
}

}  // namespace sluice
