#include "engine/reactor/core_mesh.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/base/assert.h"
#include "engine/base/log.h"

namespace sluice {

struct core_mesh::wake final : completion {
  int fd = -1;
  reactor* ring = nullptr;
  std::uint64_t value = 0;
  // Set by the first sender after the receiver's last drain; cleared by the receiver
  // when its read completes.
  std::atomic<bool> signalled{false};

  void arm() noexcept { io_uring_prep_read(ring->prepare(this), fd, &value, sizeof value, 0); }
  void complete(int res, std::uint32_t) noexcept override {
    signalled.store(false);
    // The tasks themselves are run by the core's drain() after this reactor turn. A read
    // cancelled at teardown is not re-armed.
    if (res == -ECANCELED) return;
    arm();
  }
  ~wake() {
    if (fd >= 0) ::close(fd);
  }
};

bool core_mesh::ring::push(core_task* task) noexcept {
  const std::size_t t = tail.load(std::memory_order_relaxed);
  if (t - head.load(std::memory_order_acquire) == slots.size()) return false;
  slots[t % slots.size()] = task;
  tail.store(t + 1, std::memory_order_release);
  return true;
}

core_task* core_mesh::ring::pop() noexcept {
  const std::size_t h = head.load(std::memory_order_relaxed);
  if (h == tail.load(std::memory_order_acquire)) return nullptr;
  core_task* task = slots[h % slots.size()];
  head.store(h + 1, std::memory_order_release);
  return task;
}

bool core_mesh::ring::full() const noexcept {
  return tail.load(std::memory_order_acquire) - head.load(std::memory_order_acquire) ==
         slots.size();
}

bool core_mesh::ring::empty() const noexcept {
  return head.load(std::memory_order_acquire) == tail.load(std::memory_order_acquire);
}

core_mesh::core_mesh(std::uint32_t cores, std::size_t capacity) : cores_(cores), backlogs_(cores) {
  rings_.reserve(static_cast<std::size_t>(cores) * cores);
  for (std::uint32_t i = 0; i < cores * cores; ++i)
    rings_.push_back(std::make_unique<ring>(capacity));
  for (std::uint32_t i = 0; i < cores; ++i) wakes_.push_back(std::make_unique<wake>());
}

result<std::unique_ptr<core_mesh>> core_mesh::create(std::uint32_t cores,
                                                     std::size_t queue_capacity) {
  SLUICE_ASSERT(cores >= 1 && cores <= cores_max, "core count out of range");
  SLUICE_ASSERT(queue_capacity >= 1, "a core queue needs room");
  std::unique_ptr<core_mesh> mesh(new core_mesh(cores, queue_capacity));
  for (auto& w : mesh->wakes_) {
    w->fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->fd < 0) return error_from_errno(-errno, "cannot make an eventfd to wake a core");
  }
  return mesh;
}

core_mesh::~core_mesh() {
  // Every task must have run where it was sent; one left here was lost by a shutdown
  // that did not drain.
  for (auto& r : rings_) {
    while (core_task* task = r->pop()) {
      SLUICE_LOG(error, "cores", "a cross-core task was never run; dropping it");
      delete task;
    }
  }
}

void core_mesh::attach(std::uint32_t self, reactor& ring) noexcept {
  SLUICE_ASSERT(self < cores_, "no such core");
  wake& w = *wakes_[self];
  SLUICE_ASSERT(w.ring == nullptr, "a core attaches once");
  w.ring = &ring;
  w.arm();
}

void core_mesh::post(std::uint32_t from, std::uint32_t to,
                     std::unique_ptr<core_task> task) noexcept {
  SLUICE_ASSERT(from < cores_ && to < cores_ && from != to, "post between two distinct cores");
  auto& backlog = backlogs_[from];
  // Behind what already waits for the same ring, to keep each sender's order.
  bool behind = false;
  for (const auto& entry : backlog) behind = behind || entry.to == to;
  if (!behind && between(from, to).push(task.get())) {
    (void)task.release();
    wake_up(to);
    return;
  }
  backlog.push_back({to, std::move(task)});
}

std::size_t core_mesh::backlog(std::uint32_t from) const noexcept {
  return backlogs_[from].size();
}

void core_mesh::flush(std::uint32_t from) noexcept {
  auto& backlog = backlogs_[from];
  // A full ring blocks only the tasks for that core; order per destination is kept by
  // stopping at the first task for a ring that is full.
  std::uint64_t blocked = 0;  // bit per destination
  for (auto it = backlog.begin(); it != backlog.end();) {
    const std::uint64_t bit = std::uint64_t{1} << it->to;
    if ((blocked & bit) == 0 && between(from, it->to).push(it->task.get())) {
      (void)it->task.release();
      wake_up(it->to);
      it = backlog.erase(it);
    } else {
      blocked |= bit;
      ++it;
    }
  }
}

void core_mesh::wake_up(std::uint32_t to) noexcept {
  wake& w = *wakes_[to];
  if (w.signalled.exchange(true)) return;
  const std::uint64_t one = 1;
  // Non-blocking eventfd: EAGAIN would mean the counter is near 2^64, which cannot happen
  // with one write per drain; a failure leaves the receiver to its next turn.
  (void)!::write(w.fd, &one, sizeof one);
}

std::size_t core_mesh::drain(std::uint32_t self, std::size_t max_tasks) noexcept {
  if (!backlogs_[self].empty()) flush(self);
  std::size_t ran = 0;
  // Round-robin over the senders, so one busy sender cannot starve the others.
  bool any = true;
  while (any && ran < max_tasks) {
    any = false;
    for (std::uint32_t from = 0; from < cores_ && ran < max_tasks; ++from) {
      if (from == self) continue;
      ring& r = between(from, self);
      const bool was_full = r.full();
      if (core_task* task = r.pop()) {
        // The sender may be asleep with tasks in its backlog for this ring: room now.
        if (was_full) wake_up(from);
        std::unique_ptr<core_task> owned(task);
        owned->run();
        ++ran;
        any = true;
      }
    }
  }
  return ran;
}

bool core_mesh::pending(std::uint32_t self) const noexcept {
  if (!backlogs_[self].empty()) return true;
  for (std::uint32_t from = 0; from < cores_; ++from) {
    if (from != self && !between(from, self).empty()) return true;
  }
  return false;
}

}  // namespace sluice
