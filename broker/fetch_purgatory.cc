#include "broker/fetch_purgatory.h"

namespace sluice {

fetch_purgatory::fetch_purgatory(reactor& ring) noexcept : timer_(ring, [this] { on_timer(); }) {}

fetch_purgatory::~fetch_purgatory() {
  SLUICE_ASSERT(parked_.empty(), "fetch_purgatory destroyed with parked fetches; stop() first");
}

std::uint64_t fetch_purgatory::park(std::unique_ptr<delayed_fetch> fetch,
                                    clock::time_point deadline) noexcept {
  SLUICE_ASSERT(!full(), "fetch_purgatory::park when full");
  std::uint64_t id = next_id_++;
  parked_.emplace(id, parked_fetch{std::move(fetch), deadline, false});
  deadlines_.emplace(deadline, id);
  arm_earliest();
  return id;
}

void fetch_purgatory::wake_fetch(std::uint64_t id) noexcept {
  auto it = parked_.find(id);
  if (it == parked_.end() || it->second.ready) return;  // already answered, or queued
  it->second.ready = true;
  ready_.push_back(id);
}

void fetch_purgatory::run_ready() noexcept {
  if (ready_.empty()) return;
  std::vector<std::uint64_t> now;
  now.swap(ready_);
  for (auto id : now) {
    auto it = parked_.find(id);
    if (it == parked_.end()) continue;
    it->second.ready = false;
    if (it->second.fetch->try_complete(id, false)) finish(id);
  }
}

void fetch_purgatory::finish(std::uint64_t id) noexcept {
  auto it = parked_.find(id);
  if (it == parked_.end()) return;
  auto range = deadlines_.equal_range(it->second.deadline);
  for (auto d = range.first; d != range.second; ++d) {
    if (d->second == id) {
      deadlines_.erase(d);
      break;
    }
  }
  parked_.erase(it);
}

void fetch_purgatory::on_timer() noexcept {
  armed_for_.reset();
  auto now = clock::now();
  // Bounded by the number parked: each expired fetch answers and leaves.
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    std::uint64_t id = deadlines_.begin()->second;
    auto it = parked_.find(id);
    if (it == parked_.end()) {
      deadlines_.erase(deadlines_.begin());
      continue;
    }
    bool answered = it->second.fetch->try_complete(id, true);
    SLUICE_ASSERT(answered, "a fetch past its deadline must answer");
    finish(id);
  }
  arm_earliest();
}

void fetch_purgatory::arm_earliest() noexcept {
  if (stopped_ || deadlines_.empty()) return;
  auto earliest = deadlines_.begin()->first;
  if (armed_for_ && *armed_for_ <= earliest && timer_.armed()) return;
  armed_for_ = earliest;
  auto after = earliest - clock::now();
  timer_.arm(after < clock::duration::zero()
                 ? std::chrono::nanoseconds(0)
                 : std::chrono::duration_cast<std::chrono::nanoseconds>(after));
}

void fetch_purgatory::stop() noexcept {
  stopped_ = true;
  timer_.cancel();
  // Bounded: every parked fetch answers (deadline_passed) and leaves.
  while (!parked_.empty()) {
    auto it = parked_.begin();
    std::uint64_t id = it->first;
    (void)it->second.fetch->try_complete(id, true);
    finish(id);
  }
  deadlines_.clear();
  ready_.clear();
}

}  // namespace sluice
