#include "engine/reactor/reactor.h"

#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace sluice {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<reactor> make_reactor(unsigned ring_entries = 64) {
  auto made = reactor::create(reactor_config{.ring_entries = ring_entries});
  if (!made.ok()) {
    ADD_FAILURE() << "reactor::create failed: " << made.failure().detail();
    return nullptr;
  }
  return std::move(made).value();
}

// Records every completion it receives.
class recorder final : public completion {
 public:
  void complete(int res, std::uint32_t flags) noexcept override {
    results.push_back(res);
    all_flags.push_back(flags);
  }
  std::vector<int> results;
  std::vector<std::uint32_t> all_flags;
};

// Counts completions; one per NOP in the many-NOPs test.
class counter final : public completion {
 public:
  void complete(int res, std::uint32_t) noexcept override {
    ++calls;
    if (res != 0) ++failures;
  }
  int calls = 0;
  int failures = 0;
};

TEST(Reactor, CreateGivesAWorkingRing) {
  auto r = make_reactor();
  ASSERT_NE(r, nullptr);
  EXPECT_GE(r->ring()->ring_fd, 0);
  // The CQ is twice the SQ, as reactor_config documents.
  EXPECT_EQ(r->ring()->cq.ring_entries, 2 * r->ring()->sq.ring_entries);
  EXPECT_EQ(r->in_flight(), 0u);
}

TEST(Reactor, CreateRejectsAnImpossibleRingSize) {
  auto zero = reactor::create(reactor_config{.ring_entries = 0});
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.code(), errc::invalid_argument);
  auto huge = reactor::create(reactor_config{.ring_entries = 1u << 20});
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.code(), errc::invalid_argument);
}

// Installs a seccomp filter that makes io_uring_setup fail with `errno_value`, as a
// container runtime's profile would. Returns false if the filter could not be installed.
bool block_io_uring_setup(int errno_value) {
  sock_filter program[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K,
               SECCOMP_RET_ERRNO | (static_cast<unsigned>(errno_value) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog filter{static_cast<unsigned short>(std::size(program)), program};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter) == 0;
}

// In a child process: block io_uring_setup with `errno_value`, try to create a reactor and
// print the error's detail; exit with the errno the error carries.
[[noreturn]] void create_with_io_uring_blocked(int errno_value) {
  if (!block_io_uring_setup(errno_value)) {
    std::fprintf(stderr, "could not install the seccomp filter\n");
    std::_Exit(200);
  }
  auto made = reactor::create(reactor_config{});
  if (made.ok()) {
    std::fprintf(stderr, "create succeeded although io_uring_setup is blocked\n");
    std::_Exit(201);
  }
  std::fprintf(stderr, "detail: %s\n", made.failure().detail());
  std::_Exit(made.code() == errc::io_error ? made.failure().os_errno() : 202);
}

TEST(ReactorDeathTest, BlockedBySeccompSaysWhatToCheck) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(create_with_io_uring_blocked(EPERM), ::testing::ExitedWithCode(EPERM),
              "detail: io_uring is blocked: check sysctl kernel.io_uring_disabled and any "
              "seccomp profile");
}

TEST(ReactorDeathTest, MissingSyscallSaysKernelTooOld) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(create_with_io_uring_blocked(ENOSYS), ::testing::ExitedWithCode(ENOSYS),
              "detail: io_uring is not available: kernel too old \\(need Linux 5.15\\+\\)");
}

TEST(Reactor, NopCompletionIsDispatchedWithItsResult) {
  auto r = make_reactor();
  ASSERT_NE(r, nullptr);
  recorder first;
  recorder second;
  io_uring_prep_nop(r->prepare(&first));
  io_uring_prep_nop(r->prepare(&second));
  EXPECT_EQ(r->in_flight(), 2u);
  // Nothing is dispatched before the loop runs.
  EXPECT_TRUE(first.results.empty());
  ASSERT_TRUE(r->run_until([&] { return !first.results.empty() && !second.results.empty(); }));
  ASSERT_EQ(first.results.size(), 1u);
  EXPECT_EQ(first.results[0], 0);
  EXPECT_EQ(first.all_flags[0] & IORING_CQE_F_MORE, 0u);
  ASSERT_EQ(second.results.size(), 1u);
  EXPECT_EQ(r->in_flight(), 0u);
}

TEST(Reactor, FailedOperationReportsNegativeErrno) {
  auto r = make_reactor();
  ASSERT_NE(r, nullptr);
  recorder done;
  // fsync of a descriptor that was never opened: the kernel answers -EBADF in the CQE.
  io_uring_prep_fsync(r->prepare(&done), 1'000'000, 0);
  ASSERT_TRUE(r->run_until([&] { return !done.results.empty(); }));
  ASSERT_EQ(done.results.size(), 1u);
  EXPECT_EQ(done.results[0], -EBADF);
}

TEST(Reactor, ManyMoreNopsThanTheRingAllCompleteExactlyOnce) {
  constexpr unsigned ring_entries = 64;
  constexpr int nops = 10'000;
  auto r = make_reactor(ring_entries);
  ASSERT_NE(r, nullptr);
  std::vector<counter> counters(nops);
  // All prepared before the loop runs: prepare() must submit by itself each time the
  // SQ fills, and the completions spill far past the CQ into the kernel's overflow list.
  for (auto& c : counters) io_uring_prep_nop(r->prepare(&c));
  EXPECT_EQ(r->in_flight(), static_cast<std::size_t>(nops));
  // run_once() reports what it dispatched; bounded: each call makes progress or the
  // loop gives up long before the bound.
  int dispatched = 0;
  for (int round = 0; round < 100'000 && r->in_flight() > 0; ++round) {
    dispatched += static_cast<int>(r->run_once(0us));
  }
  EXPECT_EQ(r->in_flight(), 0u);
  EXPECT_EQ(dispatched, nops);
  for (int i = 0; i < nops; ++i) {
    ASSERT_EQ(counters[i].calls, 1) << "NOP " << i;
    ASSERT_EQ(counters[i].failures, 0) << "NOP " << i;
  }
}

TEST(Reactor, InterleavedPrepareAndRunKeepsCountsExact) {
  auto r = make_reactor(8);
  ASSERT_NE(r, nullptr);
  std::vector<counter> counters(1000);
  std::size_t dispatched = 0;
  for (std::size_t i = 0; i < counters.size(); ++i) {
    io_uring_prep_nop(r->prepare(&counters[i]));
    if (i % 5 == 4) dispatched += r->run_once(0us);
    EXPECT_EQ(r->in_flight(), i + 1 - dispatched);
  }
  for (int round = 0; round < 100'000 && r->in_flight() > 0; ++round) {
    dispatched += r->run_once(1ms);
  }
  EXPECT_EQ(r->in_flight(), 0u);
  EXPECT_EQ(dispatched, counters.size());
  for (const auto& c : counters) EXPECT_EQ(c.calls, 1);
}

// Re-arms itself from inside complete() until it has run `rounds_max` times.
class rearming final : public completion {
 public:
  explicit rearming(reactor& r) : reactor_(r) {}
  void complete(int res, std::uint32_t) noexcept override {
    ++rounds;
    last_res = res;
    if (rounds < rounds_max) io_uring_prep_nop(reactor_.prepare(this));
  }
  static constexpr int rounds_max = 500;
  int rounds = 0;
  int last_res = -1;

 private:
  reactor& reactor_;
};

TEST(Reactor, CompletionCanPrepareAnotherFromInsideComplete) {
  // A tiny ring, so re-arming from inside the dispatch loop also hits prepare()'s
  // submit-when-full path while CQEs of the same batch are still being dispatched.
  auto r = make_reactor(4);
  ASSERT_NE(r, nullptr);
  std::vector<rearming> chains;
  chains.reserve(16);
  for (int i = 0; i < 16; ++i) chains.emplace_back(*r);
  for (auto& chain : chains) io_uring_prep_nop(r->prepare(&chain));
  ASSERT_TRUE(r->run_until([&] { return r->in_flight() == 0; }));
  for (const auto& chain : chains) {
    EXPECT_EQ(chain.rounds, rearming::rounds_max);
    EXPECT_EQ(chain.last_res, 0);
  }
}

// Calls run_once() from inside complete(): the nested loop must not dispatch a CQE the
// outer loop already took.
class nesting final : public completion {
 public:
  explicit nesting(reactor& r) : reactor_(r) {}
  void complete(int, std::uint32_t) noexcept override {
    ++calls;
    reactor_.run_once(std::chrono::microseconds(0));
  }
  int calls = 0;

 private:
  reactor& reactor_;
};

TEST(Reactor, RunOnceFromInsideCompleteDispatchesEachCqeOnce) {
  auto r = make_reactor();
  ASSERT_NE(r, nullptr);
  std::vector<nesting> all;
  all.reserve(50);
  for (int i = 0; i < 50; ++i) all.emplace_back(*r);
  for (auto& n : all) io_uring_prep_nop(r->prepare(&n));
  ASSERT_TRUE(r->run_until([&] { return r->in_flight() == 0; }));
  for (const auto& n : all) EXPECT_EQ(n.calls, 1);
}

TEST(Reactor, RunOnceWithoutWaitReturnsPromptly) {
  auto r = make_reactor();
  ASSERT_NE(r, nullptr);
  // Something in flight that will not complete for a long time, so a waiting call
  // would block.
  recorder never;
  __kernel_timespec long_time{.tv_sec = 30, .tv_nsec = 0};
  io_uring_prep_timeout(r->prepare(&never), &long_time, 0, 0);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) EXPECT_EQ(r->run_once(0us), 0u);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, 1s);
  EXPECT_TRUE(never.results.empty());
  EXPECT_EQ(r->in_flight(), 1u);

  // Cancel it so nothing is left in flight when the ring is torn down.
  recorder cancel;
  io_uring_prep_timeout_remove(r->prepare(&cancel), reinterpret_cast<__u64>(&never), 0);
  ASSERT_TRUE(r->run_until([&] { return r->in_flight() == 0; }));
  ASSERT_EQ(never.results.size(), 1u);
  EXPECT_EQ(never.results[0], -ECANCELED);
  ASSERT_EQ(cancel.results.size(), 1u);
  EXPECT_EQ(cancel.results[0], 0);
}

TEST(Reactor, RunOnceWaitsNoLongerThanAsked) {
  auto r = make_reactor();
  ASSERT_NE(r, nullptr);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(r->run_once(20ms), 0u);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 15ms);
  EXPECT_LT(elapsed, 2s);
}

TEST(Reactor, TimeoutCompletesWithEtime) {
  auto r = make_reactor();
  ASSERT_NE(r, nullptr);
  recorder done;
  __kernel_timespec soon{.tv_sec = 0, .tv_nsec = 20'000'000};
  auto start = std::chrono::steady_clock::now();
  io_uring_prep_timeout(r->prepare(&done), &soon, 0, 0);
  EXPECT_EQ(r->in_flight(), 1u);
  ASSERT_TRUE(r->run_until([&] { return !done.results.empty(); }));
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(done.results.size(), 1u);
  EXPECT_EQ(done.results[0], -ETIME);
  EXPECT_GE(elapsed, 15ms);
  EXPECT_EQ(r->in_flight(), 0u);
}

TEST(Reactor, WaitingRunOnceWakesForACompletion) {
  auto r = make_reactor();
  ASSERT_NE(r, nullptr);
  recorder done;
  __kernel_timespec soon{.tv_sec = 0, .tv_nsec = 10'000'000};
  io_uring_prep_timeout(r->prepare(&done), &soon, 0, 0);
  // One call with a generous wait: it must return once the timer fires, not after 5 s.
  auto start = std::chrono::steady_clock::now();
  unsigned dispatched = 0;
  for (int i = 0; i < 3 && dispatched == 0; ++i) dispatched += r->run_once(5s);
  EXPECT_EQ(dispatched, 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  ASSERT_EQ(done.results.size(), 1u);
  EXPECT_EQ(done.results[0], -ETIME);
}

TEST(Reactor, MultishotCountsInFlightUntilTheFinalCqe) {
  auto r = make_reactor();
  ASSERT_NE(r, nullptr);
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  recorder poll;
  io_uring_prep_poll_multishot(r->prepare(&poll), pipe_fds[0], POLLIN);
  r->run_once(0us);
  EXPECT_TRUE(poll.results.empty());
  EXPECT_EQ(r->in_flight(), 1u);

  // Readiness produces a CQE flagged IORING_CQE_F_MORE: the poll stays armed, and in flight.
  ASSERT_EQ(::write(pipe_fds[1], "x", 1), 1);
  ASSERT_TRUE(r->run_until([&] { return !poll.results.empty(); }));
  EXPECT_GT(poll.results[0], 0);
  EXPECT_NE(poll.all_flags[0] & IORING_CQE_F_MORE, 0u);
  EXPECT_EQ(r->in_flight(), 1u);

  // Removing it ends the operation with a last CQE without F_MORE.
  recorder remove;
  io_uring_prep_poll_remove(r->prepare(&remove), reinterpret_cast<__u64>(&poll));
  EXPECT_EQ(r->in_flight(), 2u);
  ASSERT_TRUE(r->run_until([&] { return r->in_flight() == 0; }));
  ASSERT_GE(poll.results.size(), 2u);
  EXPECT_EQ(poll.all_flags.back() & IORING_CQE_F_MORE, 0u);
  ASSERT_EQ(remove.results.size(), 1u);
  EXPECT_EQ(remove.results[0], 0);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST(Reactor, PreparedSqeIsZeroedApartFromUserData) {
  auto r = make_reactor(4);
  ASSERT_NE(r, nullptr);
  recorder done;
  // Dirty a slot, then make the ring reuse it.
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) {
      io_uring_sqe* sqe = r->prepare(&done);
      EXPECT_EQ(sqe->opcode, 0);
      EXPECT_EQ(sqe->flags, 0);
      EXPECT_EQ(sqe->fd, 0);
      EXPECT_EQ(sqe->off, 0u);
      EXPECT_EQ(sqe->len, 0u);
      EXPECT_EQ(sqe->user_data, reinterpret_cast<__u64>(&done));
      io_uring_prep_nop(sqe);
      sqe->flags = IOSQE_ASYNC;
    }
    ASSERT_TRUE(r->run_until([&] { return r->in_flight() == 0; }));
  }
  EXPECT_EQ(done.results.size(), 12u);
}

}  // namespace
}  // namespace sluice
