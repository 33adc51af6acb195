// The state every Kafka API handler of one broker shares: the logs, the topics, the
// per-partition waiters, the fetch purgatory, and who this broker says it is.
//
// Handlers reach everything through it (request_context.h carries a reference), which
// keeps them free functions over one explicit context instead of methods of a god
// object. Owned by main() (or a test), created after the log manager and the topic
// registry and destroyed before them; touched only by the reactor thread.
//
// With several cores (broker/cores.h) there is one context per core, each over the log
// manager of its core's partitions. Core 0's context holds the topic registry, the
// consumer groups and the producer ids; every context reads the topics from the table
// the registry publishes.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "broker/cores.h"
#include "broker/fetch_purgatory.h"
#include "broker/partition_state.h"
#include "broker/producer_id_allocator.h"
#include "broker/topic_registry.h"
#include "engine/base/assert.h"
#include "engine/reactor/reactor.h"
#include "engine/storage/log_manager.h"
#include "net/connection.h"

namespace sluice {

class offsets_log;
namespace groups {
class group_coordinator;
}  // namespace groups

struct broker_identity {
  std::int32_t node_id = 0;
  std::string advertised_host;
  std::int32_t advertised_port = 0;
  std::string cluster_id;
  // Kafka's auto.create.topics.enable and num.partitions.
  bool auto_create_topics = true;
  std::int32_t default_partitions = 1;
};

class broker_context {
 public:
  // The context of core 0, or of the only core: holds the registry.
  broker_context(reactor& ring, log_manager& logs, topic_registry& topics,
                 broker_identity identity) noexcept;
  // The context of a core of a multi-core broker: reads the topics from `catalog`. Core 0
  // gets the registry with set_registry() once it is open.
  broker_context(reactor& ring, log_manager& logs, const topic_catalog& catalog,
                 broker_identity identity) noexcept;
  broker_context(const broker_context&) = delete;
  broker_context& operator=(const broker_context&) = delete;
  ~broker_context();

  reactor& ring() noexcept { return ring_; }
  log_manager& logs() noexcept { return logs_; }
  // The registry, for changing topics: core 0 only (the APIs that change topics are
  // forwarded there).
  topic_registry& topics() noexcept {
    SLUICE_ASSERT(registry_ != nullptr, "the topic registry lives on core 0");
    return *registry_;
  }
  topic_registry* registry() noexcept { return registry_; }
  void set_registry(topic_registry* registry) noexcept { registry_ = registry; }
  // The topics as last published, on any core. Refreshed before every request
  // (refresh_topics()), so a topic created on core 0 is seen by the next request anywhere.
  const topic_table& table() const noexcept { return *table_; }
  void refresh_topics() noexcept;

  // The cores (null with a single core).
  core_router* router() noexcept { return router_; }
  void set_router(core_router* router) noexcept { router_ = router; }
  std::uint32_t core_index() const noexcept { return router_ == nullptr ? 0 : router_->self(); }
  std::uint32_t owner_of(std::string_view topic, std::int32_t partition) const noexcept {
    return router_ == nullptr ? 0 : router_->owner(topic, partition);
  }
  bool owns(std::string_view topic, std::int32_t partition) const noexcept {
    return owner_of(topic, partition) == core_index();
  }

  // Requests forwarded whole to core 0: their response slot waits here, on the
  // connection's core, until the response (or a close) comes back.
  std::uint64_t hold_forwarded(response_slot slot, std::shared_ptr<connection*> conn) noexcept;
  void answer_forwarded(std::uint64_t id, std::optional<outgoing_frame> frame,
                        bool close_connection) noexcept;
  std::size_t forwarded_waiting() const noexcept { return forwarded_.size(); }

  // Drops this core's state of a partition whose log is about to be removed.
  void detach_partition(const topic_partition& tp) noexcept;
  const broker_identity& identity() const noexcept { return identity_; }
  // Once the listener is bound, when the configuration left the advertised port to it.
  void set_advertised_port(std::int32_t port) noexcept { identity_.advertised_port = port; }
  fetch_purgatory& fetches() noexcept { return fetches_; }
  // Producer ids for InitProducerId. REQUIRES set_producer_ids() before serving.
  producer_id_allocator& producer_ids() noexcept { return *producer_ids_; }
  void set_producer_ids(std::unique_ptr<producer_id_allocator> ids) noexcept {
    producer_ids_ = std::move(ids);
  }

  // The group coordinator and its store (__consumer_offsets), once set up; nullptr
  // before (and in tests that need no groups): the group APIs then answer
  // COORDINATOR_NOT_AVAILABLE.
  groups::group_coordinator* group_coordinator() const noexcept { return coordinator_.get(); }
  offsets_log* offsets() const noexcept { return offsets_.get(); }
  void set_groups(std::unique_ptr<offsets_log> offsets,
                  std::unique_ptr<groups::group_coordinator> coordinator) noexcept;

  // The state of an existing partition, made on first use; nullptr when the topic or the
  // partition does not exist (or its log is missing).
  partition_state* partition(std::string_view topic, std::int32_t partition) noexcept;
  // The partition's state if it was made already (no side effects).
  partition_state* existing_partition(std::string_view topic, std::int32_t partition) noexcept;

  // Creates a topic (CreateTopics, Metadata auto-creation). See topic_registry.
  result<const topic_info*> create_topic(std::string_view name, std::int32_t partitions,
                                         const topic_config_overrides& overrides);
  // Deletes a topic: unregistered at once; its logs go as soon as they are idle.
  result<void> delete_topic(std::string_view name);

  // Wall-clock now, for appends and ListOffsets.
  static timestamp_ms now() noexcept;
  // After every reactor turn: lets woken fetches re-read.
  void after_reactor_turn() noexcept;
  // Periodic work: removes the logs of deleted topics once idle.
  void tick() noexcept;
  // The server is stopping: answer every parked fetch.
  void stop() noexcept;
  bool idle() const noexcept;

 private:
  void remove_idle_logs() noexcept;

  reactor& ring_;
  log_manager& logs_;
  topic_registry* registry_;
  const topic_catalog& catalog_;
  std::shared_ptr<const topic_table> table_;
  std::uint64_t table_version_ = 0;
  core_router* router_ = nullptr;
  struct forwarded_request {
    response_slot slot;
    std::shared_ptr<connection*> conn;
  };
  std::uint64_t next_forwarded_ = 1;
  std::unordered_map<std::uint64_t, forwarded_request> forwarded_;
  broker_identity identity_;
  fetch_purgatory fetches_;
  std::unique_ptr<producer_id_allocator> producer_ids_;
  timestamp_ms last_producer_expiry_{0};
  std::map<topic_partition, std::unique_ptr<partition_state>> partitions_;
  // Destroyed before partitions_ (members go in reverse order): the store holds waiters
  // on partition states.
  std::unique_ptr<offsets_log> offsets_;
  std::unique_ptr<groups::group_coordinator> coordinator_;
};

}  // namespace sluice
