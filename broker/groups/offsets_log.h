// The group coordinator's store: the internal topic `__consumer_offsets`, laid out as
// Kafka lays it out (records: offsets_format.h; prose: docs/consumer-groups.md, "The
// offsets log").
//
// A group lives in partition abs(Java String.hashCode(group)) % partitions of the topic,
// as in Kafka, so that a tool reading the topic finds a group where Kafka would put it.
// Each store call becomes one RecordBatch v2 (uncompressed, CreateTime = wall clock) with
// every record of the call, appended to the group's partition; it is all or nothing, as
// a batch is. `done` runs once the batch is as durable as an acks=all produce to the
// topic would be: once the partition's flushed_end passes it (written_end, if the topic's
// flush policy never flushes).
//
// Callbacks: `done` never runs inside a store call, nor inside a log completion -- every
// completion (success, a failed write, or a store refused at once) is queued, and
// run_deferred() runs the queue. The broker calls run_deferred() after each reactor turn.
// That also keeps the coordinator from appending again from inside the log's own
// completion handlers.
//
// Errors given to `done`:
//   COORDINATOR_NOT_AVAILABLE  the append or the flush failed (disk), or more than
//                              stores_in_flight_max stores are in flight. Every group API
//                              of the Java consumer retries it after finding the
//                              coordinator again (COORDINATOR_LOAD_IN_PROGRESS would not
//                              do for SyncGroup, which treats it as fatal).
//   NOT_COORDINATOR            the group's partition of the topic does not exist.
//   INVALID_COMMIT_OFFSET_SIZE offsets whose batch is larger than the topic accepts
//   UNKNOWN_SERVER_ERROR       group metadata whose batch is larger than the topic accepts
//                              (both as Kafka's coordinator answers for a too-large
//                              record; retrying could not help).
// Each failure is logged with the partition.
//
// Start-up: open() takes the partition count of the topic, or -- when it is missing --
// checks that it could be created with the configured count; it is created
// (cleanup.policy=compact, segment.bytes=104857600) by the first store, as Kafka creates it
// when the first group needs it, so a broker that never served a group shows no internal
// topic. load() then replays every partition into the coordinator before the broker
// serves.
//
// Owned by the broker (beside the coordinator, which holds a reference to it and must go
// first); touched only by the reactor thread of the core that owns the groups. Destroy it
// once idle(): callbacks of stores still in flight are then dropped without running.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/broker_context.h"
#include "broker/groups/group_store.h"
#include "engine/base/result.h"
#include "engine/storage/record_batch.h"

namespace sluice {

// What load() found.
struct load_stats {
  std::int32_t partitions = 0;
  std::uint64_t batches = 0;
  std::uint64_t records = 0;
  std::uint64_t offsets_loaded = 0;
  std::uint64_t offsets_unloaded = 0;
  std::uint64_t groups_loaded = 0;
  std::uint64_t groups_unloaded = 0;
  // Batches that were not parseable (CRC, framing, records), control and transactional
  // batches.
  std::uint64_t batches_skipped = 0;
  // Records with a null, malformed or unknown-version key, or an undecodable value.
  std::uint64_t records_skipped = 0;
};

// abs(Java String.hashCode(group)) % partitions, with Kafka's Utils.abs (x & 0x7fffffff).
// REQUIRES partitions > 0.
std::int32_t offsets_partition_for(std::string_view group, std::int32_t partitions) noexcept;
// Java's String.hashCode over the UTF-16 code units of the UTF-8 text `utf8`. An ill-formed
// UTF-8 sequence counts as one U+FFFD per maximal ill-formed subpart (Unicode's
// recommendation, which Java's decoder follows except for a few cases such as encoded
// surrogates). Java clients always send well-formed UTF-8, so only ids from other
// clients can differ, and only in partition, never in correctness.
std::int32_t java_string_hash(std::string_view utf8) noexcept;
// The core that owns `group`: the one that owns its partition of __consumer_offsets.
// REQUIRES partitions > 0, cores > 0.
std::size_t owner_core(std::string_view group, std::int32_t partitions, std::size_t cores) noexcept;

class offsets_log final : public groups::group_store {
 public:
  static constexpr std::string_view topic_name = "__consumer_offsets";
  // Kafka's offsets.topic.num.partitions and offsets.topic.segment.bytes.
  static constexpr std::int32_t default_partitions = 50;
  static constexpr std::int64_t segment_bytes = 104857600;
  // Stores appended and not yet answered. Each holds its batch, so this bounds memory.
  static constexpr std::size_t stores_in_flight_max = 4096;
  // load() reads a partition this many bytes at a time (at least one batch each time).
  static constexpr std::size_t load_chunk_bytes = 1024 * 1024;

  // Creates the topic with `partitions` partitions if it is missing; otherwise uses the
  // partition count it has (a different `partitions` is logged and ignored, as Kafka
  // ignores offsets.topic.num.partitions once the topic exists).
  static result<std::unique_ptr<offsets_log>> open(broker_context& broker, std::int32_t partitions);

  offsets_log(const offsets_log&) = delete;
  offsets_log& operator=(const offsets_log&) = delete;
  ~offsets_log() override;

  // Replays every partition from its log start offset to its written end, in offset
  // order, into `loader`. Batches that do not parse are skipped with a warning naming
  // partition and offset; so are records with an unknown key or value version. Fails
  // only when a partition cannot be read (its log is missing or a read fails).
  // Synchronous (reads go through the segment mappings); call before serving.
  result<load_stats> load(groups::group_loader& loader);

  std::int32_t partitions() const noexcept { return partitions_; }
  std::int32_t partition_for(std::string_view group) const noexcept {
    return offsets_partition_for(group, partitions_);
  }
  static bool is_internal(std::string_view topic) noexcept { return topic == topic_name; }

  void store_offsets(std::string_view group, std::span<const groups::offset_commit_record> offsets,
                     groups::store_callback done) override;
  void delete_offsets(std::string_view group,
                      std::span<const groups::topic_partition_ref> partitions,
                      groups::store_callback done) override;
  void store_group(const groups::group_metadata_record& group,
                   groups::store_callback done) override;
  void delete_group(std::string_view group, groups::store_callback done) override;

  // Runs the callbacks of the stores that completed (or failed) since the last call.
  // Bounded: those queued during it run at the next call.
  void run_deferred() noexcept;
  // No store in flight and no callback waiting to run.
  bool idle() const noexcept;
  std::size_t stores_in_flight() const noexcept;

  // Shared with the append waiters, which may outlive this object inside partition_state.
  struct completions;

 private:
  offsets_log(broker_context& broker, std::int32_t partitions);

  // One record of a batch being built; value nullopt = tombstone.
  struct pending_record {
    std::vector<std::byte> key;
    std::optional<std::vector<std::byte>> value;
  };
  // Appends `records` as one batch to the group's partition and answers `done` later.
  // `too_large` is the answer when the batch exceeds the topic's limit.
  void append(std::string_view group, const std::vector<pending_record>& records,
              protocol::error_code too_large, groups::store_callback done);
  void defer(groups::store_callback done, protocol::error_code code);
  result<void> load_partition(std::int32_t partition, groups::group_loader& loader,
                              load_stats& stats);

  broker_context& broker_;
  // Creates the topic when it does not exist yet (the first store of the first group).
  bool ensure_topic() noexcept;

  std::int32_t partitions_;
  batch_builder builder_;
  // Refusing stores because too many are in flight (logged once per episode).
  bool refusing_ = false;
  std::shared_ptr<completions> completions_;
};

}  // namespace sluice
