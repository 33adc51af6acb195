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
//
// timeout_ms bounds an acks=-1 request as Kafka's DelayedProduce does: once it has
// passed, every partition whose batch has not yet reached the position it waits for is
// answered REQUEST_TIMED_OUT (its base_offset kept: the batch is in the log and may still
// become durable), the others with their normal answer, and the response goes out. The
// deadline sits in the broker's shared deadline queue (the fetch purgatory: one timer
// for all parked operations, each entry bounded by an in-flight request) rather than a
// timer per request; the entry holds the request only weakly and is woken to leave as
// soon as the request answers normally. timeout_ms <= 0 waits as long as the flush
// takes: a single Kafka broker answers such a request at once with success (its high
// watermark moves during the append, so the zero-delay DelayedProduce completes), and
// failing every one of them with REQUEST_TIMED_OUT would be further from that than
// waiting the fraction of a millisecond a group-committed flush takes. Waiters that complete after
// the timed-out answer only release the request (and so the batch buffers the log may still be
// writing). When the queue is full (fetches_max, only under overload) the request waits without a
// deadline; when the broker stops, it drops its deadline and waits for the shutdown's flush. acks=1
// gets no deadline: Kafka answers it after the local append without a delayed operation, and here
// it waits only for the io_uring write of that append.
#include "net/protocol/generated/produce.h"

#include <chrono>
#include <limits>
#include <memory>

#include "broker/api/api_table.h"
#include "broker/groups/offsets_log.h"
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

  // A waiter for `index` is about to be registered.
  void expect(std::size_t index) noexcept {
    if (index >= waiting_.size()) waiting_.resize(index + 1, false);
    waiting_[index] = true;
    ++outstanding_;
  }
  // Where append_partition keeps a batch of this request: a copy out of the frame.
  std::span<std::byte> keep_batch(std::span<const std::byte> records) {
    return batches.emplace_back(records.begin(), records.end());
  }
  void forget_batch() noexcept { batches.pop_back(); }

  // The answer of a partition appended on another core (its owner): the partition's
  // response as the owner filled it (its strings are static), and whether the append
  // reached the position waited for. Runs on this request's core.
  void remote_done(std::size_t index, const Response::PartitionProduceResponse& result) noexcept {
    if (!answered_ && index < positions.size()) {
      auto [t, p] = positions[index];
      auto& partition = response.responses[t].partition_responses[p];
      const std::int32_t partition_index = partition.index;
      partition = result;
      partition.index = partition_index;
    }
    on_append_done(index, nullptr);
  }

  // The handler's own hold, released by on_append_done(no_index) when it has registered
  // every waiter (so that a waiter done at once does not answer before the rest is added).
  void hold() noexcept { ++outstanding_; }
  static constexpr std::size_t no_index = std::numeric_limits<std::size_t>::max();

  bool answered() const noexcept { return answered_; }
  bool has_response() const noexcept { return static_cast<bool>(slot_); }
  // Called once per registered waiter, and once by the handler (no_index).
  void on_append_done(std::size_t index, const error* failure) noexcept override {
    SLUICE_ASSERT(outstanding_ > 0, "produce waiter completed twice");
    --outstanding_;
    if (index < waiting_.size()) waiting_[index] = false;
    // After a timed-out answer a waiter only lets go of the request (and its batches).
    if (answered_) return;
    if (failure != nullptr && index < positions.size()) {
      auto [t, p] = positions[index];
      auto& partition = response.responses[t].partition_responses[p];
      partition.error_code = static_cast<std::int16_t>(protocol::to_error_code(failure->code()));
      partition.error_message = failure->detail();
      partition.base_offset = -1;
    }
    if (outstanding_ == 0) answer();
  }
  // The deadline passed: the partitions still waiting time out, the response goes now.
  void expire() noexcept {
    if (answered_) return;
    for (std::size_t index = 0; index < waiting_.size() && index < positions.size(); ++index) {
      if (!waiting_[index]) continue;
      auto [t, p] = positions[index];
      response.responses[t].partition_responses[p].error_code =
          static_cast<std::int16_t>(error_code::request_timed_out);
    }
    answer();
  }
  // The deadline entry to wake (so it leaves the queue) once answered.
  void parked_in(fetch_purgatory& queue, std::uint64_t id) noexcept {
    deadlines_ = &queue;
    deadline_id_ = id;
  }

 private:
  void answer() noexcept {
    answered_ = true;
    if (slot_) respond(slot_, address_, response);
    if (deadlines_ != nullptr) deadlines_->wake_fetch(deadline_id_);
    deadlines_ = nullptr;
  }

  response_address address_;
  response_slot slot_;
  std::size_t outstanding_ = 0;
  // Per waiter index: registered and not yet done.
  std::vector<bool> waiting_;
  bool answered_ = false;
  fetch_purgatory* deadlines_ = nullptr;
  std::uint64_t deadline_id_ = 0;
};

// A produce request's deadline in the broker's deadline queue.
class produce_deadline final : public delayed_fetch {
 public:
  produce_deadline(std::weak_ptr<produce_request> request,
                   fetch_purgatory::clock::time_point deadline) noexcept
      : request_(std::move(request)), deadline_(deadline) {}

  bool try_complete(std::uint64_t /*id*/, bool deadline_passed) noexcept override {
    auto request = request_.lock();
    // Gone (its partitions were dropped) or answered: nothing left to time out.
    if (request == nullptr || request->answered()) return true;
    if (!deadline_passed) return false;
    // The queue also says "deadline passed" when the broker stops. Then the request just
    // leaves the queue: the shutdown flushes every log, so it still gets its real answer
    // while the connections drain, instead of a premature timeout.
    if (fetch_purgatory::clock::now() < deadline_) return true;
    request->expire();
    return true;
  }

 private:
  std::weak_ptr<produce_request> request_;
  fetch_purgatory::clock::time_point deadline_;
};

// One partition's append; returns the error for the response, or none after queueing.
// The index of the first record of `batch` that does not parse, for the record_errors of
// Produce v8+ (Kafka names the records LogValidator refused); nullopt when the batch is
// at fault as a whole (its framing, count or compression) rather than one record.
std::optional<std::int32_t> first_bad_record(const batch_header& header,
                                             std::span<const std::byte> batch) {
  constexpr std::size_t decompressed_bytes_max = 64 * 1024 * 1024;
  std::vector<std::byte> scratch;
  auto records = batch_records(header, batch, scratch, decompressed_bytes_max);
  if (!records) return std::nullopt;
  std::int32_t parsed = 0;
  auto walked = for_each_record(header, *records, [&](const record_view&) {
    ++parsed;
    return true;
  });
  if (walked || parsed >= header.records_count) return std::nullopt;
  return parsed;
}

// One partition of a produce request whose connection lives on another core, appended
// here on the partition's owner. It owns the batch (copied out of the frame on the
// request's core) until the log is done with it, and sends the partition's answer back
// when the append reached the position the acks wait for (or failed). The request itself
// only rides along: it is touched on its own core only.
class remote_append final : public append_waiter {
 public:
  remote_append(core_router& router, std::uint32_t origin, std::shared_ptr<produce_request> request,
                std::size_t index, std::vector<std::byte> batch) noexcept
      : router_(router),
        origin_(origin),
        request_(std::move(request)),
        index_(index),
        batch_(std::move(batch)) {}

  Response::PartitionProduceResponse out;
  std::span<const std::byte> records() const noexcept { return batch_; }
  // The batch is already owned here: no second copy.
  std::span<std::byte> keep_batch(std::span<const std::byte>) noexcept { return batch_; }
  void forget_batch() noexcept {}
  void expect(std::size_t) noexcept {}

  void on_append_done(std::size_t, const error* failure) noexcept override {
    if (failure != nullptr) {
      out.error_code = static_cast<std::int16_t>(protocol::to_error_code(failure->code()));
      out.error_message = failure->detail();
      out.base_offset = -1;
    }
    send_back();
  }
  void send_back() noexcept {
    if (request_ == nullptr) return;
    router_.run_on(origin_, [request = std::move(request_), index = index_, result = out](
                                broker_context&) { request->remote_done(index, result); });
  }

 private:
  core_router& router_;
  std::uint32_t origin_;
  std::shared_ptr<produce_request> request_;
  std::size_t index_;
  std::vector<std::byte> batch_;
};

// One partition's append on this core (its owner), for a local request (produce_request)
// or another core's (remote_append). Returns the error for the response, or none after
// queueing the append and registering `request` to wait for it.
template <typename Request>
error_code append_partition(broker_context& broker, std::string_view peer, std::int16_t acks,
                            std::string_view topic, std::int32_t partition_index,
                            const std::optional<protocol::bytes_view>& given,
                            const std::shared_ptr<Request>& request,
                            Response::PartitionProduceResponse& out, std::size_t waiter_index) {
  partition_state* state = broker.partition(topic, partition_index);
  if (state == nullptr) return error_code::unknown_topic_or_partition;
  if (offsets_log::is_internal(topic)) {
    // Kafka refuses client writes to internal topics the same way: only the group
    // coordinator writes __consumer_offsets, in its own record format.
    out.error_message =
        "the internal topic __consumer_offsets is written by the group coordinator only";
    return error_code::invalid_topic_exception;
  }
  if (!given.has_value() || given->empty()) {
    out.error_message = "a produce request must carry exactly one record batch per partition";
    return error_code::invalid_record;
  }
  std::span<const std::byte> records = *given;
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
      request->expect(waiter_index);
      state->wait(kind, verdict.original.last_offset, request, waiter_index);
      return error_code::none;
    }
  }

  std::span<std::byte> batch = request->keep_batch(records);
  auto appended = log.append(batch, broker_context::now(), leader_epoch(0));
  if (!appended) {
    request->forget_batch();
    out.error_message = appended.failure().detail();
    if (appended.code() == errc::invalid_batch && header) {
      if (auto index = first_bad_record(*header, records)) {
        auto& record_error = out.record_errors.emplace_back();
        record_error.batch_index = *index;
        record_error.batch_index_error_message = appended.failure().detail();
      }
    }
    error_code code = protocol::to_error_code(appended.code());
    if (code == error_code::kafka_storage_error) {
      SLUICE_LOG(warn, "kafka", "{}: produce to {}-{} failed: {}; check the disk", peer, topic,
                 partition_index, appended.failure().detail());
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
  request->expect(waiter_index);
  state->wait(kind, appended->last_offset, request, waiter_index);
  return error_code::none;
}

// Sends one partition's batch to its owner core; the answer comes back as remote_done.
void append_on_owner(request_context& ctx, std::int16_t acks, std::string_view topic,
                     const protocol::ProduceRequest::PartitionProduceData& data,
                     const std::shared_ptr<produce_request>& request, std::size_t waiter_index) {
  core_router& router = *ctx.broker.router();
  std::optional<std::vector<std::byte>> batch;
  if (data.records.has_value()) batch.emplace(data.records->begin(), data.records->end());
  request->expect(waiter_index);
  router.run_on(ctx.broker.owner_of(topic, data.index),
                [origin = router.self(), request, waiter_index, acks, topic = std::string(topic),
                 partition = data.index, peer = std::string(ctx.peer()),
                 batch = std::move(batch)](broker_context& owner) mutable {
                  const bool has_records = batch.has_value();
                  auto remote = std::make_shared<remote_append>(
                      *owner.router(), origin, std::move(request), waiter_index,
                      has_records ? std::move(*batch) : std::vector<std::byte>{});
                  remote->out.base_offset = -1;
                  remote->out.log_append_time_ms = -1;
                  std::optional<protocol::bytes_view> records;
                  if (has_records) records = remote->records();
                  error_code code = append_partition(owner, peer, acks, topic, partition, records,
                                                     remote, remote->out, 0);
                  if (code != error_code::none) {
                    remote->out.error_code = static_cast<std::int16_t>(code);
                    remote->send_back();
                  }
                });
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
  op->hold();

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
        if (ctx.broker.owns(op->topic_names.back(), data.index)) {
          code = append_partition(ctx.broker, ctx.peer(), acks, op->topic_names.back(), data.index,
                                  data.records, op, out, waiter_index);
        } else {
          append_on_owner(ctx, acks, op->topic_names.back(), data, op, waiter_index);
        }
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
    if (ctx.conn != nullptr) ctx.conn->close();
  }
  op->on_append_done(produce_request::no_index, nullptr);
  if (acks == -1 && request.timeout_ms > 0 && !op->answered() && op->has_response()) {
    fetch_purgatory& deadlines = ctx.broker.fetches();
    if (!deadlines.full()) {
      auto deadline = fetch_purgatory::clock::now() + std::chrono::milliseconds(request.timeout_ms);
      std::uint64_t id =
          deadlines.park(std::make_unique<produce_deadline>(std::weak_ptr(op), deadline), deadline);
      op->parked_in(deadlines, id);
    }
  }
  return handler_status::done;
}

}  // namespace sluice
