// Fetches waiting for data: Kafka's fetch purgatory.
//
// A fetch that finds fewer than min_bytes waits up to max_wait_ms. The purgatory owns it
// meanwhile, with its deadline; one timer (net/timer.h) is armed at the earliest
// deadline. Partitions wake fetches by id (partition_state -> wake_fetch) when data is
// written; a woken fetch is only marked ready there, and run_ready() -- called by the
// broker's loop after each reactor turn -- lets it re-read, so no fetch reads a log from
// inside that log's own completion callback. A fetch that still lacks data registers
// again and keeps its deadline; at the deadline it answers with what there is.
//
// Bounded: at most fetches_max parked; a fetch that finds the purgatory full answers at
// once (an early, possibly empty, response is always legal in Kafka).
//
// Owned by broker_context; touched only by the reactor thread. Lifecycle: stop() answers
// every parked fetch and cancels the timer; destroy only once idle().
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "broker/partition_state.h"
#include "net/timer.h"

namespace sluice {

class delayed_fetch {
 public:
  virtual ~delayed_fetch() = default;
  // Re-reads and answers if it has enough data or `deadline_passed`; returns true once it
  // has answered. When it returns false it must have registered `id` again with the
  // partitions it waits on.
  virtual bool try_complete(std::uint64_t id, bool deadline_passed) noexcept = 0;
};

class fetch_purgatory final : public fetch_waker {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::size_t fetches_max = 10000;

  explicit fetch_purgatory(reactor& ring) noexcept;
  fetch_purgatory(const fetch_purgatory&) = delete;
  fetch_purgatory& operator=(const fetch_purgatory&) = delete;
  ~fetch_purgatory();

  // No room, or stopped: nothing may park.
  bool full() const noexcept { return stopped_ || parked_.size() >= fetches_max; }
  // Takes the fetch until it completes; returns its id. REQUIRES !full().
  std::uint64_t park(std::unique_ptr<delayed_fetch> fetch, clock::time_point deadline) noexcept;
  void wake_fetch(std::uint64_t id) noexcept override;
  // Lets woken fetches re-read. Bounded by the number parked.
  void run_ready() noexcept;
  // Answers every parked fetch now and cancels the timer.
  void stop() noexcept;
  bool idle() const noexcept { return timer_.idle(); }
  std::size_t parked() const noexcept { return parked_.size(); }

 private:
  struct parked_fetch {
    std::unique_ptr<delayed_fetch> fetch;
    clock::time_point deadline;
    bool ready = false;
  };
  void on_timer() noexcept;
  void arm_earliest() noexcept;
  void finish(std::uint64_t id) noexcept;

  timer timer_;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, parked_fetch> parked_;
  std::multimap<clock::time_point, std::uint64_t> deadlines_;
  std::vector<std::uint64_t> ready_;
  std::optional<clock::time_point> armed_for_;
  bool stopped_ = false;
};

}  // namespace sluice
