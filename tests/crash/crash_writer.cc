// storage_crash_writer <data-dir> <seed> [<stop-before-batch>]
//
// The process the crash tests kill. It opens a log_manager on <data-dir> (recovering
// whatever an earlier, killed writer left there), then appends the deterministic workload
// of crash_workload.h to partitions crash-0 and crash-1 until it is killed, driving the
// reactor and the manager's tick (checkpoints every 50 ms, retention every 100 ms).
//
// Its promise, on stdout, one line per on_flushed callback:
//   flushed <partition> <flushed_end>
// Each line is flushed to the pipe before the writer goes on, so whatever the test reads
// was durable before the writer could have been killed.
//
// With <stop-before-batch>, the writer appends batches up to (not including) that batch
// number and then only keeps ticking, so that a test can kill it once everything is
// flushed (its last promise is then the workload offset of that batch).
//
// <seed> varies only the pacing (how many batches are in flight, short pauses, explicit
// rolls), never the content: content depends on (partition, batch number) alone, so that
// every run on the same directory continues one and the same sequence.
//
// Exit codes (the test expects none of them: it kills the writer): 2 bad arguments or
// open failure, 3 a failed append or write, 4 the log on disk does not hold the workload.
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/base/log.h"
#include "engine/io/disk.h"
#include "engine/reactor/reactor.h"
#include "engine/storage/log_manager.h"
#include "engine/storage/record_batch.h"
#include "tests/crash/crash_workload.h"

namespace sluice::crash {
namespace {

// A runaway writer (its test died without killing it) stops on its own after this long.
constexpr auto lifetime_max = std::chrono::seconds(120);
// Batches queued per partition at most; the log's own bound is far above this.
constexpr std::size_t in_flight_max = 48;

timestamp_ms wall_now() {
  return timestamp_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count());
}

[[noreturn]] void die(int code, const std::string& why) {
  std::fprintf(stderr, "storage_crash_writer: %s\n", why.c_str());
  std::fflush(stderr);
  std::_Exit(code);
}

// One partition being written: the batches whose bytes the log still holds a pointer to,
// and the number of the next batch to append.
class partition_writer final : public log_listener {
 public:
  partition_writer(std::int32_t p, partition_log& log, std::int64_t stop_before)
      : partition_(p), log_(log), plan_(p), stop_before_(stop_before) {
    log_.set_listener(this);
    next_batch_ = first_batch_to_append();
  }
  ~partition_writer() { log_.set_listener(nullptr); }

  // Appends batches until `in_flight_target` of them are queued or in flight.
  void top_up(std::size_t in_flight_target, timestamp_ms now) {
    while (in_flight_.size() < in_flight_target && next_batch_ < stop_before_) {
      std::span<std::byte> built = build_batch(builder_, partition_, next_batch_);
      in_flight_.push_back(std::vector<std::byte>(built.begin(), built.end()));
      auto appended = log_.append(in_flight_.back(), now);
      if (!appended) {
        in_flight_.pop_back();
        if (appended.code() == errc::backpressure) return;
        die(3, std::string("append failed: ") + appended.failure().detail());
      }
      if (appended->base_offset != plan_.base_of(next_batch_)) {
        die(4, "append got base offset " + std::to_string(appended->base_offset.value()) +
                   " for batch " + std::to_string(next_batch_) + ", expected " +
                   std::to_string(plan_.base_of(next_batch_).value()));
      }
      in_flight_ends_.push_back(appended->last_offset + 1);
      ++next_batch_;
    }
  }

  void on_written(offset written_end) noexcept override {
    // The log is done with the bytes of every batch below written_end.
    while (!in_flight_ends_.empty() && in_flight_ends_.front() <= written_end) {
      in_flight_ends_.pop_front();
      in_flight_.pop_front();
    }
  }

  void on_flushed(offset flushed_end) noexcept override {
    std::printf("flushed %" PRId32 " %" PRId64 "\n", partition_, flushed_end.value());
    std::fflush(stdout);
  }

  void on_append_failed(offset from, const error& failure) noexcept override {
    die(3, "appends from offset " + std::to_string(from.value()) + " failed: " + failure.detail());
  }

 private:
  // The batch that follows the last one in the log: found from the key of the last batch,
  // and checked against the offsets the workload implies.
  std::int64_t first_batch_to_append() {
    offset end = log_.log_end_offset();
    if (end == offset(0)) return 0;
    auto by_offset = [&] {
      auto at = plan_.batch_starting_at(end);
      if (!at) die(4, "log end offset " + std::to_string(end.value()) + " splits a batch");
      return *at;
    };
    // Nothing readable above the log start: the offsets alone say where we are.
    if (end - log_.log_start_offset() < 1) return by_offset();
    auto read = log_.read(end - 1, 1);
    if (!read) die(4, std::string("cannot read the last batch: ") + read.failure().detail());
    if (read->bytes.empty()) {
      // The log claims offsets it holds no batch for (the checker reports that); carry on
      // from the log end so that the crash tests keep going.
      std::fprintf(stderr,
                   "storage_crash_writer: partition %d serves nothing at %" PRId64
                   ", below its log end\n",
                   partition_, (end - 1).value());
      return by_offset();
    }
    auto header = decode_batch_header(read->bytes);
    if (!header || header->total_bytes() > read->bytes.size()) die(4, "last batch is torn");
    std::vector<std::byte> scratch;
    auto records = batch_records(*header, read->bytes.first(header->total_bytes()), scratch,
                                 std::size_t{64} << 20);
    if (!records) die(4, std::string("last batch: ") + records.failure().detail());
    std::optional<std::int64_t> last;
    auto walked = for_each_record(*header, *records, [&](const record_view& r) {
      if (r.key) {
        last = batch_number_in_key(
            std::string_view(reinterpret_cast<const char*>(r.key->data()), r.key->size()),
            partition_);
      }
      return false;  // the first record names the batch
    });
    if (!walked || !last) die(4, "the last batch of the log is not one of the workload's");
    if (plan_.base_of(*last + 1) != end) {
      die(4, "the last batch is number " + std::to_string(*last) + " but the log ends at " +
                 std::to_string(end.value()));
    }
    return *last + 1;
  }

  std::int32_t partition_;
  partition_log& log_;
  offset_plan plan_;
  std::int64_t stop_before_;
  std::int64_t next_batch_ = 0;
  batch_builder builder_;
  // The bytes of appended batches not yet written, and the offset after each.
  std::deque<std::vector<std::byte>> in_flight_;
  std::deque<offset> in_flight_ends_;
};

int run(const std::string& data_dir, std::uint64_t seed, std::int64_t stop_before) {
  // Ask to die with the test, in case it never gets to kill us.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  set_log_level(log_level::warn);
  auto created = reactor::create(reactor_config{256});
  if (!created) die(2, std::string("reactor: ") + created.failure().detail());
  std::unique_ptr<reactor> ring = std::move(*created);
  uring_disk io(*ring);
  auto opened = log_manager::open(workload_manager_config(data_dir), io);
  if (!opened) die(2, std::string("open: ") + opened.failure().detail());
  std::unique_ptr<log_manager> manager = std::move(*opened);

  std::vector<std::unique_ptr<partition_writer>> writers;
  for (std::int32_t p = 0; p < partitions; ++p) {
    auto log = manager->create(partition_of(p), workload_log_config());
    if (!log) die(2, std::string("create: ") + log.failure().detail());
    writers.push_back(std::make_unique<partition_writer>(p, **log, stop_before));
  }

  std::mt19937_64 rng(seed);
  auto started = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - started < lifetime_max) {
    timestamp_ms now = wall_now();
    // Vary the depth of the queue, so that group commits cover one batch or many.
    std::size_t target = 1 + rng() % in_flight_max;
    for (auto& w : writers) w->top_up(target, now);
    // Now and then roll by hand (a roll with writes still queued for the old segment), or
    // pause, so that kills land in different phases.
    if (rng() % 400 == 0) {
      auto& log = *manager->get(partition_of(static_cast<std::int32_t>(rng() % partitions)));
      if (auto rolled = log.roll(now); !rolled) {
        die(3, std::string("roll: ") + rolled.failure().detail());
      }
    }
    if (rng() % 100 == 0) ::usleep(static_cast<useconds_t>(rng() % 3000));
    ring->run_once(std::chrono::milliseconds(1));
    manager->tick(now);
  }
  // Not reached in the tests. Leave without a clean shutdown, like a crash.
  return 0;
}

}  // namespace
}  // namespace sluice::crash

int main(int argc, char** argv) {
  auto number = [](const char* text, std::uint64_t& out) {
    char* end = nullptr;
    out = std::strtoull(text, &end, 10);
    return end != text && *end == '\0';
  };
  std::uint64_t seed = 0;
  std::uint64_t stop_before = std::numeric_limits<std::int64_t>::max();
  if ((argc != 3 && argc != 4) || !number(argv[2], seed) ||
      (argc == 4 && !number(argv[3], stop_before))) {
    std::fprintf(stderr, "usage: storage_crash_writer <data-dir> <seed> [<stop-before-batch>]\n");
    return 2;
  }
  return sluice::crash::run(argv[1], seed, static_cast<std::int64_t>(stop_before));
}
