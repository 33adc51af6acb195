// A listening TCP socket whose connections arrive through a multishot accept.
//
// One IORING_OP_ACCEPT with IORING_ACCEPT_MULTISHOT stays armed and posts a completion
// per accepted socket. When a completion arrives without IORING_CQE_F_MORE the kernel
// has ended the multishot; the listener re-arms it. When accept fails because the process
// or system is out of descriptors (EMFILE, ENFILE) -- or with any other error that ends
// the multishot -- the listener logs once per episode and re-arms after a pause through
// a timer (retrying at once would spin: the pending connection is still in the backlog
// and fails the same way).
//
// What to do with a socket (limits, handler) is the observer's business (server.h).
//
// Owned by the server; touched only by the reactor's thread. Lifecycle: open() binds
// and listens; start() arms the accept; stop() cancels it and the back-off timer; the
// listener may be destroyed once idle() (run the reactor until then). The socket is
// closed by the destructor, so the port stays taken until then.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/base/result.h"
#include "engine/reactor/reactor.h"
#include "net/net_metrics.h"
#include "net/timer.h"

namespace sluice {

struct listener_config {
  // A numeric IPv4 or IPv6 address ("0.0.0.0", "::", "127.0.0.1", "::1") or a host name.
  std::string host = "0.0.0.0";
  // 0 picks a free port; port() reports which.
  std::uint16_t port = 9092;
  int backlog = 1024;
  // The pause before re-arming an accept that failed.
  std::chrono::milliseconds accept_retry_ms{100};
};

class listener {
 public:
  class observer {
   public:
    // A connected socket (blocking, close-on-exec) now owned by the observer.
    virtual void on_accept(int fd) noexcept = 0;

   protected:
    ~observer() = default;
  };

  static result<std::unique_ptr<listener>> open(reactor& ring, const listener_config& config,
                                                observer& to, net_metrics& metrics);
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;
  ~listener();

  // The port bound (the one the system picked when the configuration said 0).
  std::uint16_t port() const noexcept { return port_; }
  void start() noexcept;
  void stop() noexcept;
  // No operation referencing the listener is in the ring.
  bool idle() const noexcept { return !accept_armed_ && cancels_in_flight_ == 0 && retry_.idle(); }

 private:
  struct accept_op final : completion {
    listener* owner = nullptr;
    void complete(int res, std::uint32_t flags) noexcept override;
  };
  struct cancel_op final : completion {
    listener* owner = nullptr;
    void complete(int res, std::uint32_t flags) noexcept override;
  };

  listener(reactor& ring, const listener_config& config, observer& to, net_metrics& metrics,
           int fd) noexcept;
  void arm_accept() noexcept;
  void on_accept(int res, std::uint32_t flags) noexcept;

  reactor& reactor_;
  listener_config config_;
  observer& observer_;
  net_metrics& metrics_;
  int fd_;
  std::uint16_t port_ = 0;
  accept_op accept_op_;
  cancel_op cancel_op_;
  timer retry_;
  bool accept_armed_ = false;
  bool stopping_ = false;
  bool failing_ = false;  // an accept error was logged and no accept succeeded since
  unsigned cancels_in_flight_ = 0;
};

}  // namespace sluice
