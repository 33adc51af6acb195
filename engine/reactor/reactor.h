// The io_uring reactor: one ring, driven by one thread.
//
// Everything asynchronous in Sluice -- disk writes and syncs now, sockets and timers
// later -- is an SQE whose user_data is the address of a `completion`. run_once()
// submits what was prepared, waits (bounded) for completions, and dispatches every CQE
// that is ready, in a batch. Nothing throws across the loop: completions are noexcept.
//
// Owned by the thread that created it; no other thread may touch it. A second core gets
// its own reactor.
#pragma once

#include <liburing.h>

#include <chrono>
#include <cstdint>
#include <memory>

#include "engine/base/result.h"

namespace sluice {

// The receiver of one (or, for multishot operations, several) io_uring completions.
class completion {
 public:
  // `res` is the CQE result: >= 0 on success, a negative errno on failure.
  // `flags` are the CQE flags (IORING_CQE_F_MORE, IORING_CQE_F_BUFFER, ...).
  virtual void complete(int res, std::uint32_t flags) noexcept = 0;

 protected:
  ~completion() = default;
};

struct reactor_config {
  // Submission queue entries. The completion queue is twice as large.
  unsigned ring_entries = 1024;
};

class reactor {
 public:
  // Creates the ring. When io_uring is unavailable (kernel too old, disabled by
  // sysctl kernel.io_uring_disabled, or blocked by seccomp) the error's detail says so in
  // words an operator can act on, and os_errno() carries the errno.
  static result<std::unique_ptr<reactor>> create(const reactor_config& config);

  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;
  ~reactor();

  // Returns a zeroed SQE whose user_data is `done`. When the submission queue is full,
  // submits what is queued first; never returns null.
  io_uring_sqe* prepare(completion* done) noexcept;

  // Submits prepared SQEs without waiting. Returns the number submitted.
  unsigned submit() noexcept;

  // Submits, then waits up to `max_wait` for at least one completion (0 = do not wait),
  // dispatches every completion available, and submits what those completions prepared.
  // Returns how many were dispatched.
  unsigned run_once(std::chrono::microseconds max_wait) noexcept;

  // Operations submitted whose final completion has not been dispatched yet. A multishot
  // operation counts until a CQE without IORING_CQE_F_MORE arrives.
  std::size_t in_flight() const noexcept { return in_flight_; }

  // Runs until `done()` is true or `deadline` passes; returns done(). For tests, tools and
  // start-up code that need to wait for their own I/O.
  template <typename Predicate>
  bool run_until(Predicate&& done, std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
    auto until = std::chrono::steady_clock::now() + deadline;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= until) return false;
      run_once(std::chrono::milliseconds(10));
    }
    return true;
  }

  io_uring* ring() noexcept { return &ring_; }

 private:
  reactor() = default;

  io_uring ring_{};
  std::size_t in_flight_ = 0;
};

}  // namespace sluice
