// The topics this broker holds: name, topic id, partition count and config overrides,
// persisted in `<data-dir>/topics` (format: docs/formats/topics.md) and reloaded at
// start-up, so topic ids stay stable across restarts.
//
// The registry creates partition logs through the log_manager when a topic is created or
// grows, and removes them when a topic is deleted. Deletion is two-phase, because a log
// may only be removed while idle (no write or sync in flight): remove_topic() drops the
// topic from the registry and records it as "deleting" in the file at once; the logs go
// when remove_idle_logs() finds them idle (the broker calls it right away and on every
// tick), and a crash in between finishes the job at the next start. A topic being deleted
// cannot be re-created until its logs are gone (TOPIC_ALREADY_EXISTS, as Kafka answers
// for a topic marked for deletion).
//
// Start-up reconciles the file with the data directory: a partition directory no topic
// claims (left by a crash between creating logs and writing the file, or by a storage-only
// run) is adopted as a topic with a fresh id, and a registered partition whose directory
// is missing is created empty. Both are logged.
//
// The file is rewritten (atomically, with fsync) on every change: a blocking write of a
// few kilobytes on the reactor thread, acceptable for admin operations that are rare.
//
// Owned by the broker; touched only by core 0's thread (the one thread of a single-core
// broker). Other cores read the topic_table it publishes, and reach the partitions they
// own through the log_set, which runs each operation on the owning core.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "broker/topic_config.h"
#include "engine/base/result.h"
#include "engine/storage/log_manager.h"
#include "net/protocol/field_types.h"

namespace sluice {

struct uuid_less {
  bool operator()(const protocol::uuid& a, const protocol::uuid& b) const noexcept {
    return a.bytes < b.bytes;
  }
};

struct topic_info {
  std::string name;
  protocol::uuid id;
  std::int32_t partitions = 0;
  topic_config_overrides overrides;
  // The broker defaults with the overrides applied.
  log_config log;
};

// A read-only copy of the registry's topics, published after every change so that every
// core can read it while core 0 changes the registry (the registry lives on core 0).
// Immutable once published: readers hold it by shared_ptr, and the pointers find()
// returns stay valid as long as they hold it.
class topic_table {
 public:
  const topic_info* find(std::string_view name) const noexcept;
  const topic_info* find(const protocol::uuid& id) const noexcept;
  bool being_deleted(std::string_view name) const noexcept {
    return deleting_.find(name) != deleting_.end();
  }
  std::size_t size() const noexcept { return topics_.size(); }
  template <typename Visit>
  void for_each(Visit&& visit) const {
    for (const auto& [name, topic] : topics_) visit(*topic);
  }

 private:
  friend class topic_registry;
  std::map<std::string, std::shared_ptr<const topic_info>, std::less<>> topics_;
  std::map<protocol::uuid, const topic_info*, uuid_less> by_id_;
  std::set<std::string, std::less<>> deleting_;
};

// Where the registry publishes its topic_table, for the cores to pick up. Thread-safe:
// published on core 0, read from every core (one version check per request, a short
// lock only when the version moved).
class topic_catalog {
 public:
  // The table of the latest publication, when it is newer than `version` (which is then
  // updated); nullptr otherwise.
  std::shared_ptr<const topic_table> newer_than(std::uint64_t& version) const;
  void publish(std::shared_ptr<const topic_table> table);

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const topic_table> table_;
  std::atomic<std::uint64_t> version_{0};
};

// The partition logs as the registry creates, configures and removes them: one core's
// log_manager (local_log_set), or every core's (broker/cores.h).
class log_set {
 public:
  virtual ~log_set() = default;
  virtual void for_each(const std::function<void(const topic_partition&)>& visit) = 0;
  virtual bool exists(const topic_partition& tp) = 0;
  virtual result<void> create(const topic_partition& tp, const log_config& config) = 0;
  // Creates the partitions `first` .. `end - 1` of `topic` (the cores in parallel where
  // there are several). On failure some may exist: the caller removes them.
  virtual result<void> create_range(const std::string& topic, std::int32_t first, std::int32_t end,
                                    const log_config& config) {
    for (std::int32_t p = first; p < end; ++p)
      SLUICE_TRY(create(topic_partition{topic, p}, config));
    return {};
  }
  // Applies a topic's (new) config to the partition's log, if it exists.
  virtual void set_config(const topic_partition& tp, const log_config& config) = 0;
  enum class removal : std::uint8_t { removed, busy, absent };
  // Removes the log if it is idle, calling `before_remove` first (for a log of this core;
  // other cores detach their own state).
  virtual removal remove_if_idle(
      const topic_partition& tp,
      const std::function<void(const topic_partition&)>& before_remove) = 0;
};

// The log_set of a single log_manager.
class local_log_set final : public log_set {
 public:
  explicit local_log_set(log_manager& logs) noexcept : logs_(logs) {}
  void for_each(const std::function<void(const topic_partition&)>& visit) override;
  bool exists(const topic_partition& tp) override;
  result<void> create(const topic_partition& tp, const log_config& config) override;
  void set_config(const topic_partition& tp, const log_config& config) override;
  removal remove_if_idle(const topic_partition& tp,
                         const std::function<void(const topic_partition&)>& before_remove) override;

 private:
  log_manager& logs_;
};

class topic_registry {
 public:
  // The most partitions one topic may have (a CreateTopics asking for more is refused with
  // INVALID_PARTITIONS): each is a directory and open files.
  static constexpr std::int32_t partitions_per_topic_max = 10000;
  static constexpr const char* file_name = "topics";

  // Reads `<data_dir>/topics` (missing: no topics yet), finishes interrupted deletions,
  // reconciles with the logs that `logs` opened and applies each topic's config to them.
  static result<std::unique_ptr<topic_registry>> open(const std::string& data_dir,
                                                      log_manager& logs,
                                                      const log_config& defaults);
  // The same over any log_set (the logs of every core), publishing into `publish_to`
  // (which must outlive the registry) instead of a catalog of its own.
  static result<std::unique_ptr<topic_registry>> open(const std::string& data_dir,
                                                      std::unique_ptr<log_set> logs,
                                                      const log_config& defaults,
                                                      topic_catalog* publish_to = nullptr);
  // Where this registry publishes its table (after open and after every change).
  const topic_catalog& catalog() const noexcept { return *catalog_; }

  topic_registry(const topic_registry&) = delete;
  topic_registry& operator=(const topic_registry&) = delete;

  const topic_info* find(std::string_view name) const noexcept;
  const topic_info* find(const protocol::uuid& id) const noexcept;
  // The topic's logs are still being removed.
  bool being_deleted(std::string_view name) const noexcept;
  std::size_t size() const noexcept { return topics_.size(); }
  template <typename Visit>
  void for_each(Visit&& visit) const {
    for (const auto& [name, topic] : topics_) visit(*topic);
  }

  // Why a creation is refused (each maps to one Kafka error code at the API edge).
  enum class create_error { none, invalid_name, exists, invalid_partitions, invalid_config };
  // Checks a creation without doing it (CreateTopics validate_only, and create() itself).
  // On invalid_config, `problem` receives the reason.
  create_error check_create(std::string_view name, std::int32_t partitions,
                            const topic_config_overrides& overrides, std::string& problem) const;
  // Creates after check_create() passed; errors here are storage errors.
  result<const topic_info*> create(std::string_view name, std::int32_t partitions,
                                   const topic_config_overrides& overrides);
  // Grows a topic to `total` partitions (CreatePartitions). REQUIRES total > current.
  result<void> add_partitions(std::string_view name, std::int32_t total);
  // Replaces a topic's config overrides (IncrementalAlterConfigs): validated as create()
  // validates them, persisted, and applied to the topic's partition logs at once. Fails
  // with not_found for an unknown topic, invalid_argument for overrides that
  // resolve_topic_config refuses (call it first for the reason), or the storage error of
  // the write (the old overrides then stay in force).
  result<void> set_overrides(std::string_view name, const topic_config_overrides& overrides);
  // Removes the topic from the registry (persisted) and queues its logs for removal.
  // Fails with not_found for an unknown topic.
  result<void> remove_topic(std::string_view name);
  // Removes the queued logs that are idle, calling `before_remove` for each just before
  // (the broker detaches its listener there). Returns how many logs remain queued.
  std::size_t remove_idle_logs(const std::function<void(const topic_partition&)>& before_remove);

  const log_config& defaults() const noexcept { return defaults_; }

 private:
  topic_registry(std::string data_dir, std::unique_ptr<log_set> logs, const log_config& defaults)
      : data_dir_(std::move(data_dir)), logs_(std::move(logs)), defaults_(defaults) {}
  result<void> load();
  // Writes the file, then publishes the table.
  result<void> persist();
  void publish();
  topic_info* insert(topic_info topic);

  std::string data_dir_;
  std::unique_ptr<log_set> logs_;
  log_config defaults_;
  std::map<std::string, std::unique_ptr<topic_info>, std::less<>> topics_;
  std::map<protocol::uuid, topic_info*, uuid_less> by_id_;
  // Topics being deleted: name -> partition count; persisted as "deleting" lines.
  std::map<std::string, std::int32_t, std::less<>> deleting_;
  topic_catalog own_catalog_;
  topic_catalog* catalog_ = &own_catalog_;
};

}  // namespace sluice
