// Fetch v4-v17 (key 1).
//
// Reads up to partition_max_bytes per partition from the fetch offset, within max_bytes
// for the whole response (the first partition with data returns at least one batch even
// if larger, as KIP-74 has it; later ones only what fits). High watermark and last
// stable offset are written_end: with one replica, written is committed, and there are
// no transactions. Fetch sessions are declined (session_id 0: every fetch is a full
// one); an incremental fetch (session_id != 0) gets FETCH_SESSION_ID_NOT_FOUND.
//
// Long polling: with fewer than min_bytes available the fetch parks in the purgatory
// until data arrives on one of its partitions or max_wait_ms passes.
//
// Zero copy: the record bytes are views into the segment mapping (read_result). The
// generated encoder would copy `records` into the writer, so each partition's records
// are encoded as a 16-byte placeholder (8 random bytes of this request and the
// partition's index), and the encoded response is then cut at the placeholders: the
// frame gets the owned bytes around them, the real length prefix, and the mapping's
// span borrowed with the mapping's shared_ptr as keep-alive (net/outgoing_frame.h).
// The placeholders are checked to be where the encoder put them (with the 16-byte
// length prefix before each, in order); a mismatch -- which would take a topic name
// containing the random bytes -- falls back to a copying encode.
#include "net/protocol/generated/fetch.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "broker/api/api_table.h"
#include "broker/kafka_uuid.h"
#include "engine/base/log.h"

namespace sluice {
namespace {

using protocol::error_code;
using Response = protocol::FetchResponse;
constexpr std::size_t marker_bytes = 16;
// A fetch waits at most this long whatever it asks (clients ask for 100 ms to 30 s).
constexpr std::int32_t max_wait_cap_ms = 5 * 60 * 1000;

struct partition_plan {
  std::int32_t partition = 0;
  std::int64_t fetch_offset = 0;
  std::int32_t max_bytes = 0;
  std::int32_t current_leader_epoch = -1;
};

struct topic_plan {
  std::string name;  // empty when asked by an unknown id
  protocol::uuid id;
  std::vector<partition_plan> partitions;
};

// What one evaluation read for one partition.
struct partition_read {
  error_code error = error_code::none;
  std::int64_t high_watermark = -1;
  std::int64_t log_start_offset = -1;
  std::optional<read_result> data;
};

class fetch_operation final : public delayed_fetch {
 public:
  fetch_operation(broker_context& broker, const response_address& address, response_slot slot,
                  std::int32_t min_bytes, std::int32_t max_bytes, std::vector<topic_plan> topics)
      : broker_(broker),
        address_(address),
        slot_(std::move(slot)),
        min_bytes_(min_bytes),
        max_bytes_(max_bytes),
        topics_(std::move(topics)) {}

  // Reads every partition; answers and returns true when there is enough (or an error,
  // or `must_answer`).
  bool evaluate(bool must_answer) noexcept {
    std::vector<partition_read> reads;
    std::size_t total = 0;
    bool any_error = false;
    std::size_t budget = static_cast<std::size_t>(std::max(max_bytes_, 0));
    for (const auto& topic : topics_) {
      for (const auto& wanted : topic.partitions) {
        partition_read& r = reads.emplace_back(
            read_one(topic, wanted, budget - std::min(budget, total), total == 0));
        if (r.error != error_code::none) any_error = true;
        if (r.data) total += r.data->bytes.size();
      }
    }
    if (!must_answer && !any_error && total < static_cast<std::size_t>(std::max(min_bytes_, 0))) {
      return false;
    }
    answer(reads);
    return true;
  }

  void watch(std::uint64_t id) noexcept {
    for (const auto& topic : topics_) {
      if (topic.name.empty()) continue;
      for (const auto& wanted : topic.partitions) {
        if (partition_state* state = broker_.partition(topic.name, wanted.partition)) {
          (void)state->watch(id);
        }
      }
    }
  }

  bool try_complete(std::uint64_t id, bool deadline_passed) noexcept override {
    if (evaluate(deadline_passed)) return true;
    watch(id);
    return false;
  }

 private:
  partition_read read_one(const topic_plan& topic, const partition_plan& wanted, std::size_t budget,
                          bool first) noexcept {
    partition_read out;
    if (topic.name.empty() || broker_.topics().find(topic.name) == nullptr) {
      out.error = topic.name.empty() || address_.api_version >= 13
                      ? error_code::unknown_topic_id
                      : error_code::unknown_topic_or_partition;
      return out;
    }
    partition_state* state = broker_.partition(topic.name, wanted.partition);
    if (state == nullptr) {
      out.error = error_code::unknown_topic_or_partition;
      return out;
    }
    if (wanted.current_leader_epoch > 0) {
      out.error = error_code::unknown_leader_epoch;
      return out;
    }
    partition_log& log = state->log();
    if (wanted.fetch_offset < log.log_start_offset().value() ||
        wanted.fetch_offset > log.written_end().value()) {
      out.error = error_code::offset_out_of_range;
      return out;
    }
    out.high_watermark = log.written_end().value();
    out.log_start_offset = log.log_start_offset().value();
    std::size_t limit =
        std::min<std::size_t>(budget, static_cast<std::size_t>(std::max(wanted.max_bytes, 0)));
    if (limit == 0 && !first) return out;
    auto read = log.read(offset(wanted.fetch_offset), limit);
    if (!read) {
      out.error = protocol::to_error_code(read.code());
      if (out.error != error_code::offset_out_of_range) {
        SLUICE_LOG(warn, "kafka", "fetch from {}-{} at {} failed: {}", topic.name, wanted.partition,
                   wanted.fetch_offset, read.failure().detail());
      }
      return out;
    }
    // Past the first partition with data, a batch larger than what is left of the
    // response budget waits for the next fetch.
    if (!first && read->bytes.size() > budget) return out;
    if (!read->bytes.empty()) out.data = std::move(*read);
    return out;
  }

  void answer(std::vector<partition_read>& reads) noexcept {
    if (!slot_) return;
    Response response;
    std::array<std::uint8_t, 8> request_marker{};
    auto random = random_uuid();
    std::memcpy(request_marker.data(), random.bytes.data(), request_marker.size());
    std::vector<std::array<std::byte, marker_bytes>> markers;
    markers.reserve(reads.size());
    std::vector<const read_result*> spliced;  // in encoding order
    std::size_t index = 0;
    response.responses.reserve(topics_.size());
    for (const auto& topic : topics_) {
      auto& topic_out = response.responses.emplace_back();
      topic_out.topic = topic.name;
      topic_out.topic_id = topic.id;
      topic_out.partitions.reserve(topic.partitions.size());
      for (const auto& wanted : topic.partitions) {
        partition_read& r = reads[index++];
        auto& out = topic_out.partitions.emplace_back();
        out.partition_index = wanted.partition;
        out.error_code = static_cast<std::int16_t>(r.error);
        out.high_watermark = r.high_watermark;
        out.last_stable_offset = r.high_watermark;
        out.log_start_offset = r.log_start_offset;
        out.aborted_transactions = std::nullopt;
        out.records = protocol::bytes_view{};
        if (r.data) {
          auto& marker = markers.emplace_back();
          std::memcpy(marker.data(), request_marker.data(), 8);
          std::uint64_t n = spliced.size();
          std::memcpy(marker.data() + 8, &n, 8);
          out.records = protocol::bytes_view(marker.data(), marker.size());
          spliced.push_back(&*r.data);
        }
      }
    }
    protocol::writer out(512);
    write_response_header(out, address_);
    response.encode(out, address_.api_version);
    if (!out.ok()) {
      log_encode_failure(address_, out.error_detail());
      slot_.release();
      return;
    }
    outgoing_frame frame;
    if (splice(out.bytes(), markers, spliced, frame)) {
      slot_.respond(std::move(frame));
      return;
    }
    // A placeholder was not where expected: encode again with the real bytes, copied.
    std::size_t k = 0;
    for (auto& topic_out : response.responses) {
      for (auto& partition : topic_out.partitions) {
        if (partition.records && partition.records->size() == marker_bytes && k < spliced.size() &&
            partition.records->data() == markers[k].data()) {
          partition.records = spliced[k++]->bytes;
        }
      }
    }
    respond(slot_, address_, response);
  }

  // Cuts `encoded` at each marker and builds the frame with borrowed record bytes.
  bool splice(std::span<const std::byte> encoded,
              const std::vector<std::array<std::byte, marker_bytes>>& markers,
              const std::vector<const read_result*>& spliced, outgoing_frame& frame) {
    const bool compact = address_.api_version >= Response::first_flexible_version;
    const std::size_t prefix_bytes = compact ? 1 : 4;
    std::size_t cursor = 0;
    for (std::size_t k = 0; k < markers.size(); ++k) {
      auto found = std::search(encoded.begin() + static_cast<std::ptrdiff_t>(cursor), encoded.end(),
                               markers[k].begin(), markers[k].end());
      if (found == encoded.end()) return false;
      std::size_t at = static_cast<std::size_t>(found - encoded.begin());
      if (at < cursor + prefix_bytes) return false;
      std::size_t prefix_at = at - prefix_bytes;
      // The encoder's length prefix for 16 bytes: uvarint 17, or int32 16.
      const std::byte expected_classic[4] = {std::byte{0}, std::byte{0}, std::byte{0},
                                             std::byte{16}};
      bool prefix_ok = compact ? encoded[prefix_at] == std::byte{17}
                               : std::memcmp(&encoded[prefix_at], expected_classic, 4) == 0;
      if (!prefix_ok) return false;
      frame.append(encoded.subspan(cursor, prefix_at - cursor));
      const auto& data = *spliced[k];
      protocol::writer prefix(8);
      if (compact) {
        prefix.write_uvarint(static_cast<std::uint32_t>(data.bytes.size() + 1));
      } else {
        prefix.write_int32(static_cast<std::int32_t>(data.bytes.size()));
      }
      frame.append(prefix.bytes());
      frame.append_borrowed(data.bytes, data.mapping);
      cursor = at + marker_bytes;
    }
    frame.append(encoded.subspan(cursor));
    return true;
  }

  broker_context& broker_;
  response_address address_;
  response_slot slot_;
  std::int32_t min_bytes_;
  std::int32_t max_bytes_;
  std::vector<topic_plan> topics_;
};

}  // namespace

handler_status handle_fetch(request_context& ctx, protocol::reader& body) {
  protocol::FetchRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  if (request.session_id != 0) {
    Response response;
    response.error_code = static_cast<std::int16_t>(error_code::fetch_session_id_not_found);
    respond(slot, ctx.address, response);
    return handler_status::done;
  }
  std::vector<topic_plan> topics;
  topics.reserve(request.topics.size());
  for (const auto& topic : request.topics) {
    topic_plan plan;
    if (ctx.version() >= 13) {
      plan.id = topic.topic_id;
      if (const topic_info* known = ctx.broker.topics().find(topic.topic_id))
        plan.name = known->name;
    } else {
      plan.name = std::string(topic.topic);
      if (const topic_info* known = ctx.broker.topics().find(topic.topic)) plan.id = known->id;
    }
    plan.partitions.reserve(topic.partitions.size());
    for (const auto& p : topic.partitions) {
      plan.partitions.push_back(
          {p.partition, p.fetch_offset, p.partition_max_bytes, p.current_leader_epoch});
    }
    topics.push_back(std::move(plan));
  }
  auto op =
      std::make_unique<fetch_operation>(ctx.broker, ctx.address, std::move(slot), request.min_bytes,
                                        request.max_bytes, std::move(topics));
  const bool can_wait = request.max_wait_ms > 0 && !ctx.broker.fetches().full();
  if (op->evaluate(!can_wait)) return handler_status::done;
  auto wait = std::chrono::milliseconds(std::min(request.max_wait_ms, max_wait_cap_ms));
  fetch_operation* raw = op.get();
  std::uint64_t id = ctx.broker.fetches().park(std::move(op), fetch_purgatory::clock::now() + wait);
  raw->watch(id);
  return handler_status::done;
}

}  // namespace sluice
