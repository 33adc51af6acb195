#include "broker/groups/group_coordinator.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <span>
#include <unordered_map>
#include <utility>

#include "broker/groups/group.h"
#include "broker/kafka_uuid.h"
#include "engine/base/assert.h"
#include "engine/base/log.h"

namespace sluice::groups {

namespace {

// Kafka's GroupCoordinator.NewMemberJoinTimeoutMs: how long a new member's JoinGroup may
// wait for a rebalance before it is dropped (it cannot heartbeat without a member id).
constexpr std::chrono::milliseconds new_member_join_timeout{5 * 60 * 1000};
// Every group this coordinator keeps is a classic group (ListGroups v5 GroupType).
constexpr std::string_view classic_group_type = "classic";
constexpr std::string_view log_component = "groups";

join_result join_error(std::string member_id, error_code error) {
  join_result result;
  result.error = error;
  result.member_id = std::move(member_id);
  return result;
}

sync_result sync_error(error_code error) {
  sync_result result;
  result.error = error;
  return result;
}

bool equals_ignore_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool matches_filter(const std::vector<std::string>& filter, std::string_view value) {
  if (filter.empty()) return true;
  return std::any_of(filter.begin(), filter.end(),
                     [&](const std::string& wanted) { return equals_ignore_case(wanted, value); });
}

// Java's UUID.toString() of a random UUID: Kafka's member ids end with one.
std::string random_uuid_text() {
  static constexpr char digits[] = "0123456789abcdef";
  const protocol::uuid id = random_uuid();
  std::string text;
  text.reserve(36);
  for (std::size_t i = 0; i < id.bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text.push_back('-');
    text.push_back(digits[id.bytes[i] >> 4]);
    text.push_back(digits[id.bytes[i] & 0x0f]);
  }
  return text;
}

// GroupMetadataManager.storeGroup turns an append error into the one the client sees.
error_code client_error_for_group_store(error_code error) noexcept {
  switch (error) {
    case error_code::unknown_topic_or_partition:
    case error_code::not_enough_replicas:
    case error_code::not_enough_replicas_after_append:
    case error_code::request_timed_out: return error_code::coordinator_not_available;
    case error_code::not_leader_or_follower:
    case error_code::kafka_storage_error: return error_code::not_coordinator;
    case error_code::message_too_large:
    case error_code::record_list_too_large:
    case error_code::invalid_fetch_size: return error_code::unknown_server_error;
    default: return error;
  }
}

// GroupMetadataManager.storeOffsets does the same for commits, with its own choices.
error_code client_error_for_offset_store(error_code error) noexcept {
  switch (error) {
    case error_code::unknown_topic_or_partition:
    case error_code::not_enough_replicas:
    case error_code::not_enough_replicas_after_append: return error_code::coordinator_not_available;
    case error_code::not_leader_or_follower:
    case error_code::kafka_storage_error: return error_code::not_coordinator;
    case error_code::message_too_large:
    case error_code::record_list_too_large:
    case error_code::invalid_fetch_size: return error_code::invalid_commit_offset_size;
    default: return error;
  }
}

}  // namespace

std::string_view state_name(group_state state) noexcept {
  switch (state) {
    case group_state::empty: return "Empty";
    case group_state::preparing_rebalance: return "PreparingRebalance";
    case group_state::completing_rebalance: return "CompletingRebalance";
    case group_state::stable: return "Stable";
    case group_state::dead: return "Dead";
  }
  return "Dead";
}

class group_coordinator::impl {
 public:
  impl(group_store& store, coordinator_config config, partition_exists_fn exists,
       wall_clock_fn wall_clock)
      : store_(store),
        config_(config),
        exists_(std::move(exists)),
        wall_clock_(std::move(wall_clock)),
        alive_(std::make_shared<int>(0)) {}

  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  ~impl() {
    // Store completions that arrive later find the token gone and do nothing.
    alive_.reset();
    for (auto& [id, owned] : groups_) cancel_deadlines(*owned);
  }

  void join(join_request request, steady_time now, std::function<void(join_result)> done);
  void sync(sync_request request, steady_time now, std::function<void(sync_result)> done);
  error_code heartbeat(const heartbeat_request& request, steady_time now);
  leave_result leave(std::string_view group_id, const std::vector<leave_member>& members,
                     steady_time now);
  void commit_offsets(commit_request request, steady_time now, commit_callback done);
  fetch_offsets_result fetch_offsets(
      std::string_view group_id, const std::optional<std::vector<topic_partition_ref>>& partitions,
      bool require_stable);
  std::vector<listed_group> list_groups(const std::vector<std::string>& states_filter,
                                        const std::vector<std::string>& types_filter) const;
  described_group describe(std::string_view group_id) const;
  void delete_group(std::string_view group_id, std::function<void(error_code)> done);
  void delete_offsets(std::string_view group_id, std::vector<topic_partition_ref> partitions,
                      std::function<void(error_code, std::vector<error_code>)> done);
  void tick(steady_time now);
  void shutdown();
  std::size_t group_count() const noexcept { return groups_.size(); }

  void load_offset(const offset_commit_record& record) noexcept;
  void unload_offset(std::string_view group_id, std::string_view topic,
                     std::int32_t partition) noexcept;
  void load_group(const group_metadata_record& record) noexcept;
  void unload_group(std::string_view group_id) noexcept;

 private:
  // Every public entry point (and every store completion) is a call. Answers produced
  // during a call are queued; at the end of the call the queue runs, except the answers
  // whose callback was registered by a call still on the stack (that is the contract:
  // never inside the registering call). Those wait for the next call or tick().
  class call_scope {
   public:
    call_scope(impl& self, std::optional<steady_time> now) : self_(self) {
      id_ = ++self_.call_sequence_;
      self_.active_calls_.push_back(id_);
      if (now && *now > self_.now_) self_.now_ = *now;
    }
    call_scope(const call_scope&) = delete;
    call_scope& operator=(const call_scope&) = delete;
    ~call_scope() {
      self_.run_ready_answers();
      self_.active_calls_.pop_back();
    }
    std::uint64_t id() const noexcept { return id_; }

   private:
    impl& self_;
    std::uint64_t id_ = 0;
  };

  struct ready_answer {
    std::uint64_t origin_call = 0;
    std::function<void()> run;
  };

  bool is_active_call(std::uint64_t call) const noexcept {
    return std::find(active_calls_.begin(), active_calls_.end(), call) != active_calls_.end();
  }
  void run_ready_answers();
  void queue_answer(std::uint64_t origin_call, std::function<void()> run) {
    ready_.push_back(ready_answer{origin_call, std::move(run)});
  }
  void answer_join(held_join held, join_result result) {
    if (!held) return;
    queue_answer(held.origin_call,
                 [answer = std::move(held.answer), result = std::move(result)]() mutable {
                   answer(std::move(result));
                 });
  }
  void answer_sync(held_sync held, sync_result result) {
    if (!held) return;
    queue_answer(held.origin_call,
                 [answer = std::move(held.answer), result = std::move(result)]() mutable {
                   answer(std::move(result));
                 });
  }

  // Wraps a store completion: it becomes a call of its own, and is ignored once the
  // coordinator is gone.
  template <typename Handler>
  store_callback store_completion(Handler handler) {
    return [alive = std::weak_ptr<int>(alive_), this,
            handler = std::move(handler)](error_code error) mutable {
      if (alive.expired()) return;
      call_scope scope(*this, std::nullopt);
      handler(error);
    };
  }

  std::int64_t wall_ms() const { return wall_clock_ ? wall_clock_() : 0; }

  // --- groups ---
  group* find_group(std::string_view group_id) const;
  group* find_group(std::string_view group_id, std::uint64_t incarnation) const;
  group& create_group(const std::string& group_id);
  group* group_for_load(const std::string& group_id);
  void destroy_group(group& target);
  void cancel_deadlines(group& target);
  static bool has_offsets(const group& target) noexcept {
    return !target.offsets.empty() || !target.pending_commits.empty();
  }

  // --- members ---
  void schedule_session(group& owner, member& who, std::chrono::milliseconds timeout);
  // Cancels a removed member's deadline and answers what it still held.
  void discard_member(std::unique_ptr<member> removed);
  std::optional<error_code> validate_current_member(group& target, std::string_view member_id,
                                                    const std::optional<std::string>& instance);
  bool accept_joining_member(group& target, std::string_view member_id) const;

  // --- JoinGroup ---
  void join_new_member(group& target, join_request& request, held_join held);
  void join_current_member(group& target, join_request& request, held_join held);
  void add_member_and_rebalance(group& target, const std::string& member_id,
                                const std::optional<std::string>& instance, join_request& request,
                                held_join held);
  void update_member_and_rebalance(group& target, member& who, join_request& request,
                                   held_join held);
  void update_static_member_and_rebalance(group& target, const std::string& old_member_id,
                                          const std::string& new_member_id, join_request& request,
                                          held_join held);
  void on_static_member_stored(const std::string& group_id, std::uint64_t incarnation,
                               const std::string& instance_id, const std::string& old_member_id,
                               const std::string& new_member_id,
                               std::vector<protocol_entry> old_protocols,
                               const std::string& old_leader, bool supports_skip_assignment,
                               error_code error);
  join_result current_generation_answer(const group& target, const member& who,
                                        bool with_members) const;
  std::vector<join_member> member_metadata(const group& target) const;

  // --- rebalance ---
  void maybe_prepare_rebalance(group& target);
  void prepare_rebalance(group& target);
  void try_complete_join(group& target);
  void complete_join(group& target);
  void init_next_generation(group& target);
  void reset_and_propagate_assignment_error(group& target, error_code error);
  void propagate_assignment(group& target, error_code error);
  void remove_member_and_update_group(group& target, member& who);
  void remove_pending_sync_member(group& target, const std::string& member_id);
  void on_assignment_stored(const std::string& group_id, std::uint64_t incarnation,
                            std::int32_t generation,
                            const std::unordered_map<std::string, std::string>& assignment,
                            error_code error);
  group_metadata_record metadata_record(const group& target) const;
  void store_group_metadata(const group& target, std::string_view why);

  // --- deadlines ---
  void fire(const deadline_target& target);
  void on_member_session_expired(group& owner, member& who);
  void on_pending_member_expired(group& owner, const std::string& member_id);
  void on_rebalance_deadline(group& owner);
  void on_pending_sync_expired(group& owner);
  void expire_offsets();
  void start_loaded_groups();

  // --- offsets ---
  void store_offsets(group& target, commit_request& request, const std::vector<std::size_t>& known,
                     std::vector<error_code> errors, commit_callback done,
                     std::uint64_t origin_call);

  group_store& store_;
  coordinator_config config_;
  partition_exists_fn exists_;
  wall_clock_fn wall_clock_;
  std::shared_ptr<int> alive_;

  std::unordered_map<std::string, std::unique_ptr<group>> groups_;
  std::uint64_t next_incarnation_ = 1;
  deadline_queue deadlines_;
  deadline_slot retention_check_;
  std::vector<std::string> loaded_to_start_;

  steady_time now_{};
  std::uint64_t call_sequence_ = 0;
  std::vector<std::uint64_t> active_calls_;
  std::vector<ready_answer> ready_;
  bool shut_down_ = false;
};

// ---------------------------------------------------------------------------------------
// Calls and answers

void group_coordinator::impl::run_ready_answers() {
  if (ready_.empty()) return;
  std::vector<ready_answer> batch;
  batch.swap(ready_);
  std::vector<ready_answer> kept;
  for (auto& answer : batch) {
    if (is_active_call(answer.origin_call)) {
      kept.push_back(std::move(answer));
    } else {
      answer.run();
    }
  }
  if (!kept.empty()) {
    // Kept answers go first: they were ready before anything the answers above queued.
    for (auto& later : ready_) kept.push_back(std::move(later));
    ready_.swap(kept);
  }
}

// ---------------------------------------------------------------------------------------
// Groups

group* group_coordinator::impl::find_group(std::string_view group_id) const {
  auto it = groups_.find(std::string(group_id));
  return it == groups_.end() ? nullptr : it->second.get();
}

group* group_coordinator::impl::find_group(std::string_view group_id,
                                           std::uint64_t incarnation) const {
  group* found = find_group(group_id);
  return found != nullptr && found->incarnation() == incarnation ? found : nullptr;
}

group& group_coordinator::impl::create_group(const std::string& group_id) {
  SLUICE_ASSERT(groups_.size() < config_.groups_max, "creating a group beyond groups_max");
  auto created = std::make_unique<group>(group_id, next_incarnation_++, wall_ms());
  group& result = *created;
  groups_.emplace(group_id, std::move(created));
  return result;
}

void group_coordinator::impl::cancel_deadlines(group& target) {
  deadlines_.cancel(target.rebalance.deadline);
  deadlines_.cancel(target.sync_deadline);
  for (auto& [id, slot] : target.pending_members) deadlines_.cancel(slot);
  for (const auto& m : target.members()) deadlines_.cancel(m->session_deadline);
}

void group_coordinator::impl::destroy_group(group& target) {
  cancel_deadlines(target);
  // Only empty groups die while serving; a group unloaded with members held nothing.
  for (const auto& m : target.members()) {
    answer_join(target.take_join(*m),
                join_error(m->member_id, error_code::coordinator_not_available));
    answer_sync(target.take_sync(*m), sync_error(error_code::coordinator_not_available));
  }
  target.transition_to(group_state::dead, wall_ms());
  groups_.erase(target.id());
}

// ---------------------------------------------------------------------------------------
// Members

void group_coordinator::impl::schedule_session(group& owner, member& who,
                                               std::chrono::milliseconds timeout) {
  deadlines_.schedule(who.session_deadline, now_ + timeout,
                      deadline_target{deadline_kind::member_session, &owner, &who, {}});
}

void group_coordinator::impl::discard_member(std::unique_ptr<member> removed) {
  if (!removed) return;
  deadlines_.cancel(removed->session_deadline);
  answer_join(std::move(removed->awaiting_join), join_error("", error_code::unknown_member_id));
  answer_sync(std::move(removed->awaiting_sync), sync_error(error_code::unknown_member_id));
}

std::optional<error_code> group_coordinator::impl::validate_current_member(
    group& target, std::string_view member_id, const std::optional<std::string>& instance) {
  // Kafka's validateCurrentMember: a known instance id must map to this member id
  // (otherwise the caller is a fenced zombie), and the member id must be in the group.
  if (instance) {
    auto current = target.static_member_id(*instance);
    if (!current) return error_code::unknown_member_id;
    if (*current != member_id) return error_code::fenced_instance_id;
  }
  if (!target.has(member_id)) return error_code::unknown_member_id;
  return std::nullopt;
}

bool group_coordinator::impl::accept_joining_member(group& target,
                                                    std::string_view member_id) const {
  const auto size_max = static_cast<std::size_t>(std::max(config_.group_size_max, 0));
  switch (target.state()) {
    case group_state::empty:
    case group_state::dead: return true;
    case group_state::preparing_rebalance: {
      // Counting the members that rejoined (not the group size, which may exceed a lowered
      // limit) lets the last members to rejoin be the ones turned away.
      member* existing = target.find(member_id);
      return (existing != nullptr && existing->is_awaiting_join()) ||
             static_cast<std::size_t>(target.awaiting_join_count()) < size_max;
    }
    case group_state::completing_rebalance:
    case group_state::stable: return target.has(member_id) || target.size() < size_max;
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// JoinGroup

void group_coordinator::impl::join(join_request request, steady_time now,
                                   std::function<void(join_result)> done) {
  call_scope scope(*this, now);
  held_join held{std::move(done), scope.id()};
  if (shut_down_) {
    return answer_join(std::move(held),
                       join_error(request.member_id, error_code::coordinator_not_available));
  }
  if (request.group_id.empty()) {
    return answer_join(std::move(held),
                       join_error(request.member_id, error_code::invalid_group_id));
  }
  if (request.session_timeout < config_.session_timeout_min ||
      request.session_timeout > config_.session_timeout_max) {
    return answer_join(std::move(held),
                       join_error(request.member_id, error_code::invalid_session_timeout));
  }
  const bool unknown_member = request.member_id.empty();
  group* target = find_group(request.group_id);
  if (target == nullptr) {
    // Only a member without id may create the group.
    if (!unknown_member) {
      return answer_join(std::move(held),
                         join_error(request.member_id, error_code::unknown_member_id));
    }
    if (groups_.size() >= config_.groups_max) {
      return answer_join(std::move(held),
                         join_error(request.member_id, error_code::coordinator_not_available));
    }
    target = &create_group(request.group_id);
  }

  if (!accept_joining_member(*target, request.member_id)) {
    discard_member(target->remove(request.member_id));
    answer_join(std::move(held), join_error("", error_code::group_max_size_reached));
  } else if (unknown_member) {
    join_new_member(*target, request, std::move(held));
  } else {
    join_current_member(*target, request, std::move(held));
  }
  if (target->is(group_state::preparing_rebalance)) try_complete_join(*target);
}

void group_coordinator::impl::join_new_member(group& target, join_request& request,
                                              held_join held) {
  if (!target.supports_protocols(request.protocol_type, request.protocols)) {
    return answer_join(std::move(held), join_error("", error_code::inconsistent_group_protocol));
  }
  const std::string prefix =
      request.group_instance_id ? *request.group_instance_id : request.client_id;
  std::string new_member_id = prefix + "-" + random_uuid_text();

  if (request.group_instance_id) {
    // Static members never get MEMBER_ID_REQUIRED: the instance id identifies them.
    if (auto old_member_id = target.static_member_id(*request.group_instance_id)) {
      update_static_member_and_rebalance(target, *old_member_id, new_member_id, request,
                                         std::move(held));
    } else {
      add_member_and_rebalance(target, new_member_id, request.group_instance_id, request,
                               std::move(held));
    }
    return;
  }
  if (request.require_known_member_id) {
    // KIP-394: the member must come back with this id; until then it is pending, and the
    // rebalance waits for it (or for its session timeout).
    const auto size_max = static_cast<std::size_t>(std::max(config_.group_size_max, 0));
    if (target.pending_members.size() >= size_max) {
      // A bound of ours, not Kafka's: pending members are otherwise unbounded.
      return answer_join(std::move(held), join_error("", error_code::group_max_size_reached));
    }
    auto& slot = target.pending_members[new_member_id];
    deadlines_.schedule(
        slot, now_ + request.session_timeout,
        deadline_target{deadline_kind::pending_member, &target, nullptr, new_member_id});
    return answer_join(std::move(held),
                       join_error(std::move(new_member_id), error_code::member_id_required));
  }
  add_member_and_rebalance(target, new_member_id, std::nullopt, request, std::move(held));
}

void group_coordinator::impl::join_current_member(group& target, join_request& request,
                                                  held_join held) {
  const std::string& member_id = request.member_id;
  if (!target.supports_protocols(request.protocol_type, request.protocols)) {
    return answer_join(std::move(held),
                       join_error(member_id, error_code::inconsistent_group_protocol));
  }
  if (auto pending = target.pending_members.find(member_id);
      pending != target.pending_members.end()) {
    if (request.group_instance_id) {
      // Kafka throws IllegalStateException here (a pending member is never static), which
      // the client sees as UNKNOWN_SERVER_ERROR.
      return answer_join(std::move(held), join_error(member_id, error_code::unknown_server_error));
    }
    deadlines_.cancel(pending->second);
    add_member_and_rebalance(target, member_id, std::nullopt, request, std::move(held));
    return;
  }
  if (auto error = validate_current_member(target, member_id, request.group_instance_id)) {
    return answer_join(std::move(held), join_error(member_id, *error));
  }
  member& who = *target.find(member_id);
  switch (target.state()) {
    case group_state::preparing_rebalance:
      update_member_and_rebalance(target, who, request, std::move(held));
      return;
    case group_state::completing_rebalance:
      if (who.matches(request.protocols)) {
        // Same metadata: the member probably missed its JoinGroup answer; repeat it.
        return answer_join(std::move(held),
                           current_generation_answer(target, who, target.is_leader(member_id)));
      }
      update_member_and_rebalance(target, who, request, std::move(held));
      return;
    case group_state::stable:
      // The leader rejoining forces a rebalance: that is how it asks for a new assignment
      // after changes the member metadata does not show (e.g. new partitions).
      if (target.is_leader(member_id) || !who.matches(request.protocols)) {
        update_member_and_rebalance(target, who, request, std::move(held));
        return;
      }
      return answer_join(std::move(held), current_generation_answer(target, who, false));
    case group_state::empty:
    case group_state::dead:
      return answer_join(std::move(held), join_error(member_id, error_code::unknown_member_id));
  }
}

void group_coordinator::impl::add_member_and_rebalance(group& target, const std::string& member_id,
                                                       const std::optional<std::string>& instance,
                                                       join_request& request, held_join held) {
  auto added = std::make_unique<member>();
  added->member_id = member_id;
  added->group_instance_id = instance;
  added->client_id = request.client_id;
  added->client_host = request.client_host;
  added->rebalance_timeout = std::max(request.rebalance_timeout, std::chrono::milliseconds{0});
  added->session_timeout = request.session_timeout;
  added->protocol_type = request.protocol_type;
  added->protocols = request.protocols;
  added->awaiting_join = std::move(held);
  added->is_new = true;
  // A new member arriving during the initial delay of a brand-new group extends it.
  if (target.is(group_state::preparing_rebalance) && target.generation == 0) {
    target.new_member_added = true;
  }
  member& who = target.add(std::move(added));
  // A new member cannot heartbeat while its JoinGroup is held; it gets a longer, fixed
  // timeout so that abandoned joins do not pile up.
  schedule_session(target, who, new_member_join_timeout);
  maybe_prepare_rebalance(target);
}

void group_coordinator::impl::update_member_and_rebalance(group& target, member& who,
                                                          join_request& request, held_join held) {
  who.rebalance_timeout = std::max(request.rebalance_timeout, std::chrono::milliseconds{0});
  who.session_timeout = request.session_timeout;
  held_join replaced = target.update_member(who, request.protocols, std::move(held));
  // Kafka silently drops a JoinGroup superseded by a newer one from the same member; every
  // callback here is answered exactly once, so the older one is told to rejoin.
  answer_join(std::move(replaced), join_error(who.member_id, error_code::rebalance_in_progress));
  maybe_prepare_rebalance(target);
}

void group_coordinator::impl::update_static_member_and_rebalance(group& target,
                                                                 const std::string& old_member_id,
                                                                 const std::string& new_member_id,
                                                                 join_request& request,
                                                                 held_join held) {
  const std::string& instance_id = *request.group_instance_id;
  const std::string old_leader = target.leader_id.value_or("");
  member& who = *target.find(old_member_id);
  // Fence the old incarnation at once if it still waits for an answer.
  answer_join(target.take_join(who), join_error(old_member_id, error_code::fenced_instance_id));
  answer_sync(target.take_sync(who), sync_error(error_code::fenced_instance_id));
  target.replace_static_member(instance_id, old_member_id, new_member_id);
  schedule_session(target, who, who.session_timeout);
  std::vector<protocol_entry> old_protocols = who.protocols;
  answer_join(target.update_member(who, request.protocols, std::move(held)),
              join_error(new_member_id, error_code::rebalance_in_progress));

  switch (target.state()) {
    case group_state::stable: {
      // No rebalance when the protocol the group would choose stays the same: persist the
      // new member id, then give the member its old assignment back.
      if (target.protocol_name && target.select_protocol() == *target.protocol_name) {
        store_.store_group(
            metadata_record(target),
            store_completion([this, group_id = target.id(), incarnation = target.incarnation(),
                              instance_id, old_member_id, new_member_id,
                              old_protocols = std::move(old_protocols), old_leader,
                              skip = request.supports_skip_assignment](error_code error) mutable {
              on_static_member_stored(group_id, incarnation, instance_id, old_member_id,
                                      new_member_id, std::move(old_protocols), old_leader, skip,
                                      error);
            }));
      } else {
        maybe_prepare_rebalance(target);
      }
      return;
    }
    case group_state::completing_rebalance:
      // The leader may already be assigning with the old member id: start over.
      prepare_rebalance(target);
      return;
    case group_state::preparing_rebalance: return;  // the member now counts as rejoined
    case group_state::empty:
    case group_state::dead: SLUICE_UNREACHABLE("a static member in a group without members");
  }
}

void group_coordinator::impl::on_static_member_stored(
    const std::string& group_id, std::uint64_t incarnation, const std::string& instance_id,
    const std::string& old_member_id, const std::string& new_member_id,
    std::vector<protocol_entry> old_protocols, const std::string& old_leader,
    bool supports_skip_assignment, error_code error) {
  group* target = find_group(group_id, incarnation);
  if (target == nullptr) return;
  member* who = target->find(new_member_id);
  // Removed meanwhile (its JoinGroup was answered then), or a rebalance took over the
  // held JoinGroup: nothing left to do here.
  if (who == nullptr || !who->is_awaiting_join() || !target->is(group_state::stable)) return;

  held_join held = target->take_join(*who);
  if (error != error_code::none) {
    SLUICE_LOG(warn, log_component, "group {}: storing restarted static member {} failed: {}",
               group_id, instance_id, protocol::error_code_name(error));
    // Undo the replacement: the old member id stays the valid one.
    target->update_member(*who, std::move(old_protocols), held_join{});
    target->replace_static_member(instance_id, new_member_id, old_member_id);
    schedule_session(*target, *who, who->session_timeout);
    join_result result = join_error("", client_error_for_group_store(error));
    result.generation_id = target->generation;
    result.protocol_type = target->protocol_type;
    result.protocol_name = target->protocol_name;
    result.leader = old_leader;
    return answer_join(std::move(held), std::move(result));
  }
  const bool is_leader = target->is_leader(new_member_id);
  join_result result = current_generation_answer(*target, *who, false);
  if (supports_skip_assignment) {
    // JoinGroup v9+: the leader learns it leads, but must not assign again (assignors
    // are not idempotent, and a stable group would ignore the result anyway).
    if (is_leader) result.members = member_metadata(*target);
    result.skip_assignment = is_leader;
  } else {
    // Older clients: answer with the old leader id, so that a restarted leader does not
    // believe it leads and runs a pointless assignment.
    result.leader = old_leader;
  }
  answer_join(std::move(held), std::move(result));
}

join_result group_coordinator::impl::current_generation_answer(const group& target,
                                                               const member& who,
                                                               bool with_members) const {
  join_result result;
  result.error = error_code::none;
  result.generation_id = target.generation;
  result.protocol_type = target.protocol_type;
  result.protocol_name = target.protocol_name;
  result.leader = target.leader_id.value_or("");
  result.member_id = who.member_id;
  if (with_members) result.members = member_metadata(target);
  return result;
}

std::vector<join_member> group_coordinator::impl::member_metadata(const group& target) const {
  std::vector<join_member> members;
  members.reserve(target.size());
  for (const auto& m : target.members()) {
    const std::string* metadata =
        target.protocol_name ? m->metadata_for(*target.protocol_name) : nullptr;
    members.push_back(
        join_member{m->member_id, m->group_instance_id, metadata ? *metadata : std::string()});
  }
  return members;
}

// ---------------------------------------------------------------------------------------
// Rebalance

void group_coordinator::impl::maybe_prepare_rebalance(group& target) {
  if (target.can_rebalance()) prepare_rebalance(target);
}

void group_coordinator::impl::prepare_rebalance(group& target) {
  // Members waiting for their assignment must rejoin instead.
  if (target.is(group_state::completing_rebalance)) {
    reset_and_propagate_assignment_error(target, error_code::rebalance_in_progress);
  }
  deadlines_.cancel(target.sync_deadline);
  target.pending_sync_members.clear();

  const bool was_empty = target.is(group_state::empty);
  const auto rebalance_timeout = target.rebalance_timeout();
  target.transition_to(group_state::preparing_rebalance, wall_ms());
  const deadline_target timer{deadline_kind::rebalance, &target, nullptr, {}};
  if (was_empty) {
    // Kafka's InitialDelayedJoin: wait for more members before the first assignment, and
    // keep waiting (up to the rebalance timeout) while new ones arrive. It never ends
    // early, even when everybody joined.
    target.rebalance.initial = true;
    target.rebalance.delay = config_.initial_rebalance_delay;
    target.rebalance.remaining =
        std::max(rebalance_timeout - config_.initial_rebalance_delay, std::chrono::milliseconds{0});
    deadlines_.schedule(target.rebalance.deadline, now_ + target.rebalance.delay, timer);
  } else {
    target.rebalance.initial = false;
    deadlines_.schedule(target.rebalance.deadline, now_ + rebalance_timeout, timer);
    try_complete_join(target);
  }
}

void group_coordinator::impl::try_complete_join(group& target) {
  if (!target.is(group_state::preparing_rebalance) || target.rebalance.initial) return;
  if (!target.all_members_joined()) return;
  deadlines_.cancel(target.rebalance.deadline);
  complete_join(target);
}

void group_coordinator::impl::complete_join(group& target) {
  SLUICE_ASSERT(target.is(group_state::preparing_rebalance), "completing a join phase not begun");
  deadlines_.cancel(target.rebalance.deadline);
  target.rebalance.initial = false;

  // Dynamic members that did not rejoin are gone; static ones stay (they may be
  // restarting) and must sync in time like everyone else.
  std::vector<std::string> not_rejoined;
  for (const auto& m : target.members()) {
    if (!m->is_awaiting_join() && !m->is_static()) not_rejoined.push_back(m->member_id);
  }
  for (const auto& id : not_rejoined) discard_member(target.remove(id));

  if (!target.elect_joined_leader() && !target.empty()) {
    // Only static members that did not rejoin are left: wait another rebalance timeout
    // for them to rejoin or to time out.
    deadlines_.schedule(target.rebalance.deadline, now_ + target.rebalance_timeout(),
                        deadline_target{deadline_kind::rebalance, &target, nullptr, {}});
    return;
  }

  init_next_generation(target);
  if (target.is(group_state::empty)) {
    store_group_metadata(target, "empty group");
    return;
  }
  for (const auto& m : target.members()) {
    answer_join(target.take_join(*m),
                current_generation_answer(target, *m, target.is_leader(m->member_id)));
    schedule_session(target, *m, m->session_timeout);
    m->is_new = false;
    target.pending_sync_members.insert(m->member_id);
  }
  deadlines_.schedule(target.sync_deadline, now_ + target.rebalance_timeout(),
                      deadline_target{deadline_kind::pending_sync, &target, nullptr, {}});
}

void group_coordinator::impl::init_next_generation(group& target) {
  ++target.generation;
  if (!target.empty()) {
    target.protocol_name = target.select_protocol();
    target.compute_subscribed_topics();
    target.transition_to(group_state::completing_rebalance, wall_ms());
  } else {
    target.protocol_name.reset();
    target.compute_subscribed_topics();
    target.transition_to(group_state::empty, wall_ms());
  }
  deadlines_.cancel(target.sync_deadline);
  target.pending_sync_members.clear();
}

void group_coordinator::impl::reset_and_propagate_assignment_error(group& target,
                                                                   error_code error) {
  SLUICE_ASSERT(target.is(group_state::completing_rebalance),
                "assignment error outside completing_rebalance");
  for (const auto& m : target.members()) m->assignment.clear();
  propagate_assignment(target, error);
}

void group_coordinator::impl::propagate_assignment(group& target, error_code error) {
  for (const auto& m : target.members()) {
    held_sync held = target.take_sync(*m);
    if (!held) continue;
    sync_result result;
    result.error = error;
    if (error == error_code::none) {
      result.protocol_type = target.protocol_type;
      result.protocol_name = target.protocol_name;
    }
    result.assignment = m->assignment;
    answer_sync(std::move(held), std::move(result));
    // Its session may have lapsed while it waited (waiting members are never expired);
    // the timeout starts again from the answer.
    schedule_session(target, *m, m->session_timeout);
  }
}

void group_coordinator::impl::remove_member_and_update_group(group& target, member& who) {
  // A new member whose JoinGroup times out learns to retry with UNKNOWN_MEMBER_ID.
  answer_join(target.take_join(who), join_error("", error_code::unknown_member_id));
  discard_member(target.remove(who.member_id));
  switch (target.state()) {
    case group_state::stable:
    case group_state::completing_rebalance: maybe_prepare_rebalance(target); return;
    case group_state::preparing_rebalance: try_complete_join(target); return;
    case group_state::empty:
    case group_state::dead: return;
  }
}

void group_coordinator::impl::remove_pending_sync_member(group& target,
                                                         const std::string& member_id) {
  target.pending_sync_members.erase(member_id);
  if (target.pending_sync_members.empty()) deadlines_.cancel(target.sync_deadline);
}

group_metadata_record group_coordinator::impl::metadata_record(const group& target) const {
  group_metadata_record record;
  record.group = target.id();
  record.protocol_type = target.protocol_type.value_or("");
  record.generation = target.generation;
  record.protocol = target.protocol_name;
  record.leader = target.leader_id;
  record.state_timestamp_ms = target.state_timestamp_ms();
  record.members.reserve(target.size());
  for (const auto& m : target.members()) {
    member_record entry;
    entry.member_id = m->member_id;
    entry.group_instance_id = m->group_instance_id;
    entry.client_id = m->client_id;
    entry.client_host = m->client_host;
    entry.rebalance_timeout_ms = static_cast<std::int32_t>(m->rebalance_timeout.count());
    entry.session_timeout_ms = static_cast<std::int32_t>(m->session_timeout.count());
    if (target.protocol_name) {
      if (const std::string* metadata = m->metadata_for(*target.protocol_name)) {
        entry.subscription = *metadata;
      }
    }
    entry.assignment = m->assignment;
    record.members.push_back(std::move(entry));
  }
  return record;
}

void group_coordinator::impl::store_group_metadata(const group& target, std::string_view why) {
  store_.store_group(
      metadata_record(target), store_completion([group_id = target.id(), why](error_code error) {
        // If this is lost, the previous generation comes back after a
        // restart and simply times out: harmless without members.
        if (error != error_code::none) {
          SLUICE_LOG(warn, log_component, "group {}: storing metadata ({}) failed: {}", group_id,
                     why, protocol::error_code_name(error));
        }
      }));
}

// ---------------------------------------------------------------------------------------
// SyncGroup

void group_coordinator::impl::sync(sync_request request, steady_time now,
                                   std::function<void(sync_result)> done) {
  call_scope scope(*this, now);
  held_sync held{std::move(done), scope.id()};
  if (shut_down_)
    return answer_sync(std::move(held), sync_error(error_code::coordinator_not_available));
  if (request.group_id.empty()) {
    return answer_sync(std::move(held), sync_error(error_code::invalid_group_id));
  }
  group* target = find_group(request.group_id);
  if (target == nullptr)
    return answer_sync(std::move(held), sync_error(error_code::unknown_member_id));

  if (auto error = validate_current_member(*target, request.member_id, request.group_instance_id)) {
    return answer_sync(std::move(held), sync_error(*error));
  }
  if (request.generation_id != target->generation) {
    return answer_sync(std::move(held), sync_error(error_code::illegal_generation));
  }
  if ((request.protocol_type && target->protocol_type != request.protocol_type) ||
      (request.protocol_name && target->protocol_name != request.protocol_name)) {
    return answer_sync(std::move(held), sync_error(error_code::inconsistent_group_protocol));
  }

  member& who = *target->find(request.member_id);
  switch (target->state()) {
    case group_state::empty:
    case group_state::dead:
      return answer_sync(std::move(held), sync_error(error_code::unknown_member_id));
    case group_state::preparing_rebalance:
      return answer_sync(std::move(held), sync_error(error_code::rebalance_in_progress));
    case group_state::completing_rebalance: {
      // A repeated SyncGroup replaces the held one (Kafka drops the older silently).
      answer_sync(target->take_sync(who), sync_error(error_code::rebalance_in_progress));
      who.awaiting_sync = std::move(held);
      remove_pending_sync_member(*target, request.member_id);
      if (!target->is_leader(request.member_id)) return;  // followers wait for the leader

      // The leader's assignment; members it left out get an empty one, and entries for
      // strangers are ignored. Later entries for the same member win, as in Kafka's map.
      std::unordered_map<std::string, std::string> assignment;
      for (auto& entry : request.assignments) {
        if (target->has(entry.member_id)) {
          assignment[entry.member_id] = std::move(entry.assignment);
        }
      }
      for (const auto& m : target->members()) assignment.try_emplace(m->member_id);
      group_metadata_record record = metadata_record(*target);
      for (auto& entry : record.members) entry.assignment = assignment[entry.member_id];
      store_.store_group(
          record,
          store_completion([this, group_id = target->id(), incarnation = target->incarnation(),
                            generation = target->generation,
                            assignment = std::move(assignment)](error_code error) {
            on_assignment_stored(group_id, incarnation, generation, assignment, error);
          }));
      return;
    }
    case group_state::stable: {
      remove_pending_sync_member(*target, request.member_id);
      sync_result result;
      result.protocol_type = target->protocol_type;
      result.protocol_name = target->protocol_name;
      result.assignment = who.assignment;
      answer_sync(std::move(held), std::move(result));
      schedule_session(*target, who, who.session_timeout);
      return;
    }
  }
}

void group_coordinator::impl::on_assignment_stored(
    const std::string& group_id, std::uint64_t incarnation, std::int32_t generation,
    const std::unordered_map<std::string, std::string>& assignment, error_code error) {
  group* target = find_group(group_id, incarnation);
  // A member joined (or left) while the store worked: that rebalance owns the group now.
  if (target == nullptr || !target->is(group_state::completing_rebalance) ||
      target->generation != generation) {
    return;
  }
  if (error != error_code::none) {
    SLUICE_LOG(warn, log_component, "group {}: storing the assignment of generation {} failed: {}",
               group_id, generation, protocol::error_code_name(error));
    reset_and_propagate_assignment_error(*target, client_error_for_group_store(error));
    maybe_prepare_rebalance(*target);
    return;
  }
  for (const auto& m : target->members()) {
    auto it = assignment.find(m->member_id);
    m->assignment = it == assignment.end() ? std::string() : it->second;
  }
  propagate_assignment(*target, error_code::none);
  target->transition_to(group_state::stable, wall_ms());
}

// ---------------------------------------------------------------------------------------
// Heartbeat and LeaveGroup

error_code group_coordinator::impl::heartbeat(const heartbeat_request& request, steady_time now) {
  call_scope scope(*this, now);
  if (shut_down_) return error_code::coordinator_not_available;
  if (request.group_id.empty()) return error_code::invalid_group_id;
  group* target = find_group(request.group_id);
  if (target == nullptr) return error_code::unknown_member_id;
  if (auto error = validate_current_member(*target, request.member_id, request.group_instance_id)) {
    return *error;
  }
  if (request.generation_id != target->generation) return error_code::illegal_generation;
  member& who = *target->find(request.member_id);
  switch (target->state()) {
    case group_state::empty:
    case group_state::dead: return error_code::unknown_member_id;
    case group_state::completing_rebalance:
    case group_state::stable:
      schedule_session(*target, who, who.session_timeout);
      return error_code::none;
    case group_state::preparing_rebalance:
      // How a member of the old generation learns it must rejoin.
      schedule_session(*target, who, who.session_timeout);
      return error_code::rebalance_in_progress;
  }
  return error_code::unknown_member_id;
}

leave_result group_coordinator::impl::leave(std::string_view group_id,
                                            const std::vector<leave_member>& members,
                                            steady_time now) {
  call_scope scope(*this, now);
  leave_result result;
  if (shut_down_) {
    result.error = error_code::coordinator_not_available;
    return result;
  }
  if (group_id.empty()) {
    result.error = error_code::invalid_group_id;
    return result;
  }
  group* target = find_group(group_id);
  result.members.reserve(members.size());
  for (const auto& leaving : members) {
    if (target == nullptr) {
      result.members.push_back(error_code::unknown_member_id);
      continue;
    }
    if (leaving.member_id.empty()) {
      // An administrator removing a static member by instance id (KIP-345).
      std::optional<std::string> current;
      if (leaving.group_instance_id) current = target->static_member_id(*leaving.group_instance_id);
      if (!current) {
        result.members.push_back(error_code::unknown_member_id);
        continue;
      }
      remove_member_and_update_group(*target, *target->find(*current));
      result.members.push_back(error_code::none);
      continue;
    }
    if (auto pending = target->pending_members.find(leaving.member_id);
        pending != target->pending_members.end()) {
      deadlines_.cancel(pending->second);
      target->pending_members.erase(pending);
      if (target->is(group_state::preparing_rebalance)) try_complete_join(*target);
      result.members.push_back(error_code::none);
      continue;
    }
    if (auto error =
            validate_current_member(*target, leaving.member_id, leaving.group_instance_id)) {
      result.members.push_back(*error);
      continue;
    }
    remove_member_and_update_group(*target, *target->find(leaving.member_id));
    result.members.push_back(error_code::none);
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// Offsets

void group_coordinator::impl::commit_offsets(commit_request request, steady_time now,
                                             commit_callback done) {
  call_scope scope(*this, now);
  const std::uint64_t origin = scope.id();
  std::vector<error_code> errors(request.partitions.size(), error_code::none);
  auto answer = [&](std::vector<error_code> final_errors) {
    queue_answer(origin, [done = std::move(done), final_errors = std::move(final_errors)]() {
      done(final_errors);
    });
  };
  if (shut_down_) {
    std::fill(errors.begin(), errors.end(), error_code::coordinator_not_available);
    return answer(std::move(errors));
  }

  // Partitions that do not exist are turned away before the group is even looked at, as
  // KafkaApis does.
  std::vector<std::size_t> known;
  known.reserve(request.partitions.size());
  for (std::size_t i = 0; i < request.partitions.size(); ++i) {
    const auto& partition = request.partitions[i];
    if (exists_ && exists_(partition.topic, partition.partition)) {
      known.push_back(i);
    } else {
      errors[i] = error_code::unknown_topic_or_partition;
    }
  }
  if (known.empty()) return answer(std::move(errors));
  auto fail_known = [&](error_code error) {
    for (std::size_t i : known) errors[i] = error;
    answer(std::move(errors));
  };

  group* target = find_group(request.group_id);
  if (target == nullptr) {
    // A generation means the committer believes it is in a group that does not exist:
    // it is from an older generation. Without one, the commit creates an offsets-only
    // group (the "simple consumer").
    if (request.generation_id >= 0) return fail_known(error_code::illegal_generation);
    if (groups_.size() >= config_.groups_max) {
      return fail_known(error_code::coordinator_not_available);
    }
    target = &create_group(request.group_id);
  }

  if (request.generation_id >= 0 || !request.member_id.empty() || request.group_instance_id) {
    if (auto error =
            validate_current_member(*target, request.member_id, request.group_instance_id)) {
      return fail_known(*error);
    }
    if (request.generation_id != target->generation) {
      return fail_known(error_code::illegal_generation);
    }
  } else if (!target->is(group_state::empty)) {
    // While the group has members, only members may commit.
    return fail_known(error_code::unknown_member_id);
  }

  switch (target->state()) {
    case group_state::empty: break;
    case group_state::stable:
    case group_state::preparing_rebalance: {
      // Commits go on during a rebalance; the heartbeat answer tells the member to rejoin.
      member& who = *target->find(request.member_id);
      schedule_session(*target, who, who.session_timeout);
      break;
    }
    case group_state::completing_rebalance:
      // The member has its new generation but not yet its assignment.
      return fail_known(error_code::rebalance_in_progress);
    case group_state::dead: return fail_known(error_code::coordinator_not_available);
  }
  store_offsets(*target, request, known, std::move(errors), std::move(done), origin);
}

void group_coordinator::impl::store_offsets(group& target, commit_request& request,
                                            const std::vector<std::size_t>& known,
                                            std::vector<error_code> errors, commit_callback done,
                                            std::uint64_t origin_call) {
  std::vector<std::size_t> accepted;
  accepted.reserve(known.size());
  for (std::size_t i : known) {
    const auto& metadata = request.partitions[i].metadata;
    if (metadata && metadata->size() > config_.offset_metadata_bytes_max) {
      errors[i] = error_code::offset_metadata_too_large;
    } else {
      accepted.push_back(i);
    }
  }
  if (accepted.empty()) {
    queue_answer(origin_call,
                 [done = std::move(done), errors = std::move(errors)]() { done(errors); });
    return;
  }

  const std::int64_t commit_timestamp_ms = wall_ms();
  auto records = std::make_shared<std::vector<offset_commit_record>>();
  records->reserve(accepted.size());
  for (std::size_t i : accepted) {
    auto& partition = request.partitions[i];
    offset_commit_record record;
    record.group = target.id();
    record.topic = partition.topic;
    record.partition = partition.partition;
    record.committed_offset = partition.committed_offset;
    record.leader_epoch = partition.leader_epoch;
    // Kafka stores a null metadata as the empty string (OffsetAndMetadata.NoMetadata).
    record.metadata = partition.metadata.value_or(std::string());
    record.commit_timestamp_ms = commit_timestamp_ms;
    ++target.pending_commits[partition_key{record.topic, record.partition}];
    records->push_back(std::move(record));
  }
  std::span<const offset_commit_record> view(*records);
  store_.store_offsets(
      target.id(), view,
      store_completion([this, group_id = target.id(), incarnation = target.incarnation(), records,
                        accepted = std::move(accepted), errors = std::move(errors),
                        done = std::move(done), origin_call](error_code error) mutable {
        // The cache changes only once the commit is durable, and not at all for a group
        // deleted meanwhile.
        if (group* owner = find_group(group_id, incarnation)) {
          for (const auto& record : *records) {
            partition_key key{record.topic, record.partition};
            auto pending = owner->pending_commits.find(key);
            if (pending != owner->pending_commits.end() && --pending->second <= 0) {
              owner->pending_commits.erase(pending);
            }
            if (error == error_code::none) {
              owner->offsets[key] =
                  committed_offset_value{record.committed_offset, record.leader_epoch,
                                         record.metadata, record.commit_timestamp_ms};
            }
          }
        }
        const error_code client_error = client_error_for_offset_store(error);
        for (std::size_t i : accepted) errors[i] = client_error;
        queue_answer(origin_call,
                     [done = std::move(done), errors = std::move(errors)]() { done(errors); });
      }));
}

fetch_offsets_result group_coordinator::impl::fetch_offsets(
    std::string_view group_id, const std::optional<std::vector<topic_partition_ref>>& partitions,
    bool require_stable) {
  fetch_offsets_result result;
  if (shut_down_) {
    result.error = error_code::coordinator_not_available;
    return result;
  }
  auto nothing_committed = [](const std::string& topic, std::int32_t partition) {
    fetched_offset entry;
    entry.topic = topic;
    entry.partition = partition;
    entry.metadata = std::string();
    return entry;
  };
  group* target = find_group(group_id);
  if (target == nullptr) {
    if (partitions) {
      for (const auto& p : *partitions) {
        result.partitions.push_back(nothing_committed(p.topic, p.partition));
      }
    }
    return result;
  }
  auto describe_offset = [&](const partition_key& key) {
    fetched_offset entry = nothing_committed(key.topic, key.partition);
    if (require_stable && target->has_pending_commit(key)) {
      entry.error = error_code::unstable_offset_commit;
      return entry;
    }
    auto it = target->offsets.find(key);
    if (it != target->offsets.end()) {
      entry.committed_offset = it->second.committed_offset;
      entry.leader_epoch = it->second.leader_epoch;
      entry.metadata = it->second.metadata;
    }
    return entry;
  };
  if (partitions) {
    result.partitions.reserve(partitions->size());
    for (const auto& p : *partitions) {
      result.partitions.push_back(describe_offset(partition_key{p.topic, p.partition}));
    }
  } else {
    result.partitions.reserve(target->offsets.size());
    for (const auto& [key, value] : target->offsets) {
      result.partitions.push_back(describe_offset(key));
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// ListGroups, DescribeGroups, DeleteGroups, OffsetDelete

std::vector<listed_group> group_coordinator::impl::list_groups(
    const std::vector<std::string>& states_filter,
    const std::vector<std::string>& types_filter) const {
  std::vector<listed_group> listed;
  if (!matches_filter(types_filter, classic_group_type)) return listed;
  for (const auto& [id, owned] : groups_) {
    if (!matches_filter(states_filter, state_name(owned->state()))) continue;
    listed.push_back(listed_group{id, owned->protocol_type.value_or(""), owned->state()});
  }
  std::sort(listed.begin(), listed.end(),
            [](const listed_group& a, const listed_group& b) { return a.group_id < b.group_id; });
  return listed;
}

described_group group_coordinator::impl::describe(std::string_view group_id) const {
  described_group described;
  described.group_id = std::string(group_id);
  if (shut_down_) {
    described.error = error_code::coordinator_not_available;
    described.state = group_state::dead;
    return described;
  }
  group* target = find_group(group_id);
  if (target == nullptr) return described;  // Dead, no error, as Kafka
  described.state = target->state();
  described.protocol_type = target->protocol_type.value_or("");
  const bool stable = target->is(group_state::stable) && target->protocol_name.has_value();
  if (stable) described.protocol = *target->protocol_name;
  for (const auto& m : target->members()) {
    described_member entry;
    entry.member_id = m->member_id;
    entry.group_instance_id = m->group_instance_id;
    entry.client_id = m->client_id;
    entry.client_host = m->client_host;
    if (stable) {
      if (const std::string* metadata = m->metadata_for(*target->protocol_name)) {
        entry.metadata = *metadata;
      }
      entry.assignment = m->assignment;
    }
    described.members.push_back(std::move(entry));
  }
  return described;
}

namespace {

// Answers once every store write of a deletion is durable, with the first error.
struct deletion_join {
  std::size_t outstanding = 0;
  error_code first_error = error_code::none;
  void finish(error_code error) {
    if (first_error == error_code::none && error != error_code::none) first_error = error;
    --outstanding;
  }
};

}  // namespace

void group_coordinator::impl::delete_group(std::string_view group_id,
                                           std::function<void(error_code)> done) {
  call_scope scope(*this, std::nullopt);
  const std::uint64_t origin = scope.id();
  auto answer = [&](error_code error) {
    queue_answer(origin, [done = std::move(done), error]() { done(error); });
  };
  if (shut_down_) return answer(error_code::coordinator_not_available);
  group* target = find_group(group_id);
  if (target == nullptr) return answer(error_code::group_id_not_found);
  if (!target->is(group_state::empty)) return answer(error_code::non_empty_group);

  const std::string id = target->id();
  std::vector<topic_partition_ref> tombstones;
  tombstones.reserve(target->offsets.size());
  for (const auto& [key, value] : target->offsets) {
    tombstones.push_back(topic_partition_ref{key.topic, key.partition});
  }
  // A group of generation 0 only ever stored offsets: it has no metadata to delete.
  const bool has_metadata = target->generation > 0;
  destroy_group(*target);

  auto state = std::make_shared<deletion_join>();
  state->outstanding = (tombstones.empty() ? 0 : 1) + (has_metadata ? 1 : 0);
  if (state->outstanding == 0) return answer(error_code::none);
  // One completion per store write; the last one answers.
  auto on_stored = std::make_shared<std::function<void(error_code)>>(
      [this, state, origin, done = std::move(done)](error_code error) mutable {
        state->finish(error);
        if (state->outstanding > 0) return;
        queue_answer(origin,
                     [done = std::move(done), error = state->first_error]() { done(error); });
      });
  if (!tombstones.empty()) {
    store_.delete_offsets(id, tombstones,
                          store_completion([on_stored](error_code error) { (*on_stored)(error); }));
  }
  if (has_metadata) {
    store_.delete_group(id,
                        store_completion([on_stored](error_code error) { (*on_stored)(error); }));
  }
}

void group_coordinator::impl::delete_offsets(
    std::string_view group_id, std::vector<topic_partition_ref> partitions,
    std::function<void(error_code, std::vector<error_code>)> done) {
  call_scope scope(*this, std::nullopt);
  const std::uint64_t origin = scope.id();
  auto answer = [&](error_code group_error, std::vector<error_code> errors) {
    queue_answer(origin, [done = std::move(done), group_error, errors = std::move(errors)]() {
      done(group_error, errors);
    });
  };
  if (shut_down_) return answer(error_code::coordinator_not_available, {});
  group* target = find_group(group_id);
  if (target == nullptr) return answer(error_code::group_id_not_found, {});

  std::vector<error_code> errors(partitions.size(), error_code::none);
  std::vector<std::size_t> eligible;
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    if (!exists_ || !exists_(partitions[i].topic, partitions[i].partition)) {
      errors[i] = error_code::unknown_topic_or_partition;
    } else {
      eligible.push_back(i);
    }
  }
  switch (target->state()) {
    case group_state::empty: break;
    case group_state::preparing_rebalance:
    case group_state::completing_rebalance:
    case group_state::stable:
      if (!target->is_consumer_group()) return answer(error_code::non_empty_group, {});
      // Offsets a member may still be using cannot go.
      std::erase_if(eligible, [&](std::size_t i) {
        if (!target->is_subscribed_to(partitions[i].topic)) return false;
        errors[i] = error_code::group_subscribed_to_topic;
        return true;
      });
      break;
    case group_state::dead: return answer(error_code::group_id_not_found, {});
  }

  std::vector<topic_partition_ref> removed;
  for (std::size_t i : eligible) {
    auto it = target->offsets.find(partition_key{partitions[i].topic, partitions[i].partition});
    if (it == target->offsets.end()) continue;
    removed.push_back(partitions[i]);
    target->offsets.erase(it);
  }
  const std::string id = target->id();
  bool delete_metadata = false;
  if (target->is(group_state::empty) && !has_offsets(*target)) {
    delete_metadata = target->generation > 0;
    destroy_group(*target);
  }

  auto state = std::make_shared<deletion_join>();
  state->outstanding = (removed.empty() ? 0 : 1) + (delete_metadata ? 1 : 0);
  if (state->outstanding == 0) return answer(error_code::none, std::move(errors));
  auto on_stored = std::make_shared<std::function<void(error_code)>>(
      [this, state, origin, eligible = std::move(eligible), errors = std::move(errors),
       done = std::move(done)](error_code error) mutable {
        state->finish(error);
        if (state->outstanding > 0) return;
        for (std::size_t i : eligible) errors[i] = state->first_error;
        queue_answer(origin, [done = std::move(done), errors = std::move(errors)]() {
          done(error_code::none, errors);
        });
      });
  if (!removed.empty()) {
    store_.delete_offsets(id, removed,
                          store_completion([on_stored](error_code error) { (*on_stored)(error); }));
  }
  if (delete_metadata) {
    store_.delete_group(id,
                        store_completion([on_stored](error_code error) { (*on_stored)(error); }));
  }
}

// ---------------------------------------------------------------------------------------
// Deadlines

void group_coordinator::impl::tick(steady_time now) {
  call_scope scope(*this, now);
  if (shut_down_) return;
  start_loaded_groups();
  if (!retention_check_) {
    deadlines_.schedule(retention_check_, now_ + config_.offsets_retention_check_interval,
                        deadline_target{deadline_kind::retention_check, nullptr, nullptr, {}});
  }
  // Bounded: a deadline that fires may schedule another already due (a zero delay), which
  // then fires at the next tick rather than spinning here.
  std::size_t budget = deadlines_.size() + 64;
  while (budget-- > 0) {
    auto due = deadlines_.pop_due(now_);
    if (!due) break;
    fire(*due);
  }
}

void group_coordinator::impl::fire(const deadline_target& target) {
  switch (target.kind) {
    case deadline_kind::member_session:
      on_member_session_expired(*target.owner, *target.who);
      return;
    case deadline_kind::pending_member:
      on_pending_member_expired(*target.owner, target.pending_member_id);
      return;
    case deadline_kind::rebalance: on_rebalance_deadline(*target.owner); return;
    case deadline_kind::pending_sync: on_pending_sync_expired(*target.owner); return;
    case deadline_kind::retention_check:
      expire_offsets();
      deadlines_.schedule(retention_check_, now_ + config_.offsets_retention_check_interval,
                          deadline_target{deadline_kind::retention_check, nullptr, nullptr, {}});
      return;
  }
}

void group_coordinator::impl::on_member_session_expired(group& owner, member& who) {
  // A member waiting for a rebalance answer is not expected to heartbeat.
  if (who.session_satisfied()) return;
  SLUICE_LOG(info, log_component, "group {}: member {} timed out", owner.id(), who.member_id);
  remove_member_and_update_group(owner, who);
}

void group_coordinator::impl::on_pending_member_expired(group& owner,
                                                        const std::string& member_id) {
  owner.pending_members.erase(member_id);
  if (owner.is(group_state::preparing_rebalance)) try_complete_join(owner);
}

void group_coordinator::impl::on_rebalance_deadline(group& owner) {
  if (!owner.is(group_state::preparing_rebalance)) return;
  auto& timer = owner.rebalance;
  if (timer.initial && owner.new_member_added && timer.remaining.count() > 0) {
    // New members arrived during the delay: wait once more, within the rebalance timeout.
    owner.new_member_added = false;
    const auto next_delay = std::min(config_.initial_rebalance_delay, timer.remaining);
    timer.remaining = std::max(timer.remaining - timer.delay, std::chrono::milliseconds{0});
    timer.delay = next_delay;
    deadlines_.schedule(timer.deadline, now_ + next_delay,
                        deadline_target{deadline_kind::rebalance, &owner, nullptr, {}});
    return;
  }
  complete_join(owner);
}

void group_coordinator::impl::on_pending_sync_expired(group& owner) {
  if (!owner.is(group_state::completing_rebalance) && !owner.is(group_state::stable)) return;
  if (owner.pending_sync_members.empty()) return;
  // Members that got their JoinGroup answer but never sent SyncGroup within the
  // rebalance timeout are gone; the others rebalance without them.
  std::vector<std::string> silent(owner.pending_sync_members.begin(),
                                  owner.pending_sync_members.end());
  for (const auto& id : silent) discard_member(owner.remove(id));
  prepare_rebalance(owner);
}

void group_coordinator::impl::start_loaded_groups() {
  if (loaded_to_start_.empty()) return;
  std::vector<std::string> ids;
  ids.swap(loaded_to_start_);
  const auto size_max = static_cast<std::size_t>(std::max(config_.group_size_max, 0));
  for (const auto& id : ids) {
    group* target = find_group(id);
    if (target == nullptr || !target->start_pending) continue;
    target->start_pending = false;
    // A group loaded with more members than allowed rebalances, so that the extra members
    // are turned away when they rejoin.
    if (target->is(group_state::stable) && target->size() > size_max) prepare_rebalance(*target);
    for (const auto& m : target->members()) schedule_session(*target, *m, m->session_timeout);
  }
}

void group_coordinator::impl::expire_offsets() {
  const std::int64_t now_ms = wall_ms();
  const std::int64_t retention_ms = config_.offsets_retention.count();
  std::vector<group*> dead;
  for (auto& [id, owned] : groups_) {
    group& target = *owned;
    // Kafka's GroupMetadata.removeExpiredOffsets picks the clock each offset ages by.
    enum class basis { none, state_timestamp, commit_timestamp };
    basis age_from = basis::none;
    bool skip_subscribed = false;
    if (target.protocol_type && target.is(group_state::empty)) {
      age_from = basis::state_timestamp;  // since the group became empty
    } else if (target.is_consumer_group() && target.subscribed_topics &&
               target.is(group_state::stable)) {
      age_from = basis::commit_timestamp;  // topics nobody subscribes to any more
      skip_subscribed = true;
    } else if (!target.protocol_type) {
      age_from = basis::commit_timestamp;  // offsets-only group
    }
    if (age_from != basis::none) {
      std::vector<topic_partition_ref> expired;
      for (auto it = target.offsets.begin(); it != target.offsets.end();) {
        const auto& [key, value] = *it;
        std::int64_t base_ms = value.commit_timestamp_ms;
        if (age_from == basis::state_timestamp && target.state_timestamp_ms() > 0) {
          base_ms = target.state_timestamp_ms();
        }
        const bool subscribed = skip_subscribed && target.subscribed_topics->contains(key.topic);
        if (!subscribed && !target.has_pending_commit(key) && now_ms - base_ms >= retention_ms) {
          expired.push_back(topic_partition_ref{key.topic, key.partition});
          it = target.offsets.erase(it);
        } else {
          ++it;
        }
      }
      if (!expired.empty()) {
        SLUICE_LOG(info, log_component, "group {}: {} offsets expired", id, expired.size());
        store_.delete_offsets(id, expired, store_completion([group_id = id](error_code error) {
                                // The next sweep deletes them again after a restart.
                                if (error != error_code::none) {
                                  SLUICE_LOG(warn, log_component,
                                             "group {}: deleting expired offsets failed: {}",
                                             group_id, protocol::error_code_name(error));
                                }
                              }));
      }
    }
    if (target.is(group_state::empty) && !has_offsets(target)) dead.push_back(&target);
  }
  for (group* target : dead) {
    const std::string id = target->id();
    const bool has_metadata = target->generation > 0;
    destroy_group(*target);
    if (has_metadata) {
      store_.delete_group(id, store_completion([id](error_code error) {
                            if (error != error_code::none) {
                              SLUICE_LOG(warn, log_component,
                                         "group {}: deleting its metadata failed: {}", id,
                                         protocol::error_code_name(error));
                            }
                          }));
    }
  }
}

void group_coordinator::impl::shutdown() {
  call_scope scope(*this, std::nullopt);
  if (shut_down_) return;
  shut_down_ = true;
  for (auto& [id, owned] : groups_) {
    for (const auto& m : owned->members()) {
      answer_join(owned->take_join(*m),
                  join_error(m->member_id, error_code::coordinator_not_available));
      answer_sync(owned->take_sync(*m), sync_error(error_code::coordinator_not_available));
    }
  }
}

// ---------------------------------------------------------------------------------------
// Loading

// The group a loaded record belongs to, made on first sight; nullptr (logged) past
// groups_max.
group* group_coordinator::impl::group_for_load(const std::string& group_id) {
  if (group* existing = find_group(group_id)) return existing;
  if (groups_.size() >= config_.groups_max) {
    SLUICE_LOG(warn, log_component, "group {}: not loaded, groups_max ({}) reached", group_id,
               config_.groups_max);
    return nullptr;
  }
  return &create_group(group_id);
}

void group_coordinator::impl::load_offset(const offset_commit_record& record) noexcept {
  group* target = group_for_load(record.group);
  if (target == nullptr) return;
  target->offsets[partition_key{record.topic, record.partition}] = committed_offset_value{
      record.committed_offset, record.leader_epoch, record.metadata, record.commit_timestamp_ms};
}

void group_coordinator::impl::unload_offset(std::string_view group_id, std::string_view topic,
                                            std::int32_t partition) noexcept {
  group* target = find_group(group_id);
  if (target == nullptr) return;
  target->offsets.erase(partition_key{std::string(topic), partition});
  if (!target->loaded_metadata && target->empty() && !has_offsets(*target)) {
    destroy_group(*target);
  }
}

void group_coordinator::impl::load_group(const group_metadata_record& record) noexcept {
  group* target = group_for_load(record.group);
  if (target == nullptr) return;
  // A later record replaces the group's whole membership.
  cancel_deadlines(*target);
  target->pending_members.clear();
  target->pending_sync_members.clear();
  std::vector<std::string> old_ids;
  for (const auto& m : target->members()) old_ids.push_back(m->member_id);
  for (const auto& id : old_ids) discard_member(target->remove(id));

  target->loaded_metadata = true;
  target->generation = record.generation;
  target->protocol_name = record.protocol;
  target->leader_id.reset();
  if (record.protocol) {
    for (const auto& loaded : record.members) {
      if (target->has(loaded.member_id)) continue;
      if (loaded.group_instance_id && target->static_member_id(*loaded.group_instance_id)) {
        continue;
      }
      auto added = std::make_unique<member>();
      added->member_id = loaded.member_id;
      added->group_instance_id = loaded.group_instance_id;
      added->client_id = loaded.client_id;
      added->client_host = loaded.client_host;
      added->rebalance_timeout =
          std::chrono::milliseconds(std::max(loaded.rebalance_timeout_ms, 0));
      added->session_timeout = std::chrono::milliseconds(std::max(loaded.session_timeout_ms, 0));
      added->protocol_type = record.protocol_type;
      added->protocols.push_back(protocol_entry{*record.protocol, loaded.subscription});
      added->assignment = loaded.assignment;
      target->add(std::move(added));
    }
  }
  // Set after the members: adding the first member sets the type too.
  target->protocol_type = record.protocol_type.empty()
                              ? std::nullopt
                              : std::optional<std::string>(record.protocol_type);
  if (record.leader && target->has(*record.leader)) {
    target->leader_id = record.leader;
  } else if (!target->empty()) {
    target->leader_id = target->members().front()->member_id;
  } else {
    target->leader_id.reset();
  }
  const std::int64_t state_timestamp_ms =
      record.state_timestamp_ms > 0 ? record.state_timestamp_ms : -1;
  target->set_loaded_state(target->empty() ? group_state::empty : group_state::stable,
                           state_timestamp_ms);
  if (target->empty()) target->protocol_name.reset();
  target->compute_subscribed_topics();
  target->start_pending = !target->empty();
  if (target->start_pending) loaded_to_start_.push_back(target->id());
}

void group_coordinator::impl::unload_group(std::string_view group_id) noexcept {
  group* target = find_group(group_id);
  if (target == nullptr) return;
  cancel_deadlines(*target);
  target->pending_members.clear();
  target->pending_sync_members.clear();
  std::vector<std::string> old_ids;
  for (const auto& m : target->members()) old_ids.push_back(m->member_id);
  for (const auto& id : old_ids) discard_member(target->remove(id));
  // What is left is at most an offsets-only group, as Kafka rebuilds one.
  target->loaded_metadata = false;
  target->start_pending = false;
  target->generation = 0;
  target->protocol_type.reset();
  target->protocol_name.reset();
  target->leader_id.reset();
  target->subscribed_topics.reset();
  target->set_loaded_state(group_state::empty, wall_ms());
  if (!has_offsets(*target)) destroy_group(*target);
}

// ---------------------------------------------------------------------------------------
// The public face

group_coordinator::group_coordinator(group_store& store, coordinator_config config,
                                     partition_exists_fn exists, wall_clock_fn wall_clock)
    : impl_(std::make_unique<impl>(store, config, std::move(exists), std::move(wall_clock))) {}

group_coordinator::~group_coordinator() = default;

void group_coordinator::join(join_request request, steady_time now,
                             std::function<void(join_result)> done) {
  impl_->join(std::move(request), now, std::move(done));
}

void group_coordinator::sync(sync_request request, steady_time now,
                             std::function<void(sync_result)> done) {
  impl_->sync(std::move(request), now, std::move(done));
}

error_code group_coordinator::heartbeat(const heartbeat_request& request, steady_time now) {
  return impl_->heartbeat(request, now);
}

leave_result group_coordinator::leave(std::string_view group_id,
                                      const std::vector<leave_member>& members, steady_time now) {
  return impl_->leave(group_id, members, now);
}

void group_coordinator::commit_offsets(commit_request request, steady_time now,
                                       commit_callback done) {
  impl_->commit_offsets(std::move(request), now, std::move(done));
}

fetch_offsets_result group_coordinator::fetch_offsets(
    std::string_view group_id, const std::optional<std::vector<topic_partition_ref>>& partitions,
    bool require_stable) {
  return impl_->fetch_offsets(group_id, partitions, require_stable);
}

std::vector<listed_group> group_coordinator::list_groups(
    const std::vector<std::string>& states_filter,
    const std::vector<std::string>& types_filter) const {
  return impl_->list_groups(states_filter, types_filter);
}

described_group group_coordinator::describe(std::string_view group_id) const {
  return impl_->describe(group_id);
}

void group_coordinator::delete_group(std::string_view group_id,
                                     std::function<void(error_code)> done) {
  impl_->delete_group(group_id, std::move(done));
}

void group_coordinator::delete_offsets(
    std::string_view group_id, std::vector<topic_partition_ref> partitions,
    std::function<void(error_code, std::vector<error_code>)> done) {
  impl_->delete_offsets(group_id, std::move(partitions), std::move(done));
}

void group_coordinator::tick(steady_time now) {
  impl_->tick(now);
}

void group_coordinator::shutdown() {
  impl_->shutdown();
}

std::size_t group_coordinator::group_count() const noexcept {
  return impl_->group_count();
}

void group_coordinator::load_offset(const offset_commit_record& record) noexcept {
  impl_->load_offset(record);
}

void group_coordinator::unload_offset(std::string_view group, std::string_view topic,
                                      std::int32_t partition) noexcept {
  impl_->unload_offset(group, topic, partition);
}

void group_coordinator::load_group(const group_metadata_record& record) noexcept {
  impl_->load_group(record);
}

void group_coordinator::unload_group(std::string_view group) noexcept {
  impl_->unload_group(group);
}

}  // namespace sluice::groups
