#include "net/timer.h"

#include <cerrno>
#include <utility>

#include "engine/base/assert.h"

namespace sluice {

timer::timer(reactor& ring, std::function<void()> on_fire) noexcept
    : reactor_(ring), on_fire_(std::move(on_fire)) {
  timeout_op_.owner = this;
  remove_op_.owner = this;
}

timer::~timer() {
  SLUICE_ASSERT(idle(), "timer destroyed with an operation in the ring: cancel() and wait");
}

void timer::arm(std::chrono::nanoseconds after) noexcept {
  if (after.count() < 0) after = std::chrono::nanoseconds(0);
  if (!timeout_in_flight_ && !remove_in_flight_) {
    submit_timeout(after);
    return;
  }
  // Only one timeout is ever in the ring, so that a completion always says which
  // deadline it belongs to. The new deadline starts once the old one has left.
  rearm_pending_ = true;
  rearm_after_ = after;
  if (timeout_in_flight_) request_remove();
}

void timer::cancel() noexcept {
  rearm_pending_ = false;
  if (timeout_in_flight_) request_remove();
}

void timer::submit_timeout(std::chrono::nanoseconds after) noexcept {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(after);
  expiry_.tv_sec = seconds.count();
  expiry_.tv_nsec = (after - seconds).count();
  io_uring_sqe* sqe = reactor_.prepare(&timeout_op_);
  // count 0: a pure timer, not "after N other completions".
  io_uring_prep_timeout(sqe, &expiry_, 0, 0);
  io_uring_sqe_set_data(sqe, &timeout_op_);
  timeout_in_flight_ = true;
  superseded_ = false;
}

void timer::request_remove() noexcept {
  if (superseded_) return;  // a remove is already on its way
  superseded_ = true;
  io_uring_sqe* sqe = reactor_.prepare(&remove_op_);
  io_uring_prep_timeout_remove(sqe, reinterpret_cast<std::uint64_t>(&timeout_op_), 0);
  io_uring_sqe_set_data(sqe, &remove_op_);
  remove_in_flight_ = true;
}

void timer::on_timeout(int res) noexcept {
  timeout_in_flight_ = false;
  // -ETIME is an expiry; -ECANCELED a successful remove. A timeout that expired just
  // before its remove arrived is still superseded: its owner no longer wants it.
  const bool fire = res == -ETIME && !superseded_;
  start_pending();
  if (fire && on_fire_) on_fire_();
}

void timer::on_removed() noexcept {
  // 0, -ENOENT (already expired) or -EALREADY: all mean the old timeout is or will be gone.
  remove_in_flight_ = false;
  start_pending();
}

void timer::start_pending() noexcept {
  if (timeout_in_flight_ || remove_in_flight_) return;
  superseded_ = false;
  if (!rearm_pending_) return;
  rearm_pending_ = false;
  submit_timeout(rearm_after_);
}

void timer::timeout_op::complete(int res, std::uint32_t) noexcept {
  owner->on_timeout(res);
}
void timer::remove_op::complete(int, std::uint32_t) noexcept {
  owner->on_removed();
}

}  // namespace sluice
