#include "broker/partition_state.h"

#include <algorithm>

namespace sluice {

partition_state::partition_state(partition_log& log, fetch_waker& waker) noexcept
    : log_(log), waker_(waker) {
  log_.set_listener(this);
}

partition_state::~partition_state() {
  log_.set_listener(nullptr);
}

bool partition_state::can_wait(wait_for kind) const noexcept {
  const auto& queue = kind == wait_for::written ? written_waiters_ : flushed_waiters_;
  return queue.size() < waiters_max;
}

void partition_state::wait(wait_for kind, offset last_offset, std::shared_ptr<append_waiter> waiter,
                           std::size_t index) noexcept {
  SLUICE_ASSERT(can_wait(kind), "partition_state::wait on a full queue");
  offset end = kind == wait_for::written ? log_.written_end() : log_.flushed_end();
  if (last_offset < end) {
    waiter->on_append_done(index, nullptr);
    return;
  }
  auto& queue = kind == wait_for::written ? written_waiters_ : flushed_waiters_;
  SLUICE_ASSERT(queue.empty() || queue.back().last_offset < last_offset,
                "append waiters must arrive in offset order");
  queue.push_back(entry{last_offset, std::move(waiter), index});
}

bool partition_state::watch(std::uint64_t fetch_id) noexcept {
  if (fetch_watchers_.size() >= fetch_watchers_max) return false;
  fetch_watchers_.push_back(fetch_id);
  return true;
}

void partition_state::complete_below(std::deque<entry>& queue, offset end) noexcept {
  // Bounded by the queue's size (waiters_max).
  while (!queue.empty() && queue.front().last_offset < end) {
    entry done = std::move(queue.front());
    queue.pop_front();
    done.waiter->on_append_done(done.index, nullptr);
  }
}

void partition_state::fail_from(std::deque<entry>& queue, offset from,
                                const error& failure) noexcept {
  // The failed ones are at the back: offsets are sorted.
  std::vector<entry> failed;
  while (!queue.empty() && queue.back().last_offset >= from) {
    failed.push_back(std::move(queue.back()));
    queue.pop_back();
  }
  for (auto it = failed.rbegin(); it != failed.rend(); ++it) {
    it->waiter->on_append_done(it->index, &failure);
  }
}

void partition_state::on_written(offset written_end) noexcept {
  complete_below(written_waiters_, written_end);
  if (!fetch_watchers_.empty()) {
    // Swap first: a woken fetch may register again while we iterate.
    std::vector<std::uint64_t> woken;
    woken.swap(fetch_watchers_);
    for (auto id : woken) waker_.wake_fetch(id);
  }
}

void partition_state::on_flushed(offset flushed_end) noexcept {
  complete_below(flushed_waiters_, flushed_end);
}

void partition_state::on_append_failed(offset from, const error& failure) noexcept {
  // The log dropped the batches from `from` on: the producers must forget them too.
  producers_.truncate_to(from);
  fail_from(written_waiters_, from, failure);
  fail_from(flushed_waiters_, from, failure);
}

void partition_state::fail_all(const error& failure) noexcept {
  fail_from(written_waiters_, offset(std::numeric_limits<std::int64_t>::min()), failure);
  fail_from(flushed_waiters_, offset(std::numeric_limits<std::int64_t>::min()), failure);
  std::vector<std::uint64_t> woken;
  woken.swap(fetch_watchers_);
  for (auto id : woken) waker_.wake_fetch(id);
}

}  // namespace sluice
