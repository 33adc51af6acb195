#include "tools/sluice-bench/bench_report.h"

#include <fmt/format.h>

#include <cmath>

#include "tools/admin/json_writer.h"

namespace sluice::bench {

namespace {

using clock = std::chrono::steady_clock;

std::string milliseconds(std::uint64_t us) {
  return fmt::format("{:.2f} ms", static_cast<double>(us) / 1e3);
}

// A JSON number: integers as integers, others with enough digits; never NaN or inf.
std::string number(double value) {
  if (!std::isfinite(value)) return "0";
  if (value == std::floor(value) && std::fabs(value) < 1e15) return fmt::format("{:.0f}", value);
  return fmt::format("{:.6g}", value);
}

// JSON built by hand for numbers (json_writer has no floating point), strings through
// json_writer's escaping.
class json_out {
 public:
  void open(std::string_view key = {}) {
    start(key);
    text_ += '{';
    first_ = true;
  }
  void close() {
    text_ += '}';
    first_ = false;
  }
  void field(std::string_view key, double value) {
    start(key);
    text_ += number(value);
  }
  void field(std::string_view key, std::string_view value) {
    start(key);
    admin::json_writer::append_string(text_, value);
  }
  void field(std::string_view key, bool value) {
    start(key);
    text_ += value ? "true" : "false";
  }
  void null_field(std::string_view key) {
    start(key);
    text_ += "null";
  }
  void strings(std::string_view key, const std::vector<std::string>& values) {
    start(key);
    text_ += '[';
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i > 0) text_ += ", ";
      admin::json_writer::append_string(text_, values[i]);
    }
    text_ += ']';
  }
  const std::string& text() const { return text_; }

 private:
  void start(std::string_view key) {
    if (!first_) text_ += ", ";
    first_ = false;
    if (!key.empty()) {
      admin::json_writer::append_string(text_, key);
      text_ += ": ";
    }
  }
  std::string text_;
  bool first_ = true;
};

double per_second(double amount, double seconds) {
  return seconds > 0 ? amount / seconds : 0;
}

void latency_fields(json_out& json, const latency_histogram& h) {
  json.open("latency_us");
  json.field("p50", static_cast<double>(h.percentile(50)));
  json.field("p95", static_cast<double>(h.percentile(95)));
  json.field("p99", static_cast<double>(h.percentile(99)));
  json.field("p99.9", static_cast<double>(h.percentile(99.9)));
  json.field("max", static_cast<double>(h.max()));
  json.field("mean", std::round(h.mean()));
  json.field("count", static_cast<double>(h.total_count()));
  json.close();
}

// records, bytes, seconds, rates and latency: the fields compare.sh's report reads.
void side_fields(json_out& json, const side_summary& side) {
  const load_stats& s = *side.stats;
  json.field("records", static_cast<double>(s.records));
  json.field("bytes", static_cast<double>(s.bytes));
  json.field("seconds", side.seconds);
  json.field("records_per_second", per_second(static_cast<double>(s.records), side.seconds));
  json.field("mb_per_second", per_second(static_cast<double>(s.bytes) / 1e6, side.seconds));
  json.field("requests", static_cast<double>(s.requests));
  json.field("request_errors", static_cast<double>(s.request_errors));
  json.field("partition_errors", static_cast<double>(s.partition_errors));
  json.field("latency", side.latency_kind);
  latency_fields(json, s.latency_us);
}

std::string_view codec_name(compression_codec codec) {
  switch (codec) {
    case compression_codec::none: return "none";
    case compression_codec::gzip: return "gzip";
    case compression_codec::snappy: return "snappy";
    case compression_codec::lz4: return "lz4";
    case compression_codec::zstd: return "zstd";
  }
  return "?";
}

// The side that gives the headline figures: produce for produce, consume otherwise.
const side_summary& main_side(const run_summary& summary) {
  if (summary.options->mode == bench_mode::produce) return *summary.produce;
  return *summary.consume;
}

double gigabytes(const side_summary& side) {
  return static_cast<double>(side.stats->bytes) / 1e9;
}

}  // namespace

progress_printer::progress_printer(std::ostream& err, clock::time_point start)
    : err_(err), last_(start), start_(start) {}

void progress_printer::restart(clock::time_point now) {
  last_ = now;
  produce_records_ = produce_bytes_ = consume_records_ = consume_bytes_ = 0;
}

void progress_printer::tick(clock::time_point now, const load_stats* produce,
                            const load_stats* consume) {
  const double seconds = std::chrono::duration<double>(now - last_).count();
  if (seconds < 1.0) return;
  std::string line = fmt::format("{:5.0f} s", std::chrono::duration<double>(now - start_).count());
  auto side = [&](const char* name, const load_stats* s, std::uint64_t& records,
                  std::uint64_t& bytes) {
    if (s == nullptr) return;
    line += fmt::format("  {} {:.0f} rec/s {:.1f} MB/s p50 {} p99 {}", name,
                        static_cast<double>(s->records - records) / seconds,
                        static_cast<double>(s->bytes - bytes) / 1e6 / seconds,
                        milliseconds(s->latency_us.percentile(50)),
                        milliseconds(s->latency_us.percentile(99)));
    if (s->request_errors + s->partition_errors > 0) {
      line += fmt::format(" errors {}", s->request_errors + s->partition_errors);
    }
    records = s->records;
    bytes = s->bytes;
  };
  side("produce", produce, produce_records_, produce_bytes_);
  side("consume", consume, consume_records_, consume_bytes_);
  err_ << line << '\n' << std::flush;
  last_ = now;
}

void write_json_report(const run_summary& summary, std::ostream& out) {
  const bench_options& o = *summary.options;
  json_out json;
  json.open();
  json.field("tool", std::string_view("sluice-bench"));
  json.field("mode", mode_name(o.mode));
  json.field("ok", summary.ok);
  json.field("bootstrap", fmt::format("{}:{}", o.bootstrap_host, o.bootstrap_port));
  json.field("topic", std::string_view(o.topic));
  json.field("partitions", static_cast<double>(summary.partitions));
  json.field("topic_created", summary.topic_created);
  json.field("run_id", static_cast<double>(summary.run_id));
  json.field("record_bytes", static_cast<double>(o.record_bytes));
  json.field("key_bytes", static_cast<double>(o.keys == key_mode::none ? 0 : o.key_bytes));
  if (o.mode != bench_mode::consume) {
    json.field("acks", std::string_view(o.acks == -1 ? "all" : "1"));
    json.field("compression", codec_name(o.compression));
    json.field("batch_bytes", static_cast<double>(o.batch_bytes));
    json.field("records_per_batch", static_cast<double>(summary.records_per_batch));
    json.field("linger_ms", static_cast<double>(o.linger.count()));
    json.field("rate", o.rate);
    json.field("producers", static_cast<double>(summary.producers));
    json.field("in_flight", static_cast<double>(o.in_flight));
  }
  if (o.mode != bench_mode::produce)
    json.field("consumers", static_cast<double>(summary.consumers));
  json.field("warmup_s", static_cast<double>(o.warmup.count()) / 1e3);

  const side_summary& main = main_side(summary);
  side_fields(json, main);
  if (summary.produce) {
    json.open("produce");
    side_fields(json, *summary.produce);
    json.field("records_sent", static_cast<double>(summary.records_sent));
    json.close();
  }
  if (summary.consume) {
    json.open("consume");
    side_fields(json, *summary.consume);
    json.close();
  }
  if (summary.verify) {
    const verify_counts& v = *summary.verify;
    json.open("verify");
    json.field("ok", v.clean());
    json.field("received", static_cast<double>(v.received));
    json.field("missing", static_cast<double>(v.missing));
    json.field("duplicate", static_cast<double>(v.duplicate));
    json.field("out_of_order", static_cast<double>(v.out_of_order));
    json.field("misplaced", static_cast<double>(v.misplaced));
    json.field("untracked", static_cast<double>(v.untracked));
    json.field("other_runs", static_cast<double>(v.foreign));
    json.close();
  } else {
    json.null_field("verify");
  }
  json.open("cpu");
  const double gb = gigabytes(main);
  json.field("tool_seconds", summary.tool_cpu_seconds);
  json.field("tool_seconds_per_gb", gb > 0 ? summary.tool_cpu_seconds / gb : 0);
  if (summary.broker_cpu_seconds) {
    json.field("broker_seconds", *summary.broker_cpu_seconds);
    json.field("broker_seconds_per_gb", gb > 0 ? *summary.broker_cpu_seconds / gb : 0);
  } else {
    json.null_field("broker_seconds");
    json.null_field("broker_seconds_per_gb");
  }
  json.close();
  if (summary.broker_memory) {
    json.field("broker_rss_bytes", static_cast<double>(summary.broker_memory->rss_bytes));
    json.field("broker_rss_anonymous_bytes",
               static_cast<double>(summary.broker_memory->anonymous_bytes));
  }
  std::vector<std::string> errors = summary.failures;
  for (const auto* side : {summary.produce ? &*summary.produce : nullptr,
                           summary.consume ? &*summary.consume : nullptr}) {
    if (side != nullptr && !side->stats->first_error.empty())
      errors.push_back(side->stats->first_error);
  }
  json.strings("errors", errors);
  json.close();
  out << json.text() << '\n';
}

void write_text_report(const run_summary& summary, std::ostream& out) {
  const bench_options& o = *summary.options;
  out << fmt::format("sluice-bench {}: topic {} ({} partitions{}), records of {} bytes\n",
                     mode_name(o.mode), o.topic, summary.partitions,
                     summary.topic_created ? ", created" : "", o.record_bytes);
  auto side = [&](const char* name, const side_summary& s) {
    const load_stats& st = *s.stats;
    out << fmt::format("{:8} {} records, {:.1f} MB in {:.2f} s: {:.0f} records/s, {:.1f} MB/s\n",
                       name, st.records, static_cast<double>(st.bytes) / 1e6, s.seconds,
                       per_second(static_cast<double>(st.records), s.seconds),
                       per_second(static_cast<double>(st.bytes) / 1e6, s.seconds));
    const auto& h = st.latency_us;
    out << fmt::format("{:8} latency ({}): p50 {} p95 {} p99 {} p99.9 {} max {}\n", "",
                       s.latency_kind, milliseconds(h.percentile(50)),
                       milliseconds(h.percentile(95)), milliseconds(h.percentile(99)),
                       milliseconds(h.percentile(99.9)), milliseconds(h.max()));
    if (st.request_errors + st.partition_errors > 0) {
      out << fmt::format("{:8} errors: {} requests, {} partitions; first: {}\n", "",
                         st.request_errors, st.partition_errors, st.first_error);
    }
  };
  if (summary.produce) side("produce", *summary.produce);
  if (summary.consume) side("consume", *summary.consume);
  if (summary.verify) {
    const verify_counts& v = *summary.verify;
    out << fmt::format(
        "verify   {}: {} received, {} missing, {} duplicate, {} out of order, {} misplaced, {} "
        "untracked\n",
        v.clean() ? "ok" : "FAILED", v.received, v.missing, v.duplicate, v.out_of_order,
        v.misplaced, v.untracked);
  }
  const double gb = gigabytes(main_side(summary));
  out << fmt::format("cpu      sluice-bench {:.2f} s ({:.2f} s/GB)", summary.tool_cpu_seconds,
                     gb > 0 ? summary.tool_cpu_seconds / gb : 0);
  if (summary.broker_cpu_seconds) {
    out << fmt::format(", broker {:.2f} s ({:.2f} s/GB)", *summary.broker_cpu_seconds,
                       gb > 0 ? *summary.broker_cpu_seconds / gb : 0);
  }
  out << '\n';
  if (summary.broker_memory) {
    out << fmt::format(
        "broker   RSS {:.1f} MiB, of which anonymous {:.1f} MiB\n",
        static_cast<double>(summary.broker_memory->rss_bytes) / (1024.0 * 1024.0),
        static_cast<double>(summary.broker_memory->anonymous_bytes) / (1024.0 * 1024.0));
  }
  for (const auto& failure : summary.failures) out << "FAILED   " << failure << '\n';
}

}  // namespace sluice::bench
