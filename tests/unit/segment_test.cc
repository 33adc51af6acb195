#include "engine/storage/segment.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/support/storage_fixture.h"

namespace sluice::test {
namespace {

class SegmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.segment_bytes = 1 << 20;
    config_.index_bytes_max = 4096;
    config_.index_interval_bytes = 256;
  }

  // Appends a batch to the segment the way partition_log does, writing synchronously.
  void append(segment& s, int records, std::int64_t timestamp) {
    auto batch = make_batch(records, "b" + std::to_string(next_.value()), timestamp, 64);
    assign_batch_offsets(batch.span(), next_, leader_epoch(0));
    auto header = decode_batch_header(batch.bytes);
    ASSERT_TRUE(header.ok());
    std::uint64_t position = s.size_bytes();
    s.note_append(*header, timestamp_ms(0));
    ASSERT_EQ(
        ::pwrite(s.log_fd(), batch.bytes.data(), batch.bytes.size(), static_cast<off_t>(position)),
        static_cast<ssize_t>(batch.bytes.size()));
    s.note_written(position + batch.bytes.size());
    next_ = header->next_offset();
  }

  temp_dir dir_;
  log_config config_;
  offset next_{100};
};

TEST(SegmentFileName, TwentyDigitsAndStrictParsing) {
  EXPECT_EQ(segment_file_name(offset(42), ".log"), "00000000000000000042.log");
  EXPECT_EQ(parse_segment_file_name("00000000000000000042.log", ".log"), offset(42));
  EXPECT_EQ(parse_segment_file_name("00000000000000000042.index", ".log"), std::nullopt);
  EXPECT_EQ(parse_segment_file_name("0000000000000000042.log", ".log"), std::nullopt);
  EXPECT_EQ(parse_segment_file_name("0000000000000000004x.log", ".log"), std::nullopt);
  EXPECT_EQ(parse_segment_file_name("99999999999999999999.log", ".log"), std::nullopt);
}

TEST_F(SegmentTest, FindsBatchesByOffsetAndTimestamp) {
  auto s = segment::create(dir_.path(), offset(100), config_);
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 50; ++i) append(**s, 3, 1000 + i * 100);
  EXPECT_EQ((*s)->next_offset(), offset(250));
  for (int target = 100; target < 250; ++target) {
    auto position = (*s)->find_batch(offset(target), (*s)->written_bytes());
    ASSERT_TRUE(position.has_value());
    auto header = (*s)->header_at(*position);
    EXPECT_LE(header.base_offset, offset(target));
    EXPECT_GE(header.last_offset(), offset(target));
  }
  EXPECT_FALSE((*s)->find_batch(offset(250), (*s)->written_bytes()).has_value());
  // Batch i holds timestamps 1000 + 100 i + {0,1,2}.
  auto at = (*s)->find_timestamp(timestamp_ms(1000 + 100 * 20 + 50), (*s)->written_bytes());
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ((*s)->header_at(*at).base_offset, offset(100 + 21 * 3));
  EXPECT_EQ((*s)->max_timestamp(), timestamp_ms(1000 + 49 * 100 + 2));
}

TEST_F(SegmentTest, ReopenRestoresStateFromFiles) {
  {
    auto s = segment::create(dir_.path(), offset(100), config_);
    ASSERT_TRUE(s.ok());
    for (int i = 0; i < 30; ++i) append(**s, 2, 5000 + i);
    ASSERT_TRUE((*s)->set_sealed().ok());
  }
  auto s = segment::open(dir_.path(), offset(100), config_, /*active=*/false);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->next_offset(), offset(160));
  EXPECT_EQ((*s)->max_timestamp(), timestamp_ms(5000 + 29 + 1));
  auto position = (*s)->find_batch(offset(131), (*s)->written_bytes());
  ASSERT_TRUE(position.has_value());
  EXPECT_EQ((*s)->header_at(*position).base_offset, offset(130));
}

TEST_F(SegmentTest, RecoverCutsAtTheFirstCorruptBatch) {
  auto s = segment::create(dir_.path(), offset(100), config_);
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 10; ++i) append(**s, 2, 1000);
  auto tenth = (*s)->find_batch(offset(118), (*s)->written_bytes());
  ASSERT_TRUE(tenth.has_value());
  // Flip a byte inside the CRC-covered part of the last batch.
  std::byte flipped{0x5a};
  ASSERT_EQ(::pwrite((*s)->log_fd(), &flipped, 1, static_cast<off_t>(tenth->value() + 70)), 1);
  auto recovered = (*s)->recover(config_);
  ASSERT_TRUE(recovered.ok());
  EXPECT_EQ(recovered->batches, 9u);
  EXPECT_EQ(recovered->valid_bytes, tenth->value());
  EXPECT_STREQ(recovered->stop_reason, "batch CRC32C does not match its bytes");
  EXPECT_EQ((*s)->next_offset(), offset(118));
  EXPECT_EQ(*file_size((*s)->log_fd()), tenth->value());
}

// Found by CrashTest.TornAndCorruptFiles (seed 576653318): a bit flip in a base offset
// (outside the CRC) and a lost index made open() build the indexes from the damaged
// header, and an index append asserted. Such a batch must end the walk like a torn tail.
TEST_F(SegmentTest, OpenWithLostIndexesStopsAtABatchWhoseOffsetsTheSegmentCannotHold) {
  for (const std::int64_t damaged_base : {std::int64_t{1} << 40, std::int64_t{100}}) {
    temp_dir dir;
    next_ = offset(100);
    file_pos sixth{0};
    {
      auto s = segment::create(dir.path(), offset(100), config_);
      ASSERT_TRUE(s.ok());
      for (int i = 0; i < 10; ++i) append(**s, 2, 1000);
      auto at = (*s)->find_batch(offset(110), (*s)->written_bytes());
      ASSERT_TRUE(at.has_value());
      sixth = *at;
      // Beyond 32-bit relative offsets, or back before the batches ahead of it.
      std::byte base[8];
      for (int b = 0; b < 8; ++b) {
        base[b] = static_cast<std::byte>(damaged_base >> (8 * (7 - b)));
      }
      ASSERT_EQ(::pwrite((*s)->log_fd(), base, 8, static_cast<off_t>(sixth.value())), 8);
    }
    ASSERT_EQ(::unlink((dir.path() + "/" + segment_file_name(offset(100), ".index")).c_str()), 0);
    ASSERT_EQ(::unlink((dir.path() + "/" + segment_file_name(offset(100), ".timeindex")).c_str()),
              0);
    auto s = segment::open(dir.path(), offset(100), config_, /*active=*/true);
    ASSERT_TRUE(s.ok()) << s.failure().detail();
    EXPECT_EQ((*s)->size_bytes(), sixth.value()) << "damaged base " << damaged_base;
    EXPECT_EQ((*s)->next_offset(), offset(110));
    auto recovered = (*s)->recover(config_);
    ASSERT_TRUE(recovered.ok());
    EXPECT_EQ(recovered->batches, 5u);
    EXPECT_EQ((*s)->next_offset(), offset(110));
  }
}

TEST_F(SegmentTest, TruncateToAndAbandonUnwritten) {
  auto s = segment::create(dir_.path(), offset(100), config_);
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 10; ++i) append(**s, 5, 1000);
  ASSERT_TRUE((*s)->truncate_to(offset(123)).ok());
  EXPECT_EQ((*s)->next_offset(), offset(120));
  EXPECT_FALSE((*s)->find_batch(offset(120), (*s)->written_bytes()).has_value());
  // An append that never reached the file is forgotten.
  auto batch = make_batch(2, "unwritten");
  next_ = offset(120);
  assign_batch_offsets(batch.span(), next_, leader_epoch(0));
  (*s)->note_append(*decode_batch_header(batch.bytes), timestamp_ms(0));
  EXPECT_EQ((*s)->next_offset(), offset(122));
  ASSERT_TRUE((*s)->abandon_unwritten().ok());
  EXPECT_EQ((*s)->next_offset(), offset(120));
  EXPECT_EQ((*s)->size_bytes(), (*s)->written_bytes());
}

TEST_F(SegmentTest, NeedsRollWhenFull) {
  config_.segment_bytes = 4096;
  auto s = segment::create(dir_.path(), offset(0), config_);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE((*s)->needs_roll_for(100000, 0, config_)) << "an empty segment takes any batch";
  next_ = offset(0);
  append(**s, 10, 0);
  EXPECT_TRUE((*s)->needs_roll_for(4096, 0, config_));
  EXPECT_FALSE((*s)->needs_roll_for(10, 0, config_));
  // A batch whose last offset would not fit a signed 32-bit relative offset rolls.
  EXPECT_TRUE((*s)->needs_roll_for(10, std::numeric_limits<std::int32_t>::max() - 5, config_));
}

}  // namespace
}  // namespace sluice::test
