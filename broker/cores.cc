#include "broker/cores.h"

#include <atomic>
#include <optional>

#include "broker/broker_context.h"
#include "broker/groups/offsets_log.h"
#include "engine/base/log.h"

namespace sluice {

std::uint32_t partition_owner(std::string_view topic, std::int32_t partition,
                              std::uint32_t cores) noexcept {
  if (cores <= 1 || topic == offsets_log::topic_name) return 0;
  // FNV-1a of the name picks where the topic's round-robin starts, so that the first
  // partitions of many small topics do not all land on core 0.
  std::uint32_t hash = 2166136261u;
  for (char c : topic) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 16777619u;
  }
  const auto p = static_cast<std::uint32_t>(partition < 0 ? 0 : partition);
  return (hash % cores + p % cores) % cores;
}

void sharded_log_set::for_each(const std::function<void(const topic_partition&)>& visit) {
  for (std::uint32_t k = 0; k < router_.count(); ++k) {
    std::vector<topic_partition> found;
    router_.call(k, [&found](broker_context& core) {
      core.logs().for_each([&](const topic_partition& tp, partition_log&) { found.push_back(tp); });
    });
    for (const auto& tp : found) visit(tp);
  }
}

bool sharded_log_set::exists(const topic_partition& tp) {
  bool found = false;
  router_.call(router_.owner(tp.topic, tp.partition),
               [&](broker_context& core) { found = core.logs().get(tp) != nullptr; });
  return found;
}

result<void> sharded_log_set::create(const topic_partition& tp, const log_config& config) {
  std::optional<error> failure;
  router_.call(router_.owner(tp.topic, tp.partition), [&](broker_context& core) {
    auto created = core.logs().create(tp, config);
    if (!created) failure = created.failure();
  });
  if (failure) return *failure;
  return {};
}

result<void> sharded_log_set::create_range(const std::string& topic, std::int32_t first,
                                           std::int32_t end, const log_config& config) {
  const std::uint32_t cores = router_.count();
  // One failure per core, written by that core before it counts down.
  std::vector<std::optional<error>> failures(cores);
  std::atomic<std::uint32_t> pending{0};
  auto create_share = [&, topic, first, end, config](broker_context& core) {
    const std::uint32_t self = core.core_index();
    for (std::int32_t p = first; p < end && !failures[self]; ++p) {
      if (partition_owner(topic, p, cores) != self) continue;
      auto created = core.logs().create(topic_partition{topic, p}, config);
      if (!created) failures[self] = created.failure();
    }
  };
  for (std::uint32_t k = 0; k < cores; ++k) {
    if (k == router_.self()) continue;
    pending.fetch_add(1);
    router_.run_on(k, [&pending, create_share](broker_context& core) mutable {
      create_share(core);
      pending.fetch_sub(1, std::memory_order_release);
      pending.notify_one();
    });
  }
  router_.call(router_.self(), create_share);
  // The other cores' shares: wait (as call() does), moving this core's backlog on first.
  while (true) {
    const std::uint32_t left = pending.load(std::memory_order_acquire);
    if (left == 0) break;
    if (router_.mesh().backlog(router_.self()) > 0) {
      router_.mesh().drain(router_.self(), 0);
      continue;
    }
    pending.wait(left, std::memory_order_acquire);
  }
  for (auto& failure : failures) {
    if (failure) return *failure;
  }
  return {};
}

void sharded_log_set::set_config(const topic_partition& tp, const log_config& config) {
  router_.call(router_.owner(tp.topic, tp.partition), [&](broker_context& core) {
    if (partition_log* log = core.logs().get(tp)) log->set_config(config);
  });
}

log_set::removal sharded_log_set::remove_if_idle(
    const topic_partition& tp, const std::function<void(const topic_partition&)>& before_remove) {
  const std::uint32_t owner = router_.owner(tp.topic, tp.partition);
  removal outcome = removal::absent;
  router_.call(owner, [&](broker_context& core) {
    partition_log* log = core.logs().get(tp);
    if (log == nullptr) return;
    if (!log->idle()) {
      outcome = removal::busy;
      return;
    }
    // Core 0's own state goes through the registry's callback; another core drops its own.
    if (owner == router_.self()) {
      before_remove(tp);
    } else {
      core.detach_partition(tp);
    }
    if (auto removed = core.logs().remove(tp); !removed) {
      SLUICE_LOG(error, "broker", "cannot remove the files of {}: {}; remove {}/{} by hand",
                 tp.dir_name(), removed.failure().detail(), core.logs().config().data_dir,
                 tp.dir_name());
    }
    outcome = removal::removed;
  });
  return outcome;
}

}  // namespace sluice
