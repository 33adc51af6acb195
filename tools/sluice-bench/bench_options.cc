#include "tools/sluice-bench/bench_options.h"

#include <boost/program_options.hpp>
#include <cmath>
#include <sstream>

#include "tools/admin/admin_options.h"

namespace sluice::bench {
namespace po = boost::program_options;

namespace {

constexpr const char* usage_text =
    "Usage: sluice-bench produce|consume|e2e [options]\n"
    "\n"
    "Load for any Kafka-protocol broker, through Sluice's own client.\n"
    "  produce  send records as fast as the window allows (or at --rate); latency is\n"
    "           per request, from send to answer, counted once per record\n"
    "  consume  fetch the topic from the earliest offsets up to the end offsets seen at\n"
    "           start (or --records / --duration-s)\n"
    "  e2e      produce and consume at once; latency is from the timestamp stamped into\n"
    "           each record to its arrival at a consumer\n"
    "\n"
    "Exit status: 0 on success, 1 when the broker or --verify reports a failure, 2 for a\n"
    "usage error.\n";

// Bounds of the numeric flags: enough for any benchmark, small enough that a typo cannot
// ask for terabytes.
constexpr std::int64_t partitions_max = 100000;
constexpr std::int64_t record_bytes_max = 16 * 1024 * 1024;
constexpr std::int64_t key_bytes_max = 64 * 1024;
constexpr std::int64_t connections_max = 256;
constexpr std::int64_t in_flight_max = 1024;
constexpr std::int64_t duration_s_max = 24 * 3600;
constexpr std::int64_t batch_bytes_max = 64 * 1024 * 1024;

std::optional<compression_codec> parse_codec(const std::string& name) {
  if (name == "none") return compression_codec::none;
  if (name == "gzip") return compression_codec::gzip;
  if (name == "snappy") return compression_codec::snappy;
  if (name == "lz4") return compression_codec::lz4;
  if (name == "zstd") return compression_codec::zstd;
  return std::nullopt;
}

std::string range_error(const char* flag, std::int64_t low, std::int64_t high) {
  return std::string("--") + flag + ": must be between " + std::to_string(low) + " and " +
         std::to_string(high);
}

}  // namespace

std::string_view mode_name(bench_mode mode) noexcept {
  switch (mode) {
    case bench_mode::produce: return "produce";
    case bench_mode::consume: return "consume";
    case bench_mode::e2e: return "e2e";
  }
  return "?";
}

bench_parse_outcome parse_bench_options(int argc, const char* const* argv) {
  bench_options out;
  std::string bootstrap = "localhost:9092";
  std::string mode;
  std::int64_t partitions = out.partitions;
  std::int64_t record_bytes = static_cast<std::int64_t>(out.record_bytes);
  std::int64_t key_bytes = 0;
  std::string keys = "none";
  std::int64_t records = 0;
  double duration_s = 0;
  double rate = 0;
  std::string acks = "1";
  std::int64_t batch_bytes = static_cast<std::int64_t>(out.batch_bytes);
  std::int64_t linger_ms = 0;
  std::string compression = "none";
  std::int64_t request_bytes = static_cast<std::int64_t>(out.request_bytes_max);
  std::int64_t producers = 1;
  std::int64_t consumers = 1;
  std::int64_t in_flight = static_cast<std::int64_t>(out.in_flight);
  double warmup_s = 0;
  std::int64_t broker_pid = 0;
  std::int64_t timeout_ms = out.timeout.count();
  std::int64_t fetch_wait_ms = out.fetch_wait_ms;
  std::int64_t fetch_partition_bytes = out.fetch_partition_bytes;

  po::options_description flags("Options");
  // clang-format off
  flags.add_options()
    ("help,h", "print this help")
    ("bootstrap", po::value(&bootstrap)->default_value(bootstrap), "HOST:PORT of the broker")
    ("topic", po::value(&out.topic)->default_value(out.topic), "the topic; created when missing")
    ("partitions", po::value(&partitions)->default_value(partitions), "partitions of the topic when it is created")
    ("record-bytes", po::value(&record_bytes)->default_value(record_bytes), "bytes of each record value (at least 24: the stamp)")
    ("key-bytes", po::value(&key_bytes)->default_value(key_bytes), "bytes of each record key (with --keys round-robin or random)")
    ("keys", po::value(&keys)->default_value(keys), "none, round-robin or random")
    ("records", po::value(&records), "records to produce (all producers) or to consume")
    ("duration-s", po::value(&duration_s), "seconds of load (default 10 when --records is not given)")
    ("rate", po::value(&rate)->default_value(rate), "records a second, all producers; 0 = as fast as possible")
    ("acks", po::value(&acks)->default_value(acks), "1 or all")
    ("batch-bytes", po::value(&batch_bytes)->default_value(batch_bytes), "record batch size per partition (as batch.size)")
    ("linger-ms", po::value(&linger_ms)->default_value(linger_ms), "with --rate: how long a partial batch may wait for more records")
    ("compression", po::value(&compression)->default_value(compression), "none, gzip, snappy, lz4 or zstd (per batch, at build time)")
    ("request-bytes", po::value(&request_bytes)->default_value(request_bytes), "largest Produce request (as max.request.size)")
    ("producers", po::value(&producers)->default_value(producers), "producer connections; each owns a share of the partitions")
    ("consumers", po::value(&consumers)->default_value(consumers), "consumer connections; each owns a share of the partitions")
    ("in-flight", po::value(&in_flight)->default_value(in_flight), "Produce requests in flight per connection")
    ("json", po::bool_switch(&out.json), "print one JSON document at the end (progress stays on stderr)")
    ("verify", po::bool_switch(&out.verify), "consume, e2e: check every record arrives once, in order per partition")
    ("warmup-s", po::value(&warmup_s)->default_value(warmup_s), "seconds of load before measuring starts")
    ("broker-pid", po::value(&broker_pid), "the broker's process id, for its CPU time (/proc/PID/stat)")
    ("timeout-ms", po::value(&timeout_ms)->default_value(timeout_ms), "deadline of each request, and the wait for stragglers")
    ("fetch-wait-ms", po::value(&fetch_wait_ms)->default_value(fetch_wait_ms), "Fetch max wait")
    ("fetch-partition-bytes", po::value(&fetch_partition_bytes)->default_value(fetch_partition_bytes), "Fetch bytes per partition");
  // clang-format on
  po::options_description hidden;
  hidden.add_options()("mode", po::value(&mode));
  po::options_description all;
  all.add(flags).add(hidden);
  po::positional_options_description positional;
  positional.add("mode", 1);

  po::variables_map values;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(),
              values);
    po::notify(values);
  } catch (const po::error& e) {
    return bench_usage_error{e.what()};
  }
  if (values.count("help") != 0) {
    std::ostringstream text;
    text << usage_text << "\n" << flags;
    return bench_help{text.str()};
  }
  if (mode == "produce") {
    out.mode = bench_mode::produce;
  } else if (mode == "consume") {
    out.mode = bench_mode::consume;
  } else if (mode == "e2e") {
    out.mode = bench_mode::e2e;
  } else if (mode.empty()) {
    return bench_usage_error{"no mode given: produce, consume or e2e"};
  } else {
    return bench_usage_error{"unknown mode '" + mode + "': produce, consume or e2e"};
  }

  auto address = admin::parse_bootstrap(bootstrap);
  if (!address) return bench_usage_error{"--bootstrap: '" + bootstrap + "' is not HOST:PORT"};
  out.bootstrap_host = address->first;
  out.bootstrap_port = address->second;
  if (out.topic.empty() || out.topic.size() > 249) {
    return bench_usage_error{"--topic: must be 1 to 249 characters"};
  }
  if (partitions < 1 || partitions > partitions_max) {
    return bench_usage_error{range_error("partitions", 1, partitions_max)};
  }
  out.partitions = static_cast<std::int32_t>(partitions);
  if (record_bytes < static_cast<std::int64_t>(record_bytes_min) ||
      record_bytes > record_bytes_max) {
    return bench_usage_error{
        range_error("record-bytes", static_cast<std::int64_t>(record_bytes_min), record_bytes_max)};
  }
  out.record_bytes = static_cast<std::size_t>(record_bytes);
  if (keys == "none") {
    out.keys = key_mode::none;
  } else if (keys == "round-robin") {
    out.keys = key_mode::round_robin;
  } else if (keys == "random") {
    out.keys = key_mode::random;
  } else {
    return bench_usage_error{"--keys: '" + keys + "' is not none, round-robin or random"};
  }
  if (key_bytes < 0 || key_bytes > key_bytes_max) {
    return bench_usage_error{range_error("key-bytes", 0, key_bytes_max)};
  }
  out.key_bytes = static_cast<std::size_t>(key_bytes);
  if (out.keys != key_mode::none && out.key_bytes == 0) out.key_bytes = 8;
  if (out.keys == key_mode::none && values.count("key-bytes") != 0 &&
      !values["key-bytes"].defaulted() && key_bytes != 0) {
    return bench_usage_error{"--key-bytes needs --keys round-robin or random"};
  }
  if (values.count("records") != 0) {
    if (records < 1 || records > (std::int64_t{1} << 50)) {
      return bench_usage_error{range_error("records", 1, std::int64_t{1} << 50)};
    }
    out.records = static_cast<std::uint64_t>(records);
  }
  if (values.count("duration-s") != 0) {
    if (!(duration_s > 0) || duration_s > static_cast<double>(duration_s_max)) {
      return bench_usage_error{range_error("duration-s", 0, duration_s_max)};
    }
    out.duration = std::chrono::milliseconds(std::llround(duration_s * 1000));
  }
  if (!out.records && !out.duration && out.mode != bench_mode::consume) {
    out.duration = default_duration;
  }
  if (!(rate >= 0) || rate > 1e9) return bench_usage_error{"--rate: must be between 0 and 1e9"};
  out.rate = rate;
  if (acks == "1") {
    out.acks = 1;
  } else if (acks == "all" || acks == "-1") {
    out.acks = -1;
  } else if (acks == "0") {
    // A request with acks=0 has no response, and kafka_client matches every request to a
    // response: such requests would hold their window slots for ever.
    return bench_usage_error{
        "--acks 0 is not supported: Sluice's client waits for a response "
        "to every request"};
  } else {
    return bench_usage_error{"--acks: '" + acks + "' is not 1 or all"};
  }
  if (batch_bytes < 1 || batch_bytes > batch_bytes_max) {
    return bench_usage_error{range_error("batch-bytes", 1, batch_bytes_max)};
  }
  out.batch_bytes = static_cast<std::size_t>(batch_bytes);
  if (linger_ms < 0 || linger_ms > 60000)
    return bench_usage_error{range_error("linger-ms", 0, 60000)};
  out.linger = std::chrono::milliseconds(linger_ms);
  auto codec = parse_codec(compression);
  if (!codec) {
    return bench_usage_error{"--compression: '" + compression +
                             "' is not none, gzip, snappy, lz4 or zstd"};
  }
  out.compression = *codec;
  if (request_bytes < 1024 || request_bytes > batch_bytes_max * 2) {
    return bench_usage_error{range_error("request-bytes", 1024, batch_bytes_max * 2)};
  }
  out.request_bytes_max = static_cast<std::size_t>(request_bytes);
  if (producers < 1 || producers > connections_max) {
    return bench_usage_error{range_error("producers", 1, connections_max)};
  }
  out.producers = static_cast<std::size_t>(producers);
  if (consumers < 1 || consumers > connections_max) {
    return bench_usage_error{range_error("consumers", 1, connections_max)};
  }
  out.consumers = static_cast<std::size_t>(consumers);
  if (in_flight < 1 || in_flight > in_flight_max) {
    return bench_usage_error{range_error("in-flight", 1, in_flight_max)};
  }
  out.in_flight = static_cast<std::size_t>(in_flight);
  if (!(warmup_s >= 0) || warmup_s > 3600)
    return bench_usage_error{range_error("warmup-s", 0, 3600)};
  out.warmup = std::chrono::milliseconds(std::llround(warmup_s * 1000));
  if (values.count("broker-pid") != 0) {
    if (broker_pid < 1 || broker_pid > 0x3fffffff) {
      return bench_usage_error{range_error("broker-pid", 1, 0x3fffffff)};
    }
    out.broker_pid = static_cast<int>(broker_pid);
  }
  if (timeout_ms < 100 || timeout_ms > 600000) {
    return bench_usage_error{range_error("timeout-ms", 100, 600000)};
  }
  out.timeout = std::chrono::milliseconds(timeout_ms);
  if (fetch_wait_ms < 0 || fetch_wait_ms > 10000) {
    return bench_usage_error{range_error("fetch-wait-ms", 0, 10000)};
  }
  out.fetch_wait_ms = static_cast<std::int32_t>(fetch_wait_ms);
  if (fetch_partition_bytes < 1024 || fetch_partition_bytes > batch_bytes_max) {
    return bench_usage_error{range_error("fetch-partition-bytes", 1024, batch_bytes_max)};
  }
  out.fetch_partition_bytes = static_cast<std::int32_t>(fetch_partition_bytes);

  // Flags that mean nothing in a mode are refused rather than silently ignored.
  auto given = [&](const char* flag) {
    return values.count(flag) != 0 && !values[flag].defaulted();
  };
  if (out.mode == bench_mode::consume) {
    for (const char* flag : {"rate", "acks", "batch-bytes", "linger-ms", "compression", "producers",
                             "in-flight", "keys", "key-bytes", "request-bytes"}) {
      if (given(flag))
        return bench_usage_error{std::string("--") + flag + " is not an option of 'consume'"};
    }
  }
  if (out.mode == bench_mode::produce) {
    for (const char* flag : {"consumers", "verify", "fetch-wait-ms", "fetch-partition-bytes"}) {
      if (given(flag) && !(std::string(flag) == "verify" && !out.verify)) {
        return bench_usage_error{std::string("--") + flag + " is not an option of 'produce'"};
      }
    }
  }
  if (out.linger.count() > 0 && out.rate == 0) {
    return bench_usage_error{
        "--linger-ms needs --rate: unpaced producers always have full batches"};
  }
  const std::size_t batch_overhead = batch_layout::header_bytes + 64;
  if (out.batch_bytes + batch_overhead > out.request_bytes_max &&
      out.record_bytes + out.key_bytes + batch_overhead > out.request_bytes_max) {
    return bench_usage_error{"--request-bytes: smaller than one record batch"};
  }
  return out;
}

}  // namespace sluice::bench
