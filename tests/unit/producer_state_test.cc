// The idempotent producer's broker-side state (broker/producer_state.h), the producer id
// allocator (broker/producer_id_allocator.h) and the InitProducerId answer
// (broker/api/init_producer_id.h).
//
// Expected verdicts follow Kafka's ProducerAppendInfo / ProducerStateEntry rules as
// documented in producer_state.h; offsets are derived from the records each test appends.
#include "broker/producer_state.h"

#include <gtest/gtest.h>

#include <array>
#include <deque>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "broker/api/init_producer_id.h"
#include "broker/producer_id_allocator.h"
#include "engine/io/file.h"
#include "tests/support/storage_fixture.h"

namespace sluice {
namespace {

using protocol::error_code;
using kind = producer_state_table::verdict::kind;

constexpr std::int32_t int32_max = std::numeric_limits<std::int32_t>::max();

batch_header idempotent(std::int64_t producer_id, std::int16_t epoch, std::int32_t first_sequence,
                        std::int32_t records, std::int64_t timestamp = 1000) {
  batch_header h;
  h.magic = batch_magic_v2;
  h.producer_id = producer_id;
  h.producer_epoch = epoch;
  h.base_sequence = first_sequence;
  h.records_count = records;
  h.last_offset_delta = records - 1;
  h.base_timestamp = timestamp_ms(timestamp);
  h.max_timestamp = timestamp_ms(timestamp);
  return h;
}

// A stand-in for the log in tests of the table alone: assigns offsets in order to what the
// table lets through, as the produce handler does.
struct sequencer {
  producer_state_table& table;
  std::int64_t next_offset = 0;

  // The verdict; on append, the header gets its offsets and the table hears of it.
  producer_state_table::verdict send(batch_header& h) {
    auto v = table.check(h);
    if (v.outcome == kind::append) {
      h.base_offset = offset(next_offset);
      next_offset += h.records_count;
      table.on_appended(h);
    }
    return v;
  }
};

void expect_error(const producer_state_table::verdict& v, error_code code) {
  EXPECT_EQ(v.outcome, kind::error);
  EXPECT_EQ(v.error, code) << "got error " << static_cast<int>(v.error);
}

TEST(ProducerStateTest, SequencesInOrderAreAppended) {
  producer_state_table table;
  sequencer log{table};
  std::int32_t sequence = 0;
  for (int i = 0; i < 20; ++i) {
    auto h = idempotent(7, 0, sequence, 1 + i % 4);
    ASSERT_EQ(log.send(h).outcome, kind::append) << "batch " << i;
    sequence += h.records_count;
  }
  auto view = table.find(7);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->epoch, 0);
  ASSERT_EQ(view->batches.size(), producer_state_table::batches_retained);
  EXPECT_EQ(view->batches.back().last_sequence, sequence - 1);
  EXPECT_EQ(view->batches.back().last_offset, offset(log.next_offset - 1));
}

TEST(ProducerStateTest, EachOfTheLastFiveBatchesIsADuplicateWithItsOriginalOffsets) {
  producer_state_table table;
  sequencer log{table};
  // Another producer interleaves, so offsets and sequences differ.
  std::vector<batch_header> sent;
  std::int32_t sequence = 0;
  std::int32_t other_sequence = 0;
  for (int i = 0; i < 6; ++i) {
    auto h = idempotent(1, 3, sequence, 2 + i, 1000 + i);
    ASSERT_EQ(log.send(h).outcome, kind::append);
    sent.push_back(h);
    sequence += h.records_count;
    auto other = idempotent(2, 0, other_sequence, 1);
    ASSERT_EQ(log.send(other).outcome, kind::append);
    other_sequence += 1;
  }
  const std::int64_t end_before = log.next_offset;
  for (int i = 1; i < 6; ++i) {
    auto retry = idempotent(1, 3, sent[i].base_sequence, sent[i].records_count);
    auto v = log.send(retry);
    ASSERT_EQ(v.outcome, kind::duplicate) << "batch " << i;
    EXPECT_EQ(v.original.first_offset, sent[i].base_offset);
    EXPECT_EQ(v.original.last_offset, sent[i].last_offset());
    EXPECT_EQ(v.original.max_timestamp, sent[i].max_timestamp);
  }
  EXPECT_EQ(log.next_offset, end_before) << "a duplicate must not be appended";
  // The sixth-newest batch fell out of the cache: a retry of it is out of order, as in
  // Kafka (it does not follow the last sequence).
  auto oldest = idempotent(1, 3, sent[0].base_sequence, sent[0].records_count);
  expect_error(log.send(oldest), error_code::out_of_order_sequence_number);
  // A batch overlapping a cached one without the same range is not a duplicate.
  auto overlapping = idempotent(1, 3, sent[5].base_sequence, sent[5].records_count - 1);
  expect_error(log.send(overlapping), error_code::out_of_order_sequence_number);
}

TEST(ProducerStateTest, GapsAndRewindsAreOutOfOrder) {
  producer_state_table table;
  sequencer log{table};
  auto first = idempotent(9, 0, 0, 5);
  ASSERT_EQ(log.send(first).outcome, kind::append);
  auto gap = idempotent(9, 0, 6, 1);
  expect_error(log.send(gap), error_code::out_of_order_sequence_number);
  auto rewind = idempotent(9, 0, 3, 2);
  expect_error(log.send(rewind), error_code::out_of_order_sequence_number);
  auto next = idempotent(9, 0, 5, 1);
  EXPECT_EQ(log.send(next).outcome, kind::append);
  EXPECT_EQ(log.next_offset, 6);
}

TEST(ProducerStateTest, UnknownProducerMayStartAtAnySequence) {
  producer_state_table table;
  sequencer log{table};
  auto h = idempotent(11, 4, 12345, 3);
  EXPECT_EQ(log.send(h).outcome, kind::append);
  auto next = idempotent(11, 4, 12348, 1);
  EXPECT_EQ(log.send(next).outcome, kind::append);
}

TEST(ProducerStateTest, EpochBumpRestartsAtZeroAndFencesTheOldEpoch) {
  producer_state_table table;
  sequencer log{table};
  auto a = idempotent(5, 0, 0, 3);
  ASSERT_EQ(log.send(a).outcome, kind::append);
  auto b = idempotent(5, 0, 3, 3);
  ASSERT_EQ(log.send(b).outcome, kind::append);
  // A new epoch must start at 0.
  auto bad_bump = idempotent(5, 1, 6, 1);
  expect_error(log.send(bad_bump), error_code::out_of_order_sequence_number);
  auto bump = idempotent(5, 1, 0, 2);
  ASSERT_EQ(log.send(bump).outcome, kind::append);
  EXPECT_EQ(table.find(5)->epoch, 1);
  EXPECT_EQ(table.find(5)->batches.size(), 1u) << "a new epoch forgets the old batches";
  // The old epoch is fenced, even for a retry of a batch it had written.
  auto zombie_retry = idempotent(5, 0, 3, 3);
  expect_error(log.send(zombie_retry), error_code::invalid_producer_epoch);
  auto zombie_next = idempotent(5, 0, 6, 1);
  expect_error(log.send(zombie_next), error_code::invalid_producer_epoch);
  // The new epoch goes on from its own sequence.
  auto after = idempotent(5, 1, 2, 1);
  EXPECT_EQ(log.send(after).outcome, kind::append);
}

TEST(ProducerStateTest, SequencesWrapAroundAtInt32Max) {
  // Independently: a batch of 4 from INT32_MAX - 1 holds MAX-1, MAX, 0, 1.
  auto wrapping = idempotent(3, 0, int32_max - 1, 4);
  EXPECT_EQ(producer_state_table::last_sequence_of(wrapping), 1);
  EXPECT_TRUE(producer_state_table::in_sequence(int32_max, 0));
  EXPECT_FALSE(producer_state_table::in_sequence(int32_max, 1));
  EXPECT_TRUE(producer_state_table::in_sequence(int32_max - 1, int32_max));
  EXPECT_FALSE(producer_state_table::in_sequence(5, 5));

  producer_state_table table;
  sequencer log{table};
  auto start = idempotent(3, 0, int32_max - 5, 4);  // MAX-5 .. MAX-2
  ASSERT_EQ(log.send(start).outcome, kind::append);
  ASSERT_EQ(log.send(wrapping).outcome, kind::append);
  auto after = idempotent(3, 0, 2, 3);
  ASSERT_EQ(log.send(after).outcome, kind::append);
  auto retry = idempotent(3, 0, int32_max - 1, 4);
  auto v = log.send(retry);
  ASSERT_EQ(v.outcome, kind::duplicate);
  EXPECT_EQ(v.original.first_offset, offset(4));
  EXPECT_EQ(v.original.last_offset, offset(7));

  // A batch that ends exactly at INT32_MAX is followed by sequence 0.
  producer_state_table exact;
  sequencer exact_log{exact};
  auto to_max = idempotent(4, 0, int32_max - 2, 3);
  ASSERT_EQ(exact_log.send(to_max).outcome, kind::append);
  auto zero = idempotent(4, 0, 0, 1);
  EXPECT_EQ(exact_log.send(zero).outcome, kind::append);
}

TEST(ProducerStateTest, NonIdempotentBatchesBypassTheTable) {
  producer_state_table table;
  sequencer log{table};
  for (int i = 0; i < 3; ++i) {
    auto h = idempotent(-1, -1, -1, 2);
    EXPECT_EQ(log.send(h).outcome, kind::append);
  }
  EXPECT_EQ(table.producer_count(), 0u);
}

TEST(ProducerStateTest, NegativeSequenceAndTransactionalBatchesAreRefused) {
  producer_state_table table;
  sequencer log{table};
  auto negative = idempotent(8, 0, -1, 1);
  expect_error(log.send(negative), error_code::invalid_record);
  auto transactional = idempotent(8, 0, 0, 1);
  transactional.attributes = 0x10;
  expect_error(log.send(transactional), error_code::invalid_txn_state);
  auto plain = idempotent(8, 2, 0, 1);
  ASSERT_EQ(log.send(plain).outcome, kind::append);
  auto stale_transactional = idempotent(8, 1, 1, 1);
  stale_transactional.attributes = 0x10;
  expect_error(log.send(stale_transactional), error_code::invalid_producer_epoch);
  EXPECT_EQ(log.next_offset, 1);
}

TEST(ProducerStateTest, TruncateDropsBatchesAtOrAfterTheOffsetAndEmptyProducers) {
  producer_state_table table;
  sequencer log{table};
  // Producer 1: batches at [0,2) [2,4) [4,6); producer 2: one batch at [6,9).
  for (int i = 0; i < 3; ++i) {
    auto h = idempotent(1, 0, 2 * i, 2);
    ASSERT_EQ(log.send(h).outcome, kind::append);
  }
  auto p2 = idempotent(2, 0, 0, 3);
  ASSERT_EQ(log.send(p2).outcome, kind::append);

  // Truncating at 3 removes [2,4) (it holds 3), [4,6) and [6,9).
  table.truncate_to(offset(3));
  EXPECT_FALSE(table.find(2).has_value());
  ASSERT_TRUE(table.find(1).has_value());
  EXPECT_EQ(table.find(1)->batches.size(), 1u);
  // Producer 1 now continues after its first batch; its removed batches are no longer
  // duplicates but the next in sequence.
  auto again = idempotent(1, 0, 2, 2);
  EXPECT_EQ(table.check(again).outcome, kind::append);
  auto skip = idempotent(1, 0, 4, 2);
  expect_error(table.check(skip), error_code::out_of_order_sequence_number);
  // Producer 2 is unknown again, so any sequence is accepted.
  auto p2_later = idempotent(2, 0, 3, 1);
  EXPECT_EQ(table.check(p2_later).outcome, kind::append);
}

TEST(ProducerStateTest, EvictsTheLeastRecentlyAppendedProducerAtTheCap) {
  producer_state_table table(producer_state_config{3, 24 * 60 * 60 * 1000});
  sequencer log{table};
  std::int32_t next_sequence[5] = {};
  auto send = [&](std::int64_t id) {
    auto h = idempotent(id, 0, next_sequence[id], 1);
    ASSERT_EQ(log.send(h).outcome, kind::append);
    ++next_sequence[id];
  };
  send(1);
  send(2);
  send(3);
  send(1);  // 2 is now the least recently used
  send(4);
  EXPECT_EQ(table.producer_count(), 3u);
  EXPECT_FALSE(table.find(2).has_value());
  EXPECT_TRUE(table.find(1).has_value());
  EXPECT_TRUE(table.find(3).has_value());
  EXPECT_TRUE(table.find(4).has_value());
  send(3);  // 3 touched: 1 is now the oldest
  send(2);
  EXPECT_FALSE(table.find(1).has_value());
  EXPECT_EQ(table.producer_count(), 3u);
}

TEST(ProducerStateTest, ExpiresProducersIdleForTheExpirationTime) {
  producer_state_table table(producer_state_config{100, 1000});
  sequencer log{table};
  auto old_one = idempotent(1, 0, 0, 1, /*timestamp=*/1000);
  ASSERT_EQ(log.send(old_one).outcome, kind::append);
  auto recent = idempotent(2, 0, 0, 1, /*timestamp=*/5000);
  ASSERT_EQ(log.send(recent).outcome, kind::append);
  EXPECT_EQ(table.expire(timestamp_ms(1999)), 0u);
  EXPECT_EQ(table.expire(timestamp_ms(5999)), 1u);  // 5999 - 1000 >= 1000; 999 < 1000
  EXPECT_FALSE(table.find(1).has_value());
  EXPECT_TRUE(table.find(2).has_value());
  EXPECT_EQ(table.expire(timestamp_ms(6000)), 1u);
  EXPECT_EQ(table.producer_count(), 0u);
}

// --- rebuild from a real partition log -------------------------------------------------

class ProducerStateLogTest : public test::storage_test {
 protected:
  std::unique_ptr<partition_log> open_log(const log_config& config) {
    auto log = partition_log::open(dir_.path() + "/topic-0", config, *disk_, offset(0),
                                   /*clean_shutdown=*/false);
    EXPECT_TRUE(log.ok()) << (log.ok() ? "" : log.failure().detail());
    return log.ok() ? std::move(*log) : nullptr;
  }

  // Builds a batch for `producer_id` (or a plain one for -1), checks it against `table`
  // and appends it to `log` when the table says so, as the produce handler will.
  producer_state_table::verdict produce(partition_log& log, producer_state_table& table,
                                        std::int64_t producer_id, std::int16_t epoch,
                                        std::int32_t sequence, int records) {
    batch_builder builder;
    if (producer_id >= 0) builder.set_producer(producer_id, epoch, sequence);
    std::string value = "value-" + std::to_string(sequence);
    for (int i = 0; i < records; ++i) {
      batch_builder::record r;
      r.value = test::as_bytes(value);
      r.timestamp = timestamp_ms(5000 + sequence + i);
      builder.add(r);
    }
    auto bytes = builder.finish();
    batches_.push_back(test::owned_batch{std::vector<std::byte>(bytes.begin(), bytes.end())});
    auto& batch = batches_.back();
    auto header = decode_batch_header(batch.bytes);
    EXPECT_TRUE(header.ok());
    auto v = table.check(*header);
    if (v.outcome != kind::append) {
      batches_.pop_back();
      return v;
    }
    auto appended = log.append(batch.span(), timestamp_ms(6000));
    EXPECT_TRUE(appended.ok()) << (appended.ok() ? "" : appended.failure().detail());
    // The log rewrote the base offset in place.
    auto assigned = decode_batch_header(batch.bytes);
    EXPECT_EQ(assigned->base_offset, appended->base_offset);
    table.on_appended(*assigned);
    return v;
  }

  // A workload of several producers, epochs and a plain producer, with rejected batches.
  void run_workload(partition_log& log, producer_state_table& table) {
    std::int32_t seq[4] = {};
    for (int round = 0; round < 40; ++round) {
      for (std::int64_t id = 1; id <= 3; ++id) {
        int records = 1 + (round + static_cast<int>(id)) % 3;
        std::int16_t epoch = (id == 2 && round >= 20) ? 1 : 0;
        if (id == 2 && round == 20) seq[id] = 0;
        auto v = produce(log, table, id, epoch, seq[id], records);
        ASSERT_EQ(v.outcome, kind::append) << "producer " << id << " round " << round;
        seq[id] += records;
      }
      ASSERT_EQ(produce(log, table, -1, -1, -1, 2).outcome, kind::append);
    }
    drain(log);
    next_sequences_ = {seq[1], seq[2], seq[3]};
  }

  // Verdicts of a set of probes: retries of the last batches, the next batch, gaps, old
  // epochs, a new epoch.
  std::vector<producer_state_table::verdict> probe(const producer_state_table& table) {
    std::vector<producer_state_table::verdict> out;
    for (std::int64_t id = 1; id <= 3; ++id) {
      std::int16_t epoch = id == 2 ? 1 : 0;
      auto view = table.find(id);
      if (view) {
        for (const auto& b : view->batches) {
          out.push_back(table.check(
              idempotent(id, epoch, b.first_sequence, b.last_sequence - b.first_sequence + 1)));
        }
      }
      std::int32_t next = next_sequences_[id - 1];
      for (std::int32_t s : {next, next + 1, next - 1, 0}) {
        out.push_back(table.check(idempotent(id, epoch, s, 1)));
        out.push_back(table.check(idempotent(id, static_cast<std::int16_t>(epoch + 1), s, 1)));
        if (epoch > 0) {
          out.push_back(table.check(idempotent(id, static_cast<std::int16_t>(epoch - 1), s, 1)));
        }
      }
    }
    return out;
  }

  static void expect_same(const std::vector<producer_state_table::verdict>& a,
                          const std::vector<producer_state_table::verdict>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].outcome, b[i].outcome) << "probe " << i;
      EXPECT_EQ(a[i].error, b[i].error) << "probe " << i;
      EXPECT_EQ(a[i].original.first_offset, b[i].original.first_offset) << "probe " << i;
      EXPECT_EQ(a[i].original.last_offset, b[i].original.last_offset) << "probe " << i;
      EXPECT_EQ(a[i].original.max_timestamp, b[i].original.max_timestamp) << "probe " << i;
    }
  }

  static void expect_same_state(const producer_state_table& a, const producer_state_table& b) {
    ASSERT_EQ(a.producer_count(), b.producer_count());
    for (std::int64_t id = 1; id <= 3; ++id) {
      auto x = a.find(id);
      auto y = b.find(id);
      ASSERT_EQ(x.has_value(), y.has_value()) << "producer " << id;
      if (!x) continue;
      EXPECT_EQ(x->epoch, y->epoch);
      ASSERT_EQ(x->batches.size(), y->batches.size());
      for (std::size_t i = 0; i < x->batches.size(); ++i) {
        EXPECT_EQ(x->batches[i].first_sequence, y->batches[i].first_sequence);
        EXPECT_EQ(x->batches[i].last_sequence, y->batches[i].last_sequence);
        EXPECT_EQ(x->batches[i].first_offset, y->batches[i].first_offset);
        EXPECT_EQ(x->batches[i].last_offset, y->batches[i].last_offset);
        EXPECT_EQ(x->batches[i].max_timestamp, y->batches[i].max_timestamp);
      }
    }
  }

  std::deque<test::owned_batch> batches_;
  std::array<std::int32_t, 3> next_sequences_{};
};

TEST_F(ProducerStateLogTest, RebuildFromTheLogGivesTheVerdictsOfTheLiveTable) {
  auto config = small_config();
  config.segment_bytes = 2048;  // many segments: the rebuild reads across them
  auto log = open_log(config);
  ASSERT_NE(log, nullptr);
  producer_state_table live;
  run_workload(*log, live);
  ASSERT_GT(log->segment_count(), 3u);
  auto live_verdicts = probe(live);
  // The probes exercise every kind of verdict.
  std::set<kind> kinds;
  for (const auto& v : live_verdicts) kinds.insert(v.outcome);
  EXPECT_EQ(kinds.size(), 3u);

  producer_state_table rebuilt;
  ASSERT_TRUE(rebuilt.rebuild(*log).ok());
  expect_same_state(live, rebuilt);
  expect_same(live_verdicts, probe(rebuilt));

  // After a restart: the same from the files alone.
  ASSERT_TRUE(log->close().ok());
  log.reset();
  auto reopened = open_log(config);
  ASSERT_NE(reopened, nullptr);
  producer_state_table after_restart;
  ASSERT_TRUE(after_restart.rebuild(*reopened).ok());
  expect_same_state(live, after_restart);
  expect_same(live_verdicts, probe(after_restart));
}

TEST_F(ProducerStateLogTest, TruncationKeepsTheTableConsistentWithARebuild) {
  auto config = small_config();
  config.segment_bytes = 2048;
  auto log = open_log(config);
  ASSERT_NE(log, nullptr);
  producer_state_table live;
  run_workload(*log, live);
  // Cut the last few rounds: each producer keeps batches above the last five it had.
  offset target = log->log_end_offset() - 12;
  ASSERT_TRUE(log->truncate_to(target).ok());
  live.truncate_to(target);
  producer_state_table rebuilt;
  ASSERT_TRUE(rebuilt.rebuild(*log).ok());
  // Where the truncated table still knows a producer, it agrees with the log; the
  // rebuild may know more (batches older than the five cached).
  for (std::int64_t id = 1; id <= 3; ++id) {
    auto kept = live.find(id);
    auto full = rebuilt.find(id);
    ASSERT_TRUE(full.has_value());
    if (!kept) continue;
    EXPECT_EQ(kept->epoch, full->epoch);
    ASSERT_LE(kept->batches.size(), full->batches.size());
    EXPECT_EQ(kept->batches.back().last_sequence, full->batches.back().last_sequence);
    EXPECT_EQ(kept->batches.back().last_offset, full->batches.back().last_offset);
    EXPECT_LT(kept->batches.back().last_offset, target);
  }
  // Nothing cached points at or past the truncation.
  for (std::int64_t id = 1; id <= 3; ++id) {
    if (auto view = live.find(id)) {
      for (const auto& b : view->batches) EXPECT_LT(b.last_offset, target);
    }
  }
}

TEST_F(ProducerStateLogTest, RebuildOfAnEmptyLogIsEmpty) {
  auto log = open_log(small_config());
  ASSERT_NE(log, nullptr);
  producer_state_table table;
  sequencer fake{table};
  auto h = idempotent(1, 0, 0, 1);
  ASSERT_EQ(fake.send(h).outcome, kind::append);
  ASSERT_TRUE(table.rebuild(*log).ok());
  EXPECT_EQ(table.producer_count(), 0u);
}

TEST_F(ProducerStateLogTest, RebuildIsRefusedWhileAppendsAreQueued) {
  auto log = open_log(small_config());
  ASSERT_NE(log, nullptr);
  producer_state_table live;
  ASSERT_EQ(produce(*log, live, 4, 0, 0, 3).outcome, kind::append);
  producer_state_table rebuilt;
  EXPECT_EQ(rebuilt.rebuild(*log).code(), errc::backpressure);
  drain(*log);
  ASSERT_TRUE(rebuilt.rebuild(*log).ok());
  EXPECT_TRUE(rebuilt.find(4).has_value());
}

// --- producer ids -----------------------------------------------------------------------

TEST(ProducerIdAllocatorTest, IdsAreUniqueAcrossRestarts) {
  test::temp_dir dir;
  std::set<std::int64_t> seen;
  std::int64_t last_end = 0;
  for (int restart = 0; restart < 4; ++restart) {
    auto ids = producer_id_allocator::open(dir.path(), 10);
    ASSERT_TRUE(ids.ok());
    for (int i = 0; i < 25; ++i) {
      auto id = (*ids)->next();
      ASSERT_TRUE(id.ok());
      EXPECT_GE(*id, 0);
      EXPECT_TRUE(seen.insert(*id).second) << "id " << *id << " handed out twice";
    }
    // One file write per block of 10: 25 ids reserve 3 blocks.
    EXPECT_EQ((*ids)->reserved_end(), last_end + 30);
    last_end = (*ids)->reserved_end();
  }
  EXPECT_EQ(seen.size(), 100u);
  auto text = read_small_file(dir.path() + "/" + producer_id_allocator::file_name, 4096);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("next.block.start=120\n"), std::string::npos) << *text;
}

TEST(ProducerIdAllocatorTest, ADamagedFileIsAnErrorNotAFreshStart) {
  test::temp_dir dir;
  std::string garbage = "version=1\nnext.block.start=12x\n";
  ASSERT_TRUE(write_file_atomically(dir.path() + "/" + producer_id_allocator::file_name,
                                    test::as_bytes(garbage))
                  .ok());
  EXPECT_FALSE(producer_id_allocator::open(dir.path()).ok());
  std::string no_version = "next.block.start=50\n";
  ASSERT_TRUE(write_file_atomically(dir.path() + "/" + producer_id_allocator::file_name,
                                    test::as_bytes(no_version))
                  .ok());
  EXPECT_FALSE(producer_id_allocator::open(dir.path()).ok());
}

TEST(ProducerIdAllocatorTest, AFailedBlockWriteHandsOutNothing) {
  test::temp_dir dir;
  auto ids = producer_id_allocator::open(dir.path() + "/missing", 10);
  ASSERT_TRUE(ids.ok());
  EXPECT_FALSE((*ids)->next().ok());
  EXPECT_EQ((*ids)->next_id(), 0);
  EXPECT_EQ((*ids)->reserved_end(), 0);
}

TEST(InitProducerIdTest, IdempotentProducersGetFreshIdsAtEpochZero) {
  test::temp_dir dir;
  auto ids = producer_id_allocator::open(dir.path(), 1000);
  ASSERT_TRUE(ids.ok());
  std::set<std::int64_t> seen;
  for (std::int16_t version = 0; version <= 5; ++version) {
    protocol::InitProducerIdRequest request;
    request.transactional_id = std::nullopt;
    request.transaction_timeout_ms = 60000;
    if (version >= 3) {
      // A KIP-360 client may send its current id and epoch; an idempotent one gets a new id.
      request.producer_id = 77;
      request.producer_epoch = 4;
    }
    auto response = init_producer_id_response(request, version, **ids);
    EXPECT_EQ(response.error_code, 0);
    EXPECT_EQ(response.producer_epoch, 0);
    EXPECT_TRUE(seen.insert(response.producer_id).second);
  }
}

TEST(InitProducerIdTest, TransactionsAndHalfSetIdsAreRefused) {
  test::temp_dir dir;
  auto ids = producer_id_allocator::open(dir.path(), 1000);
  ASSERT_TRUE(ids.ok());
  protocol::InitProducerIdRequest request;
  request.transactional_id = "";
  auto empty = init_producer_id_response(request, 4, **ids);
  EXPECT_EQ(empty.error_code, static_cast<std::int16_t>(error_code::invalid_request));
  EXPECT_EQ(empty.producer_id, -1);
  EXPECT_EQ(empty.producer_epoch, -1);
  request.transactional_id = "orders-writer";
  auto transactional = init_producer_id_response(request, 4, **ids);
  EXPECT_EQ(transactional.error_code,
            static_cast<std::int16_t>(error_code::coordinator_not_available));
  request.transactional_id = std::nullopt;
  request.producer_id = 12;
  request.producer_epoch = -1;
  auto half = init_producer_id_response(request, 3, **ids);
  EXPECT_EQ(half.error_code, static_cast<std::int16_t>(error_code::invalid_request));
  EXPECT_EQ((*ids)->next_id(), 0) << "no id is spent on a refused request";
}

}  // namespace
}  // namespace sluice
