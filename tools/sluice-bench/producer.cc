#include "tools/sluice-bench/producer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "net/protocol/error_codes.h"
#include "tools/sluice-bench/record_stamp.h"

namespace sluice::bench {

namespace {
// The Produce request's bytes besides its batches: header fields, topic name, and per
// partition an index and a length (a generous bound).
constexpr std::size_t request_overhead_bytes = 64;
constexpr std::size_t partition_overhead_bytes = 16;
}  // namespace

producer::producer(reactor& ring, const bench_options& options,
                   std::vector<std::int32_t> partitions, std::uint32_t run_id, std::uint64_t seed,
                   std::optional<std::uint64_t> records_max, double rate, load_stats& stats)
    : ring_(ring),
      options_(options),
      partitions_(std::move(partitions)),
      records_max_(records_max),
      rate_(rate),
      stats_(stats),
      factory_(options, run_id, seed),
      sent_(partitions_.size(), 0),
      acked_end_(partitions_.size(), -1),
      contexts_(options.in_flight) {
  for (auto& c : contexts_) c.owner = this;
  request_.acks = options.acks;
  request_.timeout_ms = static_cast<std::int32_t>(options.timeout.count());
  request_.transactional_id = std::nullopt;
  request_.topic_data.resize(1);
  request_.topic_data[0].name = options.topic;
}

producer::~producer() {
  // Callbacks refer to the contexts: close (which runs them) while they still exist.
  if (client_) client_->close();
  client_.reset();
}

bool producer::connect(std::string& why) {
  kafka_client_config config;
  config.client_id = "sluice-bench-producer";
  config.in_flight_max = options_.in_flight;
  config.request_timeout = options_.timeout;
  client_ = std::make_unique<kafka_client>(ring_, config);
  auto connected = client_->connect_sync(options_.bootstrap_host, options_.bootstrap_port);
  if (!connected.ok()) {
    why = fmt::format("connecting to {}:{}: {}", options_.bootstrap_host, options_.bootstrap_port,
                      connected.failure().detail());
    return false;
  }
  auto version =
      client_->version_for(protocol::api_key::produce, 3, protocol::ProduceRequest::max_version);
  if (!version.ok()) {
    why = fmt::format("Produce v3+ (RecordBatch v2): {}", version.failure().detail());
    return false;
  }
  version_ = *version;
  return true;
}

void producer::start(clock::time_point now) noexcept {
  start_ = now;
  started_ = true;
}

void producer::stop() noexcept {
  stopped_ = true;
}

bool producer::broken() const noexcept {
  return client_ == nullptr || !client_->ready();
}

bool producer::all_sent() const noexcept {
  return records_max_ && records_sent_ >= *records_max_;
}

bool producer::finished() const noexcept {
  const bool nothing_left = stopped_ || all_sent() || broken();
  return nothing_left && busy_contexts_ == 0;
}

std::uint64_t producer::due_total(clock::time_point now) const noexcept {
  const std::uint64_t limit = records_max_.value_or(UINT64_MAX);
  if (rate_ <= 0 || !started_) return started_ ? limit : 0;
  const double elapsed_s = std::chrono::duration<double>(now - start_).count();
  // The first record is due at once, the next 1/rate later, and so on.
  const double due = std::floor(elapsed_s * rate_) + 1;
  return due >= static_cast<double>(limit) ? limit : static_cast<std::uint64_t>(due);
}

std::uint64_t producer::due_for(std::size_t index, std::uint64_t total) const noexcept {
  if (total == UINT64_MAX) return UINT64_MAX;
  const std::uint64_t n = partitions_.size();
  return total / n + (index < total % n ? 1 : 0);
}

bool producer::linger_passed(std::size_t index, clock::time_point now) const noexcept {
  // Unpaced, every record is due at start: a partial batch is the tail of --records.
  if (rate_ <= 0) return true;
  // The oldest unsent record of this partition is the producer's record number
  // sent * n + index, due at start + that / rate.
  const double record =
      static_cast<double>(sent_[index]) * static_cast<double>(partitions_.size()) +
      static_cast<double>(index);
  const auto due = start_ + std::chrono::duration_cast<clock::duration>(
                                std::chrono::duration<double>(record / rate_));
  return now >= due + options_.linger;
}

producer::request_context* producer::free_context() noexcept {
  for (auto& c : contexts_) {
    if (!c.busy) return &c;
  }
  return nullptr;
}

void producer::pump(clock::time_point now) noexcept {
  if (!started_ || stopped_ || broken()) return;
  // Bounded by the window: each pass takes a slot or stops.
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    if (!client_->can_send()) return;
    request_context* context = free_context();
    if (context == nullptr) return;
    if (!send_one(*context, now)) return;
  }
}

bool producer::send_one(request_context& context, clock::time_point now) noexcept {
  const std::uint64_t total = due_total(now);
  const std::size_t n = partitions_.size();
  const std::size_t per_batch = factory_.records_per_batch();
  staging_.clear();
  context.entries.clear();
  context.records = 0;
  std::size_t request_bytes = request_overhead_bytes + options_.topic.size();
  const std::int64_t now_us = wall_clock_us();
  for (std::size_t scanned = 0; scanned < n; ++scanned) {
    const std::size_t index = cursor_;
    const std::uint64_t due = due_for(index, total);
    const std::uint64_t sent = static_cast<std::uint64_t>(sent_[index]);
    if (due <= sent) {
      cursor_ = (cursor_ + 1) % n;
      continue;
    }
    const std::size_t count =
        static_cast<std::size_t>(std::min<std::uint64_t>(due - sent, per_batch));
    if (count < per_batch && !linger_passed(index, now)) {
      cursor_ = (cursor_ + 1) % n;
      continue;
    }
    // Full: this partition starts the next request.
    if (!context.entries.empty() &&
        request_bytes + factory_.full_batch_bytes() + partition_overhead_bytes >
            options_.request_bytes_max) {
      break;
    }
    const std::size_t offset = staging_.size();
    auto bytes = factory_.append_batch(staging_, partitions_[index], sent_[index], count, now_us);
    if (!bytes.ok()) {
      stats_.note_error(fmt::format("building a batch: {}", bytes.failure().detail()));
      ++stats_.request_errors;
      stop();
      return false;
    }
    context.entries.push_back(batch_entry{static_cast<std::uint32_t>(index),
                                          static_cast<std::uint32_t>(count), offset, *bytes});
    sent_[index] += static_cast<std::int64_t>(count);
    context.records += count;
    request_bytes += *bytes + partition_overhead_bytes;
    cursor_ = (cursor_ + 1) % n;
  }
  if (context.entries.empty()) return false;

  auto& data = request_.topic_data[0].partition_data;
  data.resize(context.entries.size());
  for (std::size_t i = 0; i < context.entries.size(); ++i) {
    const auto& entry = context.entries[i];
    data[i].index = partitions_[entry.partition_index];
    data[i].records = protocol::bytes_view(staging_.data() + entry.offset, entry.bytes);
  }
  protocol::writer out(request_bytes);
  request_.encode(out, version_);
  SLUICE_ASSERT(out.ok(), "a Produce request that does not encode");
  context.body = out.take();
  context.sent_at = clock::now();
  context.busy = true;
  ++busy_contexts_;
  records_sent_ += context.records;
  request_context* self = &context;
  auto sent = client_->send(
      protocol::api_key::produce, version_, context.body,
      [this, self](result<response_view> response) { on_response(*self, std::move(response)); });
  if (!sent.ok()) {
    // can_send() was true, so only a closing connection gets here.
    context.busy = false;
    --busy_contexts_;
    ++stats_.request_errors;
    stats_.note_error(fmt::format("Produce: {}", sent.failure().detail()));
    return false;
  }
  return true;
}

void producer::on_response(request_context& context, result<response_view> response) noexcept {
  const auto arrived = clock::now();
  context.busy = false;
  --busy_contexts_;
  protocol::ProduceResponse message;
  if (!stats_.decode_answer("Produce", response, version_, message)) return;
  std::uint64_t acked_records = 0;
  std::uint64_t acked_bytes = 0;
  std::size_t answered = 0;
  for (const auto& topic : message.responses) {
    for (const auto& p : topic.partition_responses) {
      // Answers come in request order; look further only when they do not.
      const batch_entry* entry = nullptr;
      if (answered < context.entries.size() &&
          partitions_[context.entries[answered].partition_index] == p.index) {
        entry = &context.entries[answered];
      } else {
        for (const auto& e : context.entries) {
          if (partitions_[e.partition_index] == p.index) entry = &e;
        }
      }
      ++answered;
      if (entry == nullptr) continue;
      if (p.error_code != 0) {
        ++stats_.partition_errors;
        stats_.note_error(
            fmt::format("Produce {}-{}: {}{}{}", options_.topic, p.index,
                        protocol::error_code_name(static_cast<protocol::error_code>(p.error_code)),
                        p.error_message && !p.error_message->empty() ? ": " : "",
                        p.error_message.value_or("")));
        continue;
      }
      acked_records += entry->records;
      acked_bytes += entry->bytes;
      auto& end = acked_end_[entry->partition_index];
      end = std::max<std::int64_t>(end, p.base_offset + entry->records);
    }
  }
  if (answered != context.entries.size()) {
    ++stats_.partition_errors;
    stats_.note_error("Produce: the response does not answer every partition sent");
  }
  records_acked_ += acked_records;
  stats_.records += acked_records;
  stats_.bytes += acked_bytes;
  const auto latency_us =
      std::chrono::duration_cast<std::chrono::microseconds>(arrived - context.sent_at).count();
  stats_.latency_us.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, latency_us)),
                           acked_records);
}

}  // namespace sluice::bench
