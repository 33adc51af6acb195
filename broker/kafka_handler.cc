#include "broker/kafka_handler.h"

#include <vector>

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

// The APIs over core 0's state: topics (create, delete, grow, configs), consumer groups
// and their offsets, producer ids.
bool served_by_core_zero(std::int16_t key) noexcept {
  using protocol::api_key;
  switch (static_cast<api_key>(key)) {
    case api_key::offset_commit:
    case api_key::offset_fetch:
    case api_key::find_coordinator:
    case api_key::join_group:
    case api_key::heartbeat:
    case api_key::leave_group:
    case api_key::sync_group:
    case api_key::describe_groups:
    case api_key::list_groups:
    case api_key::create_topics:
    case api_key::delete_topics:
    case api_key::init_producer_id:
    case api_key::describe_configs:
    case api_key::create_partitions:
    case api_key::delete_groups:
    case api_key::incremental_alter_configs:
    case api_key::offset_delete: return true;
    default: return false;
  }
}

// Carries a forwarded request's response from core 0 back to the connection's core.
class forward_sink final : public response_sink {
 public:
  forward_sink(core_router& router, std::uint32_t origin, std::uint64_t id) noexcept
      : router_(router), origin_(origin), id_(id) {}
  ~forward_sink() override {
    if (!done_) send_back(std::nullopt);
  }
  void on_response(outgoing_frame frame) noexcept override { send_back(std::move(frame)); }
  void on_release() noexcept override { send_back(std::nullopt); }
  void close_connection() noexcept { close_ = true; }

 private:
  void send_back(std::optional<outgoing_frame> frame) noexcept {
    done_ = true;
    router_.run_on(origin_, [id = id_, close = close_,
                             frame = std::move(frame)](broker_context& origin) mutable {
      origin.answer_forwarded(id, std::move(frame), close);
    });
  }

  core_router& router_;
  std::uint32_t origin_;
  std::uint64_t id_;
  bool done_ = false;
  bool close_ = false;
};

}  // namespace

serve_outcome serve_request(broker_context& broker, connection* conn,
                            std::shared_ptr<response_sink> sink, std::string_view peer,
                            std::span<const std::byte> frame) noexcept {
  // api key, api version, correlation id: the fixed start of every request header.
  if (frame.size() < 8) {
    SLUICE_LOG(warn, "kafka",
               "{}: request of {} bytes is too short for a header; closing the "
               "connection (is this a Kafka client?)",
               peer, frame.size());
    return serve_outcome::close_connection;
  }
  const std::int16_t key = read_be16(frame, 0);
  const std::int16_t version = read_be16(frame, 2);
  const dispatch_verdict verdict = verdict_for(key, version);
  if (verdict == dispatch_verdict::close_connection) {
    SLUICE_LOG(warn, "kafka",
               "{}: {} (key {}) v{} is not supported by this broker; closing the "
               "connection as Kafka does (the client should use the versions ApiVersions lists)",
               peer, name_of(key), key, version);
    return serve_outcome::close_connection;
  }
  if (verdict == dispatch_verdict::handle && served_by_core_zero(key) && broker.core_index() != 0) {
    return serve_outcome::forward;
  }
  // ApiVersions at an unknown version still has a header this broker can read: a newer
  // client uses header v2 for every ApiVersions version from 3 on.
  auto header_version = protocol::request_header_version(key, version);
  protocol::reader in(frame);
  protocol::RequestHeader header;
  header.decode(in, header_version.value_or(1));
  if (!in.ok()) {
    SLUICE_LOG(warn, "kafka", "{}: malformed {} v{} request header ({}); closing the connection",
               peer, name_of(key), version, in.error_detail());
    return serve_outcome::close_connection;
  }
  request_context ctx{broker,           conn, response_address{key, version, header.correlation_id},
                      header.client_id, peer, std::move(sink)};
  if (verdict == dispatch_verdict::api_versions_unsupported) {
    answer_unsupported_api_versions(ctx);
    return serve_outcome::done;
  }
  const api_handler* handler = find_api_handler(key);
  SLUICE_ASSERT(handler != nullptr, "verdict handle without a handler");
  switch (handler->handle(ctx, in)) {
    case handler_status::done: return serve_outcome::done;
    case handler_status::forward:
      SLUICE_ASSERT(broker.core_index() != 0, "core 0 cannot forward a request to itself");
      return serve_outcome::forward;
    case handler_status::malformed: break;
  }
  SLUICE_LOG(warn, "kafka",
             "{}: malformed {} v{} request (correlation id {}, client {}): {}; "
             "closing the connection as Kafka does",
             peer, name_of(key), version, header.correlation_id, header.client_id.value_or("-"),
             in.ok() ? "invalid content" : in.error_detail());
  return serve_outcome::close_connection;
}

void kafka_handler::on_frame(connection& from, std::span<const std::byte> frame) noexcept {
  *self_ = &from;
  broker_.refresh_topics();
  switch (serve_request(broker_, &from, nullptr, from.peer(), frame)) {
    case serve_outcome::done: return;
    case serve_outcome::close_connection: from.close(); return;
    case serve_outcome::forward: forward_to_core_zero(from, frame); return;
  }
}

void kafka_handler::forward_to_core_zero(connection& from,
                                         std::span<const std::byte> frame) noexcept {
  core_router* router = broker_.router();
  SLUICE_ASSERT(router != nullptr && router->self() != 0, "forwarding without another core");
  response_slot slot = from.reserve_response();
  if (!slot) return;  // closing, or the in-flight bound: as a local handler would
  const std::uint64_t id = broker_.hold_forwarded(std::move(slot), self_);
  router->run_on(0, [bytes = std::vector<std::byte>(frame.begin(), frame.end()), peer = from.peer(),
                     origin = router->self(), id](broker_context& home) {
    home.refresh_topics();
    auto sink = std::make_shared<forward_sink>(*home.router(), origin, id);
    auto outcome = serve_request(home, nullptr, sink, peer, bytes);
    if (outcome == serve_outcome::close_connection) sink->close_connection();
  });
}

}  // namespace sluice
