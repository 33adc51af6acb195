// bench_run: one sluice-bench run from parsed options to the exit status.
//
// Sets the topic up (topic_setup), splits the partitions between the producer and
// consumer connections (partition p belongs to connection p mod count), drives them all
// on one reactor from this thread -- pump, wait up to a millisecond for completions,
// repeat -- and prints the progress and the report. Every phase is bounded: the load by
// --records or --duration-s, the drain of requests in flight and of consumers catching
// up by --timeout-ms, the rest by the client's request deadlines.
#pragma once

#include <ostream>

#include "tools/sluice-bench/bench_options.h"

namespace sluice::bench {

// 0: the load ran and nothing failed; 1: the broker failed requests, records went
// missing (--verify), or the run could not start.
int run_bench(const bench_options& options, std::ostream& out, std::ostream& err);

// Parses the command line, then runs; 2 on a usage error.
int bench_main(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace sluice::bench
