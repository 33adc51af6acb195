#include "tools/sluice-bench/consumer.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "engine/storage/record_batch.h"
#include "net/protocol/error_codes.h"
#include "tools/sluice-bench/record_stamp.h"

namespace sluice::bench {

namespace {
constexpr std::int64_t no_end = std::numeric_limits<std::int64_t>::max();
// Decompressed records of one batch, at most (Kafka's batches are at most a few MiB).
constexpr std::size_t decompressed_bytes_max = 256 * 1024 * 1024;
}  // namespace

consumer::consumer(reactor& ring, const bench_options& options,
                   std::vector<std::int32_t> partitions, std::vector<std::int64_t> start_offsets,
                   load_stats& stats, sequence_checker* checker)
    : ring_(ring),
      options_(options),
      partitions_(std::move(partitions)),
      next_(std::move(start_offsets)),
      end_(partitions_.size(), no_end),
      failed_(partitions_.size(), false),
      stats_(stats),
      checker_(checker),
      decode_records_(checker != nullptr || options.mode == bench_mode::e2e) {
  SLUICE_ASSERT(next_.size() == partitions_.size(), "a start offset per partition");
  request_.replica_id = -1;
  request_.max_wait_ms = options.fetch_wait_ms;
  request_.min_bytes = 1;
  request_.max_bytes = options.fetch_bytes;
  request_.isolation_level = 0;
  request_.session_id = 0;
  request_.session_epoch = -1;  // no fetch session: every Fetch names its partitions
  request_.topics.resize(1);
  request_.topics[0].topic = options.topic;
}

consumer::~consumer() {
  if (client_) client_->close();
  client_.reset();
}

bool consumer::connect(std::string& why) {
  kafka_client_config config;
  config.client_id = "sluice-bench-consumer";
  config.in_flight_max = 1;
  config.request_timeout = options_.timeout + std::chrono::milliseconds(options_.fetch_wait_ms);
  client_ = std::make_unique<kafka_client>(ring_, config);
  auto connected = client_->connect_sync(options_.bootstrap_host, options_.bootstrap_port);
  if (!connected.ok()) {
    why = fmt::format("connecting to {}:{}: {}", options_.bootstrap_host, options_.bootstrap_port,
                      connected.failure().detail());
    return false;
  }
  // Topic names travel up to v12; v13+ would need topic ids.
  auto version = client_->version_for(protocol::api_key::fetch, 4, 12);
  if (!version.ok()) {
    why = fmt::format("Fetch v4-v12: {}", version.failure().detail());
    return false;
  }
  version_ = *version;
  return true;
}

void consumer::set_end_offsets(const std::vector<std::int64_t>& ends) {
  SLUICE_ASSERT(ends.size() == partitions_.size(), "an end offset per partition");
  end_ = ends;
}

bool consumer::caught_up() const noexcept {
  for (std::size_t i = 0; i < partitions_.size(); ++i) {
    if (!failed_[i] && next_[i] < end_[i]) return false;
  }
  return true;
}

bool consumer::broken() const noexcept {
  return client_ == nullptr || !client_->ready();
}

void consumer::pump(clock::time_point now) noexcept {
  if (in_flight_ || broken()) return;
  asked_.clear();
  auto& wanted = request_.topics[0].partitions;
  wanted.clear();
  for (std::size_t i = 0; i < partitions_.size(); ++i) {
    if (failed_[i] || next_[i] >= end_[i]) continue;
    asked_.push_back(i);
    auto& p = wanted.emplace_back();
    p.partition = partitions_[i];
    p.fetch_offset = next_[i];
    p.partition_max_bytes = options_.fetch_partition_bytes;
  }
  if (asked_.empty()) return;
  protocol::writer out(64 + wanted.size() * 32);
  request_.encode(out, version_);
  SLUICE_ASSERT(out.ok(), "a Fetch request that does not encode");
  body_ = out.take();
  sent_at_ = now;
  in_flight_ = true;
  auto sent =
      client_->send(protocol::api_key::fetch, version_, body_,
                    [this](result<response_view> response) { on_response(std::move(response)); });
  if (!sent.ok()) {
    in_flight_ = false;
    ++stats_.request_errors;
    stats_.note_error(fmt::format("Fetch: {}", sent.failure().detail()));
  }
}

void consumer::on_response(result<response_view> response) noexcept {
  in_flight_ = false;
  const auto arrived = clock::now();
  protocol::FetchResponse message;
  if (!stats_.decode_answer("Fetch", response, version_, message)) return;
  if (message.error_code != 0) {
    ++stats_.request_errors;
    stats_.note_error(fmt::format(
        "Fetch: {}",
        protocol::error_code_name(static_cast<protocol::error_code>(message.error_code))));
    return;
  }
  const std::int64_t now_us = wall_clock_us();
  for (const auto& topic : message.responses) {
    for (const auto& p : topic.partitions) {
      std::size_t index = partitions_.size();
      for (std::size_t i : asked_) {
        if (partitions_[i] == p.partition_index) index = i;
      }
      if (index == partitions_.size()) continue;
      if (p.error_code != 0) {
        // Not retried: a benchmark that meets errors has failed; the report says which.
        ++stats_.partition_errors;
        failed_[index] = true;
        stats_.note_error(fmt::format(
            "Fetch {}-{} at offset {}: {}", options_.topic, p.partition_index, next_[index],
            protocol::error_code_name(static_cast<protocol::error_code>(p.error_code))));
        continue;
      }
      if (p.records && !p.records->empty()) {
        next_[index] = take_records(index, *p.records, now_us);
      }
    }
  }
  if (options_.mode != bench_mode::e2e) {
    const auto latency_us =
        std::chrono::duration_cast<std::chrono::microseconds>(arrived - sent_at_).count();
    stats_.latency_us.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, latency_us)));
  }
}

std::int64_t consumer::take_records(std::size_t index, protocol::bytes_view records,
                                    std::int64_t now_us) noexcept {
  std::int64_t next = next_[index];
  const std::int32_t partition = partitions_[index];
  std::size_t position = 0;
  // Each pass consumes one whole batch or stops.
  while (records.size() - position >= batch_layout::header_bytes) {
    const auto rest = records.subspan(position);
    auto header = decode_batch_header(rest);
    if (!header.ok()) {
      ++stats_.partition_errors;
      stats_.note_error(fmt::format("Fetch {}-{}: a batch header does not decode at offset {}",
                                    options_.topic, partition, next));
      failed_[index] = true;
      return next;
    }
    const std::size_t total = header->total_bytes();
    if (total > rest.size()) break;  // cut short by the response's size limit
    const auto batch = rest.first(total);
    position += total;
    if (header->next_offset().value() <= next) continue;  // before the offset asked for
    const std::int64_t from = next;
    next = header->next_offset().value();
    if (header->is_control()) continue;
    stats_.bytes += total;
    if (!decode_records_) {
      // Records before `from` (a batch that starts earlier) are not counted again.
      const std::int64_t skipped = std::max<std::int64_t>(0, from - header->base_offset.value());
      stats_.records +=
          static_cast<std::uint64_t>(std::max<std::int64_t>(0, header->records_count - skipped));
      continue;
    }
    auto records_bytes = batch_records(*header, batch, scratch_, decompressed_bytes_max);
    if (!records_bytes.ok()) {
      ++stats_.partition_errors;
      stats_.note_error(fmt::format("Fetch {}-{}: batch at offset {}: {}", options_.topic,
                                    partition, header->base_offset.value(),
                                    records_bytes.failure().detail()));
      continue;
    }
    std::uint64_t counted = 0;
    auto walked = for_each_record(*header, *records_bytes, [&](const record_view& record) {
      if (header->base_offset.value() + record.offset_delta < from) return true;
      ++counted;
      if (checker_ != nullptr) checker_->observe(partition, record.value);
      if (options_.mode == bench_mode::e2e && record.value) {
        if (auto stamp = read_stamp(*record.value)) {
          stats_.latency_us.record(
              static_cast<std::uint64_t>(std::max<std::int64_t>(0, now_us - stamp->stamped_us)));
        }
      }
      return true;
    });
    if (!walked.ok()) {
      ++stats_.partition_errors;
      stats_.note_error(fmt::format("Fetch {}-{}: records at offset {}: {}", options_.topic,
                                    partition, header->base_offset.value(),
                                    walked.failure().detail()));
    }
    stats_.records += counted;
  }
  return next;
}

}  // namespace sluice::bench
