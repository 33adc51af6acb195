#include "broker/groups/offsets_log.h"

#include <limits>
#include <string>

#include "broker/groups/offsets_format.h"
#include "engine/base/log.h"

namespace sluice {

using groups::group_loader;
using groups::store_callback;
using protocol::error_code;

struct offsets_log::completions {
  // Callbacks ready to run, with their answers. One entry per store call since the last
  // run_deferred(): bounded by what one reactor turn can ask for.
  std::deque<std::pair<store_callback, error_code>> ready;
  // Stores appended whose waiter has not completed yet (<= stores_in_flight_max).
  std::size_t in_flight = 0;
};

namespace {

constexpr std::string_view component = "groups";

// One store: the batch the log writes from (it must live until written), and the answer
// to give once the partition's position passes it. Held by partition_state's waiter queue.
class store_waiter final : public append_waiter {
 public:
  store_waiter(std::shared_ptr<offsets_log::completions> completions, std::int32_t partition,
               store_callback done) noexcept
      : completions_(std::move(completions)), partition_(partition), done_(std::move(done)) {}

  std::vector<std::byte> batch;

  // For a batch the log refused: it will never complete.
  store_callback take_done() noexcept {
    store_callback done = std::move(done_);
    done_ = nullptr;
    return done;
  }

  void on_append_done(std::size_t /*index*/, const error* failure) noexcept override {
    if (!done_) return;
    SLUICE_ASSERT(completions_->in_flight > 0, "offsets_log: a store completed twice");
    --completions_->in_flight;
    error_code code = error_code::none;
    if (failure != nullptr) {
      code = failure->code() == errc::not_found ? error_code::not_coordinator
                                                : error_code::coordinator_not_available;
      SLUICE_LOG(warn, component, "a write to {}-{} failed: {}", offsets_log::topic_name,
                 partition_, failure->detail());
    }
    completions_->ready.emplace_back(std::move(done_), code);
    done_ = nullptr;
  }

 private:
  std::shared_ptr<offsets_log::completions> completions_;
  std::int32_t partition_;
  store_callback done_;
};

// The replay of one partition into the loader.
struct replay {
  std::int32_t partition;
  group_loader& loader;
  load_stats& stats;
  std::vector<std::byte>& scratch;
  // Warnings left for this load: a damaged partition could otherwise log once per record.
  std::size_t& warnings_left;
};

constexpr std::size_t load_warnings_max = 20;
// A stored batch was within message.max.bytes when appended, which may have been larger
// then; decompression is bounded by this.
constexpr std::size_t decompressed_bytes_max = 64 * 1024 * 1024;

template <typename... Args>
void load_warning(replay& r, fmt::format_string<Args...> format, Args&&... args) {
  if (r.warnings_left == 0) return;
  --r.warnings_left;
  SLUICE_LOG(warn, component, format, std::forward<Args>(args)...);
  if (r.warnings_left == 0) {
    SLUICE_LOG(warn, component, "further skipped records of {} are not logged",
               offsets_log::topic_name);
  }
}

void replay_record(replay& r, offset at, const record_view& record) {
  ++r.stats.records;
  if (!record.key) {
    ++r.stats.records_skipped;
    load_warning(r, "{}-{} offset {}: a record without key; skipped", offsets_log::topic_name,
                 r.partition, at.value());
    return;
  }
  auto key = groups::decode_key(*record.key);
  if (!key) {
    ++r.stats.records_skipped;
    load_warning(r, "{}-{} offset {}: a malformed key; skipped", offsets_log::topic_name,
                 r.partition, at.value());
    return;
  }
  if (key->kind == groups::record_kind::unknown) {
    ++r.stats.records_skipped;
    load_warning(r, "{}-{} offset {}: key version {} is not one Sluice reads; skipped",
                 offsets_log::topic_name, r.partition, at.value(), key->version);
    return;
  }
  const bool offset_commit = key->kind == groups::record_kind::offset_commit;
  if (!record.value) {
    if (offset_commit) {
      r.loader.unload_offset(key->group, key->topic, key->partition);
      ++r.stats.offsets_unloaded;
    } else {
      r.loader.unload_group(key->group);
      ++r.stats.groups_unloaded;
    }
    return;
  }
  if (offset_commit) {
    auto value = groups::decode_offset_commit_value(*key, *record.value);
    if (value) {
      r.loader.load_offset(*value);
      ++r.stats.offsets_loaded;
      return;
    }
  } else {
    auto value = groups::decode_group_metadata_value(key->group, *record.value);
    if (value) {
      r.loader.load_group(*value);
      ++r.stats.groups_loaded;
      return;
    }
  }
  ++r.stats.records_skipped;
  load_warning(r, "{}-{} offset {}: skipped a {} of version {}, which Sluice cannot read",
               offsets_log::topic_name, r.partition, at.value(),
               offset_commit ? "OffsetCommitValue" : "GroupMetadataValue",
               groups::peek_version(*record.value).value_or(-1));
}

// Replays one whole batch, or skips it whole: a store is atomic, so is its replay.
void replay_batch(replay& r, const batch_header& header, std::span<const std::byte> batch) {
  ++r.stats.batches;
  auto skip = [&](std::string_view why) {
    ++r.stats.batches_skipped;
    load_warning(r, "{}-{}: skipped the batch at offset {}: {}", offsets_log::topic_name,
                 r.partition, header.base_offset.value(), why);
  };
  batch_limits limits;
  limits.batch_bytes_max = std::numeric_limits<std::size_t>::max();
  // As stored data: the log cleaner may have dropped records from the batch.
  if (auto valid = validate_batch(batch, limits, timestamp_ms(0), batch_source::stored); !valid) {
    return skip(valid.failure().detail());
  }
  // Sluice never writes transactions here; without their markers an aborted
  // TxnOffsetCommit could not be told from a committed one.
  if (header.is_control() || header.is_transactional()) return skip("transactional");
  auto records = batch_records(header, batch, r.scratch, decompressed_bytes_max);
  if (!records) return skip(records.failure().detail());
  if (auto walked = for_each_record(
          header, *records, [](const record_view&) {}, batch_source::stored);
      !walked) {
    return skip(walked.failure().detail());
  }
  (void)for_each_record(
      header, *records,
      [&](const record_view& record) {
        replay_record(r, header.base_offset + record.offset_delta, record);
      },
      batch_source::stored);
}

// The batches of one read, in order.
void replay_chunk(replay& r, offset start, std::span<const std::byte> bytes) {
  // Bounded: each round consumes one whole batch of at least header_bytes.
  while (!bytes.empty()) {
    auto header = decode_batch_header(bytes);
    if (!header || header->total_bytes() > bytes.size()) {
      ++r.stats.batches_skipped;
      load_warning(r, "{}-{}: the bytes after offset {} are not a batch; skipped to the next read",
                   offsets_log::topic_name, r.partition,
                   header ? header->base_offset.value() : start.value());
      return;
    }
    replay_batch(r, *header, bytes.first(header->total_bytes()));
    start = header->next_offset();
    bytes = bytes.subspan(header->total_bytes());
  }
}

}  // namespace

// ---- Partitioning -------------------------------------------------------------------

std::int32_t java_string_hash(std::string_view utf8) noexcept {
  // Java: h = 31 * h + c over the UTF-16 code units, in int arithmetic (wrapping).
  std::uint32_t hash = 0;
  auto add = [&](std::uint32_t unit) { hash = hash * 31u + unit; };
  constexpr std::uint32_t replacement = 0xFFFD;
  const std::size_t size = utf8.size();
  std::size_t i = 0;
  // Bounded: each round consumes at least one byte.
  while (i < size) {
    const auto lead = static_cast<std::uint8_t>(utf8[i]);
    if (lead < 0x80) {
      add(lead);
      ++i;
      continue;
    }
    // The well-formed sequences (Unicode table 3-7): how many continuation bytes follow
    // the lead byte, and the narrower range allowed for the first of them.
    std::size_t continuation = 0;
    std::uint8_t first_low = 0x80, first_high = 0xBF;
    std::uint32_t code_point = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
      continuation = 1;
      code_point = lead & 0x1Fu;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      continuation = 2;
      code_point = lead & 0x0Fu;
      if (lead == 0xE0) first_low = 0xA0;   // no overlong forms
      if (lead == 0xED) first_high = 0x9F;  // no surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      continuation = 3;
      code_point = lead & 0x07u;
      if (lead == 0xF0) first_low = 0x90;   // no overlong forms
      if (lead == 0xF4) first_high = 0x8F;  // nothing above U+10FFFF
    } else {
      add(replacement);
      ++i;
      continue;
    }
    std::size_t taken = 1;
    for (; taken <= continuation; ++taken) {
      if (i + taken >= size) break;
      const auto next = static_cast<std::uint8_t>(utf8[i + taken]);
      const std::uint8_t low = taken == 1 ? first_low : 0x80;
      const std::uint8_t high = taken == 1 ? first_high : 0xBF;
      if (next < low || next > high) break;
      code_point = (code_point << 6) | (next & 0x3Fu);
    }
    if (taken <= continuation) {
      // An ill-formed sequence: its maximal valid prefix becomes one U+FFFD.
      add(replacement);
      i += taken;
      continue;
    }
    i += taken;
    if (code_point >= 0x10000) {
      const std::uint32_t above = code_point - 0x10000;
      add(0xD800 + (above >> 10));
      add(0xDC00 + (above & 0x3FF));
    } else {
      add(code_point);
    }
  }
  return static_cast<std::int32_t>(hash);
}

std::int32_t offsets_partition_for(std::string_view group, std::int32_t partitions) noexcept {
  SLUICE_ASSERT(partitions > 0, "offsets_partition_for needs at least one partition");
  // Kafka's Utils.abs: the sign bit cleared, so that Integer.MIN_VALUE maps to 0.
  const std::int32_t positive = java_string_hash(group) & 0x7fffffff;
  return positive % partitions;
}

std::size_t owner_core(std::string_view group, std::int32_t partitions,
                       std::size_t cores) noexcept {
  SLUICE_ASSERT(cores > 0, "owner_core needs at least one core");
  return static_cast<std::size_t>(offsets_partition_for(group, partitions)) % cores;
}

// ---- Opening ------------------------------------------------------------------------

offsets_log::offsets_log(broker_context& broker, std::int32_t partitions)
    : broker_(broker), partitions_(partitions), completions_(std::make_shared<completions>()) {}

offsets_log::~offsets_log() = default;

namespace {

topic_config_overrides offsets_topic_overrides() {
  // As Kafka creates it (offsets.topic.segment.bytes; compacted: the latest value per key
  // is the state).
  return {{"cleanup.policy", "compact"},
          {"segment.bytes", std::to_string(offsets_log::segment_bytes)}};
}

}  // namespace

result<std::unique_ptr<offsets_log>> offsets_log::open(broker_context& broker,
                                                       std::int32_t partitions) {
  if (partitions < 1 || partitions > topic_registry::partitions_per_topic_max) {
    return error(errc::invalid_argument,
                 "the partition count of __consumer_offsets is out of range");
  }
  topic_registry& topics = broker.topics();
  const topic_info* topic = topics.find(topic_name);
  if (topic == nullptr) {
    // Created on first use, as Kafka creates it when the first group needs it; checked
    // now so that a configuration that cannot work fails at start-up.
    std::string problem;
    const auto verdict =
        topics.check_create(topic_name, partitions, offsets_topic_overrides(), problem);
    switch (verdict) {
      case topic_registry::create_error::none: break;
      case topic_registry::create_error::exists:
        return error(errc::invalid_argument, "__consumer_offsets is being deleted");
      case topic_registry::create_error::invalid_config:
        SLUICE_LOG(error, component, "cannot create {}: {}", topic_name, problem);
        return error(errc::invalid_argument, "the config of __consumer_offsets is refused");
      default: return error(errc::invalid_argument, "__consumer_offsets cannot be created");
    }
    return std::unique_ptr<offsets_log>(new offsets_log(broker, partitions));
  }
  if (topic->partitions != partitions) {
    SLUICE_LOG(info, component,
               "{} exists with {} partitions; keeping them (the configured count is {})",
               topic_name, topic->partitions, partitions);
  }
  return std::unique_ptr<offsets_log>(new offsets_log(broker, topic->partitions));
}

bool offsets_log::ensure_topic() noexcept {
  if (broker_.topics().find(topic_name) != nullptr) return true;
  std::string problem;
  if (broker_.topics().check_create(topic_name, partitions_, offsets_topic_overrides(), problem) !=
      topic_registry::create_error::none) {
    // Still being deleted (its logs busy), the only way here after open() checked.
    SLUICE_LOG(warn, component, "cannot create {} yet{}{}; group state cannot be stored",
               topic_name, problem.empty() ? "" : ": ", problem);
    return false;
  }
  auto created = broker_.create_topic(topic_name, partitions_, offsets_topic_overrides());
  if (!created) {
    SLUICE_LOG(warn, component, "cannot create {}: {}; group state cannot be stored", topic_name,
               created.failure().detail());
    return false;
  }
  SLUICE_LOG(info, component, "created {} with {} partitions for the first consumer group",
             topic_name, partitions_);
  return true;
}

// ---- Loading ------------------------------------------------------------------------

result<load_stats> offsets_log::load(group_loader& loader) {
  load_stats stats;
  if (broker_.topics().find(topic_name) == nullptr) return stats;  // no group yet
  for (std::int32_t p = 0; p < partitions_; ++p) {
    SLUICE_TRY(load_partition(p, loader, stats));
    ++stats.partitions;
  }
  SLUICE_LOG(info, component,
             "loaded {}: {} offsets and {} groups from {} records ({} batches); {} batches and "
             "{} records skipped",
             topic_name, stats.offsets_loaded, stats.groups_loaded, stats.records, stats.batches,
             stats.batches_skipped, stats.records_skipped);
  return stats;
}

result<void> offsets_log::load_partition(std::int32_t partition, group_loader& loader,
                                         load_stats& stats) {
  partition_state* state = broker_.partition(topic_name, partition);
  if (state == nullptr) {
    SLUICE_LOG(error, component, "{}-{} has no log; cannot load its groups", topic_name, partition);
    return error(errc::not_found, "a partition of __consumer_offsets has no log");
  }
  partition_log& log = state->log();
  std::vector<std::byte> scratch;
  std::size_t warnings_left = load_warnings_max;
  replay r{partition, loader, stats, scratch, warnings_left};
  offset next = log.log_start_offset();
  const offset end = log.written_end();
  // Bounded: every read returns at least one batch, so `next` grows each round.
  while (next < end) {
    auto chunk = log.read(next, load_chunk_bytes);
    if (!chunk) {
      SLUICE_LOG(error, component, "cannot read {}-{} at offset {}: {}", topic_name, partition,
                 next.value(), chunk.failure().detail());
      return chunk.failure();
    }
    if (chunk->next_offset <= next) {
      SLUICE_LOG(warn, component, "{}-{}: nothing readable at offset {} below {}; stopping there",
                 topic_name, partition, next.value(), end.value());
      break;
    }
    replay_chunk(r, next, chunk->bytes);
    next = chunk->next_offset;
  }
  return {};
}

// ---- Storing ------------------------------------------------------------------------

void offsets_log::defer(store_callback done, error_code code) {
  completions_->ready.emplace_back(std::move(done), code);
}

void offsets_log::run_deferred() noexcept {
  // Only those queued so far: a callback that stores again is answered at the next call.
  std::deque<std::pair<store_callback, error_code>> ready;
  ready.swap(completions_->ready);
  for (auto& [done, code] : ready) done(code);
}

bool offsets_log::idle() const noexcept {
  return completions_->in_flight == 0 && completions_->ready.empty();
}

std::size_t offsets_log::stores_in_flight() const noexcept {
  return completions_->in_flight;
}

void offsets_log::append(std::string_view group, const std::vector<pending_record>& records,
                         error_code too_large, store_callback done) {
  SLUICE_ASSERT(done != nullptr, "offsets_log: a store without a callback");
  if (records.empty()) return defer(std::move(done), error_code::none);
  const std::int32_t partition = partition_for(group);
  if (completions_->in_flight >= stores_in_flight_max) {
    if (!refusing_) {
      SLUICE_LOG(warn, component, "{} stores to {} in flight; refusing more until some finish",
                 stores_in_flight_max, topic_name);
    }
    refusing_ = true;
    return defer(std::move(done), error_code::coordinator_not_available);
  }
  refusing_ = false;
  if (!ensure_topic()) return defer(std::move(done), error_code::coordinator_not_available);
  partition_state* state = broker_.partition(topic_name, partition);
  if (state == nullptr) {
    SLUICE_LOG(warn, component, "{}-{} does not exist; group {} cannot be stored", topic_name,
               partition, group);
    return defer(std::move(done), error_code::not_coordinator);
  }
  partition_log& log = state->log();
  // As an acks=all produce: durable when the topic's flush policy flushes at all.
  const auto kind = log.config().flush.flushes() ? partition_state::wait_for::flushed
                                                 : partition_state::wait_for::written;
  if (!state->can_wait(kind)) return defer(std::move(done), error_code::coordinator_not_available);

  const timestamp_ms now = broker_context::now();
  builder_.reset();
  for (const pending_record& record : records) {
    batch_builder::record entry;
    entry.key = std::span<const std::byte>(record.key);
    if (record.value) entry.value = std::span<const std::byte>(*record.value);
    entry.timestamp = now;
    builder_.add(entry);
  }
  const std::span<std::byte> finished = builder_.finish();
  auto waiter = std::make_shared<store_waiter>(completions_, partition, std::move(done));
  waiter->batch.assign(finished.begin(), finished.end());
  builder_.reset();

  auto appended = log.append(waiter->batch, now, leader_epoch(0));
  if (!appended) {
    const error_code code = appended.code() == errc::batch_too_large
                                ? too_large
                                : error_code::coordinator_not_available;
    SLUICE_LOG(warn, component, "cannot append group {} to {}-{}: {}", group, topic_name, partition,
               appended.failure().detail());
    return defer(waiter->take_done(), code);
  }
  ++completions_->in_flight;
  state->wait(kind, appended->last_offset, std::move(waiter), 0);
}

void offsets_log::store_offsets(std::string_view group,
                                std::span<const groups::offset_commit_record> offsets,
                                store_callback done) {
  std::vector<pending_record> records;
  records.reserve(offsets.size());
  for (const auto& commit : offsets) {
    auto key = groups::encode_offset_commit_key(group, commit.topic, commit.partition);
    auto value = groups::encode_offset_commit_value(commit);
    if (!key || !value) return defer(std::move(done), error_code::invalid_commit_offset_size);
    records.push_back(pending_record{std::move(*key), std::move(*value)});
  }
  append(group, records, error_code::invalid_commit_offset_size, std::move(done));
}

void offsets_log::delete_offsets(std::string_view group,
                                 std::span<const groups::topic_partition_ref> partitions,
                                 store_callback done) {
  std::vector<pending_record> records;
  records.reserve(partitions.size());
  for (const auto& ref : partitions) {
    auto key = groups::encode_offset_commit_key(group, ref.topic, ref.partition);
    if (!key) return defer(std::move(done), error_code::unknown_server_error);
    records.push_back(pending_record{std::move(*key), std::nullopt});
  }
  append(group, records, error_code::unknown_server_error, std::move(done));
}

void offsets_log::store_group(const groups::group_metadata_record& group, store_callback done) {
  auto key = groups::encode_group_metadata_key(group.group);
  auto value = groups::encode_group_metadata_value(group);
  if (!key || !value) return defer(std::move(done), error_code::unknown_server_error);
  std::vector<pending_record> records;
  records.push_back(pending_record{std::move(*key), std::move(*value)});
  append(group.group, records, error_code::unknown_server_error, std::move(done));
}

void offsets_log::delete_group(std::string_view group, store_callback done) {
  auto key = groups::encode_group_metadata_key(group);
  if (!key) return defer(std::move(done), error_code::unknown_server_error);
  std::vector<pending_record> records;
  records.push_back(pending_record{std::move(*key), std::nullopt});
  append(group, records, error_code::unknown_server_error, std::move(done));
}

}  // namespace sluice
