// The knobs of a partition log, named after their Kafka topic-config counterparts.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "engine/storage/record_batch.h"

namespace sluice {

// When written data is made durable with fdatasync (Kafka's flush.messages / flush.ms).
//
// The default, `every_messages = 1`, syncs after every batch -- but with group commit:
// at most one fdatasync is in flight per partition, and each covers everything written
// when it starts, so a burst of concurrent appends shares one sync. That keeps
// acknowledged data durable without paying one fdatasync per batch under load.
struct flush_policy {
  // Flush once this many messages (records) are written but not flushed. nullopt: never
  // on count.
  std::optional<std::uint64_t> every_messages = 1;
  // Flush once written data has waited this long unflushed (needs tick()). nullopt: never
  // on time.
  std::optional<std::chrono::milliseconds> every_ms;

  static flush_policy never() { return flush_policy{std::nullopt, std::nullopt}; }
  bool flushes() const noexcept { return every_messages.has_value() || every_ms.has_value(); }
};

struct log_config {
  // segment.bytes: roll to a new segment when the active one would grow past this.
  std::uint64_t segment_bytes = 1024ull * 1024 * 1024;
  // segment.ms: roll when the active segment's first append is this old.
  std::chrono::milliseconds segment_ms = std::chrono::hours(24 * 7);
  // segment.index.bytes: preallocated size of each index file.
  std::size_t index_bytes_max = 10 * 1024 * 1024;
  // index.interval.bytes: log bytes between two offset index entries.
  std::size_t index_interval_bytes = 4096;
  // retention.bytes: delete old segments while the log is larger. nullopt = unlimited.
  std::optional<std::uint64_t> retention_bytes;
  // retention.ms: delete segments whose newest record is older. nullopt = forever.
  std::optional<std::chrono::milliseconds> retention_ms = std::chrono::hours(24 * 7);
  // cleanup.policy: "delete" (delete_old only, the default), "compact" (compact only) or
  // "compact,delete" (both). delete_old lets retention.bytes / retention.ms delete old
  // segments; compact lets the log cleaner keep only the latest record of each key
  // (engine/storage/log_cleaner.h). Segments wholly before the log start offset go
  // whatever the policy.
  bool compact = false;
  bool delete_old = true;
  // delete.retention.ms: how long a tombstone (a record with a key and a null value)
  // stays in a compacted log after its batch's max timestamp, so that consumers reading
  // behind see the deletion.
  std::chrono::milliseconds delete_retention{86400000};
  // min.cleanable.dirty.ratio: clean a compacted log once the sealed bytes written since
  // its last cleaning are at least this share of all its cleanable sealed bytes.
  double min_cleanable_dirty_ratio = 0.5;
  // min.compaction.lag.ms: a segment is cleaned only once its newest record is this old.
  std::chrono::milliseconds min_compaction_lag{0};
  flush_policy flush;
  // message.max.bytes and timestamp limits, checked on every append.
  batch_limits limits;
  // Parse every record of every appended batch (decompressing if needed), as Kafka does.
  bool validate_records = true;
  // Bounds of the queue of appended batches waiting to be written: a full queue answers
  // errc::backpressure.
  std::size_t pending_batches_max = 4096;
  std::uint64_t pending_bytes_max = 64ull * 1024 * 1024;
};

}  // namespace sluice
