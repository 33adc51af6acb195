// What an API handler receives for one request, and how it encodes its response.
//
// A handler is a free function (api_table.h) called from kafka_handler::on_frame with
// the decoded request header and a reader over the request body. The body bytes -- and
// so every string_view and bytes_view decoded from them -- are valid only during that
// call (net/connection.h): a handler that answers later copies what it keeps.
//
// A handler that answers reserves its response_slot from `conn` during the call
// (reserve()), and fills it now or later with a frame made by encode_response().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker_context.h"
#include "net/connection.h"
#include "net/outgoing_frame.h"
#include "net/protocol/api_keys.h"
#include "net/protocol/error_codes.h"
#include "net/protocol/reader.h"
#include "net/protocol/writer.h"

namespace sluice {

// Strings a response points at (generated messages hold string_views) that the handler
// makes up itself, such as formatted error messages: kept alive until the response is
// encoded. One per request.
struct message_arena {
  std::vector<std::unique_ptr<std::string>> strings;
  std::string_view keep(std::string text) {
    strings.push_back(std::make_unique<std::string>(std::move(text)));
    return *strings.back();
  }
};

// What a response needs to know about its request, small enough to copy into a
// request that answers later.
struct response_address {
  std::int16_t api_key = 0;
  std::int16_t api_version = 0;
  std::int32_t correlation_id = 0;
};

struct request_context {
  broker_context& broker;
  // Only during the handler call; null for a request forwarded from another core, which
  // answers through `sink` instead (broker/cores.h).
  connection* conn;
  response_address address;
  std::optional<std::string_view> client_id;
  std::string_view peer_name;
  std::shared_ptr<response_sink> sink;

  std::int16_t version() const noexcept { return address.api_version; }
  std::string_view peer() const noexcept { return peer_name; }
  response_slot reserve() noexcept {
    if (conn != nullptr) return conn->reserve_response();
    return response_slot::to_sink(std::move(sink));
  }
};

// How a handler ended: the body decoded (whatever the answer), or it did not, in which
// case the connection is closed, as Kafka does when it cannot parse a request; or the
// request needs core 0 (a topic to create) and this is another core: the handler has
// reserved nothing, and the caller forwards the request there.
enum class handler_status : std::uint8_t { done, malformed, forward };

// Writes the response header for `address` (version from net/protocol/api_keys.h).
void write_response_header(protocol::writer& out, const response_address& address);

// Encodes header and body into a frame. nullopt when encoding failed (logged: it means
// a handler put something into a response that the version cannot carry).
template <typename Response>
std::optional<outgoing_frame> encode_response(const response_address& address,
                                              const Response& response);

// Fills `slot` with the encoded response; drops it (releasing the slot) when encoding
// failed.
template <typename Response>
void respond(response_slot& slot, const response_address& address, const Response& response) {
  if (auto frame = encode_response(address, response)) {
    slot.respond(std::move(*frame));
  } else {
    slot.release();
  }
}

// Logs an encoding failure once, naming the API.
void log_encode_failure(const response_address& address, const char* detail) noexcept;

template <typename Response>
std::optional<outgoing_frame> encode_response(const response_address& address,
                                              const Response& response) {
  protocol::writer out(256);
  write_response_header(out, address);
  response.encode(out, address.api_version);
  if (!out.ok()) {
    log_encode_failure(address, out.error_detail());
    return std::nullopt;
  }
  outgoing_frame frame;
  frame.append(out.bytes());
  return frame;
}

}  // namespace sluice
