// The Kafka codec on the hot paths: decoding Produce and Fetch requests (every request a
// client sends under load) and encoding Produce, Fetch-shaped Metadata and JoinGroup
// responses. Record bytes are views in both directions, so these measure the framing
// work only: what a request costs the broker before and after the storage engine.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <string>
#include <vector>

#include "engine/storage/record_batch.h"
#include "net/protocol/generated/fetch.h"
#include "net/protocol/generated/metadata.h"
#include "net/protocol/generated/produce.h"
#include "net/protocol/reader.h"
#include "net/protocol/writer.h"

namespace {

using namespace sluice;

constexpr std::int16_t produce_version = 9;  // flexible, what librdkafka 2.x sends
constexpr std::int16_t fetch_version = 12;
constexpr std::int16_t metadata_version = 12;

std::vector<std::byte> batch_of(std::size_t records, std::size_t value_bytes) {
  std::vector<std::byte> value(value_bytes, std::byte{0x5a});
  std::vector<std::byte> key(16, std::byte{0x11});
  batch_builder builder;
  for (std::size_t i = 0; i < records; ++i) {
    builder.add({key, value, {}, timestamp_ms(1'700'000'000'000 + static_cast<int>(i))});
  }
  auto bytes = builder.finish();
  return {bytes.begin(), bytes.end()};
}

// A produce request of `partitions` partitions of one topic, each a 16 KiB batch.
std::vector<std::byte> encoded_produce_request(std::int32_t partitions,
                                               const std::vector<std::byte>& batch) {
  protocol::ProduceRequest request;
  request.acks = 1;
  request.timeout_ms = 30000;
  auto& topic = request.topic_data.emplace_back();
  topic.name = "bench-topic";
  for (std::int32_t p = 0; p < partitions; ++p) {
    auto& part = topic.partition_data.emplace_back();
    part.index = p;
    part.records = protocol::bytes_view(batch);
  }
  protocol::writer out(batch.size() * static_cast<std::size_t>(partitions) + 256);
  request.encode(out, produce_version);
  return {out.bytes().begin(), out.bytes().end()};
}

void BM_decode_produce_request(benchmark::State& state) {
  const auto partitions = static_cast<std::int32_t>(state.range(0));
  const auto batch = batch_of(16, 1024);
  const auto bytes = encoded_produce_request(partitions, batch);
  for (auto _ : state) {
    protocol::reader in(bytes);
    protocol::ProduceRequest request;
    request.decode(in, produce_version);
    if (!in.ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(request);
  }
  // Items, not bytes: the record bytes are viewed, not copied, so a byte rate would
  // only measure the batch size.
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_decode_produce_request)->Arg(1)->Arg(8)->Arg(64);

void BM_encode_produce_response(benchmark::State& state) {
  const auto partitions = static_cast<std::int32_t>(state.range(0));
  protocol::ProduceResponse response;
  auto& topic = response.responses.emplace_back();
  topic.name = "bench-topic";
  for (std::int32_t p = 0; p < partitions; ++p) {
    auto& part = topic.partition_responses.emplace_back();
    part.index = p;
    part.base_offset = 1'000'000 + p;
  }
  // A fresh writer per response, as the broker makes one (its buffer allocation is part
  // of the cost).
  protocol::writer out(4096);
  for (auto _ : state) {
    out = protocol::writer(4096);
    response.encode(out, produce_version);
    benchmark::DoNotOptimize(out.bytes().data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_encode_produce_response)->Arg(1)->Arg(8)->Arg(64);

void BM_decode_fetch_request(benchmark::State& state) {
  const auto partitions = static_cast<std::int32_t>(state.range(0));
  protocol::FetchRequest request;
  request.max_wait_ms = 500;
  request.min_bytes = 1;
  auto& topic = request.topics.emplace_back();
  topic.topic = "bench-topic";
  for (std::int32_t p = 0; p < partitions; ++p) {
    auto& part = topic.partitions.emplace_back();
    part.partition = p;
    part.fetch_offset = 123456;
    part.partition_max_bytes = 1 << 20;
  }
  protocol::writer out(4096);
  request.encode(out, fetch_version);
  const std::vector<std::byte> bytes(out.bytes().begin(), out.bytes().end());
  for (auto _ : state) {
    protocol::reader in(bytes);
    protocol::FetchRequest decoded;
    decoded.decode(in, fetch_version);
    if (!in.ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(decoded);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_decode_fetch_request)->Arg(1)->Arg(8)->Arg(64);

// What a client's metadata refresh costs: `topics` topics of 8 partitions each.
void BM_encode_metadata_response(benchmark::State& state) {
  const auto topics = static_cast<std::size_t>(state.range(0));
  std::vector<std::string> names;
  for (std::size_t t = 0; t < topics; ++t) names.push_back("topic-" + std::to_string(t));
  protocol::MetadataResponse response;
  response.brokers.push_back({0, "broker.example", 9092, std::nullopt});
  response.cluster_id = "4Di9WznqTqmOFI732V4DBA";
  response.controller_id = 0;
  for (const auto& name : names) {
    auto& topic = response.topics.emplace_back();
    topic.name = name;
    for (std::int32_t p = 0; p < 8; ++p) {
      auto& part = topic.partitions.emplace_back();
      part.partition_index = p;
      part.leader_id = 0;
      part.leader_epoch = 0;
      part.replica_nodes = {0};
      part.isr_nodes = {0};
    }
  }
  protocol::writer out(64 * 1024);
  for (auto _ : state) {
    out = protocol::writer(64 * 1024);
    response.encode(out, metadata_version);
    benchmark::DoNotOptimize(out.bytes().data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_encode_metadata_response)->Arg(10)->Arg(1000);

}  // namespace
