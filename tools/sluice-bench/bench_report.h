// bench_report: what sluice-bench prints -- a progress line a second on the error
// stream, and at the end either a few lines of text or one JSON document.
//
// Units: MB is 10^6 bytes, GB 10^9; latencies in microseconds in JSON, milliseconds in
// text. CPU seconds per GB divide the CPU time of the measured interval by the bytes of
// the measured side (produced bytes for produce and e2e, consumed for consume).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "tools/sluice-bench/bench_options.h"
#include "tools/sluice-bench/cpu_time.h"
#include "tools/sluice-bench/load_stats.h"
#include "tools/sluice-bench/sequence_checker.h"

namespace sluice::bench {

struct side_summary {
  const load_stats* stats = nullptr;
  double seconds = 0;
  // What the latency measures, in words.
  std::string latency_kind;
};

struct run_summary {
  const bench_options* options = nullptr;
  std::int32_t partitions = 0;
  bool topic_created = false;
  std::size_t producers = 0;
  std::size_t consumers = 0;
  std::size_t records_per_batch = 0;
  // Records the producers sent, acknowledged or not (warm-up included).
  std::uint64_t records_sent = 0;
  std::uint32_t run_id = 0;
  std::optional<side_summary> produce;
  std::optional<side_summary> consume;
  std::optional<verify_counts> verify;
  double tool_cpu_seconds = 0;
  std::optional<double> broker_cpu_seconds;
  std::optional<resident_memory> broker_memory;
  // Failures that are not a side's own (a short read, a stalled consumer).
  std::vector<std::string> failures;
  bool ok = true;
};

// One line: "produce 123,456 rec/s 120.6 MB/s p50 1.23 ms p99 4.56 ms | consume ...".
class progress_printer {
 public:
  progress_printer(std::ostream& err, std::chrono::steady_clock::time_point start);
  // Prints a line when a second has passed since the last one.
  void tick(std::chrono::steady_clock::time_point now, const load_stats* produce,
            const load_stats* consume);
  // Measuring restarts (after the warm-up): rates are taken from zero again.
  void restart(std::chrono::steady_clock::time_point now);

 private:
  std::ostream& err_;
  std::chrono::steady_clock::time_point last_;
  std::chrono::steady_clock::time_point start_;
  std::uint64_t produce_records_ = 0;
  std::uint64_t produce_bytes_ = 0;
  std::uint64_t consume_records_ = 0;
  std::uint64_t consume_bytes_ = 0;
};

void write_json_report(const run_summary& summary, std::ostream& out);
void write_text_report(const run_summary& summary, std::ostream& out);

}  // namespace sluice::bench
