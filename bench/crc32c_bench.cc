// CRC32C throughput: the dispatched (hardware when available) and the portable paths.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <vector>

#include "engine/storage/crc32c.h"

namespace {

std::vector<std::byte> make_buffer(std::size_t size) {
  std::vector<std::byte> buffer(size);
  std::uint32_t state = 12345;
  for (auto& b : buffer) {
    state = state * 1103515245u + 12345u;
    b = static_cast<std::byte>(state >> 24);
  }
  return buffer;
}

void BM_crc32c_dispatched(benchmark::State& state) {
  const auto buffer = make_buffer(static_cast<std::size_t>(state.range(0)));
  state.SetLabel(sluice::crc32c_is_hardware_accelerated() ? "hardware" : "portable");
  for (auto _ : state) {
    benchmark::DoNotOptimize(sluice::crc32c_extend(0, buffer.data(), buffer.size()));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_crc32c_dispatched)->Arg(1024)->Arg(16 * 1024)->Arg(1024 * 1024);

void BM_crc32c_portable(benchmark::State& state) {
  const auto buffer = make_buffer(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(sluice::crc32c_extend_portable(0, buffer.data(), buffer.size()));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_crc32c_portable)->Arg(1024)->Arg(16 * 1024)->Arg(1024 * 1024);

}  // namespace
