// latency_histogram: a fixed-size latency histogram with bounded relative error, shared by
// the load clients of bench/compare (rdkafka_load, nats_load, tcp_echo).
//
// Why not keep every sample: a 10 s run at a few hundred thousand records a second would
// need tens of MiB of samples and a sort; the histogram is 37 KiB, allocated once, and its
// percentiles are within 1/128 (0.8 %) of the exact value.
//
// Layout (log-linear, the idea HdrHistogram made popular; this code is our own): values
// below 2 * sub_count nanoseconds get one bucket each. Above that, each power of two
// [2^e, 2^(e+1)) is cut into sub_count equal buckets, so a bucket is never wider than
// 1/sub_count of the values it holds. A value maps to a bucket by its leading bit (the
// power of two) and the next sub_bits bits (the sub-bucket). Values beyond the last power
// of two (2^43 ns, about 2.4 hours) are counted in the last bucket; max_ns keeps the exact maximum.
//
// Percentiles report the upper end of the bucket that holds the requested rank (never an
// underestimate), capped by the exact maximum.
//
// Not thread-safe: a client that records from several threads holds its own lock.
#ifndef SLUICE_BENCH_COMPARE_LATENCY_HISTOGRAM_H
#define SLUICE_BENCH_COMPARE_LATENCY_HISTOGRAM_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum {
  latency_histogram_sub_bits = 7,
  latency_histogram_sub_count = 1 << latency_histogram_sub_bits,
  latency_histogram_shift_max = 35,
  latency_histogram_buckets = (latency_histogram_shift_max + 2) * latency_histogram_sub_count,
};

typedef struct latency_histogram {
  uint64_t counts[latency_histogram_buckets];
  uint64_t total;
  uint64_t min_ns;
  uint64_t max_ns;
  double sum_ns;
} latency_histogram;

static inline void latency_histogram_reset(latency_histogram* h) {
  memset(h, 0, sizeof *h);
  h->min_ns = UINT64_MAX;
}

static inline unsigned latency_histogram_index(uint64_t value_ns) {
  const uint64_t sub = latency_histogram_sub_count;
  if (value_ns < 2 * sub) return (unsigned)value_ns;
  unsigned exponent = 63u - (unsigned)__builtin_clzll(value_ns);
  unsigned shift = exponent - latency_histogram_sub_bits;
  if (shift > latency_histogram_shift_max) return latency_histogram_buckets - 1;
  uint64_t mantissa = value_ns >> shift;  // in [sub, 2 * sub)
  return (unsigned)((shift + 1) * sub + (mantissa - sub));
}

// The largest value that lands in bucket `index`.
static inline uint64_t latency_histogram_bucket_upper_ns(unsigned index) {
  const uint64_t sub = latency_histogram_sub_count;
  if (index < 2 * sub) return index;
  uint64_t shift = index / sub - 1;
  uint64_t mantissa = sub + index % sub;
  return ((mantissa + 1) << shift) - 1;
}

static inline void latency_histogram_record(latency_histogram* h, uint64_t value_ns) {
  h->counts[latency_histogram_index(value_ns)]++;
  h->total++;
  h->sum_ns += (double)value_ns;
  if (value_ns < h->min_ns) h->min_ns = value_ns;
  if (value_ns > h->max_ns) h->max_ns = value_ns;
}

// The value at quantile q (0 < q <= 1), in nanoseconds; 0 for an empty histogram.
static inline uint64_t latency_histogram_quantile_ns(const latency_histogram* h, double q) {
  if (h->total == 0) return 0;
  double wanted = ceil(q * (double)h->total);
  uint64_t rank = wanted < 1 ? 1 : (uint64_t)wanted;
  if (rank > h->total) rank = h->total;
  uint64_t seen = 0;
  for (unsigned i = 0; i < latency_histogram_buckets; i++) {
    seen += h->counts[i];
    if (seen >= rank) {
      uint64_t upper = latency_histogram_bucket_upper_ns(i);
      return upper < h->max_ns ? upper : h->max_ns;
    }
  }
  return h->max_ns;
}

// Writes `"latency_us": {...}` (no leading or trailing comma) to `out`.
static inline void latency_histogram_print_json(const latency_histogram* h, FILE* out) {
  double mean_ns = h->total ? h->sum_ns / (double)h->total : 0;
  fprintf(out,
          "\"latency_us\": {\"count\": %llu, \"min\": %.1f, \"mean\": %.1f, \"p50\": %.1f, "
          "\"p90\": %.1f, \"p99\": %.1f, \"p99.9\": %.1f, \"max\": %.1f}",
          (unsigned long long)h->total, h->total ? (double)h->min_ns / 1e3 : 0.0, mean_ns / 1e3,
          (double)latency_histogram_quantile_ns(h, 0.50) / 1e3,
          (double)latency_histogram_quantile_ns(h, 0.90) / 1e3,
          (double)latency_histogram_quantile_ns(h, 0.99) / 1e3,
          (double)latency_histogram_quantile_ns(h, 0.999) / 1e3, (double)h->max_ns / 1e3);
}

static inline void latency_histogram_print_text(const latency_histogram* h, const char* what,
                                                FILE* out) {
  fprintf(out, "%s latency (us): p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%llu samples)\n", what,
          (double)latency_histogram_quantile_ns(h, 0.50) / 1e3,
          (double)latency_histogram_quantile_ns(h, 0.99) / 1e3,
          (double)latency_histogram_quantile_ns(h, 0.999) / 1e3, (double)h->max_ns / 1e3,
          (unsigned long long)h->total);
}

#endif  // SLUICE_BENCH_COMPARE_LATENCY_HISTOGRAM_H
