// load_stats: what one side of a load (producers or consumers) has done since measuring
// started: records, bytes, requests, failures, and the latency histogram.
//
// Bytes are record batch bytes as they travel (header and records, compressed when
// compressed): what the broker stores and serves.
//
// Owned by the run (bench_run.cc); single-threaded, shared by reference between the
// connections of one side.
#pragma once

#include <cstdint>
#include <string>

#include "tools/sluice-bench/latency_histogram.h"

namespace sluice::bench {

struct load_stats {
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
  std::uint64_t requests = 0;
  // Requests that failed (client errors) and partitions answered with a Kafka error.
  std::uint64_t request_errors = 0;
  std::uint64_t partition_errors = 0;
  // The first failure, in words, for the report.
  std::string first_error;
  latency_histogram latency_us;

  void note_error(const std::string& what) {
    if (first_error.empty()) first_error = what;
  }
  // Forgets what the warm-up did (keeps first_error: a failure is never forgotten).
  void reset() noexcept {
    records = bytes = requests = 0;
    latency_us.reset();
  }
};

}  // namespace sluice::bench
