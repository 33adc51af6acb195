// The reactor's fixed cost per operation: prepare + submit + reap + dispatch of NOPs,
// with 1, 16 or 256 NOPs handed to the kernel per run_once(). A NOP does no work in the
// kernel, so what remains is the ring, the syscall amortised over the batch, and the
// virtual call of each completion.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>

#include "engine/reactor/reactor.h"

namespace {

class nop_counter final : public sluice::completion {
 public:
  void complete(int res, std::uint32_t) noexcept override {
    benchmark::DoNotOptimize(res);
    ++completed;
  }
  std::uint64_t completed = 0;
};

void BM_reactor_nop_batch(benchmark::State& state) {
  const auto batch = static_cast<unsigned>(state.range(0));
  // A ring larger than the batch, so prepare() never has to submit on its own and each
  // iteration is exactly one submission.
  auto made = sluice::reactor::create(sluice::reactor_config{.ring_entries = 512});
  if (!made.ok()) {
    state.SkipWithError(made.failure().detail());
    return;
  }
  auto& reactor = *made.value();
  nop_counter done;
  for (auto _ : state) {
    for (unsigned i = 0; i < batch; ++i) io_uring_prep_nop(reactor.prepare(&done));
    // NOPs complete during the submission itself, so one non-waiting call normally
    // reaps the whole batch; the bound only guards against a kernel that defers them.
    for (int round = 0; round < 1000 && reactor.in_flight() > 0; ++round) {
      reactor.run_once(std::chrono::microseconds(0));
    }
  }
  if (reactor.in_flight() != 0) state.SkipWithError("NOPs left in flight");
  state.SetItemsProcessed(static_cast<std::int64_t>(done.completed));
}
BENCHMARK(BM_reactor_nop_batch)->Arg(1)->Arg(16)->Arg(256);

}  // namespace
