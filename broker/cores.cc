#include "broker/cores.h"

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
  // Each core lists its own partitions into its own slot; the visits run here.
  std::vector<std::vector<topic_partition>> found(router_.count());
  router_.call_everywhere([&found](broker_context& core) {
    auto& mine = found[core.core_index()];
    core.logs().for_each([&](const topic_partition& tp, partition_log&) { mine.push_back(tp); });
  });
  for (const auto& each : found) {
    for (const auto& tp : each) visit(tp);
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
  // One failure per core, written by that core only.
  std::vector<std::optional<error>> failures(cores);
  router_.call_everywhere([&](broker_context& core) {
    const std::uint32_t self = core.core_index();
    for (std::int32_t p = first; p < end && !failures[self]; ++p) {
      if (partition_owner(topic, p, cores) != self) continue;
      auto created = core.logs().create(topic_partition{topic, p}, config);
      if (!created) failures[self] = created.failure();
    }
  });
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
