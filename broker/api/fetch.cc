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

// Reads one partition of this core for a fetch: the error, watermarks and record bytes.
partition_read read_partition(broker_context& broker, std::int16_t api_version,
                              const std::string& topic_name, const partition_plan& wanted,
                              std::size_t budget, bool first) noexcept {
  partition_read out;
  if (topic_name.empty() || broker.table().find(topic_name) == nullptr) {
    out.error = topic_name.empty() || api_version >= 13 ? error_code::unknown_topic_id
                                                        : error_code::unknown_topic_or_partition;
    return out;
  }
  partition_state* state = broker.partition(topic_name, wanted.partition);
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
      SLUICE_LOG(warn, "kafka", "fetch from {}-{} at {} failed: {}", topic_name, wanted.partition,
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

// Cuts `encoded` at each marker and builds the frame with borrowed record bytes.
bool splice(const response_address& address, std::span<const std::byte> encoded,
            const std::vector<std::array<std::byte, marker_bytes>>& markers,
            const std::vector<const read_result*>& spliced, outgoing_frame& frame) {
  const bool compact = address.api_version >= Response::first_flexible_version;
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
    const std::byte expected_classic[4] = {std::byte{0}, std::byte{0}, std::byte{0}, std::byte{16}};
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

void answer_fetch(const response_address& address, response_slot& slot,
                  const std::vector<topic_plan>& topics,
                  std::vector<partition_read>& reads) noexcept {
  if (!slot) return;
  Response response;
  std::array<std::uint8_t, 8> request_marker{};
  auto random = random_uuid();
  std::memcpy(request_marker.data(), random.bytes.data(), request_marker.size());
  std::vector<std::array<std::byte, marker_bytes>> markers;
  markers.reserve(reads.size());
  std::vector<const read_result*> spliced;  // in encoding order
  std::size_t index = 0;
  response.responses.reserve(topics.size());
  for (const auto& topic : topics) {
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
  write_response_header(out, address);
  response.encode(out, address.api_version);
  if (!out.ok()) {
    log_encode_failure(address, out.error_detail());
    slot.release();
    return;
  }
  outgoing_frame frame;
  if (splice(address, out.bytes(), markers, spliced, frame)) {
    slot.respond(std::move(frame));
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
  respond(slot, address, response);
}

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
        partition_read& r =
            reads.emplace_back(read_partition(broker_, address_.api_version, topic.name, wanted,
                                              budget - std::min(budget, total), total == 0));
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
  void answer(std::vector<partition_read>& reads) noexcept {
    answer_fetch(address_, slot_, topics_, reads);
  }

  broker_context& broker_;
  response_address address_;
  response_slot slot_;
  std::int32_t min_bytes_;
  std::int32_t max_bytes_;
  std::vector<topic_plan> topics_;
};

// A fetch whose partitions live on several cores. Each round reads this core's
// partitions at once and asks every other owner for its own (one task per core); the
// owners answer with their reads -- views into their segment mappings, sent to the
// socket from here without a copy -- and, once the fetch is parked, also watch their
// partitions for it and wake it here when data arrives. When every owner has answered,
// the round decides as a single-core fetch does: enough (or an error, or the deadline)
// answers, otherwise the fetch waits in this core's purgatory. The response budget
// (max_bytes) is applied when the round ends: past the first partition with data, a
// partition whose records do not fit waits for the next fetch.
//
// The state is shared: the purgatory's entry and each owner's answer in flight hold it,
// so a deadline that passes during a round leaves the purgatory at once and the round,
// when it ends, answers. Touched only on the fetch's own core (the owners never touch it:
// they hand it back in their answer).
class multi_core_fetch final : public std::enable_shared_from_this<multi_core_fetch> {
 public:
  multi_core_fetch(broker_context& broker, const response_address& address, response_slot slot,
                   std::int32_t min_bytes, std::int32_t max_bytes, std::vector<topic_plan> topics,
                   fetch_purgatory::clock::time_point deadline)
      : broker_(broker),
        address_(address),
        slot_(std::move(slot)),
        min_bytes_(min_bytes),
        max_bytes_(max_bytes),
        topics_(std::move(topics)),
        deadline_(deadline) {}

  // The first round; `can_wait`: the fetch may park when there is not enough.
  void start(bool can_wait) noexcept {
    can_wait_ = can_wait;
    must_answer_ = !can_wait;
    run_round();
  }

  // From the purgatory entry.
  bool on_purgatory(bool deadline_passed) noexcept {
    if (answered_) return true;
    if (deadline_passed) {
      must_answer_ = true;
      parked_id_ = 0;  // the entry leaves now
      if (!round_in_flight_) answer();
      return true;  // else the round answers when it ends
    }
    if (round_in_flight_) {
      rerun_ = true;
      return false;
    }
    run_round();
    return answered_;
  }

  // An owner's reads, back on this core.
  void on_owner_reads(std::vector<std::pair<std::size_t, partition_read>> reads) noexcept {
    for (auto& [index, read] : reads) reads_[index] = std::move(read);
    SLUICE_ASSERT(owners_pending_ > 0, "an owner answered a fetch round twice");
    if (--owners_pending_ == 0) end_round();
  }

 private:
  struct wanted_partition {
    std::string topic;
    partition_plan plan;
    std::size_t index;
  };

  // Waits on an owner core for data on the partitions it read for another core's parked
  // fetch, then wakes that fetch there. Leaves quietly at the deadline.
  class owner_watch final : public delayed_fetch {
   public:
    owner_watch(core_router& router, std::uint32_t origin, std::uint64_t origin_id) noexcept
        : router_(router), origin_(origin), origin_id_(origin_id) {}
    bool try_complete(std::uint64_t, bool deadline_passed) noexcept override {
      if (!deadline_passed) {
        router_.run_on(origin_, [id = origin_id_](broker_context& origin) {
          origin.fetches().wake_fetch(id);
        });
      }
      return true;
    }

   private:
    core_router& router_;
    std::uint32_t origin_;
    std::uint64_t origin_id_;
  };

  void run_round() noexcept {
    round_in_flight_ = true;
    rerun_ = false;
    std::size_t count = 0;
    for (const auto& topic : topics_) count += topic.partitions.size();
    reads_.assign(count, partition_read{});
    core_router& router = *broker_.router();
    std::vector<std::vector<wanted_partition>> remote(router.count());
    const std::size_t budget = static_cast<std::size_t>(std::max(max_bytes_, 0));
    std::size_t index = 0;
    for (const auto& topic : topics_) {
      for (const auto& wanted : topic.partitions) {
        const std::uint32_t owner =
            topic.name.empty() ? router.self() : router.owner(topic.name, wanted.partition);
        if (owner == router.self()) {
          reads_[index] =
              read_partition(broker_, address_.api_version, topic.name, wanted, budget, true);
        } else {
          remote[owner].push_back({topic.name, wanted, index});
        }
        ++index;
      }
    }
    owners_pending_ = 0;
    for (std::uint32_t k = 0; k < router.count(); ++k) {
      if (!remote[k].empty()) ++owners_pending_;
    }
    if (owners_pending_ == 0) {
      end_round();
      return;
    }
    for (std::uint32_t k = 0; k < router.count(); ++k) {
      if (remote[k].empty()) continue;
      router.run_on(k, [origin = router.self(), state = shared_from_this(),
                        wanted = std::move(remote[k]), version = address_.api_version, budget,
                        watch_id = parked_id_,
                        deadline = deadline_](broker_context& owner) mutable {
        std::vector<std::pair<std::size_t, partition_read>> reads;
        reads.reserve(wanted.size());
        for (const auto& w : wanted) {
          reads.emplace_back(w.index,
                             read_partition(owner, version, w.topic, w.plan, budget, true));
        }
        if (watch_id != 0 && !owner.fetches().full()) {
          std::uint64_t id = owner.fetches().park(
              std::make_unique<owner_watch>(*owner.router(), origin, watch_id), deadline);
          for (const auto& w : wanted) {
            if (partition_state* p = owner.partition(w.topic, w.plan.partition)) (void)p->watch(id);
          }
        }
        owner.router()->run_on(
            origin, [state = std::move(state), reads = std::move(reads)](broker_context&) mutable {
              state->on_owner_reads(std::move(reads));
            });
      });
    }
  }

  void end_round() noexcept {
    round_in_flight_ = false;
    if (answered_) return;
    // The response budget, in request order.
    const std::size_t budget = static_cast<std::size_t>(std::max(max_bytes_, 0));
    std::size_t total = 0;
    bool any_error = false;
    for (auto& read : reads_) {
      if (read.error != error_code::none) any_error = true;
      if (!read.data) continue;
      const std::size_t size = read.data->bytes.size();
      if (total > 0 && total + size > budget) {
        read.data.reset();
        continue;
      }
      total += size;
    }
    if (must_answer_ || any_error || total >= static_cast<std::size_t>(std::max(min_bytes_, 0))) {
      answer();
      return;
    }
    if (parked_id_ == 0) {
      // First round: park, then read again with the owners watching.
      if (!can_wait_ || broker_.fetches().full()) {
        answer();
        return;
      }
      auto self = shared_from_this();
      parked_id_ = broker_.fetches().park(std::make_unique<entry>(self), deadline_);
      watch_local();
      run_round();
      return;
    }
    if (rerun_) {
      run_round();
      return;
    }
    watch_local();
  }

  void watch_local() noexcept {
    for (const auto& topic : topics_) {
      if (topic.name.empty()) continue;
      for (const auto& wanted : topic.partitions) {
        if (!broker_.owns(topic.name, wanted.partition)) continue;
        if (partition_state* state = broker_.partition(topic.name, wanted.partition)) {
          (void)state->watch(parked_id_);
        }
      }
    }
  }

  void answer() noexcept {
    answered_ = true;
    answer_fetch(address_, slot_, topics_, reads_);
    reads_.clear();  // lets go of the mappings
    // The purgatory entry, if any, leaves at its next look.
    if (parked_id_ != 0) broker_.fetches().wake_fetch(parked_id_);
  }

  // The purgatory's handle on the fetch.
  class entry final : public delayed_fetch {
   public:
    explicit entry(std::shared_ptr<multi_core_fetch> fetch) noexcept : fetch_(std::move(fetch)) {}
    bool try_complete(std::uint64_t, bool deadline_passed) noexcept override {
      return fetch_->on_purgatory(deadline_passed);
    }

   private:
    std::shared_ptr<multi_core_fetch> fetch_;
  };

  broker_context& broker_;
  response_address address_;
  response_slot slot_;
  std::int32_t min_bytes_;
  std::int32_t max_bytes_;
  std::vector<topic_plan> topics_;
  fetch_purgatory::clock::time_point deadline_;
  std::vector<partition_read> reads_;
  std::size_t owners_pending_ = 0;
  std::uint64_t parked_id_ = 0;
  bool can_wait_ = false;
  bool must_answer_ = false;
  bool round_in_flight_ = false;
  bool rerun_ = false;
  bool answered_ = false;
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
      if (const topic_info* known = ctx.broker.table().find(topic.topic_id))
        plan.name = known->name;
    } else {
      plan.name = std::string(topic.topic);
      if (const topic_info* known = ctx.broker.table().find(topic.topic)) plan.id = known->id;
    }
    plan.partitions.reserve(topic.partitions.size());
    for (const auto& p : topic.partitions) {
      plan.partitions.push_back(
          {p.partition, p.fetch_offset, p.partition_max_bytes, p.current_leader_epoch});
    }
    topics.push_back(std::move(plan));
  }
  const bool can_wait = request.max_wait_ms > 0 && !ctx.broker.fetches().full();
  auto wait = std::chrono::milliseconds(std::min(request.max_wait_ms, max_wait_cap_ms));
  bool all_here = true;
  for (const auto& topic : topics) {
    for (const auto& wanted : topic.partitions) {
      all_here = all_here && (topic.name.empty() || ctx.broker.owns(topic.name, wanted.partition));
    }
  }
  if (!all_here) {
    auto fetch = std::make_shared<multi_core_fetch>(
        ctx.broker, ctx.address, std::move(slot), request.min_bytes, request.max_bytes,
        std::move(topics), fetch_purgatory::clock::now() + wait);
    fetch->start(can_wait);
    return handler_status::done;
  }
  auto op =
      std::make_unique<fetch_operation>(ctx.broker, ctx.address, std::move(slot), request.min_bytes,
                                        request.max_bytes, std::move(topics));
  if (op->evaluate(!can_wait)) return handler_status::done;
  fetch_operation* raw = op.get();
  std::uint64_t id = ctx.broker.fetches().park(std::move(op), fetch_purgatory::clock::now() + wait);
  raw->watch(id);
  return handler_status::done;
}

}  // namespace sluice
