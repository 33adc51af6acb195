// A randomized, model-based test of partition_log: thousands of random appends, reads,
// rolls, retention passes, record deletions, truncations and restarts, each checked
// against a plain in-memory model of what the log must hold.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "engine/storage/partition_log.h"
#include "tests/support/storage_fixture.h"

namespace sluice::test {
namespace {

struct model_batch {
  offset base;
  offset last;
  timestamp_ms max_timestamp;
  std::vector<std::byte> bytes;  // as stored: offsets assigned
};

// What the log must hold: batches in offset order, and its start and end offsets.
struct log_model {
  std::vector<model_batch> batches;
  offset log_start{0};
  offset log_end{0};

  void drop_below(offset start) {
    std::erase_if(batches, [&](const model_batch& b) { return b.last < start; });
  }
  void truncate_to(offset target) {
    std::erase_if(batches, [&](const model_batch& b) { return b.last >= target; });
    log_end = target;
  }
  // Index of the first batch holding an offset >= start.
  std::size_t first_at_or_after(offset start) const {
    std::size_t i = 0;
    while (i < batches.size() && batches[i].last < start) ++i;
    return i;
  }
};

class PartitionLogModelTest : public storage_test, public ::testing::WithParamInterface<int> {
 protected:
  void open(bool clean, offset recovery_point) {
    auto log = partition_log::open(dir_.path() + "/model-0", config_, *faulty_, recovery_point,
                                   clean, model_.log_start);
    ASSERT_TRUE(log.ok()) << log.failure().detail();
    log_ = std::move(*log);
  }

  log_config config_;
  log_model model_;
  std::unique_ptr<partition_log> log_;
  std::vector<owned_batch> in_flight_;  // alive until the log has written them
};

TEST_P(PartitionLogModelTest, RandomOperationsMatchTheModel) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(GetParam()));
  auto pick = [&](std::int64_t lo, std::int64_t hi) {  // inclusive
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  config_.segment_bytes = static_cast<std::uint64_t>(pick(8 * 1024, 64 * 1024));
  config_.index_bytes_max = static_cast<std::size_t>(pick(2, 64)) * 96;
  config_.index_interval_bytes = static_cast<std::size_t>(pick(0, 4096));
  config_.retention_ms.reset();
  open(/*clean=*/true, offset(0));
  ASSERT_TRUE(log_);

  auto drain_all = [&] {
    drain(*log_);
    in_flight_.clear();
  };
  auto check_tail = [&] {
    ASSERT_EQ(log_->log_start_offset(), model_.log_start);
    ASSERT_EQ(log_->log_end_offset(), model_.log_end);
  };

  constexpr int operations = 3000;
  int counts[8] = {};
  for (int step = 0; step < operations; ++step) {
    int op = static_cast<int>(pick(0, 99));
    SCOPED_TRACE(::testing::Message() << "seed " << GetParam() << " step " << step << " op " << op);
    if (op < 45) {  // append 1..4 batches, sometimes leaving them in flight
      ++counts[0];
      int n = static_cast<int>(pick(1, 4));
      for (int i = 0; i < n; ++i) {
        auto batch = make_batch(static_cast<int>(pick(1, 20)), "s" + std::to_string(step),
                                pick(0, 100000), static_cast<std::size_t>(pick(0, 700)));
        auto info = log_->append(batch.span(), timestamp_ms(0));
        if (info.code() == errc::backpressure) {
          drain_all();
          info = log_->append(batch.span(), timestamp_ms(0));
        }
        ASSERT_TRUE(info.ok()) << info.failure().detail();
        ASSERT_EQ(info->base_offset, model_.log_end);
        model_batch m{info->base_offset, info->last_offset, info->max_timestamp, batch.bytes};
        model_.batches.push_back(std::move(m));
        model_.log_end = info->last_offset + 1;
        in_flight_.push_back(std::move(batch));
      }
      if (pick(0, 2) != 0) drain_all();
    } else if (op < 75) {  // read from a random offset with a random byte limit
      ++counts[1];
      if (pick(0, 3) != 0) drain_all();
      offset written = log_->written_end();
      offset start(pick(model_.log_start.value(), written.value()));
      std::size_t bytes_max = static_cast<std::size_t>(pick(1, 20000));
      auto r = log_->read(start, bytes_max);
      ASSERT_TRUE(r.ok()) << r.failure().detail();
      std::size_t i = model_.first_at_or_after(start);
      std::size_t position = 0;
      std::size_t returned = 0;
      for (auto& h : batches_in(r->bytes)) {
        ASSERT_LT(i, model_.batches.size());
        const auto& expected = model_.batches[i];
        ASSERT_EQ(h.base_offset, expected.base);
        ASSERT_LE(expected.last, written - 1);
        ASSERT_TRUE(std::equal(expected.bytes.begin(), expected.bytes.end(),
                               r->bytes.begin() + static_cast<std::ptrdiff_t>(position)))
            << "stored bytes differ from the appended batch";
        position += expected.bytes.size();
        ++returned;
        ++i;
      }
      bool any_expected = i < model_.batches.size() || returned > 0;
      bool expected_written = model_.first_at_or_after(start) < model_.batches.size() &&
                              model_.batches[model_.first_at_or_after(start)].last < written;
      if (expected_written) {
        ASSERT_GT(returned, 0u) << "a readable batch was not returned";
      }
      (void)any_expected;
      if (returned > 1) {
        ASSERT_LE(r->bytes.size(), bytes_max);
      }
      ASSERT_EQ(r->next_offset, returned ? model_.batches[i - 1].last + 1 : start);
    } else if (op < 80) {  // roll
      ++counts[2];
      ASSERT_TRUE(log_->roll(timestamp_ms(0)).ok());
    } else if (op < 84) {  // retention by size
      ++counts[3];
      drain_all();
      auto config = config_;
      config.retention_bytes = static_cast<std::uint64_t>(pick(0, 200000));
      log_->set_config(config);
      auto before = log_->log_start_offset();
      auto deleted = log_->enforce_retention(timestamp_ms(0));
      ASSERT_TRUE(deleted.ok());
      log_->set_config(config_);
      ASSERT_GE(log_->log_start_offset(), before);
      model_.log_start = log_->log_start_offset();
      model_.drop_below(model_.log_start);
      // The first remaining batch must still be readable at the new start.
      if (!model_.batches.empty()) {
        auto r = log_->read(model_.log_start, 1);
        ASSERT_TRUE(r.ok());
        ASSERT_EQ(batches_in(r->bytes).at(0).base_offset,
                  model_.batches[model_.first_at_or_after(model_.log_start)].base);
      }
    } else if (op < 88) {  // delete records
      ++counts[4];
      drain_all();
      offset target(pick(model_.log_start.value(), log_->written_end().value()));
      ASSERT_TRUE(log_->delete_records(target).ok());
      model_.log_start = std::max(model_.log_start, target);
      model_.drop_below(model_.log_start);
    } else if (op < 93) {  // truncate
      ++counts[5];
      drain_all();
      offset target(pick(model_.log_start.value(), model_.log_end.value()));
      ASSERT_TRUE(log_->truncate_to(target).ok());
      model_.truncate_to(target);
    } else if (op < 97) {  // timestamp lookup
      ++counts[6];
      drain_all();
      timestamp_ms target(pick(0, 110000));
      auto found = log_->offset_for_timestamp(target);
      ASSERT_TRUE(found.ok());
      std::optional<offset> expected;
      for (const auto& b : model_.batches) {
        if (b.last >= model_.log_start && b.max_timestamp >= target) {
          expected = std::max(b.base, model_.log_start);
          break;
        }
      }
      ASSERT_EQ(*found, expected);
    } else {  // restart, clean or not
      ++counts[7];
      drain_all();
      bool clean = pick(0, 1) == 0;
      if (clean) {
        ASSERT_TRUE(log_->close().ok());
      }
      offset recovery_point(pick(0, log_->flushed_end().value()));
      log_.reset();
      open(clean, recovery_point);
      ASSERT_TRUE(log_);
      if (model_.log_end > log_->log_end_offset()) {
        // A truncation can leave the end past the last batch (an offset gap); after a
        // restart the log end is the next offset after the last batch, as in Kafka.
        offset last_next =
            model_.batches.empty() ? log_->log_end_offset() : model_.batches.back().last + 1;
        ASSERT_EQ(log_->log_end_offset(), std::max(last_next, log_->log_end_offset()));
        model_.log_end = log_->log_end_offset();
      }
    }
    check_tail();
  }
  drain_all();
  // Every kind of operation ran.
  for (int c : counts) EXPECT_GT(c, 0);
}

INSTANTIATE_TEST_SUITE_P(Seeds, PartitionLogModelTest, ::testing::Range(1, 9));

}  // namespace
}  // namespace sluice::test
