#include "engine/storage/partition_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "engine/storage/time_index.h"
#include "tests/support/storage_fixture.h"

namespace sluice::test {
namespace {

class PartitionLogTest : public storage_test {
 protected:
  std::unique_ptr<partition_log> open_log(const log_config& config, disk* io = nullptr,
                                          bool clean = true, offset recovery_point = offset(0)) {
    auto log = partition_log::open(dir_.path() + "/topic-0", config, io ? *io : *disk_,
                                   recovery_point, clean);
    EXPECT_TRUE(log.ok()) << (log.ok() ? "" : log.failure().detail());
    if (!log.ok()) return nullptr;
    (*log)->set_listener(&listener_);
    return std::move(*log);
  }

  // Appends `n` batches of `records` records, tagged b<i>, and drains.
  void append_batches(partition_log& log, int n, int records, std::size_t value_bytes = 16,
                      std::int64_t timestamp = 1000) {
    for (int i = 0; i < n; ++i) {
      batches_.push_back(make_batch(records, "b" + std::to_string(batches_.size()),
                                    timestamp + i * 10, value_bytes));
      auto info = log.append(batches_.back().span(), timestamp_ms(0));
      ASSERT_TRUE(info.ok()) << info.failure().detail();
    }
    drain(log);
  }

  // Reads the whole log from `from` in steps and returns every batch header.
  std::vector<batch_header> read_all(partition_log& log, offset from, std::size_t step = 4096) {
    std::vector<batch_header> out;
    offset next = from;
    for (int guard = 0; guard < 100000 && next < log.written_end(); ++guard) {
      auto r = log.read(next, step);
      EXPECT_TRUE(r.ok());
      if (!r.ok() || r->bytes.empty()) break;
      for (auto& h : batches_in(r->bytes)) out.push_back(h);
      next = r->next_offset;
    }
    return out;
  }

  recording_listener listener_;
  std::vector<owned_batch> batches_;
};

TEST_F(PartitionLogTest, AppendAssignsOffsetsAndReadsBackExactBytes) {
  auto log = open_log(small_config());
  append_batches(*log, 10, 5);
  EXPECT_EQ(log->log_end_offset(), offset(50));
  EXPECT_EQ(log->written_end(), offset(50));
  EXPECT_EQ(listener_.written, offset(50));
  auto r = log->read(offset(0), 1 << 20);
  ASSERT_TRUE(r.ok());
  auto headers = batches_in(r->bytes);
  ASSERT_EQ(headers.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(headers[i].base_offset, offset(i * 5));
    EXPECT_EQ(headers[i].records_count, 5);
  }
  // The stored bytes are the caller's batch bytes, with offsets assigned in place.
  std::size_t position = 0;
  for (auto& b : batches_) {
    ASSERT_TRUE(std::equal(b.bytes.begin(), b.bytes.end(), r->bytes.begin() + position));
    position += b.bytes.size();
  }
  EXPECT_EQ(r->next_offset, offset(50));
}

TEST_F(PartitionLogTest, ReadReturnsAtLeastOneWholeBatchAndRespectsBytesMax) {
  auto log = open_log(small_config());
  append_batches(*log, 4, 3, 100);
  auto one = log->read(offset(0), 1);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(batches_in(one->bytes).size(), 1u);
  EXPECT_EQ(one->next_offset, offset(3));
  std::size_t batch_bytes = batches_[0].bytes.size();
  auto two = log->read(offset(0), batch_bytes * 2 + 1);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(batches_in(two->bytes).size(), 2u);
  // An offset in the middle of a batch returns that whole batch.
  auto middle = log->read(offset(4), 1);
  ASSERT_TRUE(middle.ok());
  ASSERT_EQ(batches_in(middle->bytes).size(), 1u);
  EXPECT_EQ(batches_in(middle->bytes)[0].base_offset, offset(3));
  // Upper bound stops before a batch starting at or after it.
  auto bounded = log->read(offset(0), 1 << 20, offset(6));
  ASSERT_TRUE(bounded.ok());
  EXPECT_EQ(batches_in(bounded->bytes).size(), 2u);
}

TEST_F(PartitionLogTest, ReadOutsideTheLogIsOutOfRange) {
  auto log = open_log(small_config());
  append_batches(*log, 2, 2);
  EXPECT_EQ(log->read(offset(5), 100).code(), errc::offset_out_of_range);
  auto at_end = log->read(offset(4), 100);
  ASSERT_TRUE(at_end.ok());
  EXPECT_TRUE(at_end->bytes.empty());
  EXPECT_EQ(at_end->next_offset, offset(4));
}

TEST_F(PartitionLogTest, DefaultPolicyFlushesEverythingWithGroupCommit) {
  auto log = open_log(small_config(), faulty_.get());
  // Queue many batches before the reactor runs: they share writes and syncs.
  for (int i = 0; i < 200; ++i) {
    batches_.push_back(make_batch(1, "g" + std::to_string(i)));
    ASSERT_TRUE(log->append(batches_.back().span(), timestamp_ms(0)).ok());
  }
  drain(*log);
  EXPECT_EQ(log->flushed_end(), offset(200));
  EXPECT_EQ(listener_.flushed, offset(200));
  EXPECT_LT(faulty_->writes(), 10u) << "batches were not gathered into vectored writes";
  EXPECT_LT(faulty_->syncs(), 10u) << "syncs were not shared between batches";
  EXPECT_GE(faulty_->syncs(), 1u);
}

TEST_F(PartitionLogTest, NeverPolicyFlushesOnlyWhenAsked) {
  auto config = small_config();
  config.flush = flush_policy::never();
  auto log = open_log(config, faulty_.get());
  append_batches(*log, 5, 2);
  EXPECT_EQ(log->written_end(), offset(10));
  EXPECT_EQ(log->flushed_end(), offset(0));
  EXPECT_EQ(faulty_->syncs(), 0u);
  log->flush();
  drain(*log);
  EXPECT_EQ(log->flushed_end(), offset(10));
}

TEST_F(PartitionLogTest, EveryNMessagesPolicy) {
  auto config = small_config();
  config.flush.every_messages = 10;
  auto log = open_log(config, faulty_.get());
  append_batches(*log, 4, 2);  // 8 messages: below the threshold
  EXPECT_EQ(log->flushed_end(), offset(0));
  append_batches(*log, 1, 2);  // 10
  EXPECT_EQ(log->flushed_end(), offset(10));
}

TEST_F(PartitionLogTest, TimePolicyFlushesOnTick) {
  auto config = small_config();
  config.flush.every_messages.reset();
  config.flush.every_ms = std::chrono::milliseconds(100);
  auto log = open_log(config);
  log->tick(timestamp_ms(1000));
  append_batches(*log, 3, 1);
  log->tick(timestamp_ms(1050));
  drain(*log);
  EXPECT_EQ(log->flushed_end(), offset(0));
  log->tick(timestamp_ms(1100));
  drain(*log);
  EXPECT_EQ(log->flushed_end(), offset(3));
}

TEST_F(PartitionLogTest, RollsSegmentsAndReadsAcrossThem) {
  auto log = open_log(small_config());
  append_batches(*log, 60, 10, 100);  // ~1.5 KiB batches, 64 KiB segments
  EXPECT_GT(log->segment_count(), 1u);
  auto headers = read_all(*log, offset(0));
  ASSERT_EQ(headers.size(), 60u);
  for (int i = 0; i < 60; ++i) EXPECT_EQ(headers[i].base_offset, offset(i * 10));
  // Files are named by base offset with 20 digits.
  EXPECT_TRUE(path_exists(dir_.path() + "/topic-0/00000000000000000000.log"));
  EXPECT_TRUE(path_exists(dir_.path() + "/topic-0/00000000000000000000.index"));
  EXPECT_TRUE(path_exists(dir_.path() + "/topic-0/00000000000000000000.timeindex"));
  // Every offset can be found through the indexes.
  for (int target = 0; target < 600; target += 7) {
    auto r = log->read(offset(target), 1);
    ASSERT_TRUE(r.ok());
    auto h = batches_in(r->bytes);
    ASSERT_EQ(h.size(), 1u);
    EXPECT_LE(h[0].base_offset, offset(target));
    EXPECT_GT(h[0].next_offset(), offset(target));
  }
}

TEST_F(PartitionLogTest, SealedSegmentIndexesAreTrimmed) {
  auto config = small_config();
  auto log = open_log(config);
  append_batches(*log, 60, 10, 100);
  ASSERT_GT(log->segment_count(), 1u);
  struct stat st {};
  ASSERT_EQ(::stat((dir_.path() + "/topic-0/00000000000000000000.index").c_str(), &st), 0);
  EXPECT_LT(static_cast<std::size_t>(st.st_size), config.index_bytes_max);
  EXPECT_EQ(st.st_size % 8, 0);
}

TEST_F(PartitionLogTest, ReopenAfterCleanCloseKeepsEverything) {
  {
    auto log = open_log(small_config());
    append_batches(*log, 30, 10, 100);
    ASSERT_TRUE(log->close().ok());
  }
  auto log = open_log(small_config());
  EXPECT_EQ(log->log_end_offset(), offset(300));
  EXPECT_EQ(log->flushed_end(), offset(300));
  auto headers = read_all(*log, offset(0));
  ASSERT_EQ(headers.size(), 30u);
  append_batches(*log, 1, 1);
  EXPECT_EQ(log->log_end_offset(), offset(301));
}

TEST_F(PartitionLogTest, RetentionBySizeDeletesOldSegmentsNeverTheActiveOne) {
  auto config = small_config();
  config.retention_bytes = 100 * 1024;
  auto log = open_log(config);
  append_batches(*log, 200, 10, 100);
  auto before = log->segment_count();
  auto deleted = log->enforce_retention(timestamp_ms(0));
  ASSERT_TRUE(deleted.ok());
  EXPECT_GT(*deleted, 0u);
  EXPECT_EQ(log->segment_count(), before - *deleted);
  EXPECT_LE(log->size_bytes(), 100u * 1024 + config.segment_bytes);
  EXPECT_GT(log->log_start_offset(), offset(0));
  EXPECT_EQ(log->read(offset(0), 100).code(), errc::offset_out_of_range);
  auto headers = read_all(*log, log->log_start_offset());
  EXPECT_EQ(headers.back().next_offset(), offset(2000));
  EXPECT_FALSE(path_exists(dir_.path() + "/topic-0/00000000000000000000.log"));
  // A tiny limit still keeps the active segment.
  config.retention_bytes = 1;
  log->set_config(config);
  ASSERT_TRUE(log->enforce_retention(timestamp_ms(0)).ok());
  EXPECT_EQ(log->segment_count(), 1u);
  EXPECT_EQ(log->log_end_offset(), offset(2000));
}

// Retention renames a deleted segment's .log to .deleted at once (the directory synced),
// and the unlink of that file -- tens of milliseconds for a large segment -- completes
// later through the ring, off the caller's thread.
TEST_F(PartitionLogTest, RetentionUnlinksDeletedSegmentsThroughTheRing) {
  auto config = small_config();
  config.retention_bytes = 100 * 1024;
  auto log = open_log(config);
  append_batches(*log, 200, 10, 100);
  const std::string first = dir_.path() + "/topic-0/00000000000000000000.log";
  ASSERT_TRUE(path_exists(first));
  auto deleted = log->enforce_retention(timestamp_ms(0));
  ASSERT_TRUE(deleted.ok());
  ASSERT_GT(*deleted, 0u);
  EXPECT_FALSE(path_exists(first));
  EXPECT_FALSE(path_exists(dir_.path() + "/topic-0/00000000000000000000.index"));
  EXPECT_TRUE(path_exists(first + ".deleted"));  // not unlinked yet: no reactor turn
  EXPECT_TRUE(log->idle());                      // the unlinks do not hold the log
  ASSERT_TRUE(reactor_->run_until([&] { return !path_exists(first + ".deleted"); }));
  auto names = list_directory(dir_.path() + "/topic-0");
  ASSERT_TRUE(names.ok());
  for (const auto& name : *names) EXPECT_FALSE(name.ends_with(".deleted")) << name;
}

// A .deleted file that a crash left before its unlink is removed when the log opens.
TEST_F(PartitionLogTest, OpenRemovesSegmentFilesLeftDeleted) {
  auto config = small_config();
  {
    auto log = open_log(config);
    append_batches(*log, 20, 10, 100);
  }
  const std::string leftover = dir_.path() + "/topic-0/00000000000000000000.log.deleted";
  std::ofstream(leftover) << "a segment retention deleted";
  ASSERT_TRUE(path_exists(leftover));
  auto log = open_log(config);
  ASSERT_NE(log, nullptr);
  EXPECT_FALSE(path_exists(leftover));
  EXPECT_EQ(log->log_end_offset(), offset(200));
}

TEST_F(PartitionLogTest, RetentionByTimeUsesLargestTimestamp) {
  auto config = small_config();
  config.retention_ms = std::chrono::milliseconds(1000);
  auto log = open_log(config);
  append_batches(*log, 150, 10, 100, /*timestamp=*/5000);
  ASSERT_GT(log->segment_count(), 2u);
  // Nothing is older than 1 s at t = 5500.
  EXPECT_EQ(*log->enforce_retention(timestamp_ms(5500)), 0u);
  // Far in the future every sealed segment is too old.
  auto deleted = log->enforce_retention(timestamp_ms(1'000'000));
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(log->segment_count(), 1u);
}

TEST_F(PartitionLogTest, DeleteRecordsMovesLogStart) {
  auto log = open_log(small_config());
  append_batches(*log, 60, 10, 100);
  ASSERT_EQ(log->segment_count(), 2u);
  // Inside the first segment: the segment stays, reads below the new start fail.
  ASSERT_TRUE(log->delete_records(offset(255)).ok());
  EXPECT_EQ(log->log_start_offset(), offset(255));
  EXPECT_EQ(log->segment_count(), 2u);
  EXPECT_EQ(log->read(offset(254), 10).code(), errc::offset_out_of_range);
  auto r = log->read(offset(255), 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(batches_in(r->bytes)[0].base_offset, offset(250));
  // Past the first segment: it is deleted.
  ASSERT_TRUE(log->delete_records(offset(595)).ok());
  EXPECT_EQ(log->segment_count(), 1u);
  EXPECT_EQ(log->log_start_offset(), offset(595));
  EXPECT_FALSE(path_exists(dir_.path() + "/topic-0/00000000000000000000.log"));
  EXPECT_EQ(log->delete_records(offset(601)).code(), errc::offset_out_of_range);
}

TEST_F(PartitionLogTest, TruncateToCutsAcrossSegmentsAndAppendsContinue) {
  auto log = open_log(small_config());
  append_batches(*log, 60, 10, 100);
  ASSERT_TRUE(log->truncate_to(offset(125)).ok());
  // The batch [120, 130) holds 125 and goes: truncation is at batch granularity below.
  EXPECT_EQ(log->log_end_offset(), offset(125));
  auto headers = read_all(*log, offset(0));
  ASSERT_FALSE(headers.empty());
  EXPECT_EQ(headers.back().base_offset, offset(110));
  batches_.push_back(make_batch(3, "after"));
  auto info = log->append(batches_.back().span(), timestamp_ms(0));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->base_offset, offset(125));
  drain(*log);
  ASSERT_TRUE(log->close().ok());
  log.reset();
  auto reopened = open_log(small_config(), nullptr, /*clean=*/false);
  EXPECT_EQ(reopened->log_end_offset(), offset(128));
}

TEST_F(PartitionLogTest, TruncateRefusedWhileWritesAreInFlight) {
  auto log = open_log(small_config());
  batches_.push_back(make_batch(2, "x"));
  ASSERT_TRUE(log->append(batches_.back().span(), timestamp_ms(0)).ok());
  EXPECT_EQ(log->truncate_to(offset(0)).code(), errc::backpressure);
  drain(*log);
}

TEST_F(PartitionLogTest, InvalidBatchIsRejectedAndNothingIsWritten) {
  auto log = open_log(small_config());
  append_batches(*log, 2, 2);
  auto size_before = log->size_bytes();
  auto bad = make_batch(2, "bad");
  bad.bytes[bad.bytes.size() - 1] ^= std::byte{0x01};  // breaks the CRC
  EXPECT_EQ(log->append(bad.span(), timestamp_ms(0)).code(), errc::corrupt_batch);
  auto wrong_magic = make_batch(2, "magic");
  wrong_magic.bytes[batch_layout::magic] = std::byte{1};
  EXPECT_EQ(log->append(wrong_magic.span(), timestamp_ms(0)).code(), errc::unsupported_magic);
  auto config = small_config();
  config.limits.batch_bytes_max = 100;
  log->set_config(config);
  auto big = make_batch(5, "big", 1000, 100);
  EXPECT_EQ(log->append(big.span(), timestamp_ms(0)).code(), errc::batch_too_large);
  drain(*log);
  EXPECT_EQ(log->log_end_offset(), offset(4));
  EXPECT_EQ(log->size_bytes(), size_before);
}

TEST_F(PartitionLogTest, FullDiskFailsQueuedAppendsAndTheLogRecovers) {
  auto log = open_log(small_config(), faulty_.get());
  append_batches(*log, 3, 2);
  faulty_->fail_writes(-ENOSPC);
  batches_.push_back(make_batch(2, "lost1"));
  ASSERT_TRUE(log->append(batches_.back().span(), timestamp_ms(0)).ok());
  batches_.push_back(make_batch(2, "lost2"));
  ASSERT_TRUE(log->append(batches_.back().span(), timestamp_ms(0)).ok());
  drain(*log);
  ASSERT_EQ(listener_.failures.size(), 1u);
  EXPECT_EQ(listener_.failures[0].first, offset(6));
  EXPECT_EQ(listener_.failures[0].second, errc::no_space);
  EXPECT_EQ(log->log_end_offset(), offset(6));
  EXPECT_EQ(log->written_end(), offset(6));
  // Space is back: appends continue at the same offset.
  faulty_->heal();
  batches_.push_back(make_batch(2, "ok"));
  auto info = log->append(batches_.back().span(), timestamp_ms(0));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->base_offset, offset(6));
  drain(*log);
  auto headers = read_all(*log, offset(0));
  ASSERT_EQ(headers.size(), 4u);
  EXPECT_EQ(headers[3].base_offset, offset(6));
  ASSERT_TRUE(log->close().ok());
  log.reset();
  auto reopened = open_log(small_config(), nullptr, /*clean=*/false);
  EXPECT_EQ(reopened->log_end_offset(), offset(8));
}

TEST_F(PartitionLogTest, ShortWritesAreCompleted) {
  auto log = open_log(small_config(), faulty_.get());
  faulty_->short_write_next(7);
  append_batches(*log, 5, 3);
  auto headers = read_all(*log, offset(0));
  EXPECT_EQ(headers.size(), 5u);
  EXPECT_EQ(log->written_end(), offset(15));
}

TEST_F(PartitionLogTest, FailedSyncTakesThePartitionOffline) {
  auto log = open_log(small_config(), faulty_.get());
  faulty_->fail_syncs(-EIO);
  batches_.push_back(make_batch(2, "s"));
  ASSERT_TRUE(log->append(batches_.back().span(), timestamp_ms(0)).ok());
  drain(*log);
  EXPECT_TRUE(log->failed());
  ASSERT_EQ(listener_.failures.size(), 1u);
  EXPECT_EQ(listener_.failures[0].second, errc::io_error);
  batches_.push_back(make_batch(2, "t"));
  EXPECT_EQ(log->append(batches_.back().span(), timestamp_ms(0)).code(), errc::closed);
  EXPECT_EQ(log->flushed_end(), offset(0));
}

TEST_F(PartitionLogTest, FullQueueMeansBackpressure) {
  auto config = small_config();
  config.pending_batches_max = 2;
  auto log = open_log(config);
  for (int i = 0; i < 3; ++i) batches_.push_back(make_batch(1, "q" + std::to_string(i)));
  ASSERT_TRUE(log->append(batches_[0].span(), timestamp_ms(0)).ok());
  ASSERT_TRUE(log->append(batches_[1].span(), timestamp_ms(0)).ok());
  EXPECT_EQ(log->append(batches_[2].span(), timestamp_ms(0)).code(), errc::backpressure);
  drain(*log);
  EXPECT_TRUE(log->append(batches_[2].span(), timestamp_ms(0)).ok());
  drain(*log);
  EXPECT_EQ(log->log_end_offset(), offset(3));
}

TEST_F(PartitionLogTest, OffsetForTimestampAndMaxTimestamp) {
  auto log = open_log(small_config());
  // Batch i has timestamps 10000 + 10 i .. + 9 (10 records, consecutive).
  append_batches(*log, 60, 10, 100, 10000);
  auto found = log->offset_for_timestamp(timestamp_ms(10000 + 10 * 33 + 5));
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  // Batch 33 (offsets 330..339) holds timestamps 10330..10339.
  EXPECT_EQ(**found, offset(330));
  auto first = log->offset_for_timestamp(timestamp_ms(0));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(**first, offset(0));
  auto none = log->offset_for_timestamp(timestamp_ms(99999999));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto max = log->max_timestamp();
  ASSERT_TRUE(max.has_value());
  EXPECT_EQ(max->first, timestamp_ms(10000 + 590 + 9));
  EXPECT_EQ(max->second, offset(599));
}

TEST_F(PartitionLogTest, SegmentMsRollsOnTick) {
  auto config = small_config();
  config.segment_ms = std::chrono::milliseconds(1000);
  auto log = open_log(config);
  batches_.push_back(make_batch(1, "a"));
  ASSERT_TRUE(log->append(batches_.back().span(), timestamp_ms(10'000)).ok());
  drain(*log);
  log->tick(timestamp_ms(10'500));
  EXPECT_EQ(log->segment_count(), 1u);
  log->tick(timestamp_ms(11'000));
  EXPECT_EQ(log->segment_count(), 2u);
}

TEST_F(PartitionLogTest, RecoveryCutsATornTailAndKeepsTheRest) {
  {
    auto log = open_log(small_config());
    append_batches(*log, 5, 4);
    ASSERT_TRUE(log->close().ok());
  }
  // Half a batch at the end, as a crash in the middle of a write leaves it.
  auto extra = make_batch(4, "torn");
  {
    std::ofstream f(dir_.path() + "/topic-0/00000000000000000000.log",
                    std::ios::binary | std::ios::app);
    f.write(reinterpret_cast<const char*>(extra.bytes.data()), 30);
  }
  auto log = open_log(small_config(), nullptr, /*clean=*/false);
  EXPECT_EQ(log->log_end_offset(), offset(20));
  EXPECT_EQ(read_all(*log, offset(0)).size(), 5u);
  append_batches(*log, 1, 1);
  EXPECT_EQ(read_all(*log, offset(0)).size(), 6u);
}

TEST_F(PartitionLogTest, RecoveryRebuildsMissingIndexes) {
  {
    auto log = open_log(small_config());
    append_batches(*log, 60, 10, 100);
    ASSERT_TRUE(log->close().ok());
  }
  ASSERT_TRUE(remove_file(dir_.path() + "/topic-0/00000000000000000000.index").ok());
  ASSERT_TRUE(remove_file(dir_.path() + "/topic-0/00000000000000000000.timeindex").ok());
  auto log = open_log(small_config(), nullptr, /*clean=*/false);
  EXPECT_EQ(log->log_end_offset(), offset(600));
  for (int target = 0; target < 600; target += 13) {
    auto r = log->read(offset(target), 1);
    ASSERT_TRUE(r.ok());
    auto h = batches_in(r->bytes);
    ASSERT_EQ(h.size(), 1u);
    EXPECT_EQ(h[0].base_offset, offset(target / 10 * 10));
  }
  auto ts = log->offset_for_timestamp(timestamp_ms(1000 + 10 * 20));
  ASSERT_TRUE(ts.ok());
  EXPECT_EQ(**ts, offset(200));
}

TEST_F(PartitionLogTest, FlushSyncsASealedSegmentBehindAnEmptyActiveOne) {
  auto config = small_config();
  config.flush = flush_policy::never();
  auto log = open_log(config, faulty_.get());
  append_batches(*log, 3, 2);
  ASSERT_TRUE(log->roll(timestamp_ms(0)).ok());
  log->flush();
  drain(*log);
  EXPECT_EQ(faulty_->syncs(), 1u) << "the sealed segment's bytes were never synced";
  EXPECT_EQ(log->flushed_end(), offset(6));
}

TEST_F(PartitionLogTest, FlushAfterFilesWereClosedReopensThem) {
  auto config = small_config();
  config.flush = flush_policy::never();
  auto log = open_log(config, faulty_.get());
  append_batches(*log, 3, 2);
  ASSERT_TRUE(log->close_files().ok());
  log->flush();
  drain(*log);
  EXPECT_EQ(log->flushed_end(), offset(6));
  EXPECT_EQ(faulty_->syncs(), 1u);
}

TEST_F(PartitionLogTest, ReopensAfterSegmentBytesShrank) {
  {
    auto log = open_log(small_config());
    append_batches(*log, 30, 10, 100);  // ~45 KiB in the first segment
    ASSERT_TRUE(log->close().ok());
  }
  auto config = small_config();
  config.segment_bytes = 4096;
  auto log = open_log(config, nullptr, /*clean=*/false);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(read_all(*log, offset(0)).size(), 30u);
  append_batches(*log, 1, 1);
  EXPECT_EQ(log->segment_count(), 2u) << "the oversized active segment rolls on the next append";
}

TEST_F(PartitionLogTest, TruncateBelowTheLogStartStartsAfresh) {
  auto log = open_log(small_config());
  append_batches(*log, 60, 10, 100);
  ASSERT_TRUE(log->delete_records(offset(590)).ok());
  ASSERT_EQ(log->segment_count(), 1u);
  // The one segment left starts below the log start: truncating below that start replaces
  // it with a fresh segment at the target, even where the names would collide.
  ASSERT_TRUE(log->truncate_to(offset(0)).ok());
  EXPECT_EQ(log->log_start_offset(), offset(0));
  EXPECT_EQ(log->log_end_offset(), offset(0));
  append_batches(*log, 2, 2);
  EXPECT_EQ(read_all(*log, offset(0)).size(), 2u);
}

TEST_F(PartitionLogTest, RollAddsTheSegmentsLargestTimestampToItsTimeIndex) {
  auto config = small_config();
  config.index_interval_bytes = 1 << 20;  // no entries while appending
  auto log = open_log(config);
  append_batches(*log, 5, 2, 16, 7000);
  ASSERT_TRUE(log->roll(timestamp_ms(0)).ok());
  auto index =
      time_index::open(dir_.path() + "/topic-0/00000000000000000000.timeindex", offset(0), 4096);
  ASSERT_TRUE(index.ok());
  ASSERT_EQ(index->entries(), 1u);
  EXPECT_EQ(index->entry(0).timestamp, timestamp_ms(7000 + 40 + 1));
  EXPECT_EQ(index->entry(0).last_offset, offset(9));
}

TEST_F(PartitionLogTest, DamagedIndexFileIsRebuiltNotFatal) {
  {
    auto log = open_log(small_config());
    append_batches(*log, 60, 10, 100);
    ASSERT_TRUE(log->close().ok());
  }
  // A length that is not a whole number of entries.
  std::ofstream(dir_.path() + "/topic-0/00000000000000000000.index",
                std::ios::binary | std::ios::app)
      << "xyz";
  auto log = open_log(small_config());
  ASSERT_NE(log, nullptr);
  for (int target = 0; target < 600; target += 37) {
    auto r = log->read(offset(target), 1);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(batches_in(r->bytes).at(0).base_offset, offset(target / 10 * 10));
  }
}

TEST_F(PartitionLogTest, ReadingOldSegmentsKeepsFewFilesOpen) {
  auto config = small_config();
  config.segment_bytes = 8 * 1024;
  auto log = open_log(config);
  append_batches(*log, 100, 10, 100);
  ASSERT_GT(log->segment_count(), 10u);
  ASSERT_TRUE(log->close().ok());
  log.reset();
  log = open_log(config);
  auto count_fds = [] {
    auto names = list_directory("/proc/self/fd");
    return names.ok() ? names->size() : 0;
  };
  std::size_t before = count_fds();
  EXPECT_EQ(read_all(*log, offset(0)).size(), 100u);
  // At most a few old segments (three files each) stay open after reading them all.
  EXPECT_LE(count_fds(), before + 3 * 2);
}

TEST_F(PartitionLogTest, ReadingAgainAfterFilesWereClosed) {
  auto config = small_config();
  config.segment_bytes = 8 * 1024;
  auto log = open_log(config);
  append_batches(*log, 40, 10, 100);
  ASSERT_GT(log->segment_count(), 3u);
  ASSERT_TRUE(log->close_files().ok());
  EXPECT_EQ(read_all(*log, offset(0), 1).size(), 40u);
  ASSERT_TRUE(log->close_files().ok());
  EXPECT_EQ(read_all(*log, offset(0), 1).size(), 40u);
}

TEST_F(PartitionLogTest, LargerLimitsAfterOpeningStillFitTheMapping) {
  auto config = small_config();
  config.segment_bytes = 8 * 1024;
  auto log = open_log(config);
  append_batches(*log, 2, 1);
  config.segment_bytes = 64 * 1024 * 1024;
  config.limits.batch_bytes_max = 4 * 1024 * 1024;
  log->set_config(config);
  append_batches(*log, 3, 100, 20 * 1024);  // ~2 MiB batches, past the first mapping
  auto headers = read_all(*log, offset(0));
  ASSERT_EQ(headers.size(), 5u);
  EXPECT_EQ(headers.back().next_offset(), offset(302));
}

TEST_F(PartitionLogTest, RecoveryKeepsTheFinalTimeIndexEntryOfSealedSegments) {
  auto config = small_config();
  config.index_interval_bytes = 1 << 20;
  {
    auto log = open_log(config);
    append_batches(*log, 5, 2, 16, 7000);
    ASSERT_TRUE(log->roll(timestamp_ms(0)).ok());
    append_batches(*log, 1, 1);
    // No close: an unclean stop.
  }
  auto log = open_log(config, nullptr, /*clean=*/false);
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->close().ok());
  auto index = time_index::open(dir_.path() + "/topic-0/00000000000000000000.timeindex", offset(0),
                                4096, index_open_mode::sealed);
  ASSERT_TRUE(index.ok());
  ASSERT_EQ(index->entries(), 1u);
  EXPECT_EQ(index->entry(0).timestamp, timestamp_ms(7000 + 40 + 1));
}

TEST_F(PartitionLogTest, SyncSkipsASegmentRetentionDeleted) {
  auto config = small_config();
  config.segment_bytes = 8 * 1024;
  config.flush = flush_policy::never();
  auto log = open_log(config, faulty_.get());
  append_batches(*log, 40, 10, 100);
  ASSERT_TRUE(log->close_files().ok());
  config.retention_bytes = 1;
  log->set_config(config);
  ASSERT_GT(*log->enforce_retention(timestamp_ms(0)), 0u);
  log->flush();
  drain(*log);
  EXPECT_FALSE(log->failed());
  EXPECT_EQ(log->flushed_end(), log->written_end());
}

}  // namespace
}  // namespace sluice::test
