// The cores of a broker, as each core's broker_context sees them.
//
// A broker runs one reactor thread per core (`--cores N`). Each partition has one owning
// core, which holds its log (its own log_manager), its producer state and its waiters;
// every read and write of the partition happens there. Ownership is a pure function of
// the topic name, the partition and the core count (partition_owner), so every core
// computes it without asking: a topic's partitions go round-robin over the cores from a
// start given by the topic name's hash. The internal topic __consumer_offsets, the
// consumer groups, the topic registry and the producer-id block live on core 0.
//
// Connections are spread over the cores by the kernel (one SO_REUSEPORT listener per
// core). A request is decoded on the core of its connection; what it needs from another
// core travels as a task through the core_mesh (engine/reactor/core_mesh.h) and its
// answer comes back the same way: a partition's append, read or offset lookup goes to
// the partition's owner; a request for core 0's state (topics, groups, producer ids) is
// forwarded there whole and its response frame comes back to the connection's core.
//
// Owned by main(); the contexts are registered before any core serves and never change
// afterwards. run_on() may be called by any core's thread for its own `self`.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "broker/topic_registry.h"
#include "engine/reactor/core_mesh.h"

namespace sluice {

class broker_context;

// The core that owns a partition of a broker with `cores` cores.
std::uint32_t partition_owner(std::string_view topic, std::int32_t partition,
                              std::uint32_t cores) noexcept;

class core_router {
 public:
  // `contexts` (one per core, filled before any core serves) must outlive the router.
  core_router(core_mesh& mesh, std::uint32_t self,
              const std::vector<broker_context*>& contexts) noexcept
      : mesh_(mesh), self_(self), contexts_(contexts) {}

  std::uint32_t self() const noexcept { return self_; }
  std::uint32_t count() const noexcept { return mesh_.size(); }
  std::uint32_t owner(std::string_view topic, std::int32_t partition) const noexcept {
    return partition_owner(topic, partition, count());
  }

  // Runs `work(broker_context&)` on core `to`'s thread (another core), with that core's
  // context. `work`
  // must not be destroyed elsewhere than where it runs, so it may carry state of this
  // core only to hand it back in a task of its own.
  template <typename Work>
  void run_on(std::uint32_t to, Work&& work) noexcept {
    broker_context* target = contexts_[to];
    mesh_.post(self_, to,
               make_core_task([target, w = std::forward<Work>(work)]() mutable { w(*target); }));
  }

  // Runs `work` on core `to` and waits for it, blocking this thread: for core 0's admin
  // operations only (creating and removing the logs of a topic). Only core 0 ever waits,
  // so no two cores wait for each other.
  template <typename Work>
  void call(std::uint32_t to, Work&& work) noexcept {
    if (to == self_) {
      work(*contexts_[to]);
      return;
    }
    std::atomic<std::uint32_t> pending{1};
    run_on(to, [&pending, &work](broker_context& target) {
      work(target);
      done_one(pending);
    });
    wait_for(pending);
  }

  // Runs `work` on every core at the same time -- this one included, on this thread --
  // and waits until all are done. The same rules as call().
  template <typename Work>
  void call_everywhere(Work&& work) noexcept {
    std::atomic<std::uint32_t> pending{count() - 1};
    for (std::uint32_t k = 0; k < count(); ++k) {
      if (k == self_) continue;
      run_on(k, [&pending, &work](broker_context& target) {
        work(target);
        done_one(pending);
      });
    }
    work(*contexts_[self_]);
    wait_for(pending);
  }

 private:
  static void done_one(std::atomic<std::uint32_t>& pending) noexcept {
    pending.fetch_sub(1, std::memory_order_release);
    pending.notify_one();
  }
  // Blocks until `pending` reaches 0. The tasks may sit in this core's backlog (a ring
  // full): they are moved on before each wait.
  void wait_for(std::atomic<std::uint32_t>& pending) noexcept {
    while (true) {
      const std::uint32_t left = pending.load(std::memory_order_acquire);
      if (left == 0) return;
      if (mesh_.backlog(self_) > 0) {
        mesh_.drain(self_, 0);
        continue;
      }
      pending.wait(left, std::memory_order_acquire);
    }
  }

  core_mesh& mesh_;
  std::uint32_t self_;
  const std::vector<broker_context*>& contexts_;
};

// The logs of every core, for core 0's topic registry: each operation runs on the
// partition's owner (waiting for it, with core_router::call, when that is another core).
class sharded_log_set final : public log_set {
 public:
  // `router` is core 0's.
  explicit sharded_log_set(core_router& router) noexcept : router_(router) {}
  void for_each(const std::function<void(const topic_partition&)>& visit) override;
  bool exists(const topic_partition& tp) override;
  result<void> create(const topic_partition& tp, const log_config& config) override;
  // Every core creates its share at the same time (their directory fsyncs overlap).
  result<void> create_range(const std::string& topic, std::int32_t first, std::int32_t end,
                            const log_config& config) override;
  void set_config(const topic_partition& tp, const log_config& config) override;
  removal remove_if_idle(const topic_partition& tp,
                         const std::function<void(const topic_partition&)>& before_remove) override;

 private:
  core_router& router_;
};

}  // namespace sluice
