// What the group coordinator persists, and the interface of the store that persists it.
//
// Committed offsets and group metadata live in the internal, compacted topic
// `__consumer_offsets` as Kafka lays them out (docs/consumer-groups.md): each record's
// key names what it is about -- (group, topic, partition) for an offset commit, (group)
// for group metadata -- and its value is the latest state, or null (a tombstone) when it
// was deleted. Compaction keeps the latest value per key, so replaying a partition from
// its start rebuilds every group it holds.
//
// The coordinator (group_coordinator.h) speaks in the records below; the store
// (offsets_log.h) turns them into batches of the internal topic, appends them, and calls
// back once they are durable. At start-up the store replays the topic into a
// group_loader.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/protocol/error_codes.h"

namespace sluice::groups {

// One committed offset: OffsetCommitKey (v1) / OffsetCommitValue (v3) in Kafka.
struct offset_commit_record {
  std::string group;
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t committed_offset = 0;
  std::int32_t leader_epoch = -1;
  std::optional<std::string> metadata;  // the client's opaque string; nullopt = null
  std::int64_t commit_timestamp_ms = 0;
};

// One member as group metadata records it.
struct member_record {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  std::int32_t rebalance_timeout_ms = 0;
  std::int32_t session_timeout_ms = 0;
  std::string subscription;  // the member's metadata for the chosen protocol (bytes)
  std::string assignment;    // what the leader assigned it (bytes)
};

// A group's state after a rebalance completed or it became empty: GroupMetadataKey (v2)
// / GroupMetadataValue (v3) in Kafka.
struct group_metadata_record {
  std::string group;
  std::string protocol_type;  // "consumer" for consumer groups; "" for offsets-only groups
  std::int32_t generation = 0;
  std::optional<std::string> protocol;  // the chosen assignor; nullopt when empty
  std::optional<std::string> leader;
  std::int64_t state_timestamp_ms = 0;
  std::vector<member_record> members;
};

struct topic_partition_ref {
  std::string topic;
  std::int32_t partition = 0;
};

// Called with error_code::none once the records are durable (fdatasync under the
// default flush policy), or with the error to give the client (typically
// COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, or REQUEST_TIMED_OUT) when they are not.
// Called exactly once, never from inside the call that stored.
using store_callback = std::function<void(protocol::error_code)>;

class group_store {
 public:
  virtual ~group_store() = default;
  // Offsets of one group, written as one batch (atomically: all or none).
  virtual void store_offsets(std::string_view group, std::span<const offset_commit_record> offsets,
                             store_callback done) = 0;
  // Tombstones for committed offsets (OffsetDelete, expiry, DeleteGroups).
  virtual void delete_offsets(std::string_view group,
                              std::span<const topic_partition_ref> partitions,
                              store_callback done) = 0;
  virtual void store_group(const group_metadata_record& group, store_callback done) = 0;
  // A tombstone for the group's metadata (DeleteGroups, or an empty group whose offsets
  // all expired).
  virtual void delete_group(std::string_view group, store_callback done) = 0;
};

// Receives the replay of the internal topic at start-up, in log order: a later call for
// the same key replaces an earlier one.
class group_loader {
 public:
  virtual void load_offset(const offset_commit_record& record) noexcept = 0;
  virtual void unload_offset(std::string_view group, std::string_view topic,
                             std::int32_t partition) noexcept = 0;
  virtual void load_group(const group_metadata_record& record) noexcept = 0;
  virtual void unload_group(std::string_view group) noexcept = 0;

 protected:
  ~group_loader() = default;
};

}  // namespace sluice::groups
