// One consumer group of the classic protocol, as the coordinator keeps it: its members,
// its state machine fields, its committed offsets, and the deadlines that belong to it.
//
// This is Kafka's GroupMetadata / MemberMetadata: the bookkeeping (who is a member, who
// is awaiting a JoinGroup or SyncGroup answer, which protocols every member supports,
// who leads) lives here; the rules that decide when to rebalance live in
// group_coordinator.cc. A group never calls a client callback itself: it hands them back
// to the coordinator, which queues the answers (see group_coordinator.h on why answers
// never run inside the call that registered them).
//
// Deadlines (session timeouts, the rebalance timeout, the pending-sync timeout, the
// expiry of MEMBER_ID_REQUIRED members) sit in one deadline_queue owned by the
// coordinator. Each owner keeps a slot -- the position of its single entry -- so that
// rescheduling replaces the entry instead of piling up stale ones, and the queue never
// holds more entries than there are members, pending members and groups.
//
// Owned by the group_coordinator; touched only by its reactor thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/groups/group_coordinator.h"

namespace sluice::groups {

class group;
struct member;

enum class deadline_kind : std::uint8_t {
  member_session,   // a member's session timeout (or the new-member join timeout)
  pending_member,   // a MEMBER_ID_REQUIRED member that did not come back
  rebalance,        // the join phase: rebalance timeout or initial rebalance delay
  pending_sync,     // members that got their JoinGroup answer but never synced
  retention_check,  // the periodic offset expiry sweep (no group)
};

struct deadline_target {
  deadline_kind kind = deadline_kind::retention_check;
  group* owner = nullptr;
  member* who = nullptr;
  std::string pending_member_id;
};

// An ordered set of deadlines, earliest first. schedule() and cancel() keep each owner's
// slot pointing at its entry; pop_due() clears the slot of the entry it returns.
struct deadline_queue {
  // Each entry also points at its owner's slot (as void*: the slot's type names this map).
  using entries = std::multimap<steady_time, std::pair<deadline_target, void*>>;
  using slot = std::optional<entries::iterator>;

  void schedule(slot& owner_slot, steady_time at, deadline_target target) {
    cancel(owner_slot);
    owner_slot = entries_.emplace(at, std::make_pair(std::move(target), &owner_slot));
  }
  void cancel(slot& owner_slot) noexcept {
    if (owner_slot) {
      entries_.erase(*owner_slot);
      owner_slot.reset();
    }
  }
  std::optional<deadline_target> pop_due(steady_time now) {
    if (entries_.empty() || entries_.begin()->first > now) return std::nullopt;
    auto it = entries_.begin();
    deadline_target target = std::move(it->second.first);
    static_cast<slot*>(it->second.second)->reset();
    entries_.erase(it);
    return target;
  }
  std::size_t size() const noexcept { return entries_.size(); }

 private:
  entries entries_;
};
using deadline_slot = deadline_queue::slot;

// A JoinGroup or SyncGroup answer the coordinator holds, with the call that registered it
// (an answer never runs inside that call).
template <typename Result>
struct held_callback {
  std::function<void(Result)> answer;
  std::uint64_t origin_call = 0;
  explicit operator bool() const noexcept { return static_cast<bool>(answer); }
};
using held_join = held_callback<join_result>;
using held_sync = held_callback<sync_result>;

struct member {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  std::chrono::milliseconds rebalance_timeout{0};
  std::chrono::milliseconds session_timeout{0};
  std::string protocol_type;
  std::vector<protocol_entry> protocols;  // in the member's order of preference
  std::string assignment;                 // bytes
  held_join awaiting_join;
  held_sync awaiting_sync;
  // Joined during the current rebalance and not answered yet: its JoinGroup may expire
  // (Kafka's NewMemberJoinTimeoutMs) where a rejoining member's may not.
  bool is_new = false;
  deadline_slot session_deadline;

  bool is_awaiting_join() const noexcept { return static_cast<bool>(awaiting_join); }
  bool is_awaiting_sync() const noexcept { return static_cast<bool>(awaiting_sync); }
  bool is_static() const noexcept { return group_instance_id.has_value(); }
  // Kafka's hasSatisfiedHeartbeat: a member waiting for a rebalance answer needs no
  // heartbeat, unless it is new (then only the join timeout holds it).
  bool session_satisfied() const noexcept {
    return !is_new && (is_awaiting_join() || is_awaiting_sync());
  }
  // Its metadata for `protocol`, or nullptr when it does not support it.
  const std::string* metadata_for(std::string_view protocol) const noexcept;
  // Same protocols, same order, same metadata bytes.
  bool matches(const std::vector<protocol_entry>& other) const noexcept;
};

struct partition_key {
  std::string topic;
  std::int32_t partition = 0;
  friend bool operator<(const partition_key& a, const partition_key& b) noexcept {
    if (a.topic != b.topic) return a.topic < b.topic;
    return a.partition < b.partition;
  }
};

struct committed_offset_value {
  std::int64_t committed_offset = 0;
  std::int32_t leader_epoch = -1;
  std::optional<std::string> metadata;
  std::int64_t commit_timestamp_ms = 0;
};

// How the current join phase ends: at the rebalance timeout (or earlier once every
// member rejoined), or -- for a group that was empty -- after the initial rebalance delay,
// extended while new members keep arriving (Kafka's InitialDelayedJoin).
struct rebalance_timer {
  bool initial = false;
  std::chrono::milliseconds delay{0};      // the current delay (initial mode)
  std::chrono::milliseconds remaining{0};  // how far it may still be extended
  deadline_slot deadline;
};

class group {
 public:
  group(std::string id, std::uint64_t incarnation, std::int64_t now_ms);
  group(const group&) = delete;
  group& operator=(const group&) = delete;

  const std::string& id() const noexcept { return id_; }
  // Tells apart two groups of the same id (one deleted, one created later), so that a
  // store completion for the first never touches the second.
  std::uint64_t incarnation() const noexcept { return incarnation_; }

  group_state state() const noexcept { return state_; }
  bool is(group_state state) const noexcept { return state_ == state; }
  // Asserts Kafka's valid transitions; stamps the state timestamp with `now_ms`.
  void transition_to(group_state next, std::int64_t now_ms);
  // Only for loading: sets the state without the transition rules.
  void set_loaded_state(group_state state, std::int64_t state_timestamp_ms) noexcept;
  bool can_rebalance() const noexcept;
  std::int64_t state_timestamp_ms() const noexcept { return state_timestamp_ms_; }

  std::int32_t generation = 0;
  std::optional<std::string> protocol_type;  // nullopt: none (offsets-only group)
  std::optional<std::string> protocol_name;  // chosen at the last rebalance
  std::optional<std::string> leader_id;
  // Topics the members subscribe to (consumer groups); nullopt when unknown.
  std::optional<std::set<std::string>> subscribed_topics;
  // Set when a new member joined a generation-0 group during the initial delay.
  bool new_member_added = false;
  // A loaded group whose member deadlines start at the next tick.
  bool start_pending = false;

  // --- members ---
  std::size_t size() const noexcept { return members_.size(); }
  bool empty() const noexcept { return members_.empty(); }
  bool has(std::string_view member_id) const noexcept;
  member* find(std::string_view member_id) noexcept;
  const std::vector<std::unique_ptr<member>>& members() const noexcept { return members_; }
  bool is_leader(std::string_view member_id) const noexcept {
    return leader_id && *leader_id == member_id;
  }
  std::optional<std::string> static_member_id(std::string_view instance_id) const;
  std::int32_t awaiting_join_count() const noexcept { return awaiting_join_count_; }
  bool all_members_joined() const noexcept {
    return static_cast<std::size_t>(awaiting_join_count_) == members_.size() &&
           pending_members.empty();
  }
  // The largest rebalance timeout among the members (zero when empty).
  std::chrono::milliseconds rebalance_timeout() const noexcept;

  // Adds a member (taking its awaiting_join as set); it becomes leader if there is none.
  member& add(std::unique_ptr<member> added);
  // Removes a member and returns it (its callbacks and deadline still inside, for the
  // caller to answer and cancel). The leader moves to the first remaining member.
  std::unique_ptr<member> remove(std::string_view member_id);
  // Replaces protocols and the held JoinGroup (which may be empty); returns the callback
  // it replaced, if any, for the caller to answer.
  held_join update_member(member& target, std::vector<protocol_entry> protocols,
                          held_join callback);
  // Takes the held JoinGroup / SyncGroup out of a member, keeping the counts right.
  held_join take_join(member& target) noexcept;
  held_sync take_sync(member& target) noexcept;
  // A static member restarted with a new member id: same member object, new id.
  member& replace_static_member(std::string_view instance_id, std::string_view old_member_id,
                                const std::string& new_member_id);

  // Kafka's supportsProtocols: an empty group takes any non-empty type and list; otherwise
  // the type must match and one of the protocols must be supported by every member.
  bool supports_protocols(std::string_view type,
                          const std::vector<protocol_entry>& protocols) const;
  // The protocol every member supports with the most votes (a member votes for the first
  // candidate in its own order). Ties go to the protocol first voted for, in member order.
  std::string select_protocol() const;
  // Kafka's maybeElectNewJoinedLeader.
  bool elect_joined_leader();
  void compute_subscribed_topics();
  // Kafka's isSubscribedToTopic: unknown subscriptions count as subscribed, to be safe.
  bool is_subscribed_to(std::string_view topic) const;
  bool is_consumer_group() const noexcept { return protocol_type && *protocol_type == "consumer"; }

  // --- pending members (MEMBER_ID_REQUIRED) and pending syncs ---
  std::unordered_map<std::string, deadline_slot> pending_members;
  std::unordered_set<std::string> pending_sync_members;

  // --- deadlines ---
  rebalance_timer rebalance;
  deadline_slot sync_deadline;

  // --- offsets ---
  std::map<partition_key, committed_offset_value> offsets;
  // Commits written to the store and not yet durable, per partition.
  std::map<partition_key, std::int32_t> pending_commits;
  bool has_pending_commit(const partition_key& key) const {
    return pending_commits.find(key) != pending_commits.end();
  }
  // Whether a group metadata record was loaded for it (loading only).
  bool loaded_metadata = false;

 private:
  void count_protocols(const member& m, int delta);

  std::string id_;
  std::uint64_t incarnation_;
  group_state state_ = group_state::empty;
  std::int64_t state_timestamp_ms_ = -1;
  std::vector<std::unique_ptr<member>> members_;  // in the order they joined
  std::unordered_map<std::string, member*> by_id_;
  std::unordered_map<std::string, std::string> static_members_;  // instance id -> member id
  std::unordered_map<std::string, std::int32_t> protocol_support_;
  std::int32_t awaiting_join_count_ = 0;
};

// The topics of a ConsumerProtocolSubscription (any version: the topic list is the first
// field after the version, as Kafka parses it with version 0), or nullopt when the bytes
// do not parse.
std::optional<std::vector<std::string>> parse_subscription_topics(std::string_view bytes);

}  // namespace sluice::groups
