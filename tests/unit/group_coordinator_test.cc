// The group coordinator against a fake store (every write held until the test completes
// it, successfully or not) and a fake clock. Expected values follow from Kafka's
// GroupCoordinator rules, restated beside each check.
#include "broker/groups/group_coordinator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "broker/groups/group.h"

namespace sluice::groups {
namespace {

using namespace std::chrono_literals;

class fake_store final : public group_store {
 public:
  struct offsets_call {
    std::string group;
    std::vector<offset_commit_record> offsets;
    store_callback done;
  };
  struct delete_offsets_call {
    std::string group;
    std::vector<topic_partition_ref> partitions;
    store_callback done;
  };
  struct group_call {
    group_metadata_record record;
    store_callback done;
  };
  struct delete_group_call {
    std::string group;
    store_callback done;
  };

  void store_offsets(std::string_view group, std::span<const offset_commit_record> offsets,
                     store_callback done) override {
    offset_calls.push_back({std::string(group), {offsets.begin(), offsets.end()}, std::move(done)});
  }
  void delete_offsets(std::string_view group, std::span<const topic_partition_ref> partitions,
                      store_callback done) override {
    delete_offset_calls.push_back(
        {std::string(group), {partitions.begin(), partitions.end()}, std::move(done)});
  }
  void store_group(const group_metadata_record& group, store_callback done) override {
    group_calls.push_back({group, std::move(done)});
  }
  void delete_group(std::string_view group, store_callback done) override {
    delete_group_calls.push_back({std::string(group), std::move(done)});
  }

  // Completes every write not completed yet, in the order they were made.
  void complete_all(protocol::error_code error = protocol::error_code::none) {
    auto finish = [&](auto& calls) {
      for (auto& call : calls) {
        if (call.done) {
          auto done = std::move(call.done);
          call.done = nullptr;
          done(error);
        }
      }
    };
    finish(offset_calls);
    finish(delete_offset_calls);
    finish(group_calls);
    finish(delete_group_calls);
  }
  template <typename Call>
  static void complete(Call& call, protocol::error_code error = protocol::error_code::none) {
    ASSERT_TRUE(call.done) << "completed twice";
    auto done = std::move(call.done);
    call.done = nullptr;
    done(error);
  }

  std::vector<offsets_call> offset_calls;
  std::vector<delete_offsets_call> delete_offset_calls;
  std::vector<group_call> group_calls;
  std::vector<delete_group_call> delete_group_calls;
};

// One answer slot that fails the test if the coordinator answers twice.
template <typename Result>
struct answer {
  std::optional<Result> result;
  int calls = 0;
  bool ready() const { return result.has_value(); }
  const Result& operator*() const { return *result; }
  const Result* operator->() const { return &*result; }
  // For commit answers: the error of one partition (throws, failing the test, if none).
  auto operator[](std::size_t i) const { return result.value().at(i); }
};

std::string subscription_bytes(const std::vector<std::string>& topics) {
  // ConsumerProtocolSubscription v1: version, topics, user_data (null), owned partitions.
  std::string out;
  auto put16 = [&](int v) {
    out.push_back(static_cast<char>((v >> 8) & 0xff));
    out.push_back(static_cast<char>(v & 0xff));
  };
  auto put32 = [&](std::int32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  put16(1);
  put32(static_cast<std::int32_t>(topics.size()));
  for (const auto& t : topics) {
    put16(static_cast<int>(t.size()));
    out += t;
  }
  put32(-1);
  put32(0);
  return out;
}

class group_coordinator_test : public ::testing::Test {
 protected:
  void SetUp() override {
    config.initial_rebalance_delay = 0ms;
    make();
  }
  void make() {
    coordinator = std::make_unique<group_coordinator>(
        store, config,
        [this](std::string_view topic, std::int32_t partition) {
          return existing.contains({std::string(topic), partition});
        },
        [this] { return wall_ms; });
  }
  // Moves both clocks and lets the coordinator fire what is due.
  void advance(std::chrono::milliseconds step) {
    now += step;
    wall_ms += step.count();
    coordinator->tick(now);
  }
  void settle() { coordinator->tick(now); }

  join_request join_req(std::string member_id, std::string metadata = "meta",
                        std::optional<std::string> instance = std::nullopt) {
    join_request request;
    request.group_id = "g";
    request.member_id = std::move(member_id);
    request.group_instance_id = std::move(instance);
    request.protocol_type = "consumer";
    request.protocols = {{"range", metadata}, {"roundrobin", metadata}};
    request.session_timeout = 10s;
    request.rebalance_timeout = 30s;
    request.client_id = "client";
    request.client_host = "/127.0.0.1";
    return request;
  }
  std::shared_ptr<answer<join_result>> join(join_request request) {
    auto slot = std::make_shared<answer<join_result>>();
    coordinator->join(std::move(request), now, [slot](join_result result) {
      ++slot->calls;
      EXPECT_EQ(slot->calls, 1) << "join answered twice";
      slot->result = std::move(result);
    });
    EXPECT_FALSE(slot->ready()) << "answered inside the call that registered it";
    return slot;
  }
  std::shared_ptr<answer<sync_result>> sync(const std::string& member_id, std::int32_t generation,
                                            std::vector<assignment_entry> assignments = {},
                                            std::optional<std::string> instance = std::nullopt) {
    sync_request request;
    request.group_id = "g";
    request.member_id = member_id;
    request.generation_id = generation;
    request.group_instance_id = std::move(instance);
    request.assignments = std::move(assignments);
    auto slot = std::make_shared<answer<sync_result>>();
    coordinator->sync(std::move(request), now, [slot](sync_result result) {
      ++slot->calls;
      EXPECT_EQ(slot->calls, 1) << "sync answered twice";
      slot->result = std::move(result);
    });
    EXPECT_FALSE(slot->ready()) << "answered inside the call that registered it";
    return slot;
  }
  protocol::error_code heartbeat(const std::string& member_id, std::int32_t generation,
                                 std::optional<std::string> instance = std::nullopt) {
    return coordinator->heartbeat({"g", generation, member_id, std::move(instance)}, now);
  }
  std::shared_ptr<answer<std::vector<protocol::error_code>>> commit(
      std::string group, std::int32_t generation, std::string member_id,
      std::vector<commit_partition> partitions,
      std::optional<std::string> instance = std::nullopt) {
    commit_request request;
    request.group_id = std::move(group);
    request.generation_id = generation;
    request.member_id = std::move(member_id);
    request.group_instance_id = std::move(instance);
    request.partitions = std::move(partitions);
    auto slot = std::make_shared<answer<std::vector<protocol::error_code>>>();
    coordinator->commit_offsets(std::move(request), now,
                                [slot](std::vector<protocol::error_code> e) {
                                  ++slot->calls;
                                  EXPECT_EQ(slot->calls, 1) << "commit answered twice";
                                  slot->result = std::move(e);
                                });
    EXPECT_FALSE(slot->ready()) << "answered inside the call that registered it";
    return slot;
  }
  std::int64_t fetched(std::string group, std::string topic, std::int32_t partition) {
    auto result = coordinator->fetch_offsets(
        group, std::vector<topic_partition_ref>{{std::move(topic), partition}}, false);
    EXPECT_EQ(result.error, protocol::error_code::none);
    EXPECT_EQ(result.partitions.size(), 1u);
    return result.partitions.empty() ? -2 : result.partitions[0].committed_offset;
  }

  // Forms a stable group of `count` dynamic members; returns their ids, leader first.
  std::vector<std::string> form_group(int count, std::int32_t* generation_out = nullptr) {
    std::vector<std::shared_ptr<answer<join_result>>> joins;
    for (int i = 0; i < count; ++i) {
      joins.push_back(join(join_req("", subscription_bytes({"t"}))));
    }
    settle();
    std::vector<std::string> ids;
    for (auto& j : joins) {
      EXPECT_TRUE(j->ready());
      if (!j->ready()) return ids;
      EXPECT_EQ((*j)->error, protocol::error_code::none);
      ids.push_back((*j)->member_id);
    }
    const std::int32_t generation = (*joins[0])->generation_id;
    const std::string leader = (*joins[0])->leader;
    std::vector<assignment_entry> assignments;
    for (const auto& id : ids) assignments.push_back({id, "assigned-" + id});
    std::vector<std::shared_ptr<answer<sync_result>>> syncs;
    for (const auto& id : ids) {
      syncs.push_back(
          sync(id, generation, id == leader ? assignments : std::vector<assignment_entry>{}));
    }
    store.complete_all();
    settle();
    for (std::size_t i = 0; i < ids.size(); ++i) {
      EXPECT_TRUE(syncs[i]->ready());
      if (syncs[i]->ready()) {
        EXPECT_EQ((*syncs[i])->assignment, "assigned-" + ids[i]);
      }
    }
    std::stable_partition(ids.begin(), ids.end(), [&](const auto& id) { return id == leader; });
    if (generation_out) *generation_out = generation;
    return ids;
  }

  coordinator_config config;
  fake_store store;
  steady_time now = steady_time{} + 1000h;
  std::int64_t wall_ms = 1'700'000'000'000;
  std::set<std::pair<std::string, std::int32_t>> existing = {{"t", 0}, {"t", 1}, {"u", 0}};
  std::unique_ptr<group_coordinator> coordinator;
};

using protocol::error_code;

TEST_F(group_coordinator_test, three_members_one_rebalance_and_sync_waits_for_the_store) {
  auto a = join(join_req("", "meta-a"));
  auto b = join(join_req("", "meta-b"));
  auto c = join(join_req("", "meta-c"));
  settle();
  ASSERT_TRUE(a->ready() && b->ready() && c->ready());
  for (const auto* j : {&*a, &*b, &*c}) {
    EXPECT_EQ((*j)->error, error_code::none);
    EXPECT_EQ((*j)->generation_id, 1);         // one rebalance: generation 0 -> 1
    EXPECT_EQ((*j)->leader, (*a)->member_id);  // the first to join leads
    EXPECT_EQ((*j)->protocol_name, "range");   // everybody's first choice
    EXPECT_EQ((*j)->protocol_type, "consumer");
    EXPECT_EQ((*j)->member_id.rfind("client-", 0), 0u);
  }
  ASSERT_EQ((*a)->members.size(), 3u);
  std::map<std::string, std::string> metadata;
  for (const auto& m : (*a)->members) metadata[m.member_id] = m.metadata;
  EXPECT_EQ(metadata[(*a)->member_id], "meta-a");
  EXPECT_EQ(metadata[(*b)->member_id], "meta-b");
  EXPECT_EQ(metadata[(*c)->member_id], "meta-c");
  EXPECT_TRUE((*b)->members.empty());
  EXPECT_TRUE((*c)->members.empty());
  EXPECT_EQ(coordinator->describe("g").state, group_state::completing_rebalance);

  auto sb = sync((*b)->member_id, 1);
  settle();
  EXPECT_FALSE(sb->ready());  // followers wait for the leader
  auto sa = sync((*a)->member_id, 1, {{(*a)->member_id, "A"}, {(*b)->member_id, "B"}});
  auto sc = sync((*c)->member_id, 1);
  settle();
  EXPECT_FALSE(sa->ready() || sb->ready() || sc->ready());  // not durable yet
  ASSERT_EQ(store.group_calls.size(), 1u);
  const auto& record = store.group_calls[0].record;
  EXPECT_EQ(record.generation, 1);
  EXPECT_EQ(record.protocol, "range");
  EXPECT_EQ(record.leader, (*a)->member_id);
  ASSERT_EQ(record.members.size(), 3u);
  std::map<std::string, std::string> stored;
  for (const auto& m : record.members) stored[m.member_id] = m.assignment;
  EXPECT_EQ(stored[(*a)->member_id], "A");
  EXPECT_EQ(stored[(*c)->member_id], "");  // left out by the leader: empty

  fake_store::complete(store.group_calls[0]);
  settle();
  ASSERT_TRUE(sa->ready() && sb->ready() && sc->ready());
  EXPECT_EQ((*sa)->assignment, "A");
  EXPECT_EQ((*sb)->assignment, "B");
  EXPECT_EQ((*sc)->assignment, "");
  EXPECT_EQ((*sb)->protocol_name, "range");
  EXPECT_EQ(coordinator->describe("g").state, group_state::stable);
  // A stable group answers SyncGroup at once with the stored assignment.
  auto again = sync((*b)->member_id, 1);
  settle();
  ASSERT_TRUE(again->ready());
  EXPECT_EQ((*again)->assignment, "B");
  EXPECT_EQ(heartbeat((*c)->member_id, 1), error_code::none);
}

TEST_F(group_coordinator_test, answers_known_at_once_wait_for_the_next_call) {
  auto bad = join(join_req(""));
  settle();
  ASSERT_TRUE(bad->ready());
  join_request invalid = join_req("");
  invalid.group_id = "";
  auto j = join(invalid);
  EXPECT_FALSE(j->ready());
  EXPECT_EQ(heartbeat("nobody", 1), error_code::unknown_member_id);  // any later call
  ASSERT_TRUE(j->ready());
  EXPECT_EQ((*j)->error, error_code::invalid_group_id);

  join_request too_short = join_req("");
  too_short.session_timeout = 1ms;
  auto k = join(too_short);
  settle();
  EXPECT_EQ((*k)->error, error_code::invalid_session_timeout);
  auto unknown = join(join_req("ghost"));
  settle();
  EXPECT_EQ((*unknown)->error, error_code::unknown_member_id);
}

TEST_F(group_coordinator_test, member_id_required_then_rejoin) {
  join_request request = join_req("");
  request.require_known_member_id = true;
  auto first = join(request);
  settle();
  ASSERT_TRUE(first->ready());
  EXPECT_EQ((*first)->error, error_code::member_id_required);
  const std::string id = (*first)->member_id;
  // client_id + "-" + a UUID in Java's text form (36 characters).
  EXPECT_EQ(id.rfind("client-", 0), 0u);
  EXPECT_EQ(id.size(), std::string("client-").size() + 36);
  EXPECT_EQ(id[7 + 8], '-');
  EXPECT_EQ((*first)->generation_id, -1);

  request.member_id = id;
  auto second = join(request);
  settle();
  ASSERT_TRUE(second->ready());
  EXPECT_EQ((*second)->error, error_code::none);
  EXPECT_EQ((*second)->member_id, id);
  EXPECT_EQ((*second)->leader, id);
  EXPECT_EQ((*second)->generation_id, 1);
}

TEST_F(group_coordinator_test, pending_member_holds_the_rebalance_until_its_session_expires) {
  auto ids = form_group(1);
  ASSERT_EQ(ids.size(), 1u);
  join_request request = join_req("");
  request.require_known_member_id = true;
  auto pending = join(request);
  settle();
  ASSERT_EQ((*pending)->error, error_code::member_id_required);
  // The leader rejoins: a rebalance, which waits for the pending member too.
  auto rejoin = join(join_req(ids[0], subscription_bytes({"t"})));
  settle();
  EXPECT_FALSE(rejoin->ready());
  advance(9s);
  EXPECT_EQ(heartbeat(ids[0], 1), error_code::rebalance_in_progress);
  EXPECT_FALSE(rejoin->ready());
  advance(1s);  // the pending member's session (10 s) is over
  settle();
  ASSERT_TRUE(rejoin->ready());
  EXPECT_EQ((*rejoin)->generation_id, 2);
  EXPECT_EQ((*rejoin)->members.size(), 1u);
}

TEST_F(group_coordinator_test, inconsistent_group_protocol) {
  auto ids = form_group(1);
  join_request disjoint = join_req("");
  disjoint.protocols = {{"sticky", "x"}};
  auto a = join(disjoint);
  join_request other_type = join_req("");
  other_type.protocol_type = "connect";
  auto b = join(other_type);
  join_request known_disjoint = join_req(ids[0]);
  known_disjoint.protocols = {{"sticky", "x"}};
  auto c = join(known_disjoint);
  settle();
  EXPECT_EQ((*a)->error, error_code::inconsistent_group_protocol);
  EXPECT_EQ((*b)->error, error_code::inconsistent_group_protocol);
  EXPECT_EQ((*c)->error, error_code::inconsistent_group_protocol);
  EXPECT_EQ(coordinator->describe("g").state, group_state::stable);  // nothing changed

  // An empty group takes anything but an empty type or an empty protocol list.
  join_request no_type = join_req("");
  no_type.group_id = "h";
  no_type.protocol_type = "";
  auto d = join(no_type);
  settle();
  EXPECT_EQ((*d)->error, error_code::inconsistent_group_protocol);
}

TEST_F(group_coordinator_test, session_timeout_removes_a_silent_member) {
  std::int32_t generation = 0;
  auto ids = form_group(2, &generation);
  ASSERT_EQ(ids.size(), 2u);
  const auto& [leader, silent] = std::pair{ids[0], ids[1]};
  for (int i = 0; i < 3; ++i) {
    advance(3s);
    EXPECT_EQ(heartbeat(leader, generation), error_code::none);
  }
  advance(3s);  // 12 s: the silent member's 10 s session is over
  EXPECT_EQ(heartbeat(leader, generation), error_code::rebalance_in_progress);
  EXPECT_EQ(coordinator->describe("g").state, group_state::preparing_rebalance);
  auto rejoin = join(join_req(leader, subscription_bytes({"t"})));
  settle();
  ASSERT_TRUE(rejoin->ready());
  EXPECT_EQ((*rejoin)->generation_id, generation + 1);
  ASSERT_EQ((*rejoin)->members.size(), 1u);
  EXPECT_EQ(heartbeat(silent, generation), error_code::unknown_member_id);
  EXPECT_EQ(heartbeat(leader, generation), error_code::illegal_generation);
}

TEST_F(group_coordinator_test, rebalance_timeout_drops_a_member_that_does_not_rejoin) {
  std::int32_t generation = 0;
  auto ids = form_group(2, &generation);
  ASSERT_EQ(ids.size(), 2u);
  auto rejoin = join(join_req(ids[0], subscription_bytes({"t"})));  // the leader: rebalance
  for (int i = 0; i < 9; ++i) {
    advance(3s);
    // The follower heartbeats (so its session holds) but never rejoins.
    EXPECT_EQ(heartbeat(ids[1], generation), error_code::rebalance_in_progress);
    EXPECT_FALSE(rejoin->ready());
  }
  advance(3s);  // 30 s: the rebalance timeout
  ASSERT_TRUE(rejoin->ready());
  EXPECT_EQ((*rejoin)->generation_id, generation + 1);
  ASSERT_EQ((*rejoin)->members.size(), 1u);
  EXPECT_EQ((*rejoin)->members[0].member_id, ids[0]);
  EXPECT_EQ(heartbeat(ids[1], generation), error_code::unknown_member_id);
}

TEST_F(group_coordinator_test, member_that_never_syncs_is_removed_after_the_rebalance_timeout) {
  auto a = join(join_req(""));
  auto b = join(join_req(""));
  settle();
  ASSERT_TRUE(a->ready() && b->ready());
  auto sa = sync((*a)->member_id, 1, {});
  // b never sends SyncGroup; it heartbeats, which does not count as syncing.
  for (int i = 0; i < 9; ++i) {
    advance(3s);
    EXPECT_EQ(heartbeat((*a)->member_id, 1), error_code::none);
    EXPECT_EQ(heartbeat((*b)->member_id, 1), error_code::none);
  }
  EXPECT_FALSE(sa->ready());  // the store write is still pending
  advance(3s);
  // b is removed; a's held SyncGroup is told to rejoin.
  ASSERT_TRUE(sa->ready());
  EXPECT_EQ((*sa)->error, error_code::rebalance_in_progress);
  EXPECT_EQ(heartbeat((*b)->member_id, 1), error_code::unknown_member_id);
  EXPECT_EQ(coordinator->describe("g").state, group_state::preparing_rebalance);
}

TEST_F(group_coordinator_test, leave_single_and_batched_with_instance_ids) {
  auto a = join(join_req(""));
  auto b = join(join_req(""));
  auto c = join(join_req("", "meta", "instance-c"));
  settle();
  ASSERT_TRUE(a->ready() && b->ready() && c->ready());
  EXPECT_EQ((*c)->member_id.rfind("instance-c-", 0), 0u);  // static ids start with the instance
  const std::size_t stored_before = store.group_calls.size();

  auto single = coordinator->leave("g", {{(*a)->member_id, std::nullopt, "bye"}}, now);
  EXPECT_EQ(single.error, error_code::none);
  ASSERT_EQ(single.members.size(), 1u);
  EXPECT_EQ(single.members[0], error_code::none);
  EXPECT_EQ(coordinator->describe("g").state, group_state::preparing_rebalance);

  auto batch = coordinator->leave("g",
                                  {{"", std::string("instance-c"), std::nullopt},
                                   {"nobody", std::nullopt, std::nullopt},
                                   {(*b)->member_id, std::string("no-such-instance"), std::nullopt},
                                   {"", std::string("instance-c"), std::nullopt}},
                                  now);
  ASSERT_EQ(batch.members.size(), 4u);
  EXPECT_EQ(batch.members[0], error_code::none);
  EXPECT_EQ(batch.members[1], error_code::unknown_member_id);
  EXPECT_EQ(batch.members[2], error_code::unknown_member_id);
  EXPECT_EQ(batch.members[3], error_code::unknown_member_id);  // already gone

  auto last = coordinator->leave("g", {{(*b)->member_id, std::nullopt, std::nullopt}}, now);
  EXPECT_EQ(last.members[0], error_code::none);
  // The last member leaving ends the rebalance with no members: the group is empty, its
  // generation moves on, and the empty group is written.
  auto described = coordinator->describe("g");
  EXPECT_EQ(described.state, group_state::empty);
  EXPECT_TRUE(described.members.empty());
  ASSERT_EQ(store.group_calls.size(), stored_before + 1);
  // Generation 1 was formed; the rebalance that a's leave began ends with nobody: 2.
  EXPECT_EQ(store.group_calls.back().record.generation, 2);
  EXPECT_TRUE(store.group_calls.back().record.members.empty());
  EXPECT_FALSE(store.group_calls.back().record.leader.has_value());

  auto unknown = coordinator->leave("nope", {{"x", std::nullopt, std::nullopt}}, now);
  EXPECT_EQ(unknown.error, error_code::none);
  EXPECT_EQ(unknown.members[0], error_code::unknown_member_id);
  EXPECT_EQ(coordinator->leave("", {}, now).error, error_code::invalid_group_id);
}

TEST_F(group_coordinator_test, static_member_restart_keeps_its_assignment_without_rebalance) {
  auto a = join(join_req("", subscription_bytes({"t"}), "instance-a"));
  auto b = join(join_req("", subscription_bytes({"t"})));
  settle();
  ASSERT_TRUE(a->ready() && b->ready());
  const std::string old_id = (*a)->member_id;
  ASSERT_EQ((*a)->leader, old_id);
  auto sa = sync(old_id, 1, {{old_id, "A"}, {(*b)->member_id, "B"}});
  auto sb = sync((*b)->member_id, 1);
  store.complete_all();
  settle();
  ASSERT_TRUE(sa->ready());
  const std::size_t stored_before = store.group_calls.size();

  // Restart: same instance id, no member id, same protocols, JoinGroup v9.
  join_request restart = join_req("", subscription_bytes({"t"}), "instance-a");
  restart.supports_skip_assignment = true;
  auto again = join(restart);
  settle();
  EXPECT_FALSE(again->ready());  // the new member id must be durable first
  ASSERT_EQ(store.group_calls.size(), stored_before + 1);
  const auto& record = store.group_calls.back().record;
  EXPECT_EQ(record.generation, 1);
  fake_store::complete(store.group_calls.back());
  settle();
  ASSERT_TRUE(again->ready());
  const std::string new_id = (*again)->member_id;
  EXPECT_NE(new_id, old_id);
  EXPECT_EQ(new_id.rfind("instance-a-", 0), 0u);
  EXPECT_EQ((*again)->error, error_code::none);
  EXPECT_EQ((*again)->generation_id, 1);   // no rebalance
  EXPECT_EQ((*again)->leader, new_id);     // v9: it is told it leads...
  EXPECT_TRUE((*again)->skip_assignment);  // ...but must not assign again
  EXPECT_EQ((*again)->members.size(), 2u);
  EXPECT_EQ(coordinator->describe("g").state, group_state::stable);

  auto resync = sync(new_id, 1, {}, "instance-a");
  settle();
  ASSERT_TRUE(resync->ready());
  EXPECT_EQ((*resync)->assignment, "A");  // the old assignment
  EXPECT_EQ(heartbeat((*b)->member_id, 1), error_code::none);

  // The old incarnation is fenced.
  EXPECT_EQ(heartbeat(old_id, 1, "instance-a"), error_code::fenced_instance_id);
  EXPECT_EQ(heartbeat(old_id, 1), error_code::unknown_member_id);
  auto old_sync = sync(old_id, 1, {}, "instance-a");
  auto old_commit = commit("g", 1, old_id, {{"t", 0, 5, -1, std::nullopt}}, "instance-a");
  auto old_join = join(join_req(old_id, subscription_bytes({"t"}), "instance-a"));
  settle();
  EXPECT_EQ((*old_sync)->error, error_code::fenced_instance_id);
  EXPECT_EQ((*old_commit)[0], error_code::fenced_instance_id);
  EXPECT_EQ((*old_join)->error, error_code::fenced_instance_id);
  auto left = coordinator->leave("g", {{old_id, std::string("instance-a"), std::nullopt}}, now);
  EXPECT_EQ(left.members[0], error_code::fenced_instance_id);
}

TEST_F(group_coordinator_test, static_leader_restart_before_v9_is_told_the_old_leader) {
  auto a = join(join_req("", "m", "instance-a"));
  settle();
  ASSERT_TRUE(a->ready());
  const std::string old_id = (*a)->member_id;
  auto sa = sync(old_id, 1, {{old_id, "A"}});
  store.complete_all();
  settle();
  auto again = join(join_req("", "m", "instance-a"));
  store.complete_all();
  settle();
  ASSERT_TRUE(again->ready());
  EXPECT_EQ((*again)->generation_id, 1);
  EXPECT_EQ((*again)->leader, old_id);  // not its new id: it will not assign
  EXPECT_FALSE((*again)->skip_assignment);
  EXPECT_TRUE((*again)->members.empty());
}

TEST_F(group_coordinator_test, static_restart_with_failed_store_keeps_the_old_member) {
  auto a = join(join_req("", "m", "instance-a"));
  settle();
  const std::string old_id = (*a)->member_id;
  sync(old_id, 1, {{old_id, "A"}});
  store.complete_all();
  settle();
  auto again = join(join_req("", "m", "instance-a"));
  store.complete_all(error_code::not_enough_replicas);
  settle();
  ASSERT_TRUE(again->ready());
  EXPECT_EQ((*again)->error, error_code::coordinator_not_available);
  EXPECT_EQ((*again)->member_id, "");
  EXPECT_EQ(heartbeat(old_id, 1, "instance-a"), error_code::none);  // still the valid id
}

TEST_F(group_coordinator_test, static_member_that_does_not_rejoin_stays_through_the_rebalance) {
  join_request long_session = join_req("", "m", "instance-a");
  long_session.session_timeout = 60s;  // outlives the rebalance timeout below
  auto a = join(long_session);
  auto b = join(join_req("", "m"));
  settle();
  const std::string static_id = (*a)->member_id;
  sync(static_id, 1, {{static_id, "A"}});
  sync((*b)->member_id, 1);
  store.complete_all();
  settle();
  join_request changed = join_req((*b)->member_id, "m2");
  auto rejoin = join(changed);  // new metadata: rebalance
  advance(30s);                 // the static member never rejoins
  ASSERT_TRUE(rejoin->ready());
  EXPECT_EQ((*rejoin)->generation_id, 2);
  // Static members are kept (they may be restarting); dynamic ones would be dropped.
  EXPECT_EQ(coordinator->describe("g").members.size(), 2u);
}

TEST_F(group_coordinator_test, commits_from_members_and_generations) {
  std::int32_t generation = 0;
  auto ids = form_group(2, &generation);
  ASSERT_EQ(ids.size(), 2u);
  auto stale = commit("g", generation - 1, ids[0], {{"t", 0, 10, -1, std::nullopt}});
  auto stranger = commit("g", generation, "stranger", {{"t", 0, 10, -1, std::nullopt}});
  auto outsider = commit("g", -1, "", {{"t", 0, 10, -1, std::nullopt}});
  settle();
  EXPECT_EQ((*stale)[0], error_code::illegal_generation);
  EXPECT_EQ((*stranger)[0], error_code::unknown_member_id);
  EXPECT_EQ((*outsider)[0], error_code::unknown_member_id);  // the group has members
  EXPECT_TRUE(store.offset_calls.empty());

  auto good = commit("g", generation, ids[1], {{"t", 0, 10, 3, std::string("md")}});
  settle();
  EXPECT_FALSE(good->ready());
  ASSERT_EQ(store.offset_calls.size(), 1u);
  EXPECT_EQ(store.offset_calls[0].offsets[0].committed_offset, 10);
  EXPECT_EQ(store.offset_calls[0].offsets[0].commit_timestamp_ms, wall_ms);
  // Not durable yet: nothing to fetch, and require_stable says so.
  EXPECT_EQ(fetched("g", "t", 0), -1);
  auto unstable =
      coordinator->fetch_offsets("g", std::vector<topic_partition_ref>{{"t", 0}, {"t", 1}}, true);
  EXPECT_EQ(unstable.partitions[0].error, error_code::unstable_offset_commit);
  EXPECT_EQ(unstable.partitions[1].error, error_code::none);
  fake_store::complete(store.offset_calls[0]);
  settle();
  ASSERT_TRUE(good->ready());
  EXPECT_EQ((*good)[0], error_code::none);
  auto after = coordinator->fetch_offsets("g", std::vector<topic_partition_ref>{{"t", 0}}, true);
  EXPECT_EQ(after.partitions[0].error, error_code::none);
  EXPECT_EQ(after.partitions[0].committed_offset, 10);
  EXPECT_EQ(after.partitions[0].leader_epoch, 3);
  EXPECT_EQ(after.partitions[0].metadata, "md");

  // In completing_rebalance a member of the new generation is told to wait.
  auto rejoin_a = join(join_req(ids[0], subscription_bytes({"t"})));
  auto rejoin_b = join(join_req(ids[1], subscription_bytes({"t"})));
  settle();
  ASSERT_TRUE(rejoin_a->ready());
  auto early = commit("g", generation + 1, ids[1], {{"t", 0, 11, -1, std::nullopt}});
  settle();
  EXPECT_EQ((*early)[0], error_code::rebalance_in_progress);
  // Unknown group with a generation: from an older generation of a vanished group.
  auto vanished = commit("other", 3, "m", {{"t", 0, 1, -1, std::nullopt}});
  settle();
  EXPECT_EQ((*vanished)[0], error_code::illegal_generation);
}

TEST_F(group_coordinator_test, simple_consumer_commits_per_partition_errors_and_store_failure) {
  config.offset_metadata_bytes_max = 4;
  make();
  auto first = commit("simple", -1, "",
                      {{"t", 0, 10, -1, std::nullopt},
                       {"missing", 0, 1, -1, std::nullopt},
                       {"t", 7, 1, -1, std::nullopt},
                       {"t", 1, 20, -1, std::string("too long")}});
  settle();
  ASSERT_EQ(store.offset_calls.size(), 1u);
  ASSERT_EQ(store.offset_calls[0].offsets.size(), 1u);       // only the valid partition is written
  EXPECT_EQ(store.offset_calls[0].offsets[0].metadata, "");  // null metadata is stored as ""
  fake_store::complete(store.offset_calls[0]);
  settle();
  ASSERT_TRUE(first->ready());
  EXPECT_EQ(*first->result,
            (std::vector<error_code>{error_code::none, error_code::unknown_topic_or_partition,
                                     error_code::unknown_topic_or_partition,
                                     error_code::offset_metadata_too_large}));
  EXPECT_EQ(fetched("simple", "t", 0), 10);
  // An offsets-only group: empty, with no protocol type.
  auto listed = coordinator->list_groups({}, {});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].group_id, "simple");
  EXPECT_EQ(listed[0].protocol_type, "");
  EXPECT_EQ(listed[0].state, group_state::empty);

  // A failed write changes nothing and reports the client-facing error.
  auto failed = commit("simple", -1, "", {{"t", 0, 20, -1, std::nullopt}});
  fake_store::complete(store.offset_calls.back(), error_code::not_leader_or_follower);
  settle();
  EXPECT_EQ((*failed)[0], error_code::not_coordinator);
  EXPECT_EQ(fetched("simple", "t", 0), 10);
  auto failed2 = commit("simple", -1, "", {{"t", 0, 30, -1, std::nullopt}});
  fake_store::complete(store.offset_calls.back(), error_code::coordinator_not_available);
  settle();
  EXPECT_EQ((*failed2)[0], error_code::coordinator_not_available);
  EXPECT_EQ(fetched("simple", "t", 0), 10);

  // Only unknown partitions: answered without touching any group.
  auto nothing = commit("fresh", -1, "", {{"nope", 0, 1, -1, std::nullopt}});
  settle();
  EXPECT_EQ((*nothing)[0], error_code::unknown_topic_or_partition);
  EXPECT_EQ(coordinator->group_count(), 1u);
}

TEST_F(group_coordinator_test, fetch_all_offsets_and_unknown_ones) {
  auto c = commit("s", -1, "",
                  {{"u", 0, 3, -1, std::nullopt},
                   {"t", 1, 2, -1, std::nullopt},
                   {"t", 0, 1, -1, std::nullopt}});
  store.complete_all();
  settle();
  auto all = coordinator->fetch_offsets("s", std::nullopt, false);
  ASSERT_EQ(all.partitions.size(), 3u);
  EXPECT_EQ(all.partitions[0].topic, "t");
  EXPECT_EQ(all.partitions[0].committed_offset, 1);
  EXPECT_EQ(all.partitions[1].committed_offset, 2);
  EXPECT_EQ(all.partitions[2].topic, "u");
  EXPECT_EQ(all.partitions[2].committed_offset, 3);
  EXPECT_TRUE(coordinator->fetch_offsets("none", std::nullopt, false).partitions.empty());
  EXPECT_EQ(fetched("none", "t", 0), -1);
  EXPECT_EQ(fetched("s", "t", 9), -1);
}

TEST_F(group_coordinator_test, list_and_describe) {
  auto ids = form_group(2);
  ASSERT_EQ(ids.size(), 2u);
  commit("simple", -1, "", {{"t", 0, 1, -1, std::nullopt}});
  store.complete_all();
  settle();
  EXPECT_EQ(coordinator->list_groups({}, {}).size(), 2u);
  auto stable = coordinator->list_groups({"stable"}, {});
  ASSERT_EQ(stable.size(), 1u);
  EXPECT_EQ(stable[0].group_id, "g");
  EXPECT_EQ(stable[0].protocol_type, "consumer");
  EXPECT_EQ(coordinator->list_groups({"Empty", "Dead"}, {}).size(), 1u);
  EXPECT_EQ(coordinator->list_groups({}, {"Classic"}).size(), 2u);
  EXPECT_TRUE(coordinator->list_groups({}, {"consumer"}).empty());

  auto described = coordinator->describe("g");
  EXPECT_EQ(described.error, error_code::none);
  EXPECT_EQ(described.state, group_state::stable);
  EXPECT_EQ(state_name(described.state), "Stable");
  EXPECT_EQ(described.protocol_type, "consumer");
  EXPECT_EQ(described.protocol, "range");
  ASSERT_EQ(described.members.size(), 2u);
  EXPECT_EQ(described.members[0].client_host, "/127.0.0.1");
  EXPECT_EQ(described.members[0].metadata, subscription_bytes({"t"}));
  EXPECT_EQ(described.members[0].assignment, "assigned-" + described.members[0].member_id);

  // During a rebalance Kafka shows the members without protocol, metadata or assignment.
  join(join_req(ids[0], subscription_bytes({"t"})));
  auto rebalancing = coordinator->describe("g");
  EXPECT_EQ(rebalancing.state, group_state::preparing_rebalance);
  EXPECT_EQ(rebalancing.protocol, "");
  ASSERT_EQ(rebalancing.members.size(), 2u);
  EXPECT_EQ(rebalancing.members[0].assignment, "");

  auto missing = coordinator->describe("missing");
  EXPECT_EQ(missing.error, error_code::none);
  EXPECT_EQ(missing.state, group_state::dead);
  EXPECT_EQ(missing.group_id, "missing");
  EXPECT_EQ(state_name(group_state::completing_rebalance), "CompletingRebalance");
  EXPECT_EQ(state_name(group_state::preparing_rebalance), "PreparingRebalance");
}

TEST_F(group_coordinator_test, delete_group) {
  std::int32_t generation = 0;
  auto ids = form_group(1, &generation);
  auto c = commit("g", generation, ids[0],
                  {{"t", 0, 5, -1, std::nullopt}, {"u", 0, 6, -1, std::nullopt}});
  store.complete_all();
  settle();
  std::optional<error_code> refused, unknown, deleted;
  coordinator->delete_group("g", [&](error_code e) { refused = e; });
  coordinator->delete_group("unknown", [&](error_code e) { unknown = e; });
  settle();
  EXPECT_EQ(refused, error_code::non_empty_group);
  EXPECT_EQ(unknown, error_code::group_id_not_found);

  coordinator->leave("g", {{ids[0], std::nullopt, std::nullopt}}, now);
  ASSERT_EQ(coordinator->describe("g").state, group_state::empty);
  coordinator->delete_group("g", [&](error_code e) { deleted = e; });
  EXPECT_EQ(coordinator->group_count(), 0u);  // gone at once
  ASSERT_EQ(store.delete_offset_calls.size(), 1u);
  EXPECT_EQ(store.delete_offset_calls[0].partitions.size(), 2u);
  ASSERT_EQ(store.delete_group_calls.size(), 1u);  // generation > 0: metadata exists
  settle();
  EXPECT_FALSE(deleted.has_value());  // answered once both tombstones are durable
  fake_store::complete(store.delete_offset_calls[0]);
  settle();
  EXPECT_FALSE(deleted.has_value());
  fake_store::complete(store.delete_group_calls[0]);
  settle();
  EXPECT_EQ(deleted, error_code::none);
  EXPECT_EQ(fetched("g", "t", 0), -1);
  EXPECT_EQ(coordinator->describe("g").state, group_state::dead);
}

TEST_F(group_coordinator_test, offset_delete_refuses_subscribed_topics) {
  std::int32_t generation = 0;
  auto ids = form_group(1, &generation);  // subscribed to "t"
  commit("g", generation, ids[0], {{"t", 0, 5, -1, std::nullopt}, {"u", 0, 6, -1, std::nullopt}});
  store.complete_all();
  settle();
  std::optional<std::pair<error_code, std::vector<error_code>>> result;
  coordinator->delete_offsets("g", {{"t", 0}, {"u", 0}, {"nope", 0}},
                              [&](error_code group_error, std::vector<error_code> errors) {
                                result.emplace(group_error, std::move(errors));
                              });
  settle();
  EXPECT_FALSE(result.has_value());  // u-0's tombstone is not durable yet
  ASSERT_EQ(store.delete_offset_calls.size(), 1u);
  ASSERT_EQ(store.delete_offset_calls[0].partitions.size(), 1u);
  EXPECT_EQ(store.delete_offset_calls[0].partitions[0].topic, "u");
  store.complete_all();
  settle();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->first, error_code::none);
  EXPECT_EQ(result->second,
            (std::vector<error_code>{error_code::group_subscribed_to_topic, error_code::none,
                                     error_code::unknown_topic_or_partition}));
  EXPECT_EQ(fetched("g", "t", 0), 5);
  EXPECT_EQ(fetched("g", "u", 0), -1);

  std::optional<error_code> missing;
  coordinator->delete_offsets("nope", {{"t", 0}},
                              [&](error_code e, std::vector<error_code>) { missing = e; });
  settle();
  EXPECT_EQ(missing, error_code::group_id_not_found);
}

TEST_F(group_coordinator_test, subscription_parsing) {
  auto topics = parse_subscription_topics(subscription_bytes({"a", "bb"}));
  ASSERT_TRUE(topics.has_value());
  EXPECT_EQ(*topics, (std::vector<std::string>{"a", "bb"}));
  std::string bytes = subscription_bytes({"a", "bb"});
  EXPECT_FALSE(parse_subscription_topics(bytes.substr(0, 9)).has_value());  // cut in a topic
  EXPECT_FALSE(parse_subscription_topics("").has_value());
  std::string huge_count("\x00\x00\x7f\xff\xff\xff", 6);
  EXPECT_FALSE(parse_subscription_topics(huge_count).has_value());
}

TEST_F(group_coordinator_test, unparsable_subscription_counts_as_subscribed) {
  auto a = join(join_req("", "garbage"));
  settle();
  sync((*a)->member_id, 1, {{(*a)->member_id, "A"}});
  store.complete_all();
  settle();
  commit("g", 1, (*a)->member_id, {{"u", 0, 6, -1, std::nullopt}});
  store.complete_all();
  settle();
  std::optional<std::vector<error_code>> errors;
  coordinator->delete_offsets("g", {{"u", 0}},
                              [&](error_code, std::vector<error_code> e) { errors = e; });
  settle();
  ASSERT_TRUE(errors.has_value());
  EXPECT_EQ((*errors)[0], error_code::group_subscribed_to_topic);  // Kafka plays safe
}

TEST_F(group_coordinator_test, offsets_of_an_offsets_only_group_expire_and_the_group_goes) {
  config.offsets_retention = 60min;
  config.offsets_retention_check_interval = 1min;
  make();
  settle();
  commit("simple", -1, "", {{"t", 0, 1, -1, std::nullopt}});
  store.complete_all();
  settle();
  for (int i = 0; i < 59; ++i) advance(1min);
  EXPECT_EQ(fetched("simple", "t", 0), 1);
  EXPECT_TRUE(store.delete_offset_calls.empty());
  advance(1min);  // 60 minutes since the commit
  ASSERT_EQ(store.delete_offset_calls.size(), 1u);
  EXPECT_EQ(store.delete_offset_calls[0].group, "simple");
  EXPECT_EQ(coordinator->group_count(), 0u);
  EXPECT_TRUE(store.delete_group_calls.empty());  // generation 0: no metadata was written
}

TEST_F(group_coordinator_test, offsets_of_an_empty_group_age_from_when_it_became_empty) {
  config.offsets_retention = 60min;
  config.offsets_retention_check_interval = 1min;
  make();
  std::int32_t generation = 0;
  auto ids = form_group(1, &generation);
  commit("g", generation, ids[0], {{"u", 0, 6, -1, std::nullopt}});
  store.complete_all();
  for (int i = 0; i < 50 * 12; ++i) {
    advance(5s);
    ASSERT_EQ(heartbeat(ids[0], generation), error_code::none);
  }
  coordinator->leave("g", {{ids[0], std::nullopt, std::nullopt}}, now);  // empty from here
  for (int i = 0; i < 59; ++i) advance(1min);
  EXPECT_EQ(fetched("g", "u", 0), 6);  // 109 min since the commit, 59 since empty
  advance(1min);
  EXPECT_EQ(fetched("g", "u", 0), -1);
  ASSERT_EQ(store.delete_offset_calls.size(), 1u);
  ASSERT_EQ(store.delete_group_calls.size(), 1u);
  EXPECT_EQ(store.delete_group_calls[0].group, "g");
  EXPECT_EQ(coordinator->group_count(), 0u);
}

TEST_F(group_coordinator_test, load_replay_then_members_heartbeat) {
  coordinator->load_offset({"g", "t", 0, 5, -1, std::string("a"), 100});
  coordinator->load_offset({"g", "t", 0, 7, 2, std::string("b"), 200});  // later wins
  coordinator->load_offset({"g", "t", 1, 9, -1, std::nullopt, 100});
  coordinator->unload_offset("g", "t", 1);
  group_metadata_record old_record;
  old_record.group = "g";
  old_record.protocol_type = "consumer";
  old_record.generation = 3;
  old_record.protocol = "range";
  old_record.leader = "m0";
  old_record.members = {{"m0", std::nullopt, "c", "h", 30000, 10000, "s", "x"}};
  coordinator->load_group(old_record);
  group_metadata_record record;
  record.group = "g";
  record.protocol_type = "consumer";
  record.generation = 4;
  record.protocol = "range";
  record.leader = "m2";
  record.state_timestamp_ms = wall_ms;
  record.members = {
      {"m1", std::nullopt, "c1", "h1", 30000, 10000, subscription_bytes({"t"}), "A1"},
      {"m2", std::string("i2"), "c2", "h2", 30000, 10000, subscription_bytes({"t"}), "A2"}};
  coordinator->load_group(record);
  coordinator->load_offset({"gone", "t", 0, 1, -1, std::nullopt, 100});
  group_metadata_record gone;
  gone.group = "gone";
  gone.generation = 1;
  gone.protocol_type = "consumer";
  coordinator->load_group(gone);
  coordinator->unload_offset("gone", "t", 0);
  coordinator->unload_group("gone");
  EXPECT_EQ(coordinator->group_count(), 1u);

  auto offsets = coordinator->fetch_offsets("g", std::nullopt, false);
  ASSERT_EQ(offsets.partitions.size(), 1u);
  EXPECT_EQ(offsets.partitions[0].committed_offset, 7);
  EXPECT_EQ(offsets.partitions[0].leader_epoch, 2);
  EXPECT_EQ(offsets.partitions[0].metadata, "b");

  auto described = coordinator->describe("g");
  EXPECT_EQ(described.state, group_state::stable);
  EXPECT_EQ(described.protocol, "range");
  ASSERT_EQ(described.members.size(), 2u);  // the later record replaced m0
  EXPECT_EQ(described.members[1].assignment, "A2");

  settle();  // sessions start here
  EXPECT_EQ(heartbeat("m1", 4), error_code::none);
  EXPECT_EQ(heartbeat("m2", 4, "i2"), error_code::none);
  EXPECT_EQ(heartbeat("m0", 3), error_code::unknown_member_id);
  auto s = sync("m1", 4);
  settle();
  ASSERT_TRUE(s->ready());
  EXPECT_EQ((*s)->assignment, "A1");
  for (int i = 0; i < 3; ++i) {
    advance(3s);
    EXPECT_EQ(heartbeat("m2", 4, "i2"), error_code::none);
  }
  advance(3s);  // m1 was last heard at the first tick, 12 s ago
  EXPECT_EQ(heartbeat("m2", 4, "i2"), error_code::rebalance_in_progress);
  EXPECT_EQ(heartbeat("m1", 4), error_code::unknown_member_id);
  // The loaded leader rejoins and the group carries on from generation 4.
  auto rejoin = join(join_req("m2", subscription_bytes({"t"}), "i2"));
  settle();
  ASSERT_TRUE(rejoin->ready());
  EXPECT_EQ((*rejoin)->generation_id, 5);
  EXPECT_EQ((*rejoin)->leader, "m2");
}

TEST_F(group_coordinator_test, initial_rebalance_delay) {
  config.initial_rebalance_delay = 3s;
  make();
  auto a = join(join_req(""));
  advance(2999ms);
  EXPECT_FALSE(a->ready());
  advance(1ms);
  ASSERT_TRUE(a->ready());  // one member, no newcomer: exactly the delay
  EXPECT_EQ((*a)->generation_id, 1);

  // A newcomer during the delay of a new group extends it by another delay.
  join_request second = join_req("");
  second.group_id = "h";
  join_request third = second;
  auto b = join(second);
  advance(1s);
  auto c = join(third);
  advance(2s);  // 3 s: the first delay is over, but c arrived meanwhile
  EXPECT_FALSE(b->ready() || c->ready());
  advance(2999ms);
  EXPECT_FALSE(b->ready());
  advance(1ms);  // 6 s
  ASSERT_TRUE(b->ready() && c->ready());
  EXPECT_EQ((*b)->members.size() + (*c)->members.size(), 2u);
}

TEST_F(group_coordinator_test, sync_store_failure_answers_everybody_and_rebalances) {
  auto a = join(join_req(""));
  auto b = join(join_req(""));
  settle();
  auto sb = sync((*b)->member_id, 1);
  auto sa = sync((*a)->member_id, 1, {{(*a)->member_id, "A"}, {(*b)->member_id, "B"}});
  store.complete_all(error_code::request_timed_out);
  settle();
  ASSERT_TRUE(sa->ready() && sb->ready());
  EXPECT_EQ((*sa)->error, error_code::coordinator_not_available);
  EXPECT_EQ((*sb)->error, error_code::coordinator_not_available);
  EXPECT_EQ((*sb)->assignment, "");
  EXPECT_EQ(coordinator->describe("g").state, group_state::preparing_rebalance);
  EXPECT_EQ(heartbeat((*a)->member_id, 1), error_code::rebalance_in_progress);
}

TEST_F(group_coordinator_test, sync_errors) {
  auto a = join(join_req(""));
  auto b = join(join_req(""));
  settle();
  auto wrong_generation = sync((*a)->member_id, 7);
  auto stranger = sync("stranger", 1);
  sync_request wrong_protocol;
  wrong_protocol.group_id = "g";
  wrong_protocol.member_id = (*a)->member_id;
  wrong_protocol.generation_id = 1;
  wrong_protocol.protocol_name = "roundrobin";
  std::optional<sync_result> protocol_result;
  coordinator->sync(wrong_protocol, now, [&](sync_result r) { protocol_result = r; });
  settle();
  EXPECT_EQ((*wrong_generation)->error, error_code::illegal_generation);
  EXPECT_EQ((*stranger)->error, error_code::unknown_member_id);
  ASSERT_TRUE(protocol_result.has_value());
  EXPECT_EQ(protocol_result->error, error_code::inconsistent_group_protocol);
  // While preparing (a rejoined with new metadata, b not yet), SyncGroup says rebalance.
  auto rejoin = join(join_req((*a)->member_id, "changed"));
  auto during = sync((*b)->member_id, 1);
  settle();
  EXPECT_EQ((*during)->error, error_code::rebalance_in_progress);
}

TEST_F(group_coordinator_test, shutdown_answers_held_requests) {
  auto a = join(join_req(""));
  settle();
  auto leader_sync = sync((*a)->member_id, 1);  // its assignment is being stored
  auto b = join(join_req(""));                  // a newcomer: back to preparing, b is held
  settle();
  ASSERT_TRUE(leader_sync->ready());
  EXPECT_EQ((*leader_sync)->error, error_code::rebalance_in_progress);
  EXPECT_FALSE(b->ready());
  coordinator->shutdown();
  ASSERT_TRUE(b->ready());
  EXPECT_EQ((*b)->error, error_code::coordinator_not_available);
  auto late = join(join_req(""));
  settle();
  EXPECT_EQ((*late)->error, error_code::coordinator_not_available);
  EXPECT_EQ(heartbeat((*a)->member_id, 1), error_code::coordinator_not_available);
  store.complete_all();  // a store completion after shutdown is harmless
  settle();
}

TEST_F(group_coordinator_test, bounds_group_size_and_group_count) {
  config.group_size_max = 2;
  config.groups_max = 1;
  make();
  auto ids = form_group(2);
  ASSERT_EQ(ids.size(), 2u);
  auto third = join(join_req(""));
  settle();
  EXPECT_EQ((*third)->error, error_code::group_max_size_reached);
  EXPECT_EQ((*third)->member_id, "");
  EXPECT_EQ(coordinator->describe("g").state, group_state::stable);  // untouched
  join_request other = join_req("");
  other.group_id = "other";
  auto second_group = join(other);
  auto second_commit = commit("other", -1, "", {{"t", 0, 1, -1, std::nullopt}});
  settle();
  EXPECT_EQ((*second_group)->error, error_code::coordinator_not_available);
  EXPECT_EQ((*second_commit)[0], error_code::coordinator_not_available);
  EXPECT_EQ(coordinator->group_count(), 1u);
}

TEST_F(group_coordinator_test, new_member_join_is_dropped_after_five_minutes) {
  // A loaded static member that never rejoins keeps the rebalance open; a new member's
  // JoinGroup then times out after Kafka's NewMemberJoinTimeoutMs (5 minutes).
  group_metadata_record record;
  record.group = "g";
  record.protocol_type = "consumer";
  record.generation = 1;
  record.protocol = "range";
  record.leader = "s";
  record.members = {{"s", std::string("i"), "c", "h", 600000, 600000, "meta", "A"}};
  config.session_timeout_max = 30min;
  make();
  coordinator->load_group(record);
  settle();
  auto fresh = join(join_req(""));  // joins a stable group: rebalance, 10 min timeout
  advance(299s);
  EXPECT_FALSE(fresh->ready());
  advance(1s);
  ASSERT_TRUE(fresh->ready());
  EXPECT_EQ((*fresh)->error, error_code::unknown_member_id);
}

}  // namespace
}  // namespace sluice::groups
