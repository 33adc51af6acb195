// Produce v3-v11 (key 0).
//
// Each partition's records -- exactly one RecordBatch v2, as Kafka requires from v3 on --
// is copied out of the request frame (valid only during on_frame) into a buffer the
// request owns: one allocation per partition batch, which the log then writes without
// another copy. (A pool of recycled buffers, or keeping the receive buffer, would save
// the allocation; not done yet.) The buffer must live until the log has written it, so
// every append registers a waiter with the partition (partition_state) that holds the
// request alive:
//   acks=0   a written waiter that only keeps the buffer; no response at all.
//   acks=1   answer once written_end passes the batch.
//   acks=-1  answer once flushed_end passes it, or once written when the topic's flush
//            policy never flushes (then "durable" can mean no more than written).
// Appends the log refuses because its queue is full (errc::backpressure) are answered
// with REQUEST_TIMED_OUT, which producers retry, rather than parked for a retry here: the
// queue holds thousands of batches, so it is full only under overload, when pushing back
// on the producer is the point.
#include "net/protocol/generated/produce.h"

#include <memory>

#include "broker/api/api_table.h"
#include "engine/base/log.h"
#include "engine/storage/record_batch.h"

namespace sluice {
namespace {

using protocol::error_code;
using Response = protocol::ProduceResponse;

class produce_request final : public append_waiter {
 public:
  produce_request(const response_address& address, response_slot slot) noexcept
      : address_(address), slot_(std::move(slot)) {}

  // Storage for what the response and the log need beyond the request frame.
  std::vector<std::string> topic_names;
  std::vector<std::vector<std::byte>> batches;
  Response response;
  // Waiter index -> (topic, partition) position in `response`.
  std::vector<std::pair<std::size_t, std::size_t>> positions;

  void add_outstanding() noexcept { ++outstanding_; }
  // Called once per registered waiter, and once by the handler when it has registered
  // them all (so that a waiter done at once does not answer before the rest is added).
  void on_append_done(std::size_t index, const error* failure) noexcept override {
    if (failure != nullptr && index < positions.size()) {
      auto [t, p] = positions[index];
      auto& partition = response.responses[t].partition_responses[p];
      partition.error_code = static_cast<std::int16_t>(protocol::to_error_code(failure->code()));
      partition.error_message = failure->detail();
      partition.base_offset = -1;
    }
    SLUICE_ASSERT(outstanding_ > 0, "produce waiter completed twice");
    if (--outstanding_ == 0 && slot_) respond(slot_, address_, response);
  }

 private:
  response_address address_;
  response_slot slot_;
  std::size_t outstanding_ = 0;
};

// One partition's append; returns the error for the response, or none after queueing.
error_code append_partition(request_context& ctx, std::int16_t acks, std::string_view topic,
                            const protocol::ProduceRequest::PartitionProduceData& data,
                            const std::shared_ptr<produce_request>& request,
                            Response::PartitionProduceResponse& out, std::size_t waiter_index) {
  partition_state* state = ctx.broker.partition(topic, data.index);
  if (state == nullptr) return error_code::unknown_topic_or_partition;
  if (!data.records.has_value() || data.records->empty()) {
    out.error_message = "a produce request must carry exactly one record batch per partition";
    return error_code::invalid_record;
  }
  std::span<const std::byte> records = *data.records;
  auto header = decode_batch_header(records);
  if (header && header->magic != batch_magic_v2) {
    // Kafka's ProduceRequest.validateRecords, per partition in KafkaApis.
    out.error_message =
        "produce requests of version 3 and later may only carry record batches of magic 2";
    return error_code::invalid_record;
  }
  if (header && header->total_bytes() < records.size() && header->magic == batch_magic_v2) {
    out.error_message = "a produce request must carry exactly one record batch per partition";
    return error_code::invalid_record;
  }
  partition_log& log = state->log();
  const bool durable = acks == -1 && log.config().flush.flushes();
  const auto kind =
      durable ? partition_state::wait_for::flushed : partition_state::wait_for::written;
  if (!state->can_wait(kind)) return error_code::request_timed_out;

  if (header) {
    auto verdict = state->producers().check(*header);
    using outcome = producer_state_table::verdict::kind;
    if (verdict.outcome == outcome::error) {
      out.error_message = verdict.detail;
      return verdict.error;
    }
    if (verdict.outcome == outcome::duplicate) {
      // A retried batch already in the log: answer with the original offsets once the
      // original is where this request's acks want it. Kafka checks the CRC first.
      if (auto valid = validate_batch(records, log.config().limits, broker_context::now());
          !valid) {
        out.error_message = valid.failure().detail();
        return protocol::to_error_code(valid.code());
      }
      out.base_offset = verdict.original.first_offset.value();
      out.log_start_offset = log.log_start_offset().value();
      request->add_outstanding();
      state->wait(kind, verdict.original.last_offset, request, waiter_index);
      return error_code::none;
    }
  }

  request->batches.emplace_back(records.begin(), records.end());
  auto& batch = request->batches.back();
  auto appended = log.append(batch, broker_context::now(), leader_epoch(0));
  if (!appended) {
    request->batches.pop_back();
    out.error_message = appended.failure().detail();
    error_code code = protocol::to_error_code(appended.code());
    if (code == error_code::kafka_storage_error) {
      SLUICE_LOG(warn, "kafka", "{}: produce to {}-{} failed: {}; check the disk", ctx.peer(),
                 topic, data.index, appended.failure().detail());
    }
    return code;
  }
  if (header) {
    // At once, so the next in-flight request of the same producer sees this batch.
    header->base_offset = appended->base_offset;
    state->producers().on_appended(*header);
  }
  out.base_offset = appended->base_offset.value();
  out.log_start_offset = log.log_start_offset().value();
  request->add_outstanding();
  state->wait(kind, appended->last_offset, request, waiter_index);
  return error_code::none;
}

}  // namespace

handler_status handle_produce(request_context& ctx, protocol::reader& body) {
  protocol::ProduceRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  // Kafka answers INVALID_REQUIRED_ACKS for every partition of any other value.
  const std::int16_t acks = request.acks;
  response_slot slot;
  if (acks != 0) {
    slot = ctx.reserve();
    if (!slot) return handler_status::done;
  }
  auto op = std::make_shared<produce_request>(ctx.address, std::move(slot));
  op->add_outstanding();  // the handler's own hold, released at the end

  std::size_t partitions_total = 0;
  for (const auto& topic : request.topic_data) partitions_total += topic.partition_data.size();
  op->topic_names.reserve(request.topic_data.size());
  op->batches.reserve(partitions_total);  // no reallocation: the log holds spans into them
  op->response.responses.reserve(request.topic_data.size());
  bool any_error = false;
  for (const auto& topic : request.topic_data) {
    op->topic_names.emplace_back(topic.name);
    auto& topic_out = op->response.responses.emplace_back();
    topic_out.name = op->topic_names.back();
    topic_out.partition_responses.reserve(topic.partition_data.size());
    for (const auto& data : topic.partition_data) {
      auto& out = topic_out.partition_responses.emplace_back();
      out.index = data.index;
      out.base_offset = -1;
      out.log_append_time_ms = -1;
      error_code code = error_code::none;
      if (acks != 0 && acks != 1 && acks != -1) {
        code = error_code::invalid_required_acks;
      } else {
        std::size_t waiter_index = op->positions.size();
        op->positions.emplace_back(op->response.responses.size() - 1,
                                   topic_out.partition_responses.size() - 1);
        code = append_partition(ctx, acks, op->topic_names.back(), data, op, out, waiter_index);
      }
      if (code != error_code::none) {
        out.error_code = static_cast<std::int16_t>(code);
        any_error = true;
      }
    }
  }
  if (acks == 0 && any_error) {
    // A producer with acks=0 reads no response; Kafka closes the connection so that it
    // notices and refreshes its metadata.
    SLUICE_LOG(debug, "kafka",
               "{}: acks=0 produce failed for some partition; closing the "
               "connection as Kafka does",
               ctx.peer());
    ctx.conn.close();
  }
  op->on_append_done(std::numeric_limits<std::size_t>::max(), nullptr);
  return handler_status::done;
}

}  // namespace sluice
