// The Kafka request handler of one connection: decodes each request's header, dispatches
// it through api_table.h, and closes the connection on what Kafka would close it for.
//
// Per frame: read the API key and version, decide from the table (handle, answer
// UNSUPPORTED_VERSION for an ApiVersions too new, or close), decode RequestHeader at the
// version the API key and version imply, and call the handler with a reader over the
// body. A handler that cannot decode its body makes the connection close, with one
// warning naming the peer, the API and the version.
//
// Holds no request state: requests that answer later (produce waiting for its write,
// fetch waiting for data) keep their response_slot elsewhere (partition_state,
// fetch_purgatory), so destroying the connection and its handler never leaves a dangling
// reference. Owned by its connection; called on the reactor thread.
#pragma once

#include "broker/broker_context.h"
#include "net/connection.h"

namespace sluice {

class kafka_handler final : public request_handler {
 public:
  explicit kafka_handler(broker_context& broker) noexcept : broker_(broker) {}
  void on_frame(connection& from, std::span<const std::byte> frame) noexcept override;

 private:
  broker_context& broker_;
};

}  // namespace sluice
