// producer: one producer connection of sluice-bench, owning a share of the partitions.
//
// Records are spread over the owned partitions in turn (record i of this producer goes
// to owned partition i mod n), and become due all at once (--rate 0, bounded by
// --records) or at the producer's share of --rate. A partition is ready to send when it
// has a full batch due, or -- paced -- when its oldest due record has waited --linger-ms.
// Each request takes one batch from each ready partition, in turn from where the last
// request stopped, up to --request-bytes; batches come from the batch_factory
// (prebuilt, stamped per request), and the body is encoded once by the generated
// ProduceRequest codec and lent to kafka_client::send(). The window of --in-flight
// requests is the client's; when it is full, pump() waits for answers (backpressure).
//
// Latency of a request is its answer's arrival minus its send, recorded once per record
// it carried. A partition's sequence numbers follow the send order; a request that fails
// leaves a gap (which --verify reports as missing records).
//
// Owned by the run; single-threaded on the run's reactor. Lifecycle: construct ->
// connect() -> start() -> pump() ... -> stop() -> pump() until finished().
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/client/kafka_client.h"
#include "net/protocol/generated/produce.h"
#include "tools/sluice-bench/batch_factory.h"
#include "tools/sluice-bench/bench_options.h"
#include "tools/sluice-bench/load_stats.h"

namespace sluice::bench {

class producer {
 public:
  using clock = std::chrono::steady_clock;

  // `records_max`: this producer's share of --records (nullopt: until stopped).
  // `rate`: this producer's records a second (0: as fast as possible).
  producer(reactor& ring, const bench_options& options, std::vector<std::int32_t> partitions,
           std::uint32_t run_id, std::uint64_t seed, std::optional<std::uint64_t> records_max,
           double rate, load_stats& stats);
  producer(const producer&) = delete;
  producer& operator=(const producer&) = delete;
  ~producer();

  // Connects and negotiates the Produce version; `why` says what failed.
  bool connect(std::string& why);
  void start(clock::time_point now) noexcept;
  // Sends every request that is ready while the window has room.
  void pump(clock::time_point now) noexcept;
  // Nothing more is sent; requests in flight still complete.
  void stop() noexcept;
  // Nothing left to send (stopped, every record sent, or the connection lost) and
  // nothing in flight.
  bool finished() const noexcept;
  // The connection failed: nothing more can be sent.
  bool broken() const noexcept;

  const std::vector<std::int32_t>& partitions() const noexcept { return partitions_; }
  // Per owned partition (same index as partitions()): sequences sent.
  std::int64_t sequences_sent(std::size_t index) const noexcept { return sent_[index]; }
  // Per owned partition: the offset just past the last record acknowledged, -1 if none.
  std::int64_t acknowledged_end(std::size_t index) const noexcept { return acked_end_[index]; }
  std::uint64_t records_sent() const noexcept { return records_sent_; }
  std::uint64_t records_acknowledged() const noexcept { return records_acked_; }

 private:
  struct batch_entry {
    std::uint32_t partition_index = 0;
    std::uint32_t records = 0;
    std::size_t offset = 0;  // in the staging buffer while the request is built
    std::size_t bytes = 0;
  };
  struct request_context {
    producer* owner = nullptr;
    bool busy = false;
    std::vector<std::byte> body;
    std::vector<batch_entry> entries;
    std::uint64_t records = 0;
    clock::time_point sent_at;
  };

  std::uint64_t due_total(clock::time_point now) const noexcept;
  std::uint64_t due_for(std::size_t index, std::uint64_t total) const noexcept;
  bool linger_passed(std::size_t index, clock::time_point now) const noexcept;
  bool all_sent() const noexcept;
  request_context* free_context() noexcept;
  // Builds and sends one request; false when nothing was ready.
  bool send_one(request_context& context, clock::time_point now) noexcept;
  void on_response(request_context& context, result<response_view> response) noexcept;

  reactor& ring_;
  const bench_options& options_;
  std::vector<std::int32_t> partitions_;
  std::optional<std::uint64_t> records_max_;
  double rate_;
  load_stats& stats_;
  batch_factory factory_;
  std::unique_ptr<kafka_client> client_;
  std::int16_t version_ = 0;

  clock::time_point start_;
  bool started_ = false;
  // Nothing more is sent once stopped (records due but not sent are dropped).
  bool stopped_ = false;
  std::vector<std::int64_t> sent_;
  std::vector<std::int64_t> acked_end_;
  std::size_t cursor_ = 0;
  std::uint64_t records_sent_ = 0;
  std::uint64_t records_acked_ = 0;

  std::vector<request_context> contexts_;
  std::size_t busy_contexts_ = 0;
  std::vector<std::byte> staging_;
  protocol::ProduceRequest request_;
};

}  // namespace sluice::bench
