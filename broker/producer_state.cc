#include "broker/producer_state.h"

#include <limits>

#include "engine/base/assert.h"
#include "engine/storage/partition_log.h"

namespace sluice {
namespace {

using protocol::error_code;

// Bytes asked of the log per read while rebuilding: a few segments' worth of headers are
// walked per call, and a read never returns less than one whole batch.
constexpr std::size_t rebuild_read_bytes = 4 * 1024 * 1024;

bool same_range(const producer_batch_metadata& cached, std::int32_t first, std::int32_t last) {
  return cached.first_sequence == first && cached.last_sequence == last;
}

}  // namespace

producer_state_table::producer_state_table(const producer_state_config& config) noexcept
    : config_(config) {
  SLUICE_ASSERT(config_.producers_max > 0, "producer_state_config.producers_max must be > 0");
}

std::int32_t producer_state_table::last_sequence_of(const batch_header& batch) noexcept {
  constexpr std::int64_t modulus = std::int64_t{std::numeric_limits<std::int32_t>::max()} + 1;
  std::int64_t last = std::int64_t{batch.base_sequence} + batch.last_offset_delta;
  if (last >= modulus) last -= modulus;
  return static_cast<std::int32_t>(last);
}

bool producer_state_table::in_sequence(std::int32_t last, std::int32_t next) noexcept {
  return std::int64_t{next} == std::int64_t{last} + 1 ||
         (next == 0 && last == std::numeric_limits<std::int32_t>::max());
}

producer_state_table::verdict producer_state_table::check(
    const batch_header& batch) const noexcept {
  if (batch.producer_id < 0) return verdict::append();
  if (batch.base_sequence < 0) {
    return verdict::failed(error_code::invalid_record,
                           "an idempotent batch must have a sequence number >= 0");
  }
  const std::int32_t first = batch.base_sequence;
  const std::int32_t last = last_sequence_of(batch);
  auto it = producers_.find(batch.producer_id);
  const producer_entry* entry = it == producers_.end() ? nullptr : &it->second;

  // A retry of one of the last five batches: answered, not appended again. Only within
  // the same epoch, as Kafka's findDuplicateBatch.
  if (entry != nullptr && entry->epoch == batch.producer_epoch) {
    for (std::size_t i = 0; i < entry->batch_count; ++i) {
      if (same_range(entry->batches[i], first, last)) return verdict::duplicate(entry->batches[i]);
    }
  }
  const bool stale_epoch = entry != nullptr && batch.producer_epoch < entry->epoch;
  if (batch.is_transactional()) {
    // Kafka refuses transactional records outside a transaction the coordinator verified;
    // Sluice has no coordinator, so none is ever open.
    if (stale_epoch) {
      return verdict::failed(error_code::invalid_producer_epoch,
                             "the producer epoch is older than the last one seen");
    }
    return verdict::failed(error_code::invalid_txn_state,
                           "transactional records outside a transaction (not supported)");
  }
  // An unknown producer may start at any sequence (KIP-360): its state may have been
  // dropped with its batches, by expiry or by eviction.
  if (entry == nullptr) return verdict::append();
  if (stale_epoch) {
    return verdict::failed(error_code::invalid_producer_epoch,
                           "the producer epoch is older than the last one seen");
  }
  if (batch.producer_epoch != entry->epoch) {
    if (first != 0) {
      return verdict::failed(error_code::out_of_order_sequence_number,
                             "a new producer epoch must start at sequence 0");
    }
    return verdict::append();
  }
  SLUICE_ASSERT(entry->batch_count > 0, "a known producer without batches");
  if (!in_sequence(entry->batches[entry->batch_count - 1].last_sequence, first)) {
    return verdict::failed(error_code::out_of_order_sequence_number,
                           "the sequence number does not follow the producer's last batch");
  }
  return verdict::append();
}

void producer_state_table::on_appended(const batch_header& batch) noexcept {
  if (batch.producer_id < 0) return;
  auto it = producers_.find(batch.producer_id);
  if (it == producers_.end()) {
    if (producers_.size() >= config_.producers_max) evict_least_recent();
    it = producers_.try_emplace(batch.producer_id).first;
    recency_.push_back(batch.producer_id);
    it->second.recency = std::prev(recency_.end());
  } else {
    recency_.splice(recency_.end(), recency_, it->second.recency);
  }
  producer_entry& entry = it->second;
  if (entry.epoch != batch.producer_epoch) {
    // A new epoch starts a new sequence space: older batches can no longer be duplicates.
    entry.epoch = batch.producer_epoch;
    entry.batch_count = 0;
  }
  if (entry.batch_count == batches_retained) {
    for (std::size_t i = 1; i < batches_retained; ++i) entry.batches[i - 1] = entry.batches[i];
    --entry.batch_count;
  }
  entry.batches[entry.batch_count++] =
      producer_batch_metadata{batch.base_sequence, last_sequence_of(batch), batch.base_offset,
                              batch.last_offset(), batch.max_timestamp};
  entry.last_timestamp = batch.max_timestamp;
}

result<void> producer_state_table::rebuild(partition_log& log) {
  if (log.written_end() != log.log_end_offset()) {
    return error(errc::backpressure, "producer state rebuild while appends are being written");
  }
  clear();
  offset next = log.log_start_offset();
  const offset end = log.written_end();
  // Each read returns at least one batch and moves `next` forward, so this ends after at
  // most one round per batch.
  for (std::int64_t rounds = 0; next < end; ++rounds) {
    SLUICE_ASSERT(rounds <= end - log.log_start_offset(), "rebuild does not progress");
    auto read = log.read(next, rebuild_read_bytes);
    if (!read) return read.failure();
    std::span<const std::byte> bytes = read->bytes;
    if (bytes.empty()) break;
    while (bytes.size() >= batch_layout::header_bytes) {
      auto header = decode_batch_header(bytes);
      if (!header) return header.failure();
      if (header->total_bytes() > bytes.size()) {
        return error(errc::corrupt_batch, "a batch in the log is shorter than its header says");
      }
      on_appended(*header);
      bytes = bytes.subspan(header->total_bytes());
    }
    if (!bytes.empty()) {
      return error(errc::corrupt_batch, "a log read ended inside a batch header");
    }
    if (read->next_offset <= next) break;
    next = read->next_offset;
  }
  return {};
}

void producer_state_table::truncate_to(offset target) noexcept {
  for (auto it = producers_.begin(); it != producers_.end();) {
    producer_entry& entry = it->second;
    // Cached batches are in offset order: drop from the newest down.
    while (entry.batch_count > 0 && entry.batches[entry.batch_count - 1].last_offset >= target) {
      --entry.batch_count;
    }
    if (entry.batch_count == 0) {
      auto gone = it++;
      erase(gone);
    } else {
      entry.last_timestamp = entry.batches[entry.batch_count - 1].max_timestamp;
      ++it;
    }
  }
}

std::size_t producer_state_table::expire(timestamp_ms now) noexcept {
  std::size_t dropped = 0;
  for (auto it = producers_.begin(); it != producers_.end();) {
    if (now.value() - it->second.last_timestamp.value() >= config_.producer_id_expiration_ms) {
      auto gone = it++;
      erase(gone);
      ++dropped;
    } else {
      ++it;
    }
  }
  return dropped;
}

void producer_state_table::clear() noexcept {
  producers_.clear();
  recency_.clear();
}

std::optional<producer_state_table::producer_view> producer_state_table::find(
    std::int64_t producer_id) const noexcept {
  auto it = producers_.find(producer_id);
  if (it == producers_.end()) return std::nullopt;
  const producer_entry& entry = it->second;
  return producer_view{entry.epoch, std::span(entry.batches.data(), entry.batch_count)};
}

void producer_state_table::erase(
    std::unordered_map<std::int64_t, producer_entry>::iterator it) noexcept {
  recency_.erase(it->second.recency);
  producers_.erase(it);
}

void producer_state_table::evict_least_recent() noexcept {
  SLUICE_ASSERT(!recency_.empty(), "evicting from an empty producer table");
  auto it = producers_.find(recency_.front());
  SLUICE_ASSERT(it != producers_.end(), "recency list names an unknown producer");
  erase(it);
}

}  // namespace sluice
