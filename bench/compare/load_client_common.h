// What the bench/compare load clients (rdkafka_load, nats_load) share: strict number
// parsing for their flags, and their own CPU time for the report.
#ifndef SLUICE_BENCH_COMPARE_LOAD_CLIENT_COMMON_H
#define SLUICE_BENCH_COMPARE_LOAD_CLIENT_COMMON_H

#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>

// `text` as a whole decimal number within [min, max]; false for anything else.
static inline bool parse_long(const char* text, long min, long max, long* out) {
  char* end = NULL;
  long value = strtol(text, &end, 10);
  if (end == text || *end != '\0' || value < min || value > max) return false;
  *out = value;
  return true;
}

static inline bool parse_double(const char* text, double min, double max, double* out) {
  char* end = NULL;
  double value = strtod(text, &end);
  if (end == text || *end != '\0' || !(value >= min && value <= max)) return false;
  *out = value;
  return true;
}

// The load client's own CPU seconds (user + system, all threads): on a small machine the
// client competes with the server for the same cores, so the report shows both.
static inline double client_cpu_seconds(void) {
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

#endif  // SLUICE_BENCH_COMPARE_LOAD_CLIENT_COMMON_H
