// The deterministic workload shared by the crash writer (crash_writer.cc) and the crash
// tests (crash_test.cc).
//
// Batch number i of partition p has content fully determined by (p, i): its record count,
// keys, values, timestamps and compression codec all come from a hash of (p, i). Offsets
// are assigned sequentially from 0, so batch i always starts at the sum of the record
// counts of batches 0..i-1. That lets the checker, which never talks to the writer, say
// exactly which bytes must sit at every offset after a crash, and lets a restarted writer
// continue with the batch that follows the last one it finds.
//
// The topic is "crash" with partitions 0 and 1, in small segments (so rolls, index
// trimming and retention happen within a few hundred milliseconds of writing).
#pragma once

#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/storage/log_config.h"
#include "engine/storage/log_manager.h"
#include "engine/storage/record_batch.h"

namespace sluice::crash {

inline constexpr std::int32_t partitions = 2;
inline constexpr const char* topic = "crash";
// Records per batch lie in [1, records_per_batch_max].
inline constexpr std::int64_t records_per_batch_max = 8;
// Values lie in [0, value_bytes_max) bytes.
inline constexpr std::uint64_t value_bytes_max = 3000;
// Synthetic record timestamps: strictly increasing with the batch number, far from "now"
// (time-based retention is off, so their age never matters).
inline constexpr std::int64_t timestamp_base_ms = 1'700'000'000'000;

inline topic_partition partition_of(std::int32_t p) {
  return topic_partition{topic, p};
}

// The log settings of both partitions: small segments and indexes so that rolls, index
// trimming and retention all happen within a short run.
inline log_config workload_log_config() {
  log_config c;
  c.segment_bytes = 256 * 1024;
  c.index_bytes_max = 4096;
  c.index_interval_bytes = 1024;
  c.retention_ms.reset();
  // Retention by size keeps the data directory bounded over many rounds, and moves the log
  // start offset while the writer is being killed.
  c.retention_bytes = 3ull * 1024 * 1024;
  return c;  // default flush policy: every batch, with group commit
}

inline log_manager_config workload_manager_config(const std::string& data_dir) {
  log_manager_config c;
  c.data_dir = data_dir;
  c.defaults = workload_log_config();
  c.checkpoint_interval = std::chrono::milliseconds(50);
  c.retention_check_interval = std::chrono::milliseconds(100);
  return c;
}

// splitmix64: a well-mixed 64-bit hash of a 64-bit input.
inline std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline std::uint64_t batch_hash(std::int32_t p, std::int64_t i) noexcept {
  return mix(mix(static_cast<std::uint64_t>(p) + 0x1234) ^ static_cast<std::uint64_t>(i));
}

inline std::int64_t record_count(std::int32_t p, std::int64_t i) noexcept {
  return 1 + static_cast<std::int64_t>(batch_hash(p, i) % records_per_batch_max);
}

inline compression_codec codec_of(std::int32_t p, std::int64_t i) noexcept {
  // Mostly uncompressed; every codec now and then.
  switch ((batch_hash(p, i) >> 8) % 10) {
    case 0: return compression_codec::gzip;
    case 1: return compression_codec::snappy;
    case 2: return compression_codec::lz4;
    case 3: return compression_codec::zstd;
    default: return compression_codec::none;
  }
}

inline std::string record_key(std::int32_t p, std::int64_t i, std::int64_t j) {
  return "p" + std::to_string(p) + "-b" + std::to_string(i) + "-r" + std::to_string(j);
}

inline std::string record_value(std::int32_t p, std::int64_t i, std::int64_t j) {
  std::uint64_t h = mix(batch_hash(p, i) ^ (static_cast<std::uint64_t>(j) << 48));
  std::string value(h % value_bytes_max, '\0');
  // A pattern that differs between records and positions, and compresses somewhat.
  for (std::size_t k = 0; k < value.size(); ++k) {
    value[k] = static_cast<char>('a' + ((h >> 16) + k / 7 + static_cast<std::uint64_t>(j)) % 26);
  }
  return value;
}

// Builds batch i of partition p (base offset 0, epoch -1, as batch_builder leaves them).
// The span stays valid until the builder is used again.
inline std::span<std::byte> build_batch(batch_builder& builder, std::int32_t p, std::int64_t i) {
  builder = batch_builder(codec_of(p, i));
  std::int64_t count = record_count(p, i);
  for (std::int64_t j = 0; j < count; ++j) {
    std::string key = record_key(p, i, j);
    std::string value = record_value(p, i, j);
    batch_builder::record r;
    r.key = std::as_bytes(std::span(key.data(), key.size()));
    r.value = std::as_bytes(std::span(value.data(), value.size()));
    r.timestamp = timestamp_ms(timestamp_base_ms + i * records_per_batch_max + j);
    builder.add(r);  // copies key and value into the builder
  }
  return builder.finish();
}

// The batch number in a key made by record_key(), or nullopt if it is not one of ours.
inline std::optional<std::int64_t> batch_number_in_key(std::string_view key, std::int32_t p) {
  std::string prefix = "p" + std::to_string(p) + "-b";
  if (!key.starts_with(prefix)) return std::nullopt;
  key.remove_prefix(prefix.size());
  std::int64_t number = -1;
  auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), number);
  if (ec != std::errc() || end == key.data() + key.size() || *end != '-' || number < 0) {
    return std::nullopt;
  }
  return number;
}

// The base offsets of batches 0, 1, 2, ... of one partition, computed on demand.
class offset_plan {
 public:
  explicit offset_plan(std::int32_t p) : partition_(p) { bases_.push_back(offset(0)); }

  // The base offset of batch i.
  offset base_of(std::int64_t i) {
    while (static_cast<std::int64_t>(bases_.size()) <= i) {
      std::int64_t last = static_cast<std::int64_t>(bases_.size()) - 1;
      bases_.push_back(bases_.back() + record_count(partition_, last));
    }
    return bases_[static_cast<std::size_t>(i)];
  }

  // The batch number that starts at `target`, or nullopt when `target` falls inside a
  // batch. Bounded: gives up past `target` (every batch holds at least one offset).
  std::optional<std::int64_t> batch_starting_at(offset target) {
    std::int64_t i = 0;
    while (base_of(i) < target) ++i;
    if (base_of(i) != target) return std::nullopt;
    return i;
  }

 private:
  std::int32_t partition_;
  std::vector<offset> bases_;
};

}  // namespace sluice::crash
