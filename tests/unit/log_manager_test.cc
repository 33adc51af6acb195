#include "engine/storage/log_manager.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <fstream>

#include "engine/storage/checkpoint.h"
#include "tests/support/storage_fixture.h"

namespace sluice::test {
namespace {

class LogManagerTest : public storage_test {
 protected:
  std::unique_ptr<log_manager> open_manager(std::size_t open_max = 0) {
    log_manager_config config;
    config.data_dir = dir_.path() + "/data";
    config.defaults = small_config();
    config.open_partitions_max = open_max;
    auto m = log_manager::open(config, *disk_);
    EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.failure().detail());
    return m.ok() ? std::move(*m) : nullptr;
  }
  void append(partition_log& log, int n) {
    for (int i = 0; i < n; ++i) {
      batches_.push_back(make_batch(3, "m" + std::to_string(batches_.size())));
      ASSERT_TRUE(log.append(batches_.back().span(), timestamp_ms(0)).ok());
    }
    drain(log);
  }
  std::vector<owned_batch> batches_;
};

TEST(TopicPartition, DirectoryNames) {
  EXPECT_EQ((topic_partition{"orders", 3}.dir_name()), "orders-3");
  auto parsed = topic_partition::from_dir_name("my-topic-12");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->topic, "my-topic");
  EXPECT_EQ(parsed->partition, 12);
  EXPECT_FALSE(topic_partition::from_dir_name("no_partition").has_value());
  EXPECT_FALSE(topic_partition::from_dir_name("bad topic-1").has_value());
  EXPECT_FALSE(topic_partition::from_dir_name("t-x").has_value());
  EXPECT_FALSE(is_legal_topic_name(std::string(250, 'a')));
  EXPECT_TRUE(is_legal_topic_name(std::string(249, 'a')));
}

TEST(OffsetCheckpoint, RoundTripAndRejectsGarbage) {
  temp_dir dir;
  std::string path = dir.path() + "/cp";
  offset_checkpoint entries{{{"a", 0}, offset(5)}, {{"b.c", 7}, offset(123456789012)}};
  ASSERT_TRUE(write_offset_checkpoint(path, entries).ok());
  auto read = read_offset_checkpoint(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, entries);
  EXPECT_TRUE(read_offset_checkpoint(dir.path() + "/missing")->empty());
  for (const char* garbage : {"1\n0\n", "0\n2\na 0 5\n", "0\n1\na x 5\n", "0\n1\na 0 5 6\n"}) {
    std::ofstream(path) << garbage;
    EXPECT_EQ(read_offset_checkpoint(path).code(), errc::corrupt_batch) << garbage;
  }
}

TEST_F(LogManagerTest, CreatesAndReopensPartitionsAfterCleanShutdown) {
  {
    auto m = open_manager();
    auto a = m->create({"orders", 0}, small_config());
    auto b = m->create({"orders", 1}, small_config());
    ASSERT_TRUE(a.ok() && b.ok());
    append(**a, 10);
    append(**b, 4);
    ASSERT_TRUE(m->shutdown().ok());
  }
  EXPECT_TRUE(path_exists(dir_.path() + "/data/.sluice_cleanshutdown"));
  EXPECT_TRUE(path_exists(dir_.path() + "/data/orders-0/00000000000000000000.log"));
  auto m = open_manager();
  EXPECT_FALSE(path_exists(dir_.path() + "/data/.sluice_cleanshutdown"))
      << "the marker must go once the directory is in use again";
  EXPECT_EQ(m->stats().partitions, 2u);
  EXPECT_EQ(m->stats().partitions_recovered, 0u);
  ASSERT_NE(m->get({"orders", 0}), nullptr);
  EXPECT_EQ(m->get({"orders", 0})->log_end_offset(), offset(30));
  EXPECT_EQ(m->get({"orders", 1})->log_end_offset(), offset(12));
  EXPECT_EQ(m->get({"orders", 2}), nullptr);
  ASSERT_TRUE(m->shutdown().ok());
}

TEST_F(LogManagerTest, UncleanStopRecoversAndKeepsLogStartOffsets) {
  {
    auto m = open_manager();
    auto a = m->create({"t", 0}, small_config());
    ASSERT_TRUE(a.ok());
    append(**a, 10);
    ASSERT_TRUE((*a)->delete_records(offset(6)).ok());
    ASSERT_TRUE(m->write_checkpoints().ok());
    // No shutdown: as if the process died here. Drop the manager without the marker.
    m->for_each([&](const topic_partition&, partition_log& log) { drain(log); });
  }
  auto m = open_manager();
  EXPECT_EQ(m->stats().partitions_recovered, 1u);
  EXPECT_EQ(m->get({"t", 0})->log_start_offset(), offset(6));
  EXPECT_EQ(m->get({"t", 0})->log_end_offset(), offset(30));
  ASSERT_TRUE(m->shutdown().ok());
}

TEST_F(LogManagerTest, SecondManagerOnTheSameDirectoryIsRefused) {
  auto first = open_manager();
  log_manager_config config;
  config.data_dir = dir_.path() + "/data";
  auto second = log_manager::open(config, *disk_);
  EXPECT_EQ(second.code(), errc::invalid_argument);
  ASSERT_TRUE(first->shutdown().ok());
}

TEST_F(LogManagerTest, IdlePartitionsAreClosedWithinBudgetAndReopenOnUse) {
  auto m = open_manager(/*open_max=*/10);
  for (int p = 0; p < 50; ++p) {
    auto log = m->create({"many", p}, small_config());
    ASSERT_TRUE(log.ok());
    append(**log, 1);
  }
  m->tick(timestamp_ms(1));
  EXPECT_LE(m->stats().partitions_open, 10u);
  // A closed partition still reads and appends.
  auto* log = m->get({"many", 0});
  ASSERT_NE(log, nullptr);
  auto r = log->read(offset(0), 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(batches_in(r->bytes).size(), 1u);
  append(*log, 1);
  EXPECT_EQ(log->log_end_offset(), offset(6));
  ASSERT_TRUE(m->shutdown().ok());
}

TEST_F(LogManagerTest, RemoveDeletesThePartitionDirectory) {
  auto m = open_manager();
  auto log = m->create({"gone", 0}, small_config());
  ASSERT_TRUE(log.ok());
  append(**log, 2);
  ASSERT_TRUE(m->remove({"gone", 0}).ok());
  EXPECT_FALSE(path_exists(dir_.path() + "/data/gone-0"));
  EXPECT_EQ(m->get({"gone", 0}), nullptr);
  EXPECT_EQ(m->create({"bad name", 0}, small_config()).code(), errc::invalid_argument);
  ASSERT_TRUE(m->shutdown().ok());
}

// Ten thousand partitions in one process, under the default soft limit of 1024 open files:
// partitions close their files when idle and reopen on use.
TEST_F(LogManagerTest, TenThousandPartitionsWithinTheDefaultDescriptorLimit) {
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit lowered = saved;
  lowered.rlim_cur = std::min<rlim_t>(saved.rlim_cur, 1024);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);
  auto config = small_config();
  config.flush = flush_policy::never();  // this test is about descriptors, not the disk
  {
    auto m = open_manager();
    ASSERT_NE(m, nullptr);
    constexpr int partitions = 10000;
    for (int p = 0; p < partitions; ++p) {
      auto log = m->create({"wide", p}, config);
      ASSERT_TRUE(log.ok()) << "partition " << p << ": " << log.failure().detail();
      batches_.push_back(make_batch(1, "w" + std::to_string(p)));
      ASSERT_TRUE((*log)->append(batches_.back().span(), timestamp_ms(0)).ok());
      drain(**log);
      if (p % 500 == 0) m->tick(timestamp_ms(p));
    }
    m->tick(timestamp_ms(partitions));
    auto fds = list_directory("/proc/self/fd");
    ASSERT_TRUE(fds.ok());
    EXPECT_LT(fds->size(), 1024u);
    EXPECT_LT(m->stats().partitions_open, m->stats().partitions);
    // Every partition still reads back its record.
    for (int p = 0; p < partitions; p += 97) {
      auto* log = m->get({"wide", p});
      ASSERT_NE(log, nullptr);
      auto r = log->read(offset(0), 1024);
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(batches_in(r->bytes).size(), 1u);
    }
    ASSERT_TRUE(m->shutdown().ok());
  }
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
}

}  // namespace
}  // namespace sluice::test
