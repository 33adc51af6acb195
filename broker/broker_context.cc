#include "broker/broker_context.h"

#include "broker/groups/group_coordinator.h"
#include "broker/groups/offsets_log.h"
#include "engine/base/log.h"

namespace sluice {

broker_context::broker_context(reactor& ring, log_manager& logs, topic_registry& topics,
                               broker_identity identity) noexcept
    : ring_(ring),
      logs_(logs),
      registry_(&topics),
      catalog_(topics.catalog()),
      identity_(std::move(identity)),
      fetches_(ring) {
  refresh_topics();
}

broker_context::broker_context(reactor& ring, log_manager& logs, const topic_catalog& catalog,
                               broker_identity identity) noexcept
    : ring_(ring),
      logs_(logs),
      registry_(nullptr),
      catalog_(catalog),
      identity_(std::move(identity)),
      fetches_(ring) {
  refresh_topics();
}

void broker_context::refresh_topics() noexcept {
  if (auto newer = catalog_.newer_than(table_version_)) table_ = std::move(newer);
  if (table_ == nullptr) table_ = std::make_shared<topic_table>();
}

std::uint64_t broker_context::hold_forwarded(response_slot slot,
                                             std::shared_ptr<connection*> conn) noexcept {
  std::uint64_t id = next_forwarded_++;
  forwarded_.emplace(id, forwarded_request{std::move(slot), std::move(conn)});
  return id;
}

void broker_context::answer_forwarded(std::uint64_t id, std::optional<outgoing_frame> frame,
                                      bool close_connection) noexcept {
  auto it = forwarded_.find(id);
  if (it == forwarded_.end()) return;
  forwarded_request entry = std::move(it->second);
  forwarded_.erase(it);
  if (frame) {
    entry.slot.respond(std::move(*frame));
  } else {
    entry.slot.release();
  }
  if (close_connection && entry.conn && *entry.conn != nullptr) (*entry.conn)->close();
}

void broker_context::detach_partition(const topic_partition& tp) noexcept {
  auto it = partitions_.find(tp);
  if (it == partitions_.end()) return;
  it->second->fail_all(error(errc::not_found, "the topic was deleted"));
  partitions_.erase(it);
}

broker_context::~broker_context() {
  coordinator_.reset();
  offsets_.reset();
  // partition_state detaches from its log; the logs (log_manager) outlive this.
  partitions_.clear();
}

void broker_context::set_groups(std::unique_ptr<offsets_log> offsets,
                                std::unique_ptr<groups::group_coordinator> coordinator) noexcept {
  coordinator_ = std::move(coordinator);
  offsets_ = std::move(offsets);
}

void broker_context::after_reactor_turn() noexcept {
  fetches_.run_ready();
  if (offsets_) offsets_->run_deferred();
}

bool broker_context::idle() const noexcept {
  return fetches_.idle() && (!offsets_ || offsets_->idle());
}

void broker_context::stop() noexcept {
  fetches_.stop();
  if (coordinator_) coordinator_->shutdown();
}

partition_state* broker_context::existing_partition(std::string_view topic,
                                                    std::int32_t partition) noexcept {
  auto it = partitions_.find(topic_partition{std::string(topic), partition});
  return it == partitions_.end() ? nullptr : it->second.get();
}

partition_state* broker_context::partition(std::string_view topic,
                                           std::int32_t partition) noexcept {
  const topic_info* info = table_->find(topic);
  if (info == nullptr || partition >= info->partitions) {
    // Created (or grown) on core 0 since this core last looked: look again.
    refresh_topics();
    info = table_->find(topic);
  }
  if (info == nullptr || partition < 0 || partition >= info->partitions) return nullptr;
  topic_partition tp{std::string(topic), partition};
  if (auto it = partitions_.find(tp); it != partitions_.end()) {
    logs_.get(tp);  // marks the log recently used, for the open-files budget
    return it->second.get();
  }
  partition_log* log = logs_.get(tp);
  if (log == nullptr) return nullptr;
  auto state = std::make_unique<partition_state>(*log, fetches_);
  // The idempotent producers' state comes back from the batch headers of the log.
  if (auto rebuilt = state->producers().rebuild(*log); !rebuilt) {
    SLUICE_LOG(warn, "kafka",
               "cannot rebuild the producer state of {}-{}: {}; retried batches of "
               "idempotent producers may be appended twice",
               topic, partition, rebuilt.failure().detail());
  }
  state->producers().expire(now());
  partition_state* raw = state.get();
  partitions_.emplace(std::move(tp), std::move(state));
  return raw;
}

result<const topic_info*> broker_context::create_topic(std::string_view name,
                                                       std::int32_t partitions,
                                                       const topic_config_overrides& overrides) {
  auto created = topics().create(name, partitions, overrides);
  refresh_topics();
  return created;
}

result<void> broker_context::delete_topic(std::string_view name) {
  SLUICE_TRY(topics().remove_topic(name));
  refresh_topics();
  // Flush what is written so the logs go idle soon (on every core), then remove those
  // already idle.
  auto flush = [topic = std::string(name)](broker_context& core) {
    core.logs().for_each([&](const topic_partition& tp, partition_log& log) {
      if (tp.topic == topic) log.flush();
    });
  };
  flush(*this);
  if (router_ != nullptr) {
    for (std::uint32_t k = 0; k < router_->count(); ++k) {
      if (k != router_->self()) router_->run_on(k, flush);
    }
  }
  remove_idle_logs();
  return {};
}

void broker_context::remove_idle_logs() noexcept {
  if (registry_ == nullptr) return;  // core 0 removes, on every core (its log_set)
  (void)registry_->remove_idle_logs([this](const topic_partition& tp) { detach_partition(tp); });
  refresh_topics();
}

void broker_context::tick() noexcept {
  remove_idle_logs();
  if (coordinator_) coordinator_->tick(std::chrono::steady_clock::now());
  // Kafka's producer.id.expiration.check.interval.ms.
  constexpr std::int64_t producer_expiry_interval_ms = 10 * 60 * 1000;
  timestamp_ms at = now();
  if (at.value() - last_producer_expiry_.value() >= producer_expiry_interval_ms) {
    last_producer_expiry_ = at;
    for (auto& [tp, state] : partitions_) state->producers().expire(at);
  }
}

timestamp_ms broker_context::now() noexcept {
  using namespace std::chrono;
  return timestamp_ms(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

}  // namespace sluice
