// The compression codecs of Kafka record batches: gzip, snappy, lz4 and zstd.
//
// Codecs follow what Kafka clients write and read:
//   gzip:   RFC 1952 gzip stream (zlib).
//   snappy: either the xerial framing written by the Java client ("\x82SNAPPY\0", two
//           big-endian int32 versions, then blocks of big-endian int32 length + raw
//           snappy) or a single raw snappy block (librdkafka); compress writes xerial
//           framing, as Kafka does.
//   lz4:    the LZ4 frame format (lz4frame).
//   zstd:   the zstd frame format.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "engine/base/result.h"
#include "engine/storage/record_batch.h"

namespace sluice {

// Appends the decompressed form of `input` to `output`. Fails with errc::corrupt_batch
// when the input is not valid for the codec, and with errc::batch_too_large when the
// output would grow past `output_bytes_max` (protection against decompression bombs).
result<void> decompress(compression_codec codec, std::span<const std::byte> input,
                        std::vector<std::byte>& output, std::size_t output_bytes_max);

// Appends the compressed form of `input` to `output`.
result<void> compress(compression_codec codec, std::span<const std::byte> input,
                      std::vector<std::byte>& output);

}  // namespace sluice
