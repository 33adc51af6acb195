#include "broker/groups/group.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "engine/base/assert.h"

namespace sluice::groups {

const std::string* member::metadata_for(std::string_view protocol) const noexcept {
  for (const auto& entry : protocols) {
    if (entry.name == protocol) return &entry.metadata;
  }
  return nullptr;
}

bool member::matches(const std::vector<protocol_entry>& other) const noexcept {
  if (other.size() != protocols.size()) return false;
  for (std::size_t i = 0; i < other.size(); ++i) {
    if (other[i].name != protocols[i].name || other[i].metadata != protocols[i].metadata) {
      return false;
    }
  }
  return true;
}

group::group(std::string id, std::uint64_t incarnation, std::int64_t now_ms)
    : id_(std::move(id)), incarnation_(incarnation), state_timestamp_ms_(now_ms) {}

void group::transition_to(group_state next, std::int64_t now_ms) {
  // Kafka's GroupState.validPreviousStates.
  bool valid = false;
  switch (next) {
    case group_state::preparing_rebalance:
      valid = state_ == group_state::stable || state_ == group_state::completing_rebalance ||
              state_ == group_state::empty;
      break;
    case group_state::completing_rebalance:
      valid = state_ == group_state::preparing_rebalance;
      break;
    case group_state::stable: valid = state_ == group_state::completing_rebalance; break;
    case group_state::empty: valid = state_ == group_state::preparing_rebalance; break;
    case group_state::dead: valid = true; break;
  }
  SLUICE_ASSERT(valid, "invalid group state transition");
  state_ = next;
  state_timestamp_ms_ = now_ms;
}

void group::set_loaded_state(group_state state, std::int64_t state_timestamp_ms) noexcept {
  state_ = state;
  state_timestamp_ms_ = state_timestamp_ms;
}

bool group::can_rebalance() const noexcept {
  return state_ == group_state::stable || state_ == group_state::completing_rebalance ||
         state_ == group_state::empty;
}

bool group::has(std::string_view member_id) const noexcept {
  return by_id_.find(std::string(member_id)) != by_id_.end();
}

member* group::find(std::string_view member_id) noexcept {
  auto it = by_id_.find(std::string(member_id));
  return it == by_id_.end() ? nullptr : it->second;
}

std::optional<std::string> group::static_member_id(std::string_view instance_id) const {
  auto it = static_members_.find(std::string(instance_id));
  if (it == static_members_.end()) return std::nullopt;
  return it->second;
}

std::chrono::milliseconds group::rebalance_timeout() const noexcept {
  std::chrono::milliseconds largest{0};
  for (const auto& m : members_) largest = std::max(largest, m->rebalance_timeout);
  return largest;
}

void group::count_protocols(const member& m, int delta) {
  // Each protocol name counts once per member, even if a client lists it twice.
  for (std::size_t i = 0; i < m.protocols.size(); ++i) {
    const auto& name = m.protocols[i].name;
    bool seen_before = false;
    for (std::size_t j = 0; j < i; ++j) {
      if (m.protocols[j].name == name) {
        seen_before = true;
        break;
      }
    }
    if (seen_before) continue;
    auto& count = protocol_support_[name];
    count += delta;
    if (count == 0) protocol_support_.erase(name);
  }
}

member& group::add(std::unique_ptr<member> added) {
  SLUICE_ASSERT(added != nullptr, "adding a null member");
  SLUICE_ASSERT(!has(added->member_id), "member added twice");
  if (added->group_instance_id) {
    SLUICE_ASSERT(!static_members_.contains(*added->group_instance_id),
                  "static member added while its instance id is taken");
    static_members_[*added->group_instance_id] = added->member_id;
  }
  if (members_.empty()) protocol_type = added->protocol_type;
  if (!leader_id) leader_id = added->member_id;
  count_protocols(*added, +1);
  if (added->is_awaiting_join()) ++awaiting_join_count_;
  if (auto pending = pending_members.find(added->member_id); pending != pending_members.end()) {
    SLUICE_ASSERT(!pending->second, "a pending member's deadline outlives it");
    pending_members.erase(pending);
  }
  member& result = *added;
  by_id_[added->member_id] = added.get();
  members_.push_back(std::move(added));
  return result;
}

std::unique_ptr<member> group::remove(std::string_view member_id) {
  std::unique_ptr<member> removed;
  auto it = std::find_if(members_.begin(), members_.end(),
                         [&](const auto& m) { return m->member_id == member_id; });
  if (it != members_.end()) {
    removed = std::move(*it);
    members_.erase(it);
    by_id_.erase(removed->member_id);
    count_protocols(*removed, -1);
    if (removed->is_awaiting_join()) --awaiting_join_count_;
    if (removed->group_instance_id) static_members_.erase(*removed->group_instance_id);
    pending_sync_members.erase(removed->member_id);
  }
  if (is_leader(member_id)) {
    if (members_.empty()) {
      leader_id.reset();
    } else {
      leader_id = members_.front()->member_id;
    }
  }
  return removed;
}

held_join group::update_member(member& target, std::vector<protocol_entry> protocols,
                               held_join callback) {
  count_protocols(target, -1);
  target.protocols = std::move(protocols);
  count_protocols(target, +1);
  held_join replaced = take_join(target);
  if (callback) ++awaiting_join_count_;
  target.awaiting_join = std::move(callback);
  return replaced;
}

held_join group::take_join(member& target) noexcept {
  held_join taken = std::move(target.awaiting_join);
  target.awaiting_join = held_join{};
  if (taken) --awaiting_join_count_;
  return taken;
}

held_sync group::take_sync(member& target) noexcept {
  held_sync taken = std::move(target.awaiting_sync);
  target.awaiting_sync = held_sync{};
  return taken;
}

member& group::replace_static_member(std::string_view instance_id, std::string_view old_member_id,
                                     const std::string& new_member_id) {
  auto it = by_id_.find(std::string(old_member_id));
  SLUICE_ASSERT(it != by_id_.end(), "replacing a static member that is not there");
  member* target = it->second;
  by_id_.erase(it);
  // The restarted member still owes the SyncGroup its old id owed.
  if (pending_sync_members.erase(std::string(old_member_id)) > 0) {
    pending_sync_members.insert(new_member_id);
  }
  target->member_id = new_member_id;
  by_id_[new_member_id] = target;
  if (is_leader(old_member_id)) leader_id = new_member_id;
  static_members_[std::string(instance_id)] = new_member_id;
  return *target;
}

bool group::supports_protocols(std::string_view type,
                               const std::vector<protocol_entry>& protocols) const {
  if (state_ == group_state::empty) return !type.empty() && !protocols.empty();
  if (!protocol_type || *protocol_type != type) return false;
  for (const auto& entry : protocols) {
    auto it = protocol_support_.find(entry.name);
    if (it != protocol_support_.end() && static_cast<std::size_t>(it->second) == members_.size()) {
      return true;
    }
  }
  return false;
}

std::string group::select_protocol() const {
  SLUICE_ASSERT(!members_.empty(), "selecting a protocol for a group without members");
  std::vector<std::pair<std::string, std::size_t>> votes;  // in order of first vote
  for (const auto& m : members_) {
    const std::string* vote = nullptr;
    for (const auto& entry : m->protocols) {
      auto it = protocol_support_.find(entry.name);
      if (it != protocol_support_.end() &&
          static_cast<std::size_t>(it->second) == members_.size()) {
        vote = &entry.name;
        break;
      }
    }
    SLUICE_ASSERT(vote != nullptr, "a member supports none of the common protocols");
    auto found =
        std::find_if(votes.begin(), votes.end(), [&](const auto& v) { return v.first == *vote; });
    if (found == votes.end()) {
      votes.emplace_back(*vote, 1);
    } else {
      ++found->second;
    }
  }
  auto best = votes.begin();
  for (auto it = votes.begin(); it != votes.end(); ++it) {
    if (it->second > best->second) best = it;
  }
  return best->first;
}

bool group::elect_joined_leader() {
  if (!leader_id) return false;
  member* leader = find(*leader_id);
  SLUICE_ASSERT(leader != nullptr, "the leader is not a member");
  if (leader->is_awaiting_join()) return true;
  for (const auto& m : members_) {
    if (m->is_awaiting_join()) {
      leader_id = m->member_id;
      return true;
    }
  }
  return false;
}

void group::compute_subscribed_topics() {
  subscribed_topics.reset();
  if (!is_consumer_group()) return;
  if (members_.empty()) {
    subscribed_topics.emplace();
    return;
  }
  if (!protocol_name) return;
  std::set<std::string> topics;
  for (const auto& m : members_) {
    const std::string* metadata = m->metadata_for(*protocol_name);
    if (metadata == nullptr) return;
    auto parsed = parse_subscription_topics(*metadata);
    if (!parsed) return;
    topics.insert(parsed->begin(), parsed->end());
  }
  subscribed_topics = std::move(topics);
}

bool group::is_subscribed_to(std::string_view topic) const {
  if (!subscribed_topics) return true;
  return subscribed_topics->find(std::string(topic)) != subscribed_topics->end();
}

namespace {

// A bounds-checked big-endian reader over the subscription bytes.
class subscription_reader {
 public:
  explicit subscription_reader(std::string_view bytes) noexcept : bytes_(bytes) {}
  bool read_i16(std::int16_t& out) noexcept {
    if (bytes_.size() - position_ < 2) return false;
    auto hi = static_cast<std::uint8_t>(bytes_[position_]);
    auto lo = static_cast<std::uint8_t>(bytes_[position_ + 1]);
    out = static_cast<std::int16_t>(static_cast<std::uint16_t>((hi << 8) | lo));
    position_ += 2;
    return true;
  }
  bool read_i32(std::int32_t& out) noexcept {
    if (bytes_.size() - position_ < 4) return false;
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      value = (value << 8) | static_cast<std::uint8_t>(bytes_[position_ + i]);
    }
    out = static_cast<std::int32_t>(value);
    position_ += 4;
    return true;
  }
  bool read_bytes(std::size_t length, std::string_view& out) noexcept {
    if (bytes_.size() - position_ < length) return false;
    out = bytes_.substr(position_, length);
    position_ += length;
    return true;
  }
  std::size_t remaining() const noexcept { return bytes_.size() - position_; }

 private:
  std::string_view bytes_;
  std::size_t position_ = 0;
};

}  // namespace

std::optional<std::vector<std::string>> parse_subscription_topics(std::string_view bytes) {
  // ConsumerProtocolSubscription, read as version 0 whatever the version says (Kafka does
  // the same, since every version starts with the version-0 fields):
  //   version   int16
  //   topics    int32 count, then count x (int16 length, bytes)
  //   user_data int32 length (-1 = null), then bytes
  subscription_reader reader(bytes);
  std::int16_t version = 0;
  if (!reader.read_i16(version) || version < 0) return std::nullopt;
  std::int32_t count = 0;
  if (!reader.read_i32(count) || count < 0) return std::nullopt;
  // Each topic takes at least two bytes: a count beyond that cannot be honest.
  if (static_cast<std::size_t>(count) > reader.remaining() / 2) return std::nullopt;
  std::vector<std::string> topics;
  topics.reserve(static_cast<std::size_t>(count));
  for (std::int32_t i = 0; i < count; ++i) {
    std::int16_t length = 0;
    std::string_view name;
    if (!reader.read_i16(length) || length < 0) return std::nullopt;
    if (!reader.read_bytes(static_cast<std::size_t>(length), name)) return std::nullopt;
    topics.emplace_back(name);
  }
  std::int32_t user_data_length = 0;
  if (!reader.read_i32(user_data_length) || user_data_length < -1) return std::nullopt;
  if (user_data_length > 0) {
    std::string_view user_data;
    if (!reader.read_bytes(static_cast<std::size_t>(user_data_length), user_data)) {
      return std::nullopt;
    }
  }
  return topics;
}

}  // namespace sluice::groups
