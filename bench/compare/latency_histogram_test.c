// latency_histogram_test: checks the histogram's promise against exact percentiles of the
// same samples (sorted), for values spread over nine decades: every reported quantile is
// at least the exact one and at most 1/128 above it. Exit status 0 and a closing
// "N passed, N failed" line; non-zero when any check fails.
#include "latency_histogram.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { sample_count = 200000 };

static int compare_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return (x > y) - (x < y);
}

static uint64_t exact_quantile(const uint64_t* sorted, size_t count, double q) {
  double wanted = ceil(q * (double)count);
  size_t rank = wanted < 1 ? 1 : (size_t)wanted;
  return sorted[rank - 1];
}

int main(void) {
  static uint64_t samples[sample_count];
  static latency_histogram histogram;
  int passed = 0, failed = 0;
  uint64_t state = 88172645463325252u;
  for (int distribution = 0; distribution < 3; distribution++) {
    latency_histogram_reset(&histogram);
    for (size_t i = 0; i < sample_count; i++) {
      state ^= state << 13, state ^= state >> 7, state ^= state << 17;
      uint64_t value;
      if (distribution == 0) {
        value = state % 1000;  // below and around the exact range
      } else if (distribution == 1) {
        value = 1u + (state >> (34 + state % 30));  // log-spread, 1 ns .. ~1 s
      } else {
        value = (state >> 20) % 100000000000u;  // up to 100 s
      }
      samples[i] = value;
      latency_histogram_record(&histogram, value);
    }
    qsort(samples, sample_count, sizeof samples[0], compare_u64);
    const double quantiles[] = {0.0001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0};
    for (size_t k = 0; k < sizeof quantiles / sizeof quantiles[0]; k++) {
      uint64_t exact = exact_quantile(samples, sample_count, quantiles[k]);
      uint64_t reported = latency_histogram_quantile_ns(&histogram, quantiles[k]);
      double bound = (double)exact * (1.0 + 1.0 / latency_histogram_sub_count);
      if (reported >= exact && (double)reported <= bound) {
        passed++;
      } else {
        failed++;
        fprintf(stderr, "distribution %d q=%g: exact %llu, reported %llu\n", distribution,
                quantiles[k], (unsigned long long)exact, (unsigned long long)reported);
      }
    }
    if (histogram.total == sample_count && histogram.max_ns == samples[sample_count - 1] &&
        histogram.min_ns == samples[0]) {
      passed++;
    } else {
      failed++;
      fprintf(stderr, "distribution %d: count/min/max wrong\n", distribution);
    }
  }
  // Bucket bounds: every bucket's upper end maps back to the bucket, the next value to the
  // next bucket (the buckets tile the range without gaps or overlaps).
  int tiling_errors = 0;
  for (unsigned i = 0; i + 1 < latency_histogram_buckets; i++) {
    uint64_t upper = latency_histogram_bucket_upper_ns(i);
    if (latency_histogram_index(upper) != i || latency_histogram_index(upper + 1) != i + 1) {
      tiling_errors++;
    }
  }
  if (tiling_errors == 0) {
    passed++;
  } else {
    failed++;
    fprintf(stderr, "%d buckets do not tile\n", tiling_errors);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
