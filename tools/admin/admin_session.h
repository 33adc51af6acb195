// admin_session: the connections and the error reporting of one sluice-admin run.
//
// Holds the reactor and a kafka_client per broker talked to (the bootstrap broker, then
// whichever broker leads a partition or coordinates a group, by its advertised address),
// made on first use. Every failure is reported here, as one line on the error stream
// naming what failed (the topic or group, the Kafka error name, the broker's message),
// and remembered, so the command's exit status says whether anything failed.
//
// Owned by run_admin(); single-threaded.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "engine/reactor/reactor.h"
#include "net/client/kafka_client.h"
#include "tools/admin/admin_options.h"
#include "tools/admin/json_writer.h"

namespace sluice::admin {

class admin_session {
 public:
  admin_session(const admin_command& command, std::ostream& out, std::ostream& err);
  admin_session(const admin_session&) = delete;
  admin_session& operator=(const admin_session&) = delete;
  ~admin_session();

  const admin_command& command() const noexcept { return command_; }
  std::ostream& out() noexcept { return out_; }

  // The connection to the bootstrap broker; nullptr (reported) when it cannot be made.
  kafka_client* bootstrap();
  // The connection to a broker by its advertised address.
  kafka_client* broker_at(const std::string& host, std::uint16_t port);
  // The coordinator of `group` (FindCoordinator through the bootstrap broker).
  kafka_client* coordinator(const std::string& group);

  // A request and its answer; nullopt (reported, naming `what`) on a failure of the
  // connection, a timeout, or an API the broker lacks.
  template <typename Response, typename Request>
  std::optional<owned_response<Response>> call(kafka_client* to, const Request& request,
                                               const std::string& what) {
    if (to == nullptr) return std::nullopt;
    auto answer = to->call_sync<Response>(request, command_.timeout);
    if (!answer.ok()) {
      report_client_error(what, answer.failure());
      return std::nullopt;
    }
    return std::move(*answer);
  }

  // Reports "SUBJECT: KAFKA_ERROR_NAME[: message]" when `code` is an error; true if so.
  bool report_kafka_error(const std::string& subject, std::int16_t code,
                          std::optional<std::string_view> message = std::nullopt);
  // Reports a line as it is.
  void report(const std::string& line);
  void report_client_error(const std::string& what, const error& failure);

  bool failed() const noexcept { return failed_; }
  // 0, or 1 once something failed.
  int exit_code() const noexcept { return failed_ ? 1 : 0; }

 private:
  kafka_client* connect(const std::string& host, std::uint16_t port);

  const admin_command& command_;
  std::ostream& out_;
  std::ostream& err_;
  std::unique_ptr<reactor> reactor_;
  std::map<std::string, std::unique_ptr<kafka_client>> clients_;
  std::map<std::string, kafka_client*> coordinators_;
  bool failed_ = false;
};

// "host:port", with brackets for an IPv6 address.
std::string address_text(const std::string& host, std::uint16_t port);

}  // namespace sluice::admin
