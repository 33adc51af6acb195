#include "tools/sluice-bench/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace sluice::bench {

namespace {
// Values in [2^(sub_bucket_bits - 1 + s), 2^(sub_bucket_bits + s)) have buckets 2^s
// wide; s runs from 1 to 64 - sub_bucket_bits. Each s adds sub_bucket_count / 2 buckets.
constexpr std::uint64_t half_count = latency_histogram::sub_bucket_count / 2;
constexpr unsigned shifts_max = 64 - latency_histogram::sub_bucket_bits;
}  // namespace

latency_histogram::latency_histogram() : counts_(bucket_count(), 0) {}

std::size_t latency_histogram::bucket_count() noexcept {
  return static_cast<std::size_t>(sub_bucket_count + shifts_max * half_count);
}

std::size_t latency_histogram::bucket_of(std::uint64_t value) noexcept {
  if (value < sub_bucket_count) return static_cast<std::size_t>(value);
  // value >> shift lands in [half_count, sub_bucket_count): its top sub_bucket_bits bits.
  const unsigned shift = static_cast<unsigned>(std::bit_width(value)) - sub_bucket_bits;
  const std::uint64_t sub = value >> shift;  // in [half_count, sub_bucket_count)
  return static_cast<std::size_t>(sub_bucket_count + (shift - 1) * half_count + (sub - half_count));
}

std::uint64_t latency_histogram::bucket_lowest(std::size_t bucket) noexcept {
  if (bucket < sub_bucket_count) return bucket;
  const std::uint64_t above = bucket - sub_bucket_count;
  const unsigned shift = static_cast<unsigned>(above / half_count) + 1;
  const std::uint64_t sub = half_count + above % half_count;
  return sub << shift;
}

std::uint64_t latency_histogram::bucket_highest(std::size_t bucket) noexcept {
  if (bucket < sub_bucket_count) return bucket;
  const std::uint64_t above = bucket - sub_bucket_count;
  const unsigned shift = static_cast<unsigned>(above / half_count) + 1;
  return bucket_lowest(bucket) + ((std::uint64_t{1} << shift) - 1);
}

void latency_histogram::record(std::uint64_t value, std::uint64_t count) noexcept {
  if (count == 0) return;
  counts_[bucket_of(value)] += count;
  total_count_ += count;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += static_cast<long double>(value) * static_cast<long double>(count);
}

void latency_histogram::add(const latency_histogram& other) noexcept {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  total_count_ += other.total_count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void latency_histogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

double latency_histogram::mean() const noexcept {
  if (total_count_ == 0) return 0;
  return static_cast<double>(sum_ / static_cast<long double>(total_count_));
}

std::uint64_t latency_histogram::percentile(double percent) const noexcept {
  if (total_count_ == 0) return 0;
  percent = std::clamp(percent, 0.0, 100.0);
  auto rank =
      static_cast<std::uint64_t>(std::ceil(percent / 100.0 * static_cast<double>(total_count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, total_count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(bucket_highest(i), max_);
  }
  return max_;
}

}  // namespace sluice::bench
