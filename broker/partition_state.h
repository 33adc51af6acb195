// What the broker keeps per partition beside its log: the produce requests waiting for
// their batch to be written or flushed, and the fetches waiting for new data.
//
// It is the partition log's listener (engine/storage/partition_log.h). Two FIFO queues of
// append waiters, one per position (written_end, flushed_end): offsets are assigned in
// append order, so each queue is sorted and completes from its front. A failed append
// fails every waiter at or after the offset the log names. A fetch that long-polls
// registers its id; any move of written_end wakes every registered fetch once (the fetch
// re-reads and decides whether it has enough, registering again if not).
//
// Both queues and the fetch list are bounded; a full queue makes the producer get a
// retriable error before anything is appended (can_wait()).
//
// Owned by broker_context, one per partition in use; touched only by the reactor thread.
// It detaches itself from the log when destroyed; the log must outlive it.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "broker/producer_state.h"
#include "engine/storage/partition_log.h"

namespace sluice {

// Something that waits for appends: told once per registered index, success or failure.
class append_waiter {
 public:
  virtual ~append_waiter() = default;
  // `failure` is nullptr when the batch reached the position waited for.
  virtual void on_append_done(std::size_t index, const error* failure) noexcept = 0;
};

// Wakes long-polling fetches by id.
class fetch_waker {
 public:
  virtual void wake_fetch(std::uint64_t fetch_id) noexcept = 0;

 protected:
  ~fetch_waker() = default;
};

class partition_state final : public log_listener {
 public:
  // Per queue; well above the log's own pending_batches_max of 4096.
  static constexpr std::size_t waiters_max = 16384;
  static constexpr std::size_t fetch_watchers_max = 4096;

  partition_state(partition_log& log, fetch_waker& waker) noexcept;
  partition_state(const partition_state&) = delete;
  partition_state& operator=(const partition_state&) = delete;
  ~partition_state();

  partition_log& log() noexcept { return log_; }
  producer_state_table& producers() noexcept { return producers_; }

  enum class wait_for : std::uint8_t { written, flushed };
  // Room for one more waiter of this kind.
  bool can_wait(wait_for kind) const noexcept;
  // Calls waiter->on_append_done(index, ...) once `last_offset` is below the position
  // (possibly from inside this call, when it already is). REQUIRES can_wait(kind).
  void wait(wait_for kind, offset last_offset, std::shared_ptr<append_waiter> waiter,
            std::size_t index) noexcept;
  // Registers a fetch to wake at the next move of written_end. False when the list is
  // full (the fetch then just waits for its deadline).
  bool watch(std::uint64_t fetch_id) noexcept;
  // Fails every waiter (the partition is being deleted).
  void fail_all(const error& failure) noexcept;

  void on_written(offset written_end) noexcept override;
  void on_flushed(offset flushed_end) noexcept override;
  void on_append_failed(offset from, const error& failure) noexcept override;

 private:
  struct entry {
    offset last_offset;
    std::shared_ptr<append_waiter> waiter;
    std::size_t index;
  };
  static void complete_below(std::deque<entry>& queue, offset end) noexcept;
  static void fail_from(std::deque<entry>& queue, offset from, const error& failure) noexcept;

  partition_log& log_;
  producer_state_table producers_;
  fetch_waker& waker_;
  std::deque<entry> written_waiters_;
  std::deque<entry> flushed_waiters_;
  std::vector<std::uint64_t> fetch_watchers_;
};

}  // namespace sluice
