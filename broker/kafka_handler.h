// The Kafka request handler of one connection: decodes each request's header, dispatches
// it through api_table.h, and closes the connection on what Kafka would close it for.
//
// Per frame: read the API key and version, decide from the table (handle, answer
// UNSUPPORTED_VERSION for an ApiVersions too new, or close), decode RequestHeader at the
// version the API key and version imply, and call the handler with a reader over the
// body. A handler that cannot decode its body makes the connection close, with one
// warning naming the peer, the API and the version.
//
// With several cores (broker/cores.h), the APIs of core 0's state -- topics, groups,
// producer ids, configs -- are forwarded there whole when the connection lives on
// another core: the frame is copied into a task, core 0 serves it with a request_context
// whose responses go to a sink, and the response frame comes back to the connection's
// core, into the slot reserved for it here (so responses keep the request order).
// Produce, Fetch and ListOffsets are served on the connection's core, which asks each
// partition's owner for its part.
//
// Holds no request state: requests that answer later (produce waiting for its write,
// fetch waiting for data) keep their response_slot elsewhere (partition_state,
// fetch_purgatory), so destroying the connection and its handler never leaves a dangling
// reference. Owned by its connection; called on the reactor thread.
#pragma once

#include <memory>

#include "broker/broker_context.h"
#include "net/connection.h"

namespace sluice {

class kafka_handler final : public request_handler {
 public:
  explicit kafka_handler(broker_context& broker) noexcept
      : broker_(broker), self_(std::make_shared<connection*>(nullptr)) {}
  ~kafka_handler() override { *self_ = nullptr; }
  void on_frame(connection& from, std::span<const std::byte> frame) noexcept override;
  void on_closed(connection&) noexcept override { *self_ = nullptr; }

 private:
  void forward_to_core_zero(connection& from, std::span<const std::byte> frame) noexcept;

  broker_context& broker_;
  // The connection, for a forwarded request's "close it" coming back; null once closed.
  std::shared_ptr<connection*> self_;
};

// What serving one request asks of its connection.
enum class serve_outcome : std::uint8_t { done, close_connection, forward };

// Serves one request frame on this core: `conn` for a request of a local connection, or
// null and `sink` for one forwarded from another core.
serve_outcome serve_request(broker_context& broker, connection* conn,
                            std::shared_ptr<response_sink> sink, std::string_view peer,
                            std::span<const std::byte> frame) noexcept;

}  // namespace sluice
