#include "broker/cores.h"

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
