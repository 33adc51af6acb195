// sluice-bench: load for any Kafka-protocol broker through Sluice's own client. See
// docs/operations.md, "sluice-bench", and `sluice-bench --help`.
#include <iostream>

#include "tools/sluice-bench/bench_run.h"

int main(int argc, char** argv) {
  return sluice::bench::bench_main(argc, argv, std::cout, std::cerr);
}
