// A one-shot timer driven by the reactor's ring (IORING_OP_TIMEOUT).
//
// Request timeouts, long polls (fetch max_wait_ms), accept back-off and drain deadlines
// all need "call me in N ms unless I change my mind". A timer holds at most one timeout
// operation in the ring; arm() while armed replaces the deadline (the old timeout is
// removed first, so a stale expiry never fires the callback), cancel() removes it.
//
// Owned by whoever needs the deadline (a listener, a server, a request); touched only by
// the reactor's thread. The callback runs from run_once(), never from inside arm() or
// cancel(), and may arm the timer again. Lifecycle: a timer may be destroyed only when
// idle(), that is when no operation referencing it is in the ring -- cancel(), then run
// the reactor until idle(). Destroying a busy timer is a programmer error and asserts,
// because the kernel would later post a completion to freed memory.
#pragma once

#include <liburing.h>

#include <chrono>
#include <cstdint>
#include <functional>

#include "engine/reactor/reactor.h"

namespace sluice {

class timer {
 public:
  timer(reactor& ring, std::function<void()> on_fire) noexcept;
  timer(const timer&) = delete;
  timer& operator=(const timer&) = delete;
  ~timer();

  // Fires the callback once, `after` from now. Replaces any earlier deadline.
  void arm(std::chrono::nanoseconds after) noexcept;
  // Makes sure the callback does not run for the current deadline. Idempotent.
  void cancel() noexcept;

  // The callback will run unless cancel() or arm() intervenes.
  bool armed() const noexcept { return (timeout_in_flight_ && !superseded_) || rearm_pending_; }
  // No operation referencing this timer is in the ring: it may be destroyed.
  bool idle() const noexcept { return !timeout_in_flight_ && !remove_in_flight_; }

 private:
  // The timeout itself; its user_data identifies it to a remove.
  struct timeout_op final : completion {
    timer* owner = nullptr;
    void complete(int res, std::uint32_t flags) noexcept override;
  };
  // The IORING_OP_TIMEOUT_REMOVE that cancels the timeout.
  struct remove_op final : completion {
    timer* owner = nullptr;
    void complete(int res, std::uint32_t flags) noexcept override;
  };

  void submit_timeout(std::chrono::nanoseconds after) noexcept;
  void request_remove() noexcept;
  void on_timeout(int res) noexcept;
  void on_removed() noexcept;
  void start_pending() noexcept;

  reactor& reactor_;
  std::function<void()> on_fire_;
  timeout_op timeout_op_;
  remove_op remove_op_;
  // Read by the kernel when the SQE is submitted, which happens after arm() returns.
  __kernel_timespec expiry_{};
  bool timeout_in_flight_ = false;
  bool remove_in_flight_ = false;
  // The timeout in flight must not fire: it was cancelled or replaced.
  bool superseded_ = false;
  // A new deadline waits for the old timeout to leave the ring.
  bool rearm_pending_ = false;
  std::chrono::nanoseconds rearm_after_{0};
};

}  // namespace sluice
