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

// Several log_managers, one per "core", sharing one data directory: partition p belongs to
// shard p % count.
class ShardedLogManagerTest : public LogManagerTest {
 protected:
  std::string data_dir() const { return dir_.path() + "/data"; }
  std::string data_file(const std::string& name) const { return data_dir() + "/" + name; }

  std::unique_ptr<data_directory> claim() {
    auto claimed = data_directory::claim(data_dir());
    EXPECT_TRUE(claimed.ok()) << (claimed.ok() ? "" : claimed.failure().detail());
    return claimed.ok() ? std::move(*claimed) : nullptr;
  }
  log_manager_config shard_config(const data_directory& shared, std::uint32_t index,
                                  std::uint32_t count) {
    log_manager_config config;
    config.data_dir = data_dir();
    config.defaults = small_config();
    config.shard.index = index;
    config.shard.count = count;
    config.shard.owns = [index, count](const topic_partition& tp) {
      return static_cast<std::uint32_t>(tp.partition) % count == index;
    };
    config.shared = &shared;
    return config;
  }
  std::vector<std::unique_ptr<log_manager>> open_shards(const data_directory& shared,
                                                        std::uint32_t count) {
    std::vector<std::unique_ptr<log_manager>> shards;
    for (std::uint32_t k = 0; k < count; ++k) {
      auto m = log_manager::open(shard_config(shared, k, count), *disk_);
      EXPECT_TRUE(m.ok()) << "shard " << k << ": " << (m.ok() ? "" : m.failure().detail());
      if (!m.ok()) return {};
      shards.push_back(std::move(*m));
    }
    return shards;
  }
  offset_checkpoint read_checkpoint(const std::string& name) {
    auto read = read_offset_checkpoint(data_file(name));
    EXPECT_TRUE(read.ok()) << name;
    return read.ok() ? *read : offset_checkpoint{};
  }
  // The records a partition reads back from its log start, counted batch by batch.
  std::size_t batches_readable(partition_log& log) {
    auto r = log.read(log.log_start_offset(), 1 << 20);
    EXPECT_TRUE(r.ok());
    return r.ok() ? batches_in(r->bytes).size() : 0;
  }
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

// Partition p gets p + 1 batches of 3 records, so its log ends at 3 * (p + 1).
offset expected_end(int partition) {
  return offset(3 * (partition + 1));
}

TEST_F(ShardedLogManagerTest, TwoShardsShareADirectoryAndReopenAsOne) {
  {
    auto shared = claim();
    ASSERT_NE(shared, nullptr);
    EXPECT_FALSE(shared->was_clean());
    auto shards = open_shards(*shared, 2);
    ASSERT_EQ(shards.size(), 2u);
    ASSERT_TRUE(shared->finish_open(2).ok());
    for (int p = 0; p < 4; ++p) {
      log_manager& owner = *shards[p % 2];
      log_manager& other = *shards[1 - p % 2];
      EXPECT_EQ(other.create({"t", p}, small_config()).code(), errc::invalid_argument)
          << "partition " << p << " belongs to the other shard";
      EXPECT_FALSE(path_exists(data_file("t-" + std::to_string(p))));
      auto log = owner.create({"t", p}, small_config());
      ASSERT_TRUE(log.ok());
      append(**log, p + 1);
    }
    for (std::uint32_t k = 0; k < 2; ++k) {
      EXPECT_EQ(shards[k]->stats().partitions, 2u);
      for (int p = 0; p < 4; ++p) {
        EXPECT_EQ(shards[k]->get({"t", p}) != nullptr, static_cast<std::uint32_t>(p % 2) == k)
            << "shard " << k << " partition " << p;
      }
    }
    for (auto& shard : shards) {
      ASSERT_TRUE(shard->shutdown().ok());
      EXPECT_TRUE(shard->stopped_clean());
    }
    EXPECT_FALSE(path_exists(data_file(".sluice_cleanshutdown")))
        << "a shard must leave the marker to the process";
    // Each shard's files hold exactly its own partitions.
    EXPECT_EQ(read_checkpoint("recovery-point-offset-checkpoint.0"),
              (offset_checkpoint{{{"t", 0}, expected_end(0)}, {{"t", 2}, expected_end(2)}}));
    EXPECT_EQ(read_checkpoint("recovery-point-offset-checkpoint.1"),
              (offset_checkpoint{{{"t", 1}, expected_end(1)}, {{"t", 3}, expected_end(3)}}));
    EXPECT_EQ(read_checkpoint("log-start-offset-checkpoint.1"),
              (offset_checkpoint{{{"t", 1}, offset(0)}, {{"t", 3}, offset(0)}}));
    EXPECT_FALSE(path_exists(data_file("recovery-point-offset-checkpoint")));
    ASSERT_TRUE(shared->mark_clean_shutdown().ok());
  }
  EXPECT_TRUE(path_exists(data_file(".sluice_cleanshutdown")));

  auto m = open_manager();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->stats().partitions, 4u);
  EXPECT_EQ(m->stats().partitions_recovered, 0u);
  for (int p = 0; p < 4; ++p) {
    auto* log = m->get({"t", p});
    ASSERT_NE(log, nullptr) << p;
    EXPECT_EQ(log->written_end(), expected_end(p));
    EXPECT_EQ(batches_readable(*log), static_cast<std::size_t>(p + 1));
  }
  for (const char* name :
       {"recovery-point-offset-checkpoint.0", "recovery-point-offset-checkpoint.1",
        "log-start-offset-checkpoint.0", "log-start-offset-checkpoint.1"}) {
    EXPECT_FALSE(path_exists(data_file(name))) << name << " should be gone";
  }
  // The single manager's own file took over every partition at open.
  EXPECT_EQ(read_checkpoint("recovery-point-offset-checkpoint").size(), 4u);
  EXPECT_FALSE(path_exists(data_file(".sluice_cleanshutdown")));
  ASSERT_TRUE(m->shutdown().ok());
}

TEST_F(ShardedLogManagerTest, OneManagersDirectoryReopensAsTwoShards) {
  {
    auto m = open_manager();
    for (int p = 0; p < 4; ++p) {
      auto log = m->create({"t", p}, small_config());
      ASSERT_TRUE(log.ok());
      append(**log, p + 1);
    }
    ASSERT_TRUE(m->get({"t", 3})->delete_records(offset(3)).ok());
    ASSERT_TRUE(m->shutdown().ok());
  }
  auto shared = claim();
  ASSERT_NE(shared, nullptr);
  EXPECT_TRUE(shared->was_clean());
  auto shards = open_shards(*shared, 2);
  ASSERT_EQ(shards.size(), 2u);
  for (std::uint32_t k = 0; k < 2; ++k) {
    EXPECT_EQ(shards[k]->stats().partitions, 2u);
    EXPECT_EQ(shards[k]->stats().partitions_recovered, 0u);
    for (int p = 0; p < 4; ++p) {
      auto* log = shards[k]->get({"t", p});
      if (static_cast<std::uint32_t>(p % 2) != k) {
        EXPECT_EQ(log, nullptr) << "shard " << k << " opened partition " << p;
        continue;
      }
      ASSERT_NE(log, nullptr) << p;
      EXPECT_EQ(log->written_end(), expected_end(p));
    }
  }
  EXPECT_EQ(shards[1]->get({"t", 3})->log_start_offset(), offset(3));
  EXPECT_EQ(batches_readable(*shards[1]->get({"t", 3})), 3u);
  EXPECT_TRUE(path_exists(data_file(".sluice_cleanshutdown")))
      << "the marker goes only once every shard has opened";
  ASSERT_TRUE(shared->finish_open(2).ok());
  EXPECT_FALSE(path_exists(data_file(".sluice_cleanshutdown")));
  EXPECT_FALSE(path_exists(data_file("recovery-point-offset-checkpoint")));
  EXPECT_FALSE(path_exists(data_file("log-start-offset-checkpoint")));
  // The shards wrote their own files at open, so nothing was lost with the old ones.
  EXPECT_EQ(read_checkpoint("log-start-offset-checkpoint.1"),
            (offset_checkpoint{{{"t", 1}, offset(0)}, {{"t", 3}, offset(3)}}));
  // And keep them current.
  append(*shards[0]->get({"t", 2}), 2);
  ASSERT_TRUE(shards[0]->write_checkpoints().ok());
  EXPECT_EQ(read_checkpoint("recovery-point-offset-checkpoint.0"),
            (offset_checkpoint{{{"t", 0}, expected_end(0)}, {{"t", 2}, expected_end(4)}}));
  for (auto& shard : shards) ASSERT_TRUE(shard->shutdown().ok());
}

// A partition named in several files (the core count changed since they were written)
// takes the lowest recovery point and the highest log start offset.
TEST_F(ShardedLogManagerTest, CheckpointsOfSeveralShardCountsMergeSafely) {
  {
    auto m = open_manager();
    auto log = m->create({"t", 0}, small_config());
    ASSERT_TRUE(log.ok());
    append(**log, 5);
    ASSERT_TRUE((*log)->roll(timestamp_ms(0)).ok());
    append(**log, 5);
    ASSERT_EQ((*log)->segment_count(), 2u);
    m->for_each([&](const topic_partition&, partition_log& l) { drain(l); });
    // No shutdown: an unclean stop, so the recovery point decides what is validated.
  }
  std::string partition_dir = data_file("t-0");
  std::vector<offset> bases;
  auto names = list_directory(partition_dir);
  ASSERT_TRUE(names.ok());
  for (const auto& name : *names) {
    if (auto base = parse_segment_file_name(name, ".log")) bases.push_back(*base);
  }
  std::sort(bases.begin(), bases.end());
  ASSERT_EQ(bases.size(), 2u);
  // Damage the last batch of the first segment. Only a recovery that starts in that
  // segment, i.e. at the lower of the two recovery points, sees it and cuts the log there.
  {
    std::fstream f(partition_dir + "/" + segment_file_name(bases[0], ".log"),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-1, std::ios::end);
    char last = 0;
    f.get(last);
    f.seekp(-1, std::ios::end);
    f.put(static_cast<char>(last ^ 0x5a));
  }
  offset end = offset(30);
  auto write = [&](const std::string& name, offset value) {
    ASSERT_TRUE(write_offset_checkpoint(data_file(name), {{{"t", 0}, value}}).ok());
  };
  write("recovery-point-offset-checkpoint", end);
  write("recovery-point-offset-checkpoint.1", offset(0));
  write("log-start-offset-checkpoint", offset(3));
  write("log-start-offset-checkpoint.1", offset(6));
  write("log-start-offset-checkpoint.0", offset(4));
  // Not checkpoint files of any shard: a temporary and a backup.
  write("log-start-offset-checkpoint.tmp", offset(9));
  write("log-start-offset-checkpoint.bak", offset(9));

  auto m = open_manager();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->stats().partitions_recovered, 1u);
  auto* log = m->get({"t", 0});
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_start_offset(), offset(6));
  // The damaged batch (the first segment's last three records) and everything after it
  // are gone.
  EXPECT_EQ(log->log_end_offset(), offset(bases[1].value() - 3));
  EXPECT_EQ(log->segment_count(), 1u);
  // The merged values now live in the single manager's files; the shard files are gone.
  EXPECT_EQ(read_checkpoint("log-start-offset-checkpoint"),
            (offset_checkpoint{{{"t", 0}, offset(6)}}));
  EXPECT_EQ(read_checkpoint("recovery-point-offset-checkpoint"),
            (offset_checkpoint{{{"t", 0}, log->log_end_offset()}}));
  EXPECT_FALSE(path_exists(data_file("log-start-offset-checkpoint.0")));
  EXPECT_FALSE(path_exists(data_file("log-start-offset-checkpoint.1")));
  EXPECT_FALSE(path_exists(data_file("recovery-point-offset-checkpoint.1")));
  EXPECT_TRUE(path_exists(data_file("log-start-offset-checkpoint.bak")));
  ASSERT_TRUE(m->shutdown().ok());
}

// From two cores to three: ownership moves, and a crash before every shard has rewritten
// its files must not lose the log start offset of a partition that changed hands.
TEST_F(ShardedLogManagerTest, ChangingTheCoreCountKeepsLogStartOffsetsThroughACrash) {
  {
    auto shared = claim();
    ASSERT_NE(shared, nullptr);
    auto shards = open_shards(*shared, 2);
    ASSERT_EQ(shards.size(), 2u);
    ASSERT_TRUE(shared->finish_open(2).ok());
    for (int p = 0; p < 6; ++p) {
      auto log = shards[p % 2]->create({"t", p}, small_config());
      ASSERT_TRUE(log.ok());
      append(**log, 3);
      ASSERT_TRUE((*log)->delete_records(offset(p)).ok());
    }
    for (auto& shard : shards) ASSERT_TRUE(shard->shutdown().ok());
    ASSERT_TRUE(shared->mark_clean_shutdown().ok());
  }
  {
    // Three cores now. Only shard 0 opens (rewriting log-start-offset-checkpoint.0 without
    // partition 2, which moved to shard 2), then the process dies.
    auto shared = claim();
    ASSERT_NE(shared, nullptr);
    auto m = log_manager::open(shard_config(*shared, 0, 3), *disk_);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(read_checkpoint("log-start-offset-checkpoint.0"),
              (offset_checkpoint{{{"t", 0}, offset(0)}, {{"t", 3}, offset(3)}}));
    (*m)->for_each([&](const topic_partition&, partition_log& l) { drain(l); });
  }
  auto shared = claim();
  ASSERT_NE(shared, nullptr);
  EXPECT_TRUE(shared->was_clean())
      << "nothing is appended before finish_open, so the marker still vouches for the logs";
  auto shards = open_shards(*shared, 3);
  ASSERT_EQ(shards.size(), 3u);
  ASSERT_TRUE(shared->finish_open(3).ok());
  for (int p = 0; p < 6; ++p) {
    auto* log = shards[p % 3]->get({"t", p});
    ASSERT_NE(log, nullptr) << p;
    EXPECT_EQ(log->log_start_offset(), offset(p)) << "partition " << p;
    EXPECT_EQ(log->written_end(), offset(9));
  }
  EXPECT_FALSE(path_exists(data_file("log-start-offset-checkpoint")));
  for (int k = 0; k < 3; ++k) {
    auto name = "log-start-offset-checkpoint." + std::to_string(k);
    EXPECT_EQ(read_checkpoint(name),
              (offset_checkpoint{{{"t", k}, offset(k)}, {{"t", k + 3}, offset(k + 3)}}));
  }
  for (auto& shard : shards) ASSERT_TRUE(shard->shutdown().ok());
}

TEST_F(ShardedLogManagerTest, AClaimedDirectoryRefusesASecondClaimAndALoneManager) {
  auto shared = claim();
  ASSERT_NE(shared, nullptr);
  EXPECT_EQ(data_directory::claim(data_dir()).code(), errc::invalid_argument);
  log_manager_config alone;
  alone.data_dir = data_dir();
  EXPECT_EQ(log_manager::open(alone, *disk_).code(), errc::invalid_argument);
  // A derived open-files budget is split between the shards.
  auto shard = log_manager::open(shard_config(*shared, 1, 2), *disk_);
  ASSERT_TRUE(shard.ok());
  std::size_t shard_budget = (*shard)->config().open_partitions_max;
  ASSERT_TRUE((*shard)->shutdown().ok());
  shard->reset();
  shared.reset();
  auto m = open_manager();
  ASSERT_NE(m, nullptr) << "the lock goes with the data_directory";
  EXPECT_EQ(shard_budget, std::max<std::size_t>(m->config().open_partitions_max / 2, 16));
  EXPECT_EQ(data_directory::claim(data_dir()).code(), errc::invalid_argument);
  ASSERT_TRUE(m->shutdown().ok());
}

TEST_F(ShardedLogManagerTest, UncleanStopOfTwoShardsRecovers) {
  {
    auto shared = claim();
    ASSERT_NE(shared, nullptr);
    auto shards = open_shards(*shared, 2);
    ASSERT_EQ(shards.size(), 2u);
    ASSERT_TRUE(shared->finish_open(2).ok());
    for (int p = 0; p < 4; ++p) {
      auto log = shards[p % 2]->create({"t", p}, small_config());
      ASSERT_TRUE(log.ok());
      append(**log, p + 1);
    }
    for (auto& shard : shards) {
      ASSERT_TRUE(shard->write_checkpoints().ok());
      shard->for_each([&](const topic_partition&, partition_log& l) { drain(l); });
    }
    // No shutdown, no marker: the process died.
  }
  {
    auto shared = claim();
    EXPECT_FALSE(shared->was_clean());
    auto shards = open_shards(*shared, 2);
    ASSERT_EQ(shards.size(), 2u);
    ASSERT_TRUE(shared->finish_open(2).ok());
    for (std::uint32_t k = 0; k < 2; ++k) {
      EXPECT_EQ(shards[k]->stats().partitions_recovered, 2u) << "shard " << k;
    }
    for (int p = 0; p < 4; ++p) {
      EXPECT_EQ(shards[p % 2]->get({"t", p})->written_end(), expected_end(p));
    }
    // One shard stops cleanly, the other never does: the directory is not marked clean.
    ASSERT_TRUE(shards[0]->shutdown().ok());
    shards[1]->for_each([&](const topic_partition&, partition_log& l) { drain(l); });
  }
  auto shared = claim();
  EXPECT_FALSE(shared->was_clean());
  auto shards = open_shards(*shared, 2);
  ASSERT_EQ(shards.size(), 2u);
  EXPECT_EQ(shards[0]->stats().partitions_recovered, 2u);
  EXPECT_EQ(shards[1]->stats().partitions_recovered, 2u);
  ASSERT_TRUE(shared->finish_open(2).ok());
  for (auto& shard : shards) ASSERT_TRUE(shard->shutdown().ok());
}

}  // namespace
}  // namespace sluice::test
