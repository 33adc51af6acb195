// The append-path checks of a produced batch: validate_batch (header rules and CRC32C)
// and validate_records (walking every record), on a 16 KiB batch of 1 KiB records.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <vector>

#include "engine/storage/record_batch.h"

namespace {

constexpr std::size_t record_count = 16;
constexpr std::size_t value_bytes = 1024;

std::vector<std::byte> make_batch() {
  std::vector<std::byte> key(16);
  std::vector<std::byte> value(value_bytes);
  std::uint32_t state = 7;
  for (auto& b : value) {
    state = state * 1103515245u + 12345u;
    b = static_cast<std::byte>(state >> 24);
  }
  sluice::batch_builder builder;
  for (std::size_t i = 0; i < record_count; ++i) {
    key[0] = static_cast<std::byte>(i);
    builder.add({key, value, {}, sluice::timestamp_ms(1'700'000'000'000 + static_cast<int>(i))});
  }
  auto batch = builder.finish();
  return std::vector<std::byte>(batch.begin(), batch.end());
}

void BM_validate_batch(benchmark::State& state) {
  const auto batch = make_batch();
  const sluice::batch_limits limits;
  const sluice::timestamp_ms now(1'700'000'000'000);
  for (auto _ : state) {
    auto header = sluice::validate_batch(batch, limits, now);
    if (!header.ok()) state.SkipWithError("validate_batch failed");
    benchmark::DoNotOptimize(header);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * record_count));
}
BENCHMARK(BM_validate_batch);

void BM_validate_records(benchmark::State& state) {
  const auto batch = make_batch();
  auto header = sluice::decode_batch_header(batch);
  if (!header.ok()) {
    state.SkipWithError("decode_batch_header failed");
    return;
  }
  std::vector<std::byte> scratch;
  for (auto _ : state) {
    auto checked = sluice::validate_records(*header, batch, scratch, 1 << 20);
    if (!checked.ok()) state.SkipWithError("validate_records failed");
    benchmark::DoNotOptimize(checked);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * record_count));
}
BENCHMARK(BM_validate_records);

}  // namespace
