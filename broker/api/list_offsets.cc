// ListOffsets v1-v10 (key 2): earliest (-2), latest (-1), max timestamp (-3, v7+),
// earliest local (-4, v8+: the log start, as nothing is tiered), latest tiered (-5, v9+:
// none, so -1), and the first offset whose timestamp is >= a target timestamp.
//
// By timestamp the log finds the first batch whose max timestamp is >= the target
// (partition_log::offset_for_timestamp); the handler then walks that batch's records
// (decompressing them if needed) for the first record at or past the target, as Kafka
// does.
#include "net/protocol/generated/list_offsets.h"

#include "broker/api/api_table.h"
#include "engine/base/log.h"
#include "engine/storage/record_batch.h"

namespace sluice {
namespace {

using protocol::error_code;
using Response = protocol::ListOffsetsResponse;

constexpr std::int64_t latest_timestamp = -1;
constexpr std::int64_t earliest_timestamp = -2;
constexpr std::int64_t max_timestamp = -3;
constexpr std::int64_t earliest_local_timestamp = -4;
constexpr std::int64_t latest_tiered_timestamp = -5;
// Decompressed records of one batch are at most this large when searched.
constexpr std::size_t decompressed_bytes_max = 256 * 1024 * 1024;

struct found_record {
  std::int64_t offset = -1;
  std::int64_t timestamp = -1;
};

// The first record of the batch at `batch_offset` for which `match(timestamp)` holds.
template <typename Match>
result<found_record> search_batch(partition_log& log, offset batch_offset, Match&& match) {
  auto read = log.read(batch_offset, 1);
  if (!read) return read.failure();
  if (read->bytes.empty()) return found_record{};
  auto header = decode_batch_header(read->bytes);
  if (!header) return header.failure();
  if (header->total_bytes() > read->bytes.size()) {
    return error(errc::corrupt_batch, "batch shorter than its header says");
  }
  auto batch = read->bytes.first(header->total_bytes());
  std::vector<std::byte> scratch;
  auto records = batch_records(*header, batch, scratch, decompressed_bytes_max);
  if (!records) return records.failure();
  found_record found;
  auto walked = for_each_record(*header, *records, [&](const record_view& record) {
    std::int64_t ts = header->timestamp_kind() == timestamp_type::log_append_time
                          ? header->max_timestamp.value()
                          : header->base_timestamp.value() + record.timestamp_delta;
    if (match(ts)) {
      found.offset = header->base_offset.value() + record.offset_delta;
      found.timestamp = ts;
      return false;
    }
    return true;
  });
  if (!walked) return walked.failure();
  return found;
}

result<found_record> lookup(partition_log& log, std::int64_t target) {
  switch (target) {
    case latest_timestamp: return found_record{log.written_end().value(), -1};
    case earliest_timestamp:
    case earliest_local_timestamp: return found_record{log.log_start_offset().value(), -1};
    case latest_tiered_timestamp: return found_record{};
    case max_timestamp: {
      auto max = log.max_timestamp();
      if (!max) return found_record{};
      auto [ts, last_offset] = *max;
      // The batch holding the largest timestamp; its first record that carries it.
      auto read = log.read(last_offset, 1);
      if (!read) return read.failure();
      auto header = decode_batch_header(read->bytes);
      if (!header) return header.failure();
      return search_batch(log, header->base_offset,
                          [ts](std::int64_t t) { return t == ts.value(); });
    }
    default: break;
  }
  if (target < 0) return error(errc::invalid_argument, "unknown special timestamp");
  auto batch = log.offset_for_timestamp(timestamp_ms(target));
  if (!batch) return batch.failure();
  if (!batch->has_value()) return found_record{};
  return search_batch(log, **batch, [target](std::int64_t t) { return t >= target; });
}

// One partition's answer, on the core that owns it.
Response::ListOffsetsPartitionResponse list_partition(
    broker_context& broker, std::int16_t version, std::string_view peer, std::string_view topic,
    const protocol::ListOffsetsRequest::ListOffsetsPartition& wanted) {
  Response::ListOffsetsPartitionResponse out;
  out.partition_index = wanted.partition_index;
  partition_state* state = broker.partition(topic, wanted.partition_index);
  if (state == nullptr) {
    out.error_code = static_cast<std::int16_t>(error_code::unknown_topic_or_partition);
    return out;
  }
  if (wanted.current_leader_epoch > 0) {
    out.error_code = static_cast<std::int16_t>(error_code::unknown_leader_epoch);
    return out;
  }
  if ((wanted.timestamp == max_timestamp && version < 7) ||
      (wanted.timestamp == earliest_local_timestamp && version < 8) ||
      (wanted.timestamp == latest_tiered_timestamp && version < 9) ||
      wanted.timestamp < latest_tiered_timestamp) {
    out.error_code = static_cast<std::int16_t>(error_code::unsupported_version);
    return out;
  }
  auto found = lookup(state->log(), wanted.timestamp);
  if (!found) {
    out.error_code = static_cast<std::int16_t>(protocol::to_error_code(found.code()));
    SLUICE_LOG(warn, "kafka", "{}: ListOffsets {}-{} at {} failed: {}", peer, topic,
               wanted.partition_index, wanted.timestamp, found.failure().detail());
    return out;
  }
  out.offset = found->offset;
  out.timestamp = found->timestamp;
  out.leader_epoch = found->offset >= 0 ? 0 : -1;
  return out;
}

// A ListOffsets whose partitions live on several cores: each owner looks its partitions
// up, and the response goes once every answer is back. Touched on its own core only.
struct gathered_list_offsets {
  response_address address;
  response_slot slot;
  std::vector<std::string> topic_names;  // the response's names point here
  Response response;
  std::size_t pending = 0;

  void done_one() noexcept {
    if (--pending == 0) respond(slot, address, response);
  }
};

}  // namespace

handler_status handle_list_offsets(request_context& ctx, protocol::reader& body) {
  protocol::ListOffsetsRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  auto gathered = std::make_shared<gathered_list_offsets>();
  gathered->address = ctx.address;
  gathered->slot = std::move(slot);
  gathered->topic_names.reserve(request.topics.size());
  Response& response = gathered->response;
  response.topics.reserve(request.topics.size());
  // The handler's own hold, so that answers coming back cannot finish before all asked.
  gathered->pending = 1;
  for (const auto& topic : request.topics) {
    const std::string& name = gathered->topic_names.emplace_back(topic.name);
    auto& topic_out = response.topics.emplace_back();
    topic_out.name = name;
    topic_out.partitions.reserve(topic.partitions.size());
    for (const auto& wanted : topic.partitions) {
      auto& out = topic_out.partitions.emplace_back();
      const std::uint32_t owner = ctx.broker.owner_of(name, wanted.partition_index);
      if (owner == ctx.broker.core_index()) {
        out = list_partition(ctx.broker, ctx.version(), ctx.peer(), name, wanted);
        continue;
      }
      out.partition_index = wanted.partition_index;
      ++gathered->pending;
      core_router& router = *ctx.broker.router();
      router.run_on(owner,
                    [origin = router.self(), gathered, version = ctx.version(),
                     peer = std::string(ctx.peer()), name, wanted, t = response.topics.size() - 1,
                     p = topic_out.partitions.size() - 1](broker_context& core) mutable {
                      auto result = list_partition(core, version, peer, name, wanted);
                      core.router()->run_on(
                          origin, [gathered = std::move(gathered), result, t, p](broker_context&) {
                            gathered->response.topics[t].partitions[p] = result;
                            gathered->done_one();
                          });
                    });
    }
  }
  gathered->done_one();
  return handler_status::done;
}

}  // namespace sluice
