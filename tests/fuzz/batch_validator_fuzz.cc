// libFuzzer target: the batch validator and the record walker on arbitrary bytes.
//
// Whatever a producer or a damaged disk hands the engine, validation must either reject
// it with an error or accept a batch whose every record can be walked -- never read out
// of bounds, never allocate without bound, never crash. Run with:
//   build/fuzz/tests/fuzz/batch_validator_fuzz -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/storage/compression.h"
#include "engine/storage/crc32c.h"
#include "engine/storage/record_batch.h"

namespace {

// Keeps fuzzing fast and memory bounded while still covering decompression limits.
constexpr std::size_t decompressed_bytes_max = 4 * 1024 * 1024;

// Random bytes almost never carry a matching CRC and length, which would leave the record
// walker unexplored. When the first input byte is odd, the rest is patched into a
// well-framed batch (length field and CRC made to match) before validation.
std::vector<std::byte> framed_input(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data),
                               reinterpret_cast<const std::byte*>(data) + size);
  if (bytes.empty() || (std::to_integer<int>(bytes[0]) & 1) == 0) return bytes;
  bytes.erase(bytes.begin());
  if (bytes.size() < sluice::batch_layout::header_bytes) return bytes;
  auto store_be32 = [&](std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes[at + i] = std::byte(v >> (24 - 8 * i));
  };
  store_be32(sluice::batch_layout::batch_length,
             static_cast<std::uint32_t>(bytes.size() - sluice::batch_layout::log_overhead));
  bytes[sluice::batch_layout::magic] = std::byte{2};
  auto covered = std::span<const std::byte>(bytes).subspan(sluice::batch_layout::attributes);
  store_be32(sluice::batch_layout::crc, sluice::crc32c(covered));
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> input = framed_input(data, size);
  std::span<const std::byte> bytes = input;
  sluice::batch_limits limits;
  limits.batch_bytes_max = 1024 * 1024;
  limits.timestamp_after_max_ms = 3'600'000;
  std::vector<std::byte> scratch;

  if (auto header =
          sluice::validate_batch(bytes, limits, sluice::timestamp_ms(1'700'000'000'000))) {
    (void)sluice::validate_records(*header, bytes, scratch, decompressed_bytes_max);
    scratch.clear();
    if (auto records = sluice::batch_records(*header, bytes, scratch, decompressed_bytes_max)) {
      std::size_t walked = 0;
      (void)sluice::for_each_record(*header, *records, [&](const sluice::record_view& record) {
        walked += record.encoded.size();
        (void)sluice::for_each_header(record, [&](const sluice::header_view& h) {
          walked += h.key.size();
          return true;
        });
        return true;
      });
    }
  }

  // Each codec on the raw input, the way batch_records() would see a compressed section.
  for (auto codec : {sluice::compression_codec::gzip, sluice::compression_codec::snappy,
                     sluice::compression_codec::lz4, sluice::compression_codec::zstd}) {
    std::vector<std::byte> output;
    auto decoded = sluice::decompress(codec, bytes, output, decompressed_bytes_max);
    if (decoded && output.size() > decompressed_bytes_max) __builtin_trap();
  }
  return 0;
}
