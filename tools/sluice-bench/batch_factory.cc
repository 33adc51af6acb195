#include "tools/sluice-bench/batch_factory.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "engine/base/assert.h"
#include "engine/storage/compression.h"
#include "engine/storage/crc32c.h"
#include "tools/sluice-bench/record_stamp.h"

namespace sluice::bench {

namespace {

// A record's bytes besides its key and value: length, attributes, timestamp and offset
// deltas, key and value lengths, header count -- at most this many for the sizes allowed.
constexpr std::size_t record_overhead_bytes = 16;
constexpr std::size_t random_key_templates = 8;

void put_be(std::byte* out, std::uint64_t value, int bytes) noexcept {
  for (int i = bytes - 1; i >= 0; --i) {
    out[i] = static_cast<std::byte>(value & 0xff);
    value >>= 8;
  }
}

}  // namespace

batch_factory::batch_factory(const bench_options& options, std::uint32_t run_id, std::uint64_t seed)
    : codec_(options.compression), run_id_(run_id) {
  const std::size_t record_bytes = options.record_bytes + options.key_bytes + record_overhead_bytes;
  const std::size_t room = options.batch_bytes > batch_layout::header_bytes
                               ? options.batch_bytes - batch_layout::header_bytes
                               : 0;
  records_per_batch_ = std::max<std::size_t>(1, room / record_bytes);

  std::mt19937_64 random(seed);
  std::vector<std::byte> value(options.record_bytes);
  for (auto& b : value) b = static_cast<std::byte>('A' + random() % 26);
  std::vector<std::byte> key(options.key_bytes);

  const std::size_t count = options.keys == key_mode::random ? random_key_templates : 1;
  templates_.resize(count);
  batch_builder builder(compression_codec::none);
  std::size_t key_index = 0;
  for (auto& t : templates_) {
    builder.reset();
    for (std::size_t i = 0; i < records_per_batch_; ++i) {
      batch_builder::record r;
      r.timestamp = timestamp_ms(0);
      r.value = std::span<const std::byte>(value);
      if (options.keys == key_mode::round_robin) {
        std::fill(key.begin(), key.end(), std::byte{'k'});
        const std::size_t width = std::min<std::size_t>(key.size(), 8);
        put_be(key.data() + key.size() - width, key_index++, static_cast<int>(width));
      } else if (options.keys == key_mode::random) {
        for (auto& b : key) b = static_cast<std::byte>(random());
      }
      if (options.keys != key_mode::none) r.key = std::span<const std::byte>(key);
      builder.add(r);
    }
    auto finished = builder.finish();
    t.bytes.assign(finished.begin(), finished.end());
    auto header = decode_batch_header(t.bytes);
    SLUICE_ASSERT(header.ok(), "batch_builder made a batch whose header does not decode");
    const std::span<const std::byte> all(t.bytes);
    auto walked = for_each_record(
        *header, all.subspan(batch_layout::records),
        [&](const record_view& record) {
          t.value_offsets.push_back(static_cast<std::size_t>(record.value->data() - all.data()));
          t.record_ends.push_back(
              static_cast<std::size_t>(record.encoded.data() + record.encoded.size() - all.data()));
          return true;
        },
        batch_source::produced);
    SLUICE_ASSERT(walked.ok() && t.value_offsets.size() == records_per_batch_,
                  "batch_builder made a batch whose records do not walk");
  }
}

result<std::size_t> batch_factory::append_batch(std::vector<std::byte>& out, std::int32_t partition,
                                                std::int64_t first_sequence, std::size_t count,
                                                std::int64_t now_us) {
  SLUICE_ASSERT(count >= 1 && count <= records_per_batch_, "batch record count out of range");
  const batch_template& t = templates_[next_template_];
  next_template_ = (next_template_ + 1) % templates_.size();

  const std::size_t start = out.size();
  const std::size_t length = t.record_ends[count - 1];
  out.insert(out.end(), t.bytes.begin(), t.bytes.begin() + static_cast<std::ptrdiff_t>(length));
  std::byte* batch = out.data() + start;
  record_stamp stamp{partition, run_id_, first_sequence, now_us};
  for (std::size_t i = 0; i < count; ++i) {
    write_stamp(std::span<std::byte>(batch + t.value_offsets[i], record_stamp::bytes), stamp);
    ++stamp.sequence;
  }
  const std::int64_t now_ms = now_us / 1000;
  put_be(batch + batch_layout::last_offset_delta, static_cast<std::uint32_t>(count - 1), 4);
  put_be(batch + batch_layout::records_count, static_cast<std::uint32_t>(count), 4);
  put_be(batch + batch_layout::base_timestamp, static_cast<std::uint64_t>(now_ms), 8);
  put_be(batch + batch_layout::max_timestamp, static_cast<std::uint64_t>(now_ms), 8);

  if (codec_ != compression_codec::none) {
    compressed_.clear();
    SLUICE_TRY(compress(
        codec_,
        std::span<const std::byte>(batch + batch_layout::records, length - batch_layout::records),
        compressed_));
    out.resize(start + batch_layout::records);
    out.insert(out.end(), compressed_.begin(), compressed_.end());
    batch = out.data() + start;
    put_be(batch + batch_layout::attributes, static_cast<std::uint16_t>(codec_), 2);
  }
  const std::size_t total = out.size() - start;
  put_be(batch + batch_layout::batch_length,
         static_cast<std::uint32_t>(total - batch_layout::log_overhead), 4);
  const std::uint32_t crc = crc32c(std::span<const std::byte>(batch + batch_layout::attributes,
                                                              total - batch_layout::attributes));
  put_be(batch + batch_layout::crc, crc, 4);
  return total;
}

}  // namespace sluice::bench
