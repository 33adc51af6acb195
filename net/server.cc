#include "net/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "engine/base/assert.h"
#include "engine/base/log.h"

namespace sluice {
namespace {

// "127.0.0.1:5000" or "[::1]:5000", for logs.
std::string peer_name(int fd) {
  sockaddr_storage address;
  socklen_t address_bytes = sizeof(address);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &address_bytes) != 0) {
    return "unknown peer";
  }
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    return "[" + std::string(text) + "]:" + std::to_string(ntohs(v6->sin6_port));
  }
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
  ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
  return std::string(text) + ":" + std::to_string(ntohs(v4->sin_port));
}

// How long ~server waits for the kernel to return the operations of a server that was
// not stopped before destruction.
constexpr auto teardown_wait = std::chrono::seconds(10);

}  // namespace

result<std::unique_ptr<server>> server::start(reactor& ring, const server_config& config,
                                              handler_factory make_handler) {
  if (!make_handler) return error(errc::invalid_argument, "server needs a handler factory");
  if (config.connection.in_flight_max == 0 || config.connection.queued_bytes_max == 0 ||
      config.connection.iovecs_max == 0 || config.connection.iovecs_max > 1024) {
    return error(errc::invalid_argument,
                 "connection bounds must be positive (iovecs_max at most 1024)");
  }
  std::unique_ptr<server> made(new (std::nothrow) server(ring, config, std::move(make_handler)));
  if (!made) return error(errc::io_error, "out of memory creating the server", ENOMEM);
  auto buffers = buffer_ring::create(ring, config.buffers);
  if (!buffers.ok()) return buffers.failure();
  made->buffers_ = std::move(buffers).value();
  if (!config.listen_enabled) return made;
  auto opened = listener::open(ring, config.listen, *made, made->metrics_);
  if (!opened.ok()) return opened.failure();
  made->listener_ = std::move(opened).value();
  made->listener_->start();
  SLUICE_LOG(info, "net", "listening on {}:{}", config.listen.host, made->listener_->port());
  return made;
}

server::server(reactor& ring, const server_config& config, handler_factory make_handler) noexcept
    : reactor_(ring),
      config_(config),
      make_handler_(std::move(make_handler)),
      drain_deadline_(ring, [this] { close_all(); }) {}

server::~server() {
  const bool busy =
      !connections_.empty() || (listener_ && !listener_->idle()) || !drain_deadline_.idle();
  if (busy) {
    // Not stopped by its owner: abort everything, then wait for the kernel to hand back
    // every operation that points into this server's memory.
    stop(std::chrono::milliseconds(0));
    close_all();
    const bool done = reactor_.run_until([this] { return stopped(); }, teardown_wait);
    SLUICE_ASSERT(done, "server operations did not complete during teardown");
  }
  // The receive buffers' group may only go once no receive uses it: stopped() says so.
  listener_.reset();
  buffers_.reset();
}

void server::stop(std::chrono::milliseconds drain_timeout) noexcept {
  if (stopping_) return;
  stopping_ = true;
  if (listener_) listener_->stop();
  std::vector<connection*> open;
  open.reserve(connections_.size());
  for (auto& entry : connections_) open.push_back(entry.first);
  // drain() never destroys a connection synchronously (only its final completion does),
  // so these pointers stay valid through the loop.
  for (connection* each : open) each->drain();
  // Nothing to wait for when no connection is left (drain() may have finished none yet,
  // but then connections_ is not empty).
  if (!connections_.empty()) drain_deadline_.arm(drain_timeout);
}

bool server::stopped() const noexcept {
  return stopping_ && connections_.empty() && (!listener_ || listener_->idle()) &&
         drain_deadline_.idle();
}

void server::close_all() noexcept {
  std::vector<connection*> open;
  open.reserve(connections_.size());
  for (auto& entry : connections_) open.push_back(entry.first);
  for (connection* each : open) each->close();
  drain_deadline_.cancel();
}

void server::on_accept(int fd) noexcept {
  if (stopping_) {
    ::close(fd);
    return;
  }
  if (hand_off_ && hand_off_(fd)) return;
  adopt(fd);
}

void server::adopt(int fd) noexcept {
  if (stopping_) {
    ::close(fd);
    return;
  }
  if (connections_.size() >= config_.connections_max) {
    ::close(fd);
    ++metrics_.connections_rejected;
    if (!rejecting_) {
      rejecting_ = true;
      SLUICE_LOG(warn, "net",
                 "connection limit of {} reached: closing new connections until one ends",
                 config_.connections_max);
    }
    return;
  }
  rejecting_ = false;
  ++metrics_.connections_accepted;
  const int on = 1;
  // Kafka responses are written whole; Nagle would only delay the last segment.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  connection_owner& owner = *this;  // a private base: convert here, where it is accessible
  auto made = std::make_unique<connection>(reactor_, *buffers_, owner, metrics_, config_.connection,
                                           fd, peer_name(fd));
  connection* raw = made.get();
  connections_.emplace(raw, std::move(made));
  raw->start(make_handler_(*raw));
}

void server::connection_finished(connection* finished) noexcept {
  const auto erased = connections_.erase(finished);
  SLUICE_ASSERT(erased == 1, "a connection the server does not own finished");
  if (stopping_ && connections_.empty()) drain_deadline_.cancel();
}

}  // namespace sluice
