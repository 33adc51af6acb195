#include "tools/dump_log/segment_verifier.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/base/assert.h"

namespace sluice::dump_log {
namespace {

constexpr std::uint8_t codec_max = static_cast<std::uint8_t>(compression_codec::zstd);

// The first rule of a framed batch's header or content that breaks, in words.
std::optional<std::string> batch_rule_broken(const framed_batch& batch,
                                             const log_check_options& options,
                                             std::vector<std::byte>& scratch) {
  const batch_header& h = batch.header;
  if (h.magic != batch_magic_v2) {
    return fmt::format("magic {} is not 2", static_cast<int>(h.magic));
  }
  const std::uint32_t crc = computed_crc(batch);
  if (crc != h.crc) {
    return fmt::format("CRC32C mismatch (stored {}, computed {})", h.crc, crc);
  }
  if ((h.attributes & 0x7) > codec_max) {
    return fmt::format("unknown compression codec {}", h.attributes & 0x7);
  }
  // Stored batches may hold fewer records than their offset range: the log cleaner
  // keeps a batch's last_offset_delta when it drops records from it.
  if (h.records_count < 0 || h.records_count - 1 > h.last_offset_delta) {
    return fmt::format("records_count {} does not fit last_offset_delta {}", h.records_count,
                       h.last_offset_delta);
  }
  if (h.base_timestamp < no_timestamp || h.max_timestamp < no_timestamp) {
    return fmt::format("negative timestamps (base {}, max {})", h.base_timestamp, h.max_timestamp);
  }
  if (!options.deep_iteration) return std::nullopt;

  auto records = batch_records(h, batch.bytes, scratch, options.decompressed_bytes_max);
  if (!records) {
    return fmt::format("records cannot be read: {}", records.failure().detail());
  }
  const char* header_problem = nullptr;
  auto walked = for_each_record(
      h, *records,
      [&](const record_view& record) {
        auto headers = for_each_header(record, [](const header_view&) {});
        if (!headers) header_problem = headers.failure().detail();
        return headers.ok();
      },
      batch_source::stored);
  if (!walked) return fmt::format("records do not decode: {}", walked.failure().detail());
  if (header_problem != nullptr) {
    return fmt::format("record headers do not decode: {}", header_problem);
  }
  return std::nullopt;
}

// Calls visit(const framed_batch&) for each batch of a log that verify_log accepted.
template <typename Visit>
void for_each_verified_batch(std::span<const std::byte> log, Visit&& visit) {
  std::uint64_t position = 0;
  // Bounded: each batch moves the position forward by at least a header.
  while (position < log.size()) {
    framed_batch batch;
    const auto framing = frame_batch(log, position, offset(0), batch);
    SLUICE_ASSERT(!framing.has_value(), "a verified log no longer frames");
    visit(batch);
    position += batch.header.total_bytes();
  }
}

problem index_problem(std::string what, std::size_t entry, std::size_t entry_bytes,
                      offset at_offset) {
  return problem{std::move(what), entry * entry_bytes, at_offset};
}

std::optional<problem> stray_bytes_problem(std::span<const std::byte> index,
                                           const index_layout& layout, std::size_t entry_bytes) {
  if (layout.stray_bytes == 0) return std::nullopt;
  return problem{fmt::format("file length {} is not a multiple of the {}-byte entry", index.size(),
                             entry_bytes),
                 index.size() - layout.stray_bytes, std::nullopt};
}

}  // namespace

std::optional<problem> verify_log(std::span<const std::byte> log, std::optional<offset> base,
                                  const log_check_options& options, log_summary& summary) {
  summary = {};
  std::vector<std::byte> scratch;
  std::optional<offset> previous_last;
  std::uint64_t position = 0;
  // Bounded: each batch moves the position forward by at least a header.
  while (position < log.size()) {
    const offset expected = previous_last ? *previous_last + 1 : base.value_or(offset(0));
    framed_batch batch;
    if (auto framing = frame_batch(log, position, expected, batch)) return framing;
    const batch_header& h = batch.header;
    if (auto broken = batch_rule_broken(batch, options, scratch)) {
      return problem{std::move(*broken), position, h.base_offset};
    }
    if (base && h.base_offset < *base) {
      return problem{
          fmt::format("base offset {} is below the segment's base offset {}", h.base_offset, *base),
          position, h.base_offset};
    }
    if (previous_last && h.base_offset <= *previous_last) {
      return problem{fmt::format("base offset {} does not follow the previous batch's last "
                                 "offset {}",
                                 h.base_offset, *previous_last),
                     position, h.base_offset};
    }
    ++summary.batches;
    summary.records += static_cast<std::uint64_t>(h.records_count);
    previous_last = h.last_offset();
    position += h.total_bytes();
  }
  return std::nullopt;
}

std::optional<problem> check_offset_index(std::span<const std::byte> index, offset base,
                                          std::optional<std::uint64_t> log_bytes,
                                          std::size_t& entries) {
  constexpr std::size_t entry_bytes = offset_index::entry_bytes;
  const index_layout layout = read_index_layout(index, entry_bytes);
  entries = layout.entries;
  if (auto stray = stray_bytes_problem(index, layout, entry_bytes)) return stray;
  for (std::size_t i = 0; i < layout.entries; ++i) {
    const offset_index_entry entry = offset_index_entry_at(index, base, i);
    if (i > 0) {
      const offset_index_entry previous = offset_index_entry_at(index, base, i - 1);
      if (entry.last_offset <= previous.last_offset || entry.position <= previous.position) {
        return index_problem(
            fmt::format("entry {} (offset {}, position {}) does not follow entry {} (offset {}, "
                        "position {}); entries must strictly increase",
                        i, entry.last_offset, entry.position, i - 1, previous.last_offset,
                        previous.position),
            i, entry_bytes, entry.last_offset);
      }
    }
    if (log_bytes && entry.position.value() >= *log_bytes) {
      return index_problem(fmt::format("entry {} names log position {}, past the end of the log "
                                       "({} bytes)",
                                       i, entry.position, *log_bytes),
                           i, entry_bytes, entry.last_offset);
    }
  }
  return std::nullopt;
}

std::optional<problem> check_time_index(std::span<const std::byte> index, offset base,
                                        std::size_t& entries) {
  constexpr std::size_t entry_bytes = time_index::entry_bytes;
  const index_layout layout = read_index_layout(index, entry_bytes);
  entries = layout.entries;
  if (auto stray = stray_bytes_problem(index, layout, entry_bytes)) return stray;
  for (std::size_t i = 1; i < layout.entries; ++i) {
    const time_index_entry entry = time_index_entry_at(index, base, i);
    const time_index_entry previous = time_index_entry_at(index, base, i - 1);
    if (entry.timestamp <= previous.timestamp || entry.last_offset <= previous.last_offset) {
      return index_problem(
          fmt::format("entry {} (timestamp {}, offset {}) does not follow entry {} (timestamp {}, "
                      "offset {}); entries must strictly increase",
                      i, entry.timestamp, entry.last_offset, i - 1, previous.timestamp,
                      previous.last_offset),
          i, entry_bytes, entry.last_offset);
    }
  }
  return std::nullopt;
}

std::optional<problem> check_offset_index_against_log(std::span<const std::byte> index, offset base,
                                                      std::span<const std::byte> log) {
  constexpr std::size_t entry_bytes = offset_index::entry_bytes;
  const std::size_t entries = read_index_layout(index, entry_bytes).entries;
  std::size_t next = 0;
  std::optional<framed_batch> previous;
  std::optional<problem> found;

  // Entries are strictly increasing in position, so one merge walk over batches and entries
  // pairs them. An entry before `batch_start` that was not paired with an earlier batch
  // start lies inside the previous batch.
  auto entries_before = [&](std::uint64_t batch_start) {
    while (!found && next < entries) {
      const offset_index_entry entry = offset_index_entry_at(index, base, next);
      if (entry.position.value() >= batch_start) return;
      SLUICE_ASSERT(previous.has_value(), "an index entry before byte 0");
      found = index_problem(
          fmt::format("entry {} names log position {}, which is inside the batch that starts at "
                      "log position {} (offsets {}-{}), not at the start of a batch",
                      next, entry.position, previous->position, previous->header.base_offset,
                      previous->header.last_offset()),
          next, entry_bytes, entry.last_offset);
    }
  };

  for_each_verified_batch(log, [&](const framed_batch& batch) {
    entries_before(batch.position);
    if (!found && next < entries) {
      const offset_index_entry entry = offset_index_entry_at(index, base, next);
      if (entry.position.value() == batch.position) {
        if (entry.last_offset != batch.header.last_offset()) {
          found = index_problem(
              fmt::format("entry {} names offset {} for the batch at log position {}, whose "
                          "last offset is {}",
                          next, entry.last_offset, batch.position, batch.header.last_offset()),
              next, entry_bytes, entry.last_offset);
        }
        ++next;
      }
    }
    previous = batch;
  });
  entries_before(log.size());
  if (!found && next < entries) {
    const offset_index_entry entry = offset_index_entry_at(index, base, next);
    found = index_problem(fmt::format("entry {} names log position {}, past the end of the log "
                                      "({} bytes)",
                                      next, entry.position, log.size()),
                          next, entry_bytes, entry.last_offset);
  }
  return found;
}

std::optional<problem> check_time_index_against_log(std::span<const std::byte> index, offset base,
                                                    std::span<const std::byte> log) {
  constexpr std::size_t entry_bytes = time_index::entry_bytes;
  const std::size_t entries = read_index_layout(index, entry_bytes).entries;
  std::size_t next = 0;
  timestamp_ms largest = no_timestamp;
  std::optional<offset> last_offset;
  std::optional<problem> found;

  // Entries are strictly increasing in offset: one merge walk pairs each entry with the
  // batch that holds its offset, while `largest` tracks the segment's largest timestamp.
  for_each_verified_batch(log, [&](const framed_batch& batch) {
    const batch_header& h = batch.header;
    largest = std::max(largest, h.max_timestamp);
    last_offset = h.last_offset();
    while (!found && next < entries) {
      const time_index_entry entry = time_index_entry_at(index, base, next);
      if (entry.last_offset > h.last_offset()) return;
      if (entry.last_offset < h.base_offset) {
        found = index_problem(
            fmt::format("entry {} names offset {}, which no batch holds", next, entry.last_offset),
            next, entry_bytes, entry.last_offset);
      } else if (entry.timestamp != largest) {
        found = index_problem(
            fmt::format("entry {} has timestamp {}, but the largest timestamp of the segment up "
                        "to the batch holding offset {} is {}",
                        next, entry.timestamp, entry.last_offset, largest),
            next, entry_bytes, entry.last_offset);
      }
      ++next;
    }
  });
  if (!found && next < entries) {
    const time_index_entry entry = time_index_entry_at(index, base, next);
    found = index_problem(
        last_offset ? fmt::format("entry {} names offset {}, after the last offset {} of the log",
                                  next, entry.last_offset, *last_offset)
                    : fmt::format("entry {} names offset {}, but the log is empty", next,
                                  entry.last_offset),
        next, entry_bytes, entry.last_offset);
  }
  return found;
}

}  // namespace sluice::dump_log
