// Messages between cores: each core runs its own reactor on its own thread, and the only
// way one core touches another's state is by sending it a task to run there.
//
// One single-producer single-consumer ring per ordered pair of cores (from, to), so a
// post is a plain store and a release of the tail, with no lock and no contention
// between senders. Each ring holds `queue_capacity` tasks; a post to a full ring fails
// and the sender keeps the task (its backlog, below), so memory stays bounded by what
// the senders hold: their requests in flight, themselves bounded per connection.
//
// Waking: a core drains its rings on every reactor turn (drain()), so a busy core needs
// no wake at all. A receiver that takes a task from a full ring wakes the sender, whose
// backlog may wait for that room. A core asleep in io_uring_enter is woken through an eventfd whose
// read stays armed in its ring; a sender writes the eventfd only when the receiver has not been
// woken since it last drained (one flag per receiver), so a burst of posts costs one write(2) -- a
// non-blocking system call on an eventfd, never a wait.
//
// Tasks run on the receiver's thread, in the order each sender posted them (no order
// between senders). A task must not be destroyed on another core than the one it was
// meant for without running (it may hold state of its origin): the mesh never drops one;
// at the end every ring must have been drained (shutdown drains until all are empty).
//
// Created before the cores' threads and destroyed after they have stopped. post(),
// flush() and drain() are called by the thread of the core they name as `self`/`from`.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "engine/base/result.h"
#include "engine/reactor/reactor.h"

namespace sluice {

// A piece of work for another core.
class core_task {
 public:
  virtual ~core_task() = default;
  virtual void run() noexcept = 0;
};

template <typename Function>
std::unique_ptr<core_task> make_core_task(Function&& function) {
  struct holder final : core_task {
    explicit holder(Function&& f) : body(std::forward<Function>(f)) {}
    void run() noexcept override { body(); }
    std::decay_t<Function> body;
  };
  return std::make_unique<holder>(std::forward<Function>(function));
}

class core_mesh {
 public:
  static constexpr std::uint32_t cores_max = 64;

  // Fails when an eventfd cannot be made (descriptor limit).
  static result<std::unique_ptr<core_mesh>> create(std::uint32_t cores,
                                                   std::size_t queue_capacity = 4096);
  core_mesh(const core_mesh&) = delete;
  core_mesh& operator=(const core_mesh&) = delete;
  ~core_mesh();

  std::uint32_t size() const noexcept { return cores_; }

  // Arms core `self`'s wake-up read in its ring. Call once, on that core's thread, before
  // it sleeps in its reactor. The ring must be destroyed (or stop being run) before the
  // mesh.
  void attach(std::uint32_t self, reactor& ring) noexcept;

  // Sends `task` from core `from` to core `to` (`from` != `to`). Never fails: when the
  // ring is full the task waits in the sender's backlog, and flush() (called by drain(),
  // so on every turn of the sender) moves it on as room appears. `backlog(from)` says how
  // much waits; callers that can push back (stop reading a connection) look at it.
  void post(std::uint32_t from, std::uint32_t to, std::unique_ptr<core_task> task) noexcept;
  // Tasks of `from` waiting for room in some ring.
  std::size_t backlog(std::uint32_t from) const noexcept;

  // Runs up to `max_tasks` tasks sent to core `self` (and first moves `self`'s own
  // backlog on). Returns how many ran.
  std::size_t drain(std::uint32_t self, std::size_t max_tasks = 1024) noexcept;
  // Whether any task for `self` waits in a ring, or any of `self`'s own wait in its
  // backlog.
  bool pending(std::uint32_t self) const noexcept;

 private:
  struct alignas(64) ring {
    explicit ring(std::size_t capacity) : slots(capacity) {}
    std::vector<core_task*> slots;
    alignas(64) std::atomic<std::size_t> head{0};  // consumer
    alignas(64) std::atomic<std::size_t> tail{0};  // producer
    bool push(core_task* task) noexcept;
    core_task* pop() noexcept;
    bool empty() const noexcept;
    bool full() const noexcept;
  };
  struct wake;  // one per core: eventfd, armed read, flag
  struct backlog_entry {
    std::uint32_t to;
    std::unique_ptr<core_task> task;
  };

  core_mesh(std::uint32_t cores, std::size_t capacity);
  ring& between(std::uint32_t from, std::uint32_t to) noexcept {
    return *rings_[from * cores_ + to];
  }
  const ring& between(std::uint32_t from, std::uint32_t to) const noexcept {
    return *rings_[from * cores_ + to];
  }
  void flush(std::uint32_t from) noexcept;
  void wake_up(std::uint32_t to) noexcept;

  std::uint32_t cores_;
  std::vector<std::unique_ptr<ring>> rings_;
  std::vector<std::unique_ptr<wake>> wakes_;
  // Per sender; touched only by the sender's thread.
  std::vector<std::deque<backlog_entry>> backlogs_;
};

}  // namespace sluice
