// sluice-bench's latency_histogram: every percentile within the documented relative
// error of the exact percentile of the same data, sorted.
#include "tools/sluice-bench/latency_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace sluice::bench {
namespace {

// The exact percentile by the histogram's definition: the ceil(p/100 * n)-th smallest.
std::uint64_t exact_percentile(const std::vector<std::uint64_t>& sorted, double percent) {
  auto rank =
      static_cast<std::size_t>(std::ceil(percent / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void expect_within_bound(std::uint64_t reported, std::uint64_t exact) {
  EXPECT_GE(reported, exact);
  EXPECT_LE(static_cast<double>(reported - exact),
            static_cast<double>(exact) * latency_histogram::relative_error_max)
      << "reported " << reported << " exact " << exact;
}

TEST(LatencyHistogram, BucketsCoverEveryValueWithBoundedWidth) {
  // Every bucket's range holds the values mapped to it, consecutive buckets touch, and
  // a bucket above the exact range is narrower than 1/128 of its lowest value.
  for (std::size_t b = 0; b + 1 < latency_histogram::bucket_count(); ++b) {
    const auto low = latency_histogram::bucket_lowest(b);
    const auto high = latency_histogram::bucket_highest(b);
    ASSERT_LE(low, high);
    ASSERT_EQ(high + 1, latency_histogram::bucket_lowest(b + 1)) << b;
    ASSERT_EQ(latency_histogram::bucket_of(low), b);
    ASSERT_EQ(latency_histogram::bucket_of(high), b);
    ASSERT_LE(static_cast<double>(high - low), static_cast<double>(low) / 128.0) << b;
  }
  EXPECT_EQ(latency_histogram::bucket_of(UINT64_MAX), latency_histogram::bucket_count() - 1);
  EXPECT_EQ(latency_histogram::bucket_highest(latency_histogram::bucket_count() - 1), UINT64_MAX);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  latency_histogram h;
  for (std::uint64_t v = 0; v < 256; ++v) h.record(v);
  for (double p : {1.0, 10.0, 50.0, 90.0, 100.0}) {
    std::vector<std::uint64_t> sorted(256);
    for (std::uint64_t v = 0; v < 256; ++v) sorted[v] = v;
    EXPECT_EQ(h.percentile(p), exact_percentile(sorted, p)) << p;
  }
}

TEST(LatencyHistogram, PercentilesMatchSortedDataWithinTheBound) {
  // Log-uniform latencies from 1 us to 10 s, as a broker's tail spreads them.
  std::mt19937_64 random(42);
  std::uniform_real_distribution<double> exponent(0.0, 7.0);
  std::vector<std::uint64_t> values(200000);
  latency_histogram h;
  for (auto& v : values) {
    v = static_cast<std::uint64_t>(std::pow(10.0, exponent(random)));
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  ASSERT_EQ(h.total_count(), values.size());
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.max(), values.back());
  for (double p : {0.1, 1.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0}) {
    expect_within_bound(h.percentile(p), exact_percentile(values, p));
  }
}

TEST(LatencyHistogram, WeightedRecordsCountAsRepeatedValues) {
  latency_histogram weighted;
  latency_histogram repeated;
  std::vector<std::uint64_t> sorted;
  std::mt19937_64 random(7);
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t v = 100 + random() % 100000;
    const std::uint64_t count = 1 + random() % 20;
    weighted.record(v, count);
    for (std::uint64_t c = 0; c < count; ++c) {
      repeated.record(v);
      sorted.push_back(v);
    }
  }
  std::sort(sorted.begin(), sorted.end());
  for (double p : {50.0, 95.0, 99.0, 99.9}) {
    EXPECT_EQ(weighted.percentile(p), repeated.percentile(p));
    expect_within_bound(weighted.percentile(p), exact_percentile(sorted, p));
  }
}

TEST(LatencyHistogram, AddMergesAndResetEmpties) {
  latency_histogram a;
  latency_histogram b;
  std::vector<std::uint64_t> all;
  for (std::uint64_t v = 1; v <= 5000; ++v) {
    (v % 2 ? a : b).record(v * 37);
    all.push_back(v * 37);
  }
  a.add(b);
  EXPECT_EQ(a.total_count(), 5000u);
  EXPECT_EQ(a.max(), 5000u * 37);
  EXPECT_EQ(a.min(), 37u);
  expect_within_bound(a.percentile(50), exact_percentile(all, 50));
  EXPECT_NEAR(a.mean(), 37.0 * 2500.5, 1e-6);
  a.reset();
  EXPECT_EQ(a.total_count(), 0u);
  EXPECT_EQ(a.percentile(99), 0u);
  EXPECT_EQ(a.max(), 0u);
  EXPECT_EQ(a.min(), 0u);
}

}  // namespace
}  // namespace sluice::bench
