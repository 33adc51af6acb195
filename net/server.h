// The network front of a broker: a listener, its connections, and a handler per
// connection made by a factory.
//
// The server accepts sockets (closing at once those over connections_max, with one
// warning per burst of rejections), gives each a connection (connection.h) with a
// handler from the factory, and destroys each connection when it reports that it has
// finished. All connections share one provided-buffer ring for receives.
//
// stop(drain_timeout) stops accepting, tells every handler (request_handler::on_stopping),
// lets requests in flight be answered and queued responses be sent, and closes each
// connection when it has drained; connections still busy when drain_timeout passes are
// closed without further ado. stopped() turns true when all of that has completed.
//
// Owned by the broker (or a test); touched only by the reactor's thread. Lifecycle:
// start() -> run the reactor -> stop() -> run the reactor until stopped() -> destroy.
// Destroying a server that has not stopped closes everything and runs the reactor itself
// until the kernel has returned every operation (bounded), since freeing memory the ring
// still references would corrupt the heap.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include "engine/base/result.h"
#include "engine/reactor/reactor.h"
#include "net/buffer_ring.h"
#include "net/connection.h"
#include "net/listener.h"
#include "net/net_metrics.h"
#include "net/timer.h"

namespace sluice {

struct server_config {
  listener_config listen;
  // False: no listener; connections come only through adopt() (the other cores of a
  // multi-core broker, whose sockets core 0 accepts and hands over).
  bool listen_enabled = true;
  // Kafka's max.connections: beyond it sockets are accepted and closed at once.
  std::size_t connections_max = 10000;
  connection_config connection;
  buffer_ring_config buffers;
};

// Makes the handler of a new connection.
using handler_factory = std::function<std::unique_ptr<request_handler>(connection&)>;

class server final : private listener::observer, private connection_owner {
 public:
  static result<std::unique_ptr<server>> start(reactor& ring, const server_config& config,
                                               handler_factory make_handler);
  server(const server&) = delete;
  server& operator=(const server&) = delete;
  ~server();

  std::uint16_t port() const noexcept { return listener_ ? listener_->port() : 0; }
  // Offers each accepted socket to `hand_off` first; when it returns true it has taken
  // the socket (to give it to another core's server), otherwise this server keeps it.
  void set_hand_off(std::function<bool(int fd)> hand_off) noexcept {
    hand_off_ = std::move(hand_off);
  }
  // Takes a connected socket as if this server had accepted it (limits apply; closed at
  // once while stopping). On this server's reactor thread.
  void adopt(int fd) noexcept;
  void stop(std::chrono::milliseconds drain_timeout) noexcept;
  bool stopped() const noexcept;

  std::size_t connection_count() const noexcept { return connections_.size(); }
  // Calls `visit` for each open connection (for tests and admin tools). `visit` must not
  // close connections.
  template <typename Visit>
  void for_each_connection(Visit&& visit) {
    for (auto& entry : connections_) visit(*entry.second);
  }
  const net_metrics& metrics() const noexcept { return metrics_; }

 private:
  server(reactor& ring, const server_config& config, handler_factory make_handler) noexcept;
  void on_accept(int fd) noexcept override;
  void connection_finished(connection* finished) noexcept override;
  void close_all() noexcept;

  reactor& reactor_;
  server_config config_;
  handler_factory make_handler_;
  std::function<bool(int fd)> hand_off_;
  net_metrics metrics_;
  std::unique_ptr<buffer_ring> buffers_;
  std::unique_ptr<listener> listener_;
  std::unordered_map<connection*, std::unique_ptr<connection>> connections_;
  timer drain_deadline_;
  bool stopping_ = false;
  bool rejecting_ = false;  // a rejection was logged and no connection admitted since
};

}  // namespace sluice
