#include "tools/sluice-bench/bench_run.h"

#include <fmt/format.h>
#include <unistd.h>

#include <memory>
#include <random>

#include "tools/sluice-bench/bench_report.h"
#include "tools/sluice-bench/consumer.h"
#include "tools/sluice-bench/cpu_time.h"
#include "tools/sluice-bench/producer.h"
#include "tools/sluice-bench/topic_setup.h"

namespace sluice::bench {

namespace {

using clock = std::chrono::steady_clock;

// The partitions of connection `k` of `count`.
std::vector<std::int32_t> share_of(std::int32_t partitions, std::size_t count, std::size_t k) {
  std::vector<std::int32_t> out;
  for (std::int32_t p = static_cast<std::int32_t>(k); p < partitions;
       p += static_cast<std::int32_t>(count)) {
    out.push_back(p);
  }
  return out;
}

struct cpu_baseline {
  double tool = 0;
  std::optional<double> broker;
};

cpu_baseline read_cpu(const bench_options& options) {
  cpu_baseline now;
  now.tool = self_cpu_seconds();
  if (options.broker_pid) now.broker = process_cpu_seconds(*options.broker_pid);
  return now;
}

}  // namespace

int run_bench(const bench_options& options, std::ostream& out, std::ostream& err) {
  auto fail = [&](const std::string& why) {
    err << "sluice-bench: " << why << '\n';
    return 1;
  };
  auto ring_made = reactor::create(reactor_config{});
  if (!ring_made.ok()) return fail(fmt::format("io_uring: {}", ring_made.failure().detail()));
  reactor& ring = **ring_made;

  const bool producing = options.mode != bench_mode::consume;
  const bool consuming = options.mode != bench_mode::produce;
  std::string why;
  std::optional<topic_layout> layout;
  std::optional<std::vector<std::int64_t>> start_offsets;
  std::optional<std::vector<std::int64_t>> end_offsets;
  {
    kafka_client_config config;
    config.client_id = "sluice-bench";
    config.request_timeout = options.timeout;
    kafka_client bootstrap(ring, config);
    auto connected = bootstrap.connect_sync(options.bootstrap_host, options.bootstrap_port);
    if (!connected.ok()) {
      return fail(fmt::format("connecting to {}:{}: {}", options.bootstrap_host,
                              options.bootstrap_port, connected.failure().detail()));
    }
    layout = prepare_topic(bootstrap, options, producing, why);
    if (!layout) return fail(why);
    if (consuming) {
      // consume reads from the log start; e2e from where this run's producing begins.
      const std::int64_t from = options.mode == bench_mode::consume ? -2 : -1;
      start_offsets = list_offsets(bootstrap, options, layout->partitions, from, why);
      if (!start_offsets) return fail(why);
      if (options.mode == bench_mode::consume && !options.records) {
        end_offsets = list_offsets(bootstrap, options, layout->partitions, -1, why);
        if (!end_offsets) return fail(why);
      }
    }
  }
  const std::int32_t partitions = layout->partitions;
  std::random_device entropy;
  const std::uint32_t run_id = entropy();

  load_stats produce_stats;
  load_stats consume_stats;
  std::optional<sequence_checker> checker;
  if (options.verify && consuming) {
    checker.emplace(static_cast<std::size_t>(partitions), options.mode == bench_mode::e2e
                                                              ? std::optional<std::uint32_t>(run_id)
                                                              : std::nullopt);
  }

  // Connections: never more than partitions (an extra one would own none).
  std::vector<std::unique_ptr<producer>> producers;
  std::vector<std::unique_ptr<consumer>> consumers;
  if (producing) {
    const std::size_t count =
        std::min<std::size_t>(options.producers, static_cast<std::size_t>(partitions));
    for (std::size_t k = 0; k < count; ++k) {
      std::optional<std::uint64_t> share;
      if (options.records)
        share = *options.records / count + (k < *options.records % count ? 1 : 0);
      producers.push_back(std::make_unique<producer>(
          ring, options, share_of(partitions, count, k), run_id, entropy(), share,
          options.rate / static_cast<double>(count), produce_stats));
      if (!producers.back()->connect(why)) return fail(why);
    }
  }
  if (consuming) {
    const std::size_t count =
        std::min<std::size_t>(options.consumers, static_cast<std::size_t>(partitions));
    for (std::size_t k = 0; k < count; ++k) {
      auto owned = share_of(partitions, count, k);
      std::vector<std::int64_t> starts;
      std::vector<std::int64_t> ends;
      for (auto p : owned) {
        starts.push_back((*start_offsets)[static_cast<std::size_t>(p)]);
        if (end_offsets) ends.push_back((*end_offsets)[static_cast<std::size_t>(p)]);
      }
      consumers.push_back(std::make_unique<consumer>(ring, options, owned, std::move(starts),
                                                     consume_stats, checker ? &*checker : nullptr));
      if (end_offsets) consumers.back()->set_end_offsets(ends);
      if (!consumers.back()->connect(why)) return fail(why);
    }
  }

  // ---- the load
  const auto started = clock::now();
  progress_printer progress(err, started);
  cpu_baseline cpu_before = read_cpu(options);
  for (auto& p : producers) p->start(started);
  auto measure_start = started;
  bool warming = options.warmup.count() > 0;
  std::uint64_t warmup_consumed = 0;
  std::optional<clock::time_point> produce_end;
  std::optional<clock::time_point> consume_end;
  std::optional<clock::time_point> drain_deadline;
  bool stopped = false;
  std::vector<std::string> failures;
  auto last_progress_records = std::uint64_t{0};
  auto last_progress_at = started;

  // Each pass: pump every connection, wait at most a millisecond for completions.
  // Bounded by --records/--duration-s, then by the drain deadline.
  while (true) {
    auto now = clock::now();
    for (auto& p : producers) p->pump(now);
    for (auto& c : consumers) c->pump(now);
    ring.run_once(std::chrono::milliseconds(1));
    now = clock::now();

    if (warming && now - started >= options.warmup) {
      warming = false;
      warmup_consumed = consume_stats.records;
      produce_stats.reset();
      consume_stats.reset();
      measure_start = now;
      cpu_before = read_cpu(options);
      progress.restart(now);
    }
    if (!warming && !stopped && options.duration && now - measure_start >= *options.duration) {
      stopped = true;
      for (auto& p : producers) p->stop();
    }
    const bool producers_done = std::all_of(producers.begin(), producers.end(),
                                            [](const auto& p) { return p->finished(); });
    if (producing && producers_done && !produce_end) {
      produce_end = now;
      if (options.mode == bench_mode::e2e) {
        // Consumers now read up to what was acknowledged, then stop.
        std::vector<std::int64_t> ends(static_cast<std::size_t>(partitions), -1);
        for (const auto& p : producers) {
          for (std::size_t i = 0; i < p->partitions().size(); ++i) {
            ends[static_cast<std::size_t>(p->partitions()[i])] = p->acknowledged_end(i);
            if (checker) checker->expect(p->partitions()[i], run_id, p->sequences_sent(i));
          }
        }
        for (auto& c : consumers) {
          std::vector<std::int64_t> owned_ends;
          for (std::size_t i = 0; i < c->partitions().size(); ++i) {
            // A partition with nothing acknowledged has nothing to wait for.
            const std::int64_t end = ends[static_cast<std::size_t>(c->partitions()[i])];
            owned_ends.push_back(end < 0 ? c->next_offset(i) : end);
          }
          c->set_end_offsets(owned_ends);
        }
        drain_deadline = now + options.timeout;
      }
    }
    if (options.mode == bench_mode::produce && produce_end) break;
    if (consuming) {
      const bool all_caught_up = std::all_of(consumers.begin(), consumers.end(),
                                             [](const auto& c) { return c->caught_up(); });
      const std::uint64_t consumed = consume_stats.records + warmup_consumed;
      bool done = false;
      if (options.mode == bench_mode::consume) {
        done = (end_offsets && all_caught_up) ||
               (options.records && consumed >= *options.records) || stopped;
        // Without progress for --timeout-ms, the records asked for are not coming.
        if (consumed != last_progress_records) {
          last_progress_records = consumed;
          last_progress_at = now;
        } else if (now - last_progress_at > options.timeout) {
          failures.push_back(fmt::format("no record for {} ms; stopped", options.timeout.count()));
          done = true;
        }
      } else if (produce_end) {
        done = all_caught_up;
        if (!done && drain_deadline && now > *drain_deadline) {
          failures.push_back(fmt::format(
              "consumers did not read every acknowledged record within {} ms of the end",
              options.timeout.count()));
          done = true;
        }
      }
      const bool all_broken = std::all_of(consumers.begin(), consumers.end(),
                                          [](const auto& c) { return c->broken(); });
      if (all_broken && !done) {
        failures.push_back("every consumer connection was lost");
        done = true;
      }
      if (done) {
        consume_end = now;
        for (auto& p : producers) p->stop();
        if (!producing || produce_end) break;
      }
    }
    progress.tick(now, producing ? &produce_stats : nullptr, consuming ? &consume_stats : nullptr);
  }
  const cpu_baseline cpu_after = read_cpu(options);

  // ---- the report
  run_summary summary;
  summary.options = &options;
  summary.partitions = partitions;
  summary.topic_created = layout->created;
  summary.producers = producers.size();
  summary.consumers = consumers.size();
  summary.run_id = run_id;
  if (!producers.empty()) {
    summary.records_per_batch = batch_factory(options, 0, 0).records_per_batch();
  }
  for (const auto& p : producers) summary.records_sent += p->records_sent();
  if (producing) {
    summary.produce = side_summary{
        &produce_stats, std::chrono::duration<double>(*produce_end - measure_start).count(),
        "produce request, send to answer, per record"};
  }
  if (consuming) {
    summary.consume = side_summary{
        &consume_stats,
        std::chrono::duration<double>(consume_end.value_or(clock::now()) - measure_start).count(),
        options.mode == bench_mode::e2e ? "end to end, stamp in the producer to arrival, per record"
                                        : "fetch request, send to answer, per fetch"};
  }
  if (options.mode == bench_mode::consume && options.records &&
      consume_stats.records + warmup_consumed < *options.records) {
    failures.push_back(fmt::format("read {} records of the {} asked for",
                                   consume_stats.records + warmup_consumed, *options.records));
  }
  if (checker) summary.verify = checker->finish();
  summary.tool_cpu_seconds = cpu_after.tool - cpu_before.tool;
  if (cpu_before.broker && cpu_after.broker) {
    summary.broker_cpu_seconds = *cpu_after.broker - *cpu_before.broker;
  }
  if (options.broker_pid) summary.broker_memory = process_resident_memory(*options.broker_pid);
  summary.failures = failures;
  summary.ok = failures.empty() && produce_stats.request_errors + produce_stats.partition_errors +
                                           consume_stats.request_errors +
                                           consume_stats.partition_errors ==
                                       0;
  if (summary.verify && !summary.verify->clean()) summary.ok = false;
  if (options.json) {
    write_json_report(summary, out);
  } else {
    write_text_report(summary, out);
  }
  // Connections close before the stats they report into go away.
  producers.clear();
  consumers.clear();
  return summary.ok ? 0 : 1;
}

int bench_main(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  auto parsed = parse_bench_options(argc, argv);
  if (auto* help = std::get_if<bench_help>(&parsed)) {
    out << help->text;
    return 0;
  }
  if (auto* usage = std::get_if<bench_usage_error>(&parsed)) {
    err << "sluice-bench: " << usage->message << " (see --help)\n";
    return 2;
  }
  return run_bench(std::get<bench_options>(parsed), out, err);
}

}  // namespace sluice::bench
