// batch_factory: the prebuilt record batches of one producer, and the stamping that
// turns one into the batch a request carries.
//
// At start-up a few full batches (templates) are built once with batch_builder:
// records_per_batch() records each, values of record_bytes (stamp space, then filler),
// keys per --keys. They are shared by every partition the producer owns, because what
// differs between partitions -- the partition, the sequence and the time -- lives in the
// stamp, which is patched per request anyway: 10,000 partitions cost no more memory than
// one. Random keys get eight templates, used in turn, so that keys vary between batches.
//
// append_batch() copies a prefix of a template (a batch of `count` records is the header
// plus the first `count` records, since each record's offset and timestamp deltas are
// relative to the batch), writes each record's stamp, patches the header fields that
// change (batch_length, last_offset_delta, records_count, timestamps), compresses the
// records section when a codec is set (a real producer compresses every batch, so
// sluice-bench does too), and computes the CRC. No per-record allocation: the output
// and the compression scratch keep their capacity between calls.
//
// Owned by one producer; single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/base/result.h"
#include "engine/storage/record_batch.h"
#include "tools/sluice-bench/bench_options.h"

namespace sluice::bench {

class batch_factory {
 public:
  batch_factory(const bench_options& options, std::uint32_t run_id, std::uint64_t seed);

  std::size_t records_per_batch() const noexcept { return records_per_batch_; }
  // The bytes of a full uncompressed batch (a compressed one is rarely larger).
  std::size_t full_batch_bytes() const noexcept { return templates_.front().bytes.size(); }

  // Appends a batch of `count` records (1 <= count <= records_per_batch()) for
  // `partition`, with sequences first_sequence, first_sequence + 1, ... stamped with
  // `now_us`. Returns the batch's size. Fails only when compression fails.
  result<std::size_t> append_batch(std::vector<std::byte>& out, std::int32_t partition,
                                   std::int64_t first_sequence, std::size_t count,
                                   std::int64_t now_us);

 private:
  struct batch_template {
    std::vector<std::byte> bytes;
    // Per record: where its value starts, and where the record ends, in `bytes`.
    std::vector<std::size_t> value_offsets;
    std::vector<std::size_t> record_ends;
  };

  compression_codec codec_;
  std::uint32_t run_id_;
  std::size_t records_per_batch_ = 1;
  std::vector<batch_template> templates_;
  std::size_t next_template_ = 0;
  std::vector<std::byte> compressed_;
};

}  // namespace sluice::bench
