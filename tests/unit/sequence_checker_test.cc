// sluice-bench's sequence_checker (--verify): exact counts of missing, duplicate and
// out-of-order records, from stamped values built here.
#include "tools/sluice-bench/sequence_checker.h"

#include <gtest/gtest.h>

#include <vector>

#include "tools/sluice-bench/record_stamp.h"

namespace sluice::bench {
namespace {

std::vector<std::byte> value(std::int32_t partition, std::uint32_t run, std::int64_t sequence) {
  std::vector<std::byte> bytes(40, std::byte{'x'});
  write_stamp(bytes, record_stamp{partition, run, sequence, 1234});
  return bytes;
}

void observe(sequence_checker& c, std::int32_t read_from, std::int32_t partition, std::uint32_t run,
             std::int64_t sequence) {
  auto bytes = value(partition, run, sequence);
  c.observe(read_from, std::span<const std::byte>(bytes));
}

TEST(RecordStamp, RoundTrips) {
  auto bytes = value(7, 0xdeadbeef, (std::int64_t{1} << 40) + 3);
  auto stamp = read_stamp(bytes);
  ASSERT_TRUE(stamp);
  EXPECT_EQ(stamp->partition, 7);
  EXPECT_EQ(stamp->run_id, 0xdeadbeefu);
  EXPECT_EQ(stamp->sequence, (std::int64_t{1} << 40) + 3);
  EXPECT_EQ(stamp->stamped_us, 1234);
  EXPECT_FALSE(read_stamp(std::span<const std::byte>(bytes).first(23)));
}

TEST(SequenceChecker, InOrderStreamIsClean) {
  sequence_checker c(2, std::nullopt);
  for (std::int64_t s = 0; s < 100000; ++s)
    observe(c, static_cast<std::int32_t>(s % 2), static_cast<std::int32_t>(s % 2), 1, s / 2);
  c.expect(0, 1, 50000);
  c.expect(1, 1, 50000);
  auto counts = c.finish();
  EXPECT_TRUE(counts.clean());
  EXPECT_EQ(counts.received, 100000u);
}

TEST(SequenceChecker, CountsEachKindOfFault) {
  sequence_checker c(3, std::nullopt);
  for (std::int64_t s : {0, 1, 2, 5, 6, 3, 3, 7}) observe(c, 0, 0, 9, s);
  // 0,1,2 in order; 5,6 after a gap; 3 out of order; 3 again a duplicate; 7 in order.
  // 4 is never seen, and the producer says it sent 10 (8 and 9 missing too).
  c.expect(0, 9, 10);
  observe(c, 1, 2, 9, 0);  // read from partition 1, stamped for partition 2
  c.observe(1, std::nullopt);
  auto counts = c.finish();
  EXPECT_EQ(counts.received, 10u);
  EXPECT_EQ(counts.out_of_order, 1u);
  EXPECT_EQ(counts.duplicate, 1u);
  EXPECT_EQ(counts.missing, 3u);
  EXPECT_EQ(counts.misplaced, 2u);
  EXPECT_FALSE(counts.clean());
}

TEST(SequenceChecker, FillingEveryGapOutOfOrderLeavesNothingMissing) {
  sequence_checker c(1, std::nullopt);
  // Evens first, then odds: one range per even until the odds merge them.
  for (std::int64_t s = 0; s < 200; s += 2) observe(c, 0, 0, 1, s);
  for (std::int64_t s = 1; s < 200; s += 2) observe(c, 0, 0, 1, s);
  auto counts = c.finish();
  EXPECT_EQ(counts.missing, 0u);
  EXPECT_EQ(counts.duplicate, 0u);
  EXPECT_EQ(counts.out_of_order, 99u);  // every odd but 199 (after 198) is late
}

TEST(SequenceChecker, OtherRunsAreSeparateOrIgnored) {
  sequence_checker all_runs(1, std::nullopt);
  sequence_checker one_run(1, 5u);
  for (std::int64_t s = 0; s < 10; ++s) {
    for (auto* c : {&all_runs, &one_run}) {
      observe(*c, 0, 0, 5, s);
      observe(*c, 0, 0, 6, s);  // a second run interleaved: its own stream
    }
  }
  EXPECT_TRUE(all_runs.finish().clean());
  auto counts = one_run.finish();
  EXPECT_TRUE(counts.clean());
  EXPECT_EQ(counts.foreign, 10u);
}

TEST(SequenceChecker, MemoryIsBoundedAndOverflowFails) {
  sequence_checker c(1, std::nullopt);
  // Every other sequence: each opens a range, until the bound.
  for (std::int64_t s = 0; s < static_cast<std::int64_t>(2 * sequence_checker::ranges_max + 20);
       s += 2) {
    observe(c, 0, 0, 1, s);
  }
  auto counts = c.finish();
  EXPECT_GT(counts.untracked, 0u);
  EXPECT_FALSE(counts.clean());
}

}  // namespace
}  // namespace sluice::bench
