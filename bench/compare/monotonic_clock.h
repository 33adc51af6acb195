// monotonic_clock: nanoseconds on CLOCK_MONOTONIC, the one clock every bench/compare client
// times with (vDSO, so cheap enough to read once per record).
#ifndef SLUICE_BENCH_COMPARE_MONOTONIC_CLOCK_H
#define SLUICE_BENCH_COMPARE_MONOTONIC_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t monotonic_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

#endif  // SLUICE_BENCH_COMPARE_MONOTONIC_CLOCK_H
