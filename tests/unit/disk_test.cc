#include "engine/io/disk.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/io/faulty_disk.h"

namespace sluice {
namespace {

// A fresh, empty file that is gone when the test ends.
class temp_file {
 public:
  temp_file() {
    const char* dir = std::getenv("TMPDIR");
    std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/sluice-disk-test-XXXXXX";
    fd_ = mkstemp(path.data());
    if (fd_ >= 0) unlink(path.c_str());
  }
  ~temp_file() {
    if (fd_ >= 0) close(fd_);
  }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;

  int fd() const { return fd_; }
  off_t size() const {
    struct stat st {};
    return fstat(fd_, &st) == 0 ? st.st_size : -1;
  }
  std::string read_all() const {
    std::string bytes(static_cast<std::size_t>(size()), '\0');
    ssize_t got = pread(fd_, bytes.data(), bytes.size(), 0);
    bytes.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
    return bytes;
  }

 private:
  int fd_ = -1;
};

class recorder final : public completion {
 public:
  void complete(int res, std::uint32_t flags) noexcept override {
    results.push_back(res);
    last_flags = flags;
  }
  bool done() const { return !results.empty(); }
  std::vector<int> results;
  std::uint32_t last_flags = ~0u;
};

iovec as_iovec(const std::string& s) {
  return iovec{const_cast<char*>(s.data()), s.size()};
}

class DiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto made = reactor::create(reactor_config{.ring_entries = 32});
    ASSERT_TRUE(made.ok()) << made.failure().detail();
    reactor_ = std::move(made).value();
    uring_ = std::make_unique<uring_disk>(*reactor_);
    ASSERT_GE(file_.fd(), 0);
  }

  bool run_until_done(const recorder& r) {
    return reactor_->run_until([&] { return r.done(); });
  }

  temp_file file_;
  std::unique_ptr<reactor> reactor_;
  std::unique_ptr<uring_disk> uring_;
};

TEST_F(DiskTest, WritesSeveralBuffersAtAPosition) {
  const std::string a = "first-";
  const std::string b = "second-";
  const std::string c = "third";
  iovec buffers[] = {as_iovec(a), as_iovec(b), as_iovec(c)};
  constexpr std::uint64_t at = 4096 + 17;
  recorder done;
  uring_->write(file_.fd(), file_pos(at), buffers, &done);
  EXPECT_FALSE(done.done()) << "completion ran inside write()";
  ASSERT_TRUE(run_until_done(done));
  ASSERT_EQ(done.results.size(), 1u);
  const std::string expected = a + b + c;
  EXPECT_EQ(done.results[0], static_cast<int>(expected.size()));
  EXPECT_EQ(done.last_flags, 0u);
  ASSERT_EQ(file_.size(), static_cast<off_t>(at + expected.size()));
  std::string back(expected.size(), '\0');
  ASSERT_EQ(pread(file_.fd(), back.data(), back.size(), at), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(back, expected);
  // Bytes before the position were never written: a hole reads as zeros.
  char hole[16];
  ASSERT_EQ(pread(file_.fd(), hole, sizeof(hole), 0), static_cast<ssize_t>(sizeof(hole)));
  for (char byte : hole) EXPECT_EQ(byte, '\0');
}

TEST_F(DiskTest, WriteToABadDescriptorFailsAsynchronously) {
  const std::string a = "x";
  iovec buffers[] = {as_iovec(a)};
  int read_only = open("/dev/null", O_RDONLY);
  ASSERT_GE(read_only, 0);
  recorder done;
  uring_->write(read_only, file_pos(0), buffers, &done);
  ASSERT_TRUE(run_until_done(done));
  EXPECT_EQ(done.results[0], -EBADF);
  close(read_only);
}

TEST_F(DiskTest, SyncSucceeds) {
  const std::string a = "durable";
  iovec buffers[] = {as_iovec(a)};
  recorder wrote;
  uring_->write(file_.fd(), file_pos(0), buffers, &wrote);
  ASSERT_TRUE(run_until_done(wrote));
  recorder synced;
  uring_->sync(file_.fd(), &synced);
  EXPECT_FALSE(synced.done());
  ASSERT_TRUE(run_until_done(synced));
  ASSERT_EQ(synced.results.size(), 1u);
  EXPECT_EQ(synced.results[0], 0);
  EXPECT_EQ(&uring_->reactor(), reactor_.get());
}

class FaultyDiskTest : public DiskTest {
 protected:
  void SetUp() override {
    DiskTest::SetUp();
    if (HasFatalFailure()) return;
    faulty_ = std::make_unique<faulty_disk>(*uring_);
  }
  void TearDown() override {
    // Whatever a failing test left in flight must finish before the disk goes away.
    if (reactor_) reactor_->run_until([&] { return reactor_->in_flight() == 0; });
  }

  std::unique_ptr<faulty_disk> faulty_;
};

TEST_F(FaultyDiskTest, PassesThroughWhenHealthy) {
  const std::string a = "healthy";
  iovec buffers[] = {as_iovec(a)};
  recorder done;
  faulty_->write(file_.fd(), file_pos(0), buffers, &done);
  ASSERT_TRUE(run_until_done(done));
  EXPECT_EQ(done.results[0], static_cast<int>(a.size()));
  EXPECT_EQ(file_.read_all(), a);
  EXPECT_EQ(&faulty_->reactor(), reactor_.get());
}

TEST_F(FaultyDiskTest, InjectedEnospcArrivesFromRunOnceAndWritesNothing) {
  faulty_->fail_writes(-ENOSPC);
  const std::string a = "never written";
  iovec buffers[] = {as_iovec(a)};
  recorder done;
  faulty_->write(file_.fd(), file_pos(0), buffers, &done);
  EXPECT_FALSE(done.done()) << "the failure was delivered inside write()";
  EXPECT_EQ(reactor_->in_flight(), 1u) << "the failure must travel through the ring";
  ASSERT_TRUE(run_until_done(done));
  ASSERT_EQ(done.results.size(), 1u);
  EXPECT_EQ(done.results[0], -ENOSPC);
  EXPECT_EQ(done.last_flags, 0u);
  EXPECT_EQ(file_.size(), 0);

  // Only one write was asked to fail: the next one goes through.
  recorder next;
  faulty_->write(file_.fd(), file_pos(0), buffers, &next);
  ASSERT_TRUE(run_until_done(next));
  EXPECT_EQ(next.results[0], static_cast<int>(a.size()));
  EXPECT_EQ(file_.read_all(), a);
}

TEST_F(FaultyDiskTest, FailsExactlyTheRequestedNumberOfWrites) {
  faulty_->fail_writes(-EIO, 3);
  const std::string a = "abc";
  iovec buffers[] = {as_iovec(a)};
  recorder done[5];
  for (auto& d : done) faulty_->write(file_.fd(), file_pos(0), buffers, &d);
  ASSERT_TRUE(reactor_->run_until([&] {
    for (auto& d : done) {
      if (!d.done()) return false;
    }
    return true;
  }));
  EXPECT_EQ(done[0].results[0], -EIO);
  EXPECT_EQ(done[1].results[0], -EIO);
  EXPECT_EQ(done[2].results[0], -EIO);
  EXPECT_EQ(done[3].results[0], 3);
  EXPECT_EQ(done[4].results[0], 3);
  EXPECT_EQ(faulty_->writes(), 5u);
}

TEST_F(FaultyDiskTest, InjectedSyncFailure) {
  faulty_->fail_syncs(-EIO);
  recorder failed;
  faulty_->sync(file_.fd(), &failed);
  EXPECT_FALSE(failed.done());
  ASSERT_TRUE(run_until_done(failed));
  ASSERT_EQ(failed.results.size(), 1u);
  EXPECT_EQ(failed.results[0], -EIO);

  recorder ok;
  faulty_->sync(file_.fd(), &ok);
  ASSERT_TRUE(run_until_done(ok));
  EXPECT_EQ(ok.results[0], 0);
  EXPECT_EQ(faulty_->syncs(), 2u);
  EXPECT_EQ(faulty_->writes(), 0u);
}

TEST_F(FaultyDiskTest, HeldSyncsCompleteOnlyAfterRelease) {
  faulty_->hold_syncs();
  recorder first, second;
  faulty_->sync(file_.fd(), &first);
  faulty_->sync(file_.fd(), &second);
  EXPECT_EQ(faulty_->held_syncs(), 2u);
  EXPECT_EQ(reactor_->in_flight(), 0u) << "a held sync must not reach the ring";
  // Writes still flow while syncs are held.
  const std::string a = "written";
  iovec buffers[] = {as_iovec(a)};
  recorder wrote;
  faulty_->write(file_.fd(), file_pos(0), buffers, &wrote);
  ASSERT_TRUE(run_until_done(wrote));
  for (int turn = 0; turn < 5; ++turn) reactor_->run_once(std::chrono::milliseconds(10));
  EXPECT_FALSE(first.done());
  EXPECT_FALSE(second.done());

  faulty_->release_syncs();
  EXPECT_EQ(faulty_->held_syncs(), 0u);
  EXPECT_FALSE(first.done()) << "a released sync completes through the reactor";
  ASSERT_TRUE(reactor_->run_until([&] { return first.done() && second.done(); }));
  EXPECT_EQ(first.results, std::vector<int>{0});
  EXPECT_EQ(second.results, std::vector<int>{0});

  // Released means no longer holding: the next sync goes straight through.
  recorder after;
  faulty_->sync(file_.fd(), &after);
  EXPECT_EQ(faulty_->held_syncs(), 0u);
  ASSERT_TRUE(run_until_done(after));
  EXPECT_EQ(after.results, std::vector<int>{0});
  EXPECT_EQ(faulty_->syncs(), 3u);
}

TEST_F(FaultyDiskTest, ShortWriteWritesExactlyTheFirstBytes) {
  const std::string a = "abc";
  const std::string b = "defgh";
  const std::string c = "ijkl";
  iovec buffers[] = {as_iovec(a), as_iovec(b), as_iovec(c)};
  faulty_->short_write_next(5);  // ends inside the second buffer
  recorder done;
  faulty_->write(file_.fd(), file_pos(0), buffers, &done);
  EXPECT_FALSE(done.done());
  ASSERT_TRUE(run_until_done(done));
  ASSERT_EQ(done.results.size(), 1u);
  EXPECT_EQ(done.results[0], 5);
  EXPECT_EQ(file_.read_all(), (a + b + c).substr(0, 5));
  // The caller's iovecs are untouched: it resubmits the rest from them.
  EXPECT_EQ(buffers[1].iov_len, b.size());

  // Only the next write was short.
  recorder full;
  faulty_->write(file_.fd(), file_pos(0), buffers, &full);
  ASSERT_TRUE(run_until_done(full));
  EXPECT_EQ(full.results[0], static_cast<int>(a.size() + b.size() + c.size()));
  EXPECT_EQ(file_.read_all(), a + b + c);
}

TEST_F(FaultyDiskTest, ShortWriteOfZeroStillMakesProgress) {
  const std::string a = "xyz";
  iovec buffers[] = {as_iovec(a)};
  faulty_->short_write_next(0);
  recorder done;
  faulty_->write(file_.fd(), file_pos(0), buffers, &done);
  ASSERT_TRUE(run_until_done(done));
  EXPECT_EQ(done.results[0], 1);
  EXPECT_EQ(file_.read_all(), "x");
}

// Writes a whole buffer, resubmitting the rest from inside complete() after each short
// write, the way storage's appender is expected to.
class write_all final : public completion {
 public:
  write_all(disk& d, int fd, std::string bytes) : disk_(d), fd_(fd), bytes_(std::move(bytes)) {}
  void start() { submit_rest(); }
  void complete(int res, std::uint32_t) noexcept override {
    ++rounds;
    if (res <= 0) {
      error = res < 0 ? res : -EIO;
      return;
    }
    written += static_cast<std::size_t>(res);
    if (written < bytes_.size())
      submit_rest();
    else
      finished = true;
  }
  std::size_t written = 0;
  int rounds = 0;
  int error = 0;
  bool finished = false;

 private:
  void submit_rest() {
    rest_ = iovec{bytes_.data() + written, bytes_.size() - written};
    disk_.write(fd_, file_pos(written), std::span<const iovec>(&rest_, 1), this);
  }
  disk& disk_;
  int fd_;
  std::string bytes_;
  iovec rest_{};
};

TEST_F(FaultyDiskTest, CallerResubmitsAfterShortWriteFromInsideComplete) {
  const std::string payload = "0123456789abcdefghij";
  write_all writer(*faulty_, file_.fd(), payload);
  faulty_->short_write_next(7);
  writer.start();
  faulty_->short_write_next(4);  // armed again for the resubmission
  ASSERT_TRUE(reactor_->run_until([&] { return writer.finished || writer.error != 0; }));
  EXPECT_EQ(writer.error, 0);
  EXPECT_EQ(writer.rounds, 3);  // 7, then 4, then the remaining 9
  EXPECT_EQ(file_.read_all(), payload);
  EXPECT_EQ(faulty_->writes(), 3u);
}

TEST_F(FaultyDiskTest, HealStopsEveryInjection) {
  faulty_->fail_writes(-ENOSPC, 10);
  faulty_->fail_syncs(-EIO, 10);
  faulty_->short_write_next(1);
  faulty_->heal();
  const std::string a = "after heal";
  iovec buffers[] = {as_iovec(a)};
  recorder wrote;
  recorder synced;
  faulty_->write(file_.fd(), file_pos(0), buffers, &wrote);
  faulty_->sync(file_.fd(), &synced);
  ASSERT_TRUE(reactor_->run_until([&] { return wrote.done() && synced.done(); }));
  EXPECT_EQ(wrote.results[0], static_cast<int>(a.size()));
  EXPECT_EQ(synced.results[0], 0);
  EXPECT_EQ(file_.read_all(), a);
}

TEST_F(FaultyDiskTest, CountsEveryCallIncludingFailures) {
  const std::string a = "n";
  iovec buffers[] = {as_iovec(a)};
  std::vector<recorder> done(7);
  faulty_->fail_writes(-EIO, 2);
  for (int i = 0; i < 4; ++i) faulty_->write(file_.fd(), file_pos(0), buffers, &done[i]);
  faulty_->fail_syncs(-EIO, 1);
  for (int i = 4; i < 7; ++i) faulty_->sync(file_.fd(), &done[i]);
  EXPECT_EQ(faulty_->writes(), 4u);
  EXPECT_EQ(faulty_->syncs(), 3u);
  ASSERT_TRUE(reactor_->run_until([&] { return reactor_->in_flight() == 0; }));
  for (const auto& d : done) EXPECT_EQ(d.results.size(), 1u);
  EXPECT_EQ(done[4].results[0], -EIO);
  EXPECT_EQ(done[5].results[0], 0);
}

TEST_F(FaultyDiskTest, ManyInjectedFailuresAreAllDeliveredAndFreed) {
  // More than the ring holds, so prepare() submits on its own; ASan checks that every
  // injected object is freed exactly once, after its completion.
  const std::string a = "z";
  iovec buffers[] = {as_iovec(a)};
  constexpr int count = 200;
  std::vector<recorder> done(count);
  faulty_->fail_writes(-ENOSPC, count);
  for (auto& d : done) faulty_->write(file_.fd(), file_pos(0), buffers, &d);
  ASSERT_TRUE(reactor_->run_until([&] { return reactor_->in_flight() == 0; }));
  for (const auto& d : done) {
    ASSERT_EQ(d.results.size(), 1u);
    EXPECT_EQ(d.results[0], -ENOSPC);
  }
  EXPECT_EQ(file_.size(), 0);
}

}  // namespace
}  // namespace sluice
