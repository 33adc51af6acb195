// The group coordinator: Kafka's classic consumer-group protocol, for every group this
// broker (or this core) owns.
//
// Each group is a state machine as in Kafka's GroupCoordinator / ClassicGroup:
//
//   empty --join--> preparing_rebalance --all joined or rebalance timeout-->
//   completing_rebalance --leader's SyncGroup--> stable --join/leave/expiry-->
//   preparing_rebalance ...;  any --DeleteGroups / all offsets expired--> dead
//
// JoinGroup answers are held until the rebalance completes (every known member rejoined,
// or the rebalance timeout -- the largest of the members' -- passed, or
// group.initial.rebalance.delay.ms for a group that was empty); members that did not
// rejoin in time are removed. The leader (the first member to join, kept while it stays)
// gets every member's metadata for the chosen protocol (the one every member supports
// with the most votes, as Kafka chooses). SyncGroup answers are held until the leader's
// assignment arrives and is durable in the store. Heartbeats keep members alive: a
// member not heard from (join, sync or heartbeat) for its session timeout is removed and
// the group rebalances. Static members (group.instance.id) keep their assignment across
// restarts: a rejoin with a known instance id replaces the old member id without a
// rebalance when its protocols are unchanged, and fences the old one (FENCED_INSTANCE_ID).
//
// Committed offsets are kept per group and partition. A commit with generation -1 and no
// member id is accepted from anyone when the group is empty (the "simple consumer"); a
// group member commits with its generation and member id. Offsets of an empty group
// expire offsets.retention.minutes after the group became empty (Kafka 2.1+ semantics);
// a group with no offsets left and no members is removed.
//
// Every error code is the one Kafka's coordinator returns in the same situation:
// UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS, MEMBER_ID_REQUIRED,
// INCONSISTENT_GROUP_PROTOCOL, FENCED_INSTANCE_ID, GROUP_ID_NOT_FOUND,
// NON_EMPTY_GROUP, INVALID_SESSION_TIMEOUT, GROUP_MAX_SIZE_REACHED, UNKNOWN_TOPIC_OR_PARTITION,
// INVALID_GROUP_ID, OFFSET_METADATA_TOO_LARGE, GROUP_SUBSCRIBED_TO_TOPIC, ...
//
// Time: the coordinator never blocks and owns no timer of its own; tick(now) -- called by
// the broker every few milliseconds -- fires the deadlines that passed (session
// timeouts, rebalance timeouts, the initial rebalance delay, offset expiry), kept in an
// ordered deadline queue so that a tick costs O(expired), not O(members).
//
// Callbacks (join, sync, commit, delete_group, delete_offsets) run exactly once: from a
// later call, tick(), a store completion, or shutdown() (which answers
// COORDINATOR_NOT_AVAILABLE), never from inside the call that registered them. An answer
// known at once (an error, MEMBER_ID_REQUIRED, the current generation) is therefore held
// until the end of the next call or tick(). Held answers still queued when the
// coordinator is destroyed are dropped.
//
// Owned by the broker_context of the core that owns the groups; touched only by that
// core's reactor thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/groups/group_store.h"
#include "net/protocol/error_codes.h"

namespace sluice::groups {

using steady_time = std::chrono::steady_clock::time_point;
using protocol::error_code;

struct coordinator_config {
  // group.min.session.timeout.ms / group.max.session.timeout.ms
  std::chrono::milliseconds session_timeout_min{6000};
  std::chrono::milliseconds session_timeout_max{1800000};
  // group.initial.rebalance.delay.ms: how long a rebalance of an empty group waits for
  // more members before completing.
  std::chrono::milliseconds initial_rebalance_delay{3000};
  // group.max.size
  std::int32_t group_size_max = 1000;
  // offsets.retention.minutes
  std::chrono::milliseconds offsets_retention{std::chrono::minutes(7 * 24 * 60)};
  // offsets.retention.check.interval.ms: how often tick() looks for expired offsets.
  std::chrono::milliseconds offsets_retention_check_interval{600000};
  // offset.metadata.max.bytes
  std::size_t offset_metadata_bytes_max = 4096;
  // How many groups one coordinator keeps at most; a JoinGroup or commit that would
  // create one more gets COORDINATOR_NOT_AVAILABLE (a bound, not a Kafka setting).
  std::size_t groups_max = 100000;
};

// Whether a topic partition exists (commits to others get UNKNOWN_TOPIC_OR_PARTITION).
using partition_exists_fn = std::function<bool(std::string_view topic, std::int32_t partition)>;
// Wall clock, for commit timestamps and state timestamps.
using wall_clock_fn = std::function<std::int64_t()>;

struct protocol_entry {
  std::string name;
  std::string metadata;  // bytes
};

struct join_request {
  std::string group_id;
  std::string member_id;  // "" when joining for the first time
  std::optional<std::string> group_instance_id;
  std::string protocol_type;
  std::vector<protocol_entry> protocols;
  std::chrono::milliseconds session_timeout{10000};
  std::chrono::milliseconds rebalance_timeout{10000};  // = session timeout before v1
  std::string client_id;
  std::string client_host;
  // JoinGroup v4+: a new member without member id gets MEMBER_ID_REQUIRED with its new
  // id, and must join again with it (KIP-394).
  bool require_known_member_id = false;
  // JoinGroup v9+: the client understands skip_assignment (KIP-814); older static leaders
  // that rejoin a stable group are told the old leader id instead.
  bool supports_skip_assignment = false;
  std::optional<std::string> reason;
};

struct join_member {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string metadata;  // bytes
};

struct join_result {
  error_code error = error_code::none;
  std::int32_t generation_id = -1;
  std::optional<std::string> protocol_type;
  std::optional<std::string> protocol_name;
  std::string leader;
  // JoinGroup v9: the leader of a static group that restarted need not assign again.
  bool skip_assignment = false;
  std::string member_id;
  std::vector<join_member> members;  // only for the leader
};

struct assignment_entry {
  std::string member_id;
  std::string assignment;  // bytes
};

struct sync_request {
  std::string group_id;
  std::int32_t generation_id = -1;
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::optional<std::string> protocol_type;   // v5+, checked when present
  std::optional<std::string> protocol_name;   // v5+, checked when present
  std::vector<assignment_entry> assignments;  // from the leader only
};

struct sync_result {
  error_code error = error_code::none;
  std::optional<std::string> protocol_type;
  std::optional<std::string> protocol_name;
  std::string assignment;  // bytes
};

struct heartbeat_request {
  std::string group_id;
  std::int32_t generation_id = -1;
  std::string member_id;
  std::optional<std::string> group_instance_id;
};

struct leave_member {
  std::string member_id;  // may be "" when group_instance_id is set (v3+)
  std::optional<std::string> group_instance_id;
  std::optional<std::string> reason;
};

struct leave_result {
  error_code error = error_code::none;  // group-level
  std::vector<error_code> members;      // one per leave_member, in order
};

struct commit_partition {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t committed_offset = 0;
  std::int32_t leader_epoch = -1;
  std::optional<std::string> metadata;
};

struct commit_request {
  std::string group_id;
  std::int32_t generation_id = -1;  // -1: a commit from outside the group protocol
  std::string member_id;            // "" likewise
  std::optional<std::string> group_instance_id;
  std::vector<commit_partition> partitions;
};

// One error per commit_partition, in order.
using commit_callback = std::function<void(std::vector<error_code>)>;

struct fetched_offset {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t committed_offset = -1;  // -1: nothing committed
  std::int32_t leader_epoch = -1;
  std::optional<std::string> metadata;
  error_code error = error_code::none;
};

struct fetch_offsets_result {
  error_code error = error_code::none;  // group-level
  std::vector<fetched_offset> partitions;
};

enum class group_state : std::uint8_t {
  empty,
  preparing_rebalance,
  completing_rebalance,
  stable,
  dead,
};
// Kafka's names: "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead".
std::string_view state_name(group_state state) noexcept;

struct listed_group {
  std::string group_id;
  std::string protocol_type;
  group_state state = group_state::empty;
};

struct described_member {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  std::string metadata;    // bytes, for the chosen protocol
  std::string assignment;  // bytes
};

struct described_group {
  error_code error = error_code::none;
  std::string group_id;
  group_state state = group_state::dead;
  std::string protocol_type;
  std::string protocol;  // the chosen protocol when stable, else "" (as Kafka)
  // Every member; metadata and assignment are filled only when stable (as Kafka).
  std::vector<described_member> members;
};

class group_coordinator final : public group_loader {
 public:
  group_coordinator(group_store& store, coordinator_config config, partition_exists_fn exists,
                    wall_clock_fn wall_clock);
  group_coordinator(const group_coordinator&) = delete;
  group_coordinator& operator=(const group_coordinator&) = delete;
  ~group_coordinator();

  void join(join_request request, steady_time now, std::function<void(join_result)> done);
  void sync(sync_request request, steady_time now, std::function<void(sync_result)> done);
  error_code heartbeat(const heartbeat_request& request, steady_time now);
  leave_result leave(std::string_view group_id, const std::vector<leave_member>& members,
                     steady_time now);

  void commit_offsets(commit_request request, steady_time now, commit_callback done);
  // `partitions` nullopt: every committed offset of the group (OffsetFetch with null
  // topics). A partition with nothing committed gets offset -1 and no error.
  // `require_stable` (v7+): partitions with a pending commit get UNSTABLE_OFFSET_COMMIT.
  fetch_offsets_result fetch_offsets(
      std::string_view group_id, const std::optional<std::vector<topic_partition_ref>>& partitions,
      bool require_stable);

  // Groups whose state (by Kafka name, case-insensitive) and group type match the filters
  // (empty filter = all). Every group here is of type "classic" (ListGroups v5
  // TypesFilter, KIP-848), compared case-insensitively.
  std::vector<listed_group> list_groups(const std::vector<std::string>& states_filter,
                                        const std::vector<std::string>& types_filter) const;
  // A group that does not exist is described as dead with no error, as Kafka does.
  described_group describe(std::string_view group_id) const;
  // DeleteGroups: NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND when unknown;
  // deletes its offsets and metadata (tombstones) and answers once they are durable.
  void delete_group(std::string_view group_id, std::function<void(error_code)> done);
  // OffsetDelete: group-level error, and one error per partition (in order); a partition
  // of a topic the group is subscribed to (consumer group with members) gets
  // GROUP_SUBSCRIBED_TO_TOPIC, one that does not exist UNKNOWN_TOPIC_OR_PARTITION. With a
  // group-level error the per-partition vector is empty, as Kafka lists none.
  void delete_offsets(std::string_view group_id, std::vector<topic_partition_ref> partitions,
                      std::function<void(error_code, std::vector<error_code>)> done);

  // Fires every deadline up to `now` and expires offsets (wall clock). Cheap when nothing
  // is due.
  void tick(steady_time now);
  // Answers every held JoinGroup/SyncGroup with COORDINATOR_NOT_AVAILABLE (the broker is
  // stopping) and accepts no more.
  void shutdown();

  std::size_t group_count() const noexcept;

  // group_loader: the replay of __consumer_offsets at start-up, before serving. Loaded
  // groups with members are stable with their last generation; their members get a fresh
  // session timeout from the first tick, as after a coordinator move in Kafka.
  void load_offset(const offset_commit_record& record) noexcept override;
  void unload_offset(std::string_view group, std::string_view topic,
                     std::int32_t partition) noexcept override;
  void load_group(const group_metadata_record& record) noexcept override;
  void unload_group(std::string_view group) noexcept override;

 private:
  class impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sluice::groups
