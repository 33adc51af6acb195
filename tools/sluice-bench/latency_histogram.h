// latency_histogram: counts of values (latencies in microseconds) in log-linear buckets,
// for percentiles with a bounded relative error, in the manner of HdrHistogram.
//
// Layout. Values below 2^sub_bucket_bits (256) have a bucket each (exact). Above, each
// power-of-two range [2^k, 2^(k+1)) is cut into 128 equal buckets of width 2^(k-7), so a
// value v lands in a bucket of width w with v >= 128 * w: the bucket's highest value
// exceeds v by less than v / 128, and percentiles carry a relative error below 2^-7
// (0.79%), better than two significant digits.
//
// A percentile is the highest value of the bucket holding the value of that rank (never
// lower than the true value, at most 0.79% above), clamped to the largest value
// recorded; max and min are exact. The bucket array is allocated once at construction
// (every 64-bit value has a bucket: 7,424 counters, 58 KiB), so record() never
// allocates and never fails.
//
// Owned by one thread; histograms of several threads or connections are merged with
// add().
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice::bench {

class latency_histogram {
 public:
  static constexpr unsigned sub_bucket_bits = 8;
  static constexpr std::uint64_t sub_bucket_count = std::uint64_t{1} << sub_bucket_bits;
  // The largest relative error of a percentile: (reported - true) / true < this.
  static constexpr double relative_error_max = 2.0 / sub_bucket_count;

  latency_histogram();

  // Counts `value` `count` times (a request's latency once per record it carried).
  void record(std::uint64_t value, std::uint64_t count = 1) noexcept;
  void add(const latency_histogram& other) noexcept;
  void reset() noexcept;

  std::uint64_t total_count() const noexcept { return total_count_; }
  // 0 when empty.
  std::uint64_t min() const noexcept { return total_count_ == 0 ? 0 : min_; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept;
  // The value at percentile `percent` (0 < percent <= 100): the highest value of the
  // bucket holding the ceil(percent/100 * total)-th smallest value, at most max().
  // 0 when empty.
  std::uint64_t percentile(double percent) const noexcept;

  // Where `value` is counted, and the values that bucket covers (for tests).
  static std::size_t bucket_of(std::uint64_t value) noexcept;
  static std::uint64_t bucket_lowest(std::size_t bucket) noexcept;
  static std::uint64_t bucket_highest(std::size_t bucket) noexcept;
  static std::size_t bucket_count() noexcept;

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  // Sum of values, for the mean (saturating is not needed: 2^64 us is 584,000 years).
  long double sum_ = 0;
};

}  // namespace sluice::bench
