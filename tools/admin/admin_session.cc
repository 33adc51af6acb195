#include "tools/admin/admin_session.h"

#include <fmt/format.h>

#include <cstring>

#include "net/protocol/error_codes.h"
#include "net/protocol/generated/find_coordinator.h"

namespace sluice::admin {

std::string address_text(const std::string& host, std::uint16_t port) {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

admin_session::admin_session(const admin_command& command, std::ostream& out, std::ostream& err)
    : command_(command), out_(out), err_(err) {}

admin_session::~admin_session() {
  // Clients close and wait for their operations on the reactor, which must outlive them.
  clients_.clear();
}

void admin_session::report(const std::string& line) {
  failed_ = true;
  err_ << "sluice-admin: " << line << '\n';
}

bool admin_session::report_kafka_error(const std::string& subject, std::int16_t code,
                                       std::optional<std::string_view> message) {
  if (code == 0) return false;
  std::string line =
      subject + ": " +
      std::string(protocol::error_code_name(static_cast<protocol::error_code>(code)));
  if (message && !message->empty()) line += ": " + std::string(*message);
  // One line, whatever the broker put in its message.
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  report(line);
  return true;
}

void admin_session::report_client_error(const std::string& what, const error& failure) {
  std::string line = what + ": " + failure.detail();
  // The errno says more for socket failures; for the client's own kinds (timeout,
  // unsupported API, bad response) the detail says it all.
  if (client_error::is_closed(failure) && failure.os_errno() != 0) {
    line += fmt::format(" ({})", std::strerror(failure.os_errno()));
  }
  report(line);
}

kafka_client* admin_session::connect(const std::string& host, std::uint16_t port) {
  const std::string key = address_text(host, port);
  if (auto it = clients_.find(key); it != clients_.end()) {
    return it->second->ready() ? it->second.get() : nullptr;
  }
  if (!reactor_) {
    auto made = reactor::create(reactor_config{64});
    if (!made.ok()) {
      report_client_error("cannot start io_uring", made.failure());
      return nullptr;
    }
    reactor_ = std::move(*made);
  }
  kafka_client_config config;
  config.client_id = "sluice-admin";
  config.in_flight_max = 8;
  config.request_timeout = command_.timeout;
  config.connect_timeout = command_.timeout;
  config.software_name = "sluice-admin";
  auto client = std::make_unique<kafka_client>(*reactor_, config);
  auto connected = client->connect_sync(host, port);
  kafka_client* made = client.get();
  clients_.emplace(key, std::move(client));
  if (!connected.ok()) {
    const error& failure = connected.failure();
    if (client_error::is_closed(failure) && failure.os_errno() != 0) {
      report("cannot connect to " + key + ": " + std::strerror(failure.os_errno()));
    } else {
      report_client_error("cannot connect to " + key, failure);
    }
    return nullptr;
  }
  return made;
}

kafka_client* admin_session::bootstrap() {
  return connect(command_.bootstrap_host, command_.bootstrap_port);
}

kafka_client* admin_session::broker_at(const std::string& host, std::uint16_t port) {
  return connect(host, port);
}

kafka_client* admin_session::coordinator(const std::string& group) {
  if (auto it = coordinators_.find(group); it != coordinators_.end()) return it->second;
  kafka_client* via = bootstrap();
  if (via == nullptr) return nullptr;
  protocol::FindCoordinatorRequest request;
  request.key = group;                        // v0-3
  request.key_type = 0;                       // a group
  request.coordinator_keys.push_back(group);  // v4+
  auto answer = call<protocol::FindCoordinatorResponse>(via, request,
                                                        "group '" + group + "': FindCoordinator");
  if (!answer) return nullptr;
  const auto& found = answer->message;
  std::int16_t code = found.error_code;
  std::optional<std::string_view> message = found.error_message;
  std::string host(found.host);
  std::int32_t port = found.port;
  if (!found.coordinators.empty()) {
    const auto& entry = found.coordinators.front();
    code = entry.error_code;
    message = entry.error_message;
    host = std::string(entry.host);
    port = entry.port;
  }
  if (report_kafka_error("group '" + group + "'", code, message)) return nullptr;
  if (port <= 0 || port > 65535) {
    report("group '" + group + "': FindCoordinator named no usable coordinator");
    return nullptr;
  }
  kafka_client* client = broker_at(host, static_cast<std::uint16_t>(port));
  coordinators_[group] = client;
  return client;
}

}  // namespace sluice::admin
