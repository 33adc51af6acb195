// consumer: one consumer connection of sluice-bench, fetching a share of the partitions.
//
// One Fetch in flight at a time (as a Kafka consumer has per broker), naming every owned
// partition that has not reached its end, each from its next offset. A response is
// walked batch by batch through the headers: records_count and the batch's bytes are
// counted without decoding records. Records are decoded only when they must be: for
// --verify (every record's stamp goes to the sequence_checker) and in e2e mode (each
// record's latency is its arrival minus the time stamped into it by the producer). A
// batch cut short at the end of a response is fetched again from its start next time.
//
// Latency, in consume mode, is the Fetch round trip (once per fetch); in e2e, per record.
//
// Owned by the run; single-threaded on the run's reactor. Lifecycle: construct ->
// connect() -> pump() ... until caught_up() or the run stops -> destroy.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/client/kafka_client.h"
#include "net/protocol/generated/fetch.h"
#include "tools/sluice-bench/bench_options.h"
#include "tools/sluice-bench/load_stats.h"
#include "tools/sluice-bench/sequence_checker.h"

namespace sluice::bench {

class consumer {
 public:
  using clock = std::chrono::steady_clock;

  // `start_offsets`: per owned partition, where reading begins.
  consumer(reactor& ring, const bench_options& options, std::vector<std::int32_t> partitions,
           std::vector<std::int64_t> start_offsets, load_stats& stats, sequence_checker* checker);
  consumer(const consumer&) = delete;
  consumer& operator=(const consumer&) = delete;
  ~consumer();

  bool connect(std::string& why);
  // Sends the next Fetch when none is in flight and a partition still has to be read.
  void pump(clock::time_point now) noexcept;
  // Per owned partition (same order as partitions()): read up to `end` (exclusive), then
  // stop fetching it. Without ends, every partition is read until the run stops.
  void set_end_offsets(const std::vector<std::int64_t>& ends);
  // Every owned partition reached its end offset (false while there are no ends).
  bool caught_up() const noexcept;
  bool fetch_in_flight() const noexcept { return in_flight_; }
  bool broken() const noexcept;

  const std::vector<std::int32_t>& partitions() const noexcept { return partitions_; }
  std::int64_t next_offset(std::size_t index) const noexcept { return next_[index]; }

 private:
  void on_response(result<response_view> response) noexcept;
  // Walks one partition's records; returns the offset after the last whole batch.
  std::int64_t take_records(std::size_t index, protocol::bytes_view records,
                            std::int64_t now_us) noexcept;

  reactor& ring_;
  const bench_options& options_;
  std::vector<std::int32_t> partitions_;
  std::vector<std::int64_t> next_;
  std::vector<std::int64_t> end_;  // INT64_MAX: no end
  std::vector<bool> failed_;
  load_stats& stats_;
  sequence_checker* checker_;
  bool decode_records_;
  std::unique_ptr<kafka_client> client_;
  std::int16_t version_ = 0;

  bool in_flight_ = false;
  clock::time_point sent_at_;
  std::vector<std::byte> body_;
  // The partitions the Fetch in flight asked for (indexes into partitions_).
  std::vector<std::size_t> asked_;
  std::vector<std::byte> scratch_;
  protocol::FetchRequest request_;
};

}  // namespace sluice::bench
