// The idempotent producer's state in one partition: for each producer id, its epoch and
// the metadata of its last five batches, which is what lets the broker recognise a retried
// batch and refuse one that arrives out of order. Kafka's ProducerStateManager, without
// the transaction half.
//
// What a batch with producer_id >= 0 gets from check() (Kafka 3.x/4.x, as read in
// ProducerAppendInfo, ProducerStateEntry and UnifiedLog.analyzeAndValidateProducerState):
//   - base_sequence < 0                            -> INVALID_RECORD (LogValidator)
//   - same epoch, (first, last sequence) equal to one of the cached five
//                                                  -> duplicate: not appended, answered
//                                                     with the original offsets
//   - transactional (no transaction can be open: Sluice has no coordinator)
//                                                  -> INVALID_PRODUCER_EPOCH when stale,
//                                                     else INVALID_TXN_STATE
//   - epoch older than the known one               -> INVALID_PRODUCER_EPOCH
//   - epoch newer than the known one, first sequence != 0
//                                                  -> OUT_OF_ORDER_SEQUENCE_NUMBER
//   - same epoch, first sequence != last + 1 (wrapping at INT32_MAX to 0)
//                                                  -> OUT_OF_ORDER_SEQUENCE_NUMBER
//   - unknown producer id                          -> append, whatever the sequence
// The last rule is KIP-360's (Kafka 2.5+): a producer whose state was lost (its batches
// deleted by retention, its entry expired or evicted) is not answered UNKNOWN_PRODUCER_ID
// any more but simply accepted, because librdkafka treats an out-of-order answer to its
// oldest in-flight request as fatal and an UNKNOWN_PRODUCER_ID to a retried one too.
// Batches with producer_id < 0 are not idempotent and bypass all of this.
//
// The state is rebuilt at start-up from the batch headers of the log (rebuild()), so it
// needs no file of its own; Kafka's <offset>.snapshot files, which bound that scan, are not
// written (yet). Moving the log start offset forward (retention, DeleteRecords) keeps the
// entries, as Kafka's ProducerStateManager.onLogStartOffsetIncremented does; truncation drops the
// batches it removes (truncate_to()). An entry expires producer_id_expiration_ms after the max
// timestamp of its last batch (Kafka's producer.id.expiration.ms, default one day, measured the
// same way), when expire() is called; Kafka checks every producer.id.expiration.check.interval.ms
// (10 minutes). Unlike Kafka, the number of producers per partition is capped
// (producers_max): past it, the least recently appended-to producer is forgotten. A
// forgotten producer only loses duplicate detection for batches it already had
// acknowledged; its next batch is accepted as from an unknown producer.
//
// Owned by the partition's broker state (one per partition log); touched only by the
// reactor thread. Memory: at most producers_max entries of about 250 bytes each.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>

#include "engine/base/result.h"
#include "engine/base/types.h"
#include "engine/storage/record_batch.h"
#include "net/protocol/error_codes.h"

namespace sluice {

class partition_log;

// One batch a producer wrote, as far as duplicate detection needs it.
struct producer_batch_metadata {
  std::int32_t first_sequence = 0;
  std::int32_t last_sequence = 0;
  offset first_offset;
  offset last_offset;
  timestamp_ms max_timestamp;
};

struct producer_state_config {
  // Producer ids remembered per partition (Kafka has no such cap).
  std::size_t producers_max = 100'000;
  // Kafka's producer.id.expiration.ms.
  std::int64_t producer_id_expiration_ms = 24 * 60 * 60 * 1000;
};

class producer_state_table {
 public:
  // Kafka keeps exactly five (ProducerStateEntry.NUM_BATCHES_TO_RETAIN), matching the
  // producers' limit of 5 requests in flight per connection with idempotence.
  static constexpr std::size_t batches_retained = 5;

  // What to do with an incoming batch.
  struct verdict {
    enum class kind : std::uint8_t { append, duplicate, error };
    kind outcome = kind::append;
    // duplicate: the batch already in the log.
    producer_batch_metadata original;
    // error: the Kafka error code for the partition's response.
    protocol::error_code error = protocol::error_code::none;
    // error: why, in words, for the response's error message (a string literal).
    const char* detail = "";

    static verdict append() noexcept { return {}; }
    static verdict duplicate(const producer_batch_metadata& batch) noexcept {
      verdict v;
      v.outcome = kind::duplicate;
      v.original = batch;
      return v;
    }
    static verdict failed(protocol::error_code code, const char* why) noexcept {
      verdict v;
      v.outcome = kind::error;
      v.error = code;
      v.detail = why;
      return v;
    }
  };

  explicit producer_state_table(const producer_state_config& config = {}) noexcept;

  // The verdict for a batch a producer sends (header as decoded from the request: its
  // offsets are not assigned yet and are not looked at).
  verdict check(const batch_header& batch) const noexcept;

  // Records a batch now in the log, with its assigned offsets. Call it for every batch
  // the log accepted, right after partition_log::append() (before any later check()),
  // and for every batch read back by rebuild(). Ignores batches with producer_id < 0.
  void on_appended(const batch_header& batch) noexcept;

  // Forgets everything and replays the batch headers of `log` from its log start offset
  // to its end (headers only: no CRC, no records). Fails with errc::backpressure while
  // appends are queued (written_end != log_end_offset), with the read error of a damaged
  // log (the table is then partial). Call expire() afterwards to drop what is already
  // expired. Costs one pass over the log's batch headers: at start-up, or when a
  // partition is first used.
  result<void> rebuild(partition_log& log);

  // Drops the cached batches with any offset >= `target` (the log removed them, by
  // truncation or by a failed write) and the producers left with none.
  void truncate_to(offset target) noexcept;

  // Drops producers whose last batch's max timestamp is producer_id_expiration_ms or more
  // before `now`. Returns how many were dropped.
  std::size_t expire(timestamp_ms now) noexcept;

  void clear() noexcept;

  std::size_t producer_count() const noexcept { return producers_.size(); }
  const producer_state_config& config() const noexcept { return config_; }

  // For tests and tools: the known epoch and the cached batches of a producer, oldest
  // first; nullopt when unknown.
  struct producer_view {
    std::int16_t epoch;
    std::span<const producer_batch_metadata> batches;
  };
  std::optional<producer_view> find(std::int64_t producer_id) const noexcept;

  // The last sequence of a batch: base_sequence + last_offset_delta, wrapping past
  // INT32_MAX to 0 as Kafka's DefaultRecordBatch.incrementSequence does.
  static std::int32_t last_sequence_of(const batch_header& batch) noexcept;
  // Kafka's inSequence: next == last + 1, or next == 0 after INT32_MAX.
  static bool in_sequence(std::int32_t last, std::int32_t next) noexcept;

 private:
  struct producer_entry {
    std::int16_t epoch = -1;
    std::uint8_t batch_count = 0;
    // Oldest first; batches_[batch_count - 1] is the last appended.
    std::array<producer_batch_metadata, batches_retained> batches{};
    timestamp_ms last_timestamp{-1};
    std::list<std::int64_t>::iterator recency;  // position in recency_
  };

  void erase(std::unordered_map<std::int64_t, producer_entry>::iterator it) noexcept;
  void evict_least_recent() noexcept;

  producer_state_config config_;
  std::unordered_map<std::int64_t, producer_entry> producers_;
  // Producer ids, least recently appended-to first.
  std::list<std::int64_t> recency_;
};

}  // namespace sluice
