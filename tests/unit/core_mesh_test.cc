#include "engine/reactor/core_mesh.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace sluice {
namespace {

using namespace std::chrono_literals;

TEST(CoreMeshTest, TasksRunOnTheReceiverInTheSendersOrder) {
  auto mesh = core_mesh::create(2, 8);
  ASSERT_TRUE(mesh);
  std::vector<int> ran;
  for (int i = 0; i < 5; ++i) (*mesh)->post(0, 1, make_core_task([&ran, i] { ran.push_back(i); }));
  EXPECT_TRUE((*mesh)->pending(1));
  EXPECT_FALSE((*mesh)->pending(0));
  EXPECT_EQ((*mesh)->drain(1), 5u);
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_FALSE((*mesh)->pending(1));
}

TEST(CoreMeshTest, AFullRingKeepsTasksInTheSendersBacklogInOrder) {
  auto mesh = core_mesh::create(3, 4);
  ASSERT_TRUE(mesh);
  std::vector<int> ran;
  for (int i = 0; i < 10; ++i) (*mesh)->post(0, 1, make_core_task([&ran, i] { ran.push_back(i); }));
  // Another destination is not held up by the full one.
  bool other = false;
  (*mesh)->post(0, 2, make_core_task([&other] { other = true; }));
  EXPECT_EQ((*mesh)->backlog(0), 6u);  // 4 fit the ring to core 1
  EXPECT_EQ((*mesh)->drain(2), 1u);
  EXPECT_TRUE(other);
  // The receiver takes 4; the sender's next turn moves 4 more on, and so on.
  while (ran.size() < 10) {
    (*mesh)->drain(1);
    (*mesh)->drain(0);  // the sender's turn flushes its backlog
  }
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ((*mesh)->backlog(0), 0u);
}

TEST(CoreMeshTest, DrainIsBoundedPerCall) {
  auto mesh = core_mesh::create(2, 64);
  ASSERT_TRUE(mesh);
  int count = 0;
  for (int i = 0; i < 20; ++i) (*mesh)->post(1, 0, make_core_task([&count] { ++count; }));
  EXPECT_EQ((*mesh)->drain(0, 7), 7u);
  EXPECT_EQ(count, 7);
  EXPECT_EQ((*mesh)->drain(0), 13u);
}

// Two threads with their own reactors: a core asleep in its ring is woken by a post, and
// tasks bounce back and forth without loss under concurrency.
TEST(CoreMeshTest, ASleepingCoreIsWokenAndPingPongLosesNothing) {
  auto made = core_mesh::create(2, 16);
  ASSERT_TRUE(made);
  core_mesh& mesh = **made;
  constexpr int rounds = 20000;
  std::atomic<int> pongs{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> attached{false};

  std::thread receiver([&] {
    auto ring = reactor::create(reactor_config{});
    ASSERT_TRUE(ring);
    mesh.attach(1, **ring);
    attached = true;
    while (!stop.load()) {
      // A long wait: only the eventfd can end it early.
      (*ring)->run_once(500ms);
      mesh.drain(1);
    }
    while (mesh.pending(1)) mesh.drain(1);
  });
  while (!attached.load()) std::this_thread::yield();

  auto ring = reactor::create(reactor_config{});
  ASSERT_TRUE(ring);
  mesh.attach(0, **ring);
  // First: a single post to a sleeping core is answered long before its 500 ms wait ends.
  std::this_thread::sleep_for(50ms);
  auto start = std::chrono::steady_clock::now();
  mesh.post(0, 1, make_core_task([&mesh, &pongs] {
              mesh.post(1, 0, make_core_task([&pongs] { ++pongs; }));
            }));
  while (pongs.load() == 0) {
    (*ring)->run_once(500ms);
    mesh.drain(0);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 400ms);

  // Then many in flight at once, through rings of 16 (so the backlogs are exercised).
  for (int i = 1; i < rounds; ++i) {
    mesh.post(0, 1, make_core_task([&mesh, &pongs] {
                mesh.post(1, 0, make_core_task([&pongs] { ++pongs; }));
              }));
    if (i % 100 == 0) mesh.drain(0);
  }
  auto give_up = std::chrono::steady_clock::now() + 30s;
  while (pongs.load() < rounds && std::chrono::steady_clock::now() < give_up) {
    (*ring)->run_once(10ms);
    mesh.drain(0);
  }
  stop = true;
  receiver.join();
  EXPECT_EQ(pongs.load(), rounds);
}

}  // namespace
}  // namespace sluice
