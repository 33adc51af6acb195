// The command line of sluice-bench: which load, against which broker, with what shape.
//
// Parsing never exits and never throws: it returns the options, the help text, or one
// line naming what is wrong (main prints it and exits 2). Every number is checked
// against a bound, so that a run cannot ask for unbounded memory or time.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "engine/storage/record_batch.h"

namespace sluice::bench {

enum class bench_mode : std::uint8_t { produce, consume, e2e };
enum class key_mode : std::uint8_t { none, round_robin, random };

struct bench_options {
  bench_mode mode = bench_mode::produce;
  std::string bootstrap_host = "localhost";
  std::uint16_t bootstrap_port = 9092;
  std::string topic = "sluice-bench";
  // Partitions of the topic when sluice-bench creates it.
  std::int32_t partitions = 8;

  std::size_t record_bytes = 1024;
  std::size_t key_bytes = 0;
  key_mode keys = key_mode::none;
  // The end of the load: a record count (all producers together; for consume, records
  // read), a duration, or both (whichever comes first). Neither: produce and e2e run
  // for default_duration; consume reads up to the end offsets seen at start.
  std::optional<std::uint64_t> records;
  std::optional<std::chrono::milliseconds> duration;
  // Records a second, all producers together; 0 = as fast as the window allows.
  double rate = 0;
  // -1 = all, 1 = leader; 0 is refused (see bench_options.cc).
  std::int16_t acks = 1;
  std::size_t batch_bytes = 16384;
  std::chrono::milliseconds linger{0};
  compression_codec compression = compression_codec::none;
  // The largest Produce request body, as Kafka's max.request.size.
  std::size_t request_bytes_max = 1024 * 1024;
  std::size_t producers = 1;
  std::size_t consumers = 1;
  std::size_t in_flight = 5;
  bool json = false;
  bool verify = false;
  std::chrono::milliseconds warmup{0};
  std::optional<int> broker_pid;
  // The wait for a request's answer, and for e2e and consume stragglers.
  std::chrono::milliseconds timeout{30000};
  // Fetch: bytes per partition and per response.
  std::int32_t fetch_partition_bytes = 1024 * 1024;
  std::int32_t fetch_bytes = 16 * 1024 * 1024;
  std::int32_t fetch_wait_ms = 100;
};

inline constexpr std::chrono::milliseconds default_duration{10000};
// The value of every record produced starts with the stamp (see record_stamp.h).
inline constexpr std::size_t record_bytes_min = 24;

struct bench_help {
  std::string text;
};
struct bench_usage_error {
  std::string message;
};
using bench_parse_outcome = std::variant<bench_options, bench_help, bench_usage_error>;

bench_parse_outcome parse_bench_options(int argc, const char* const* argv);

std::string_view mode_name(bench_mode mode) noexcept;

}  // namespace sluice::bench
