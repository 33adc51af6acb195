// Storage engine throughput and footprint, measured through the public API the broker
// uses: partition_log appends (with and without fdatasync per batch), sequential reads,
// offset index lookups, crash recovery, and the memory and descriptors an idle partition
// costs inside log_manager.
//
// The files go to a fresh directory under $SLUICE_BENCH_DIR (default /tmp), so that
// tools/bench/run_storage_bench.sh can put fio's reference files on the same file system.
// Every benchmark deletes what it wrote.
//
// Append and read figures use manual (wall-clock) time: buffered writes through io_uring
// may run in kernel worker threads, whose CPU time the benchmark thread would not see.
#include <benchmark/benchmark.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/base/assert.h"
#include "engine/base/log.h"
#include "engine/io/disk.h"
#include "engine/io/file.h"
#include "engine/reactor/reactor.h"
#include "engine/storage/log_config.h"
#include "engine/storage/log_manager.h"
#include "engine/storage/offset_index.h"
#include "engine/storage/partition_log.h"
#include "engine/storage/record_batch.h"

namespace {

using sluice::offset;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * kib;
constexpr std::uint64_t gib = 1024 * mib;
constexpr std::size_t batch_bytes_target = 16 * kib;
constexpr int records_per_batch = 16;  // 16 records of about 1 KiB each
// Any fixed wall clock: no limits on timestamps are configured, and segment.ms is never
// reached because `now` does not move.
constexpr sluice::timestamp_ms now_ms{1'700'000'000'000};

// Recovery and log_manager log one info line per open; keep the benchmark output readable.
void quiet_info_logs() {
  sluice::set_log_level(sluice::log_level::warn);
}

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// A fresh directory under $SLUICE_BENCH_DIR (or /tmp), removed with everything in it.
class bench_dir {
 public:
  bench_dir() {
    const char* base = std::getenv("SLUICE_BENCH_DIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/sluice-bench-XXXXXX";
    char* made = ::mkdtemp(pattern.data());
    SLUICE_ASSERT(made != nullptr, "mkdtemp failed; is $SLUICE_BENCH_DIR writable?");
    path_ = made;
  }
  ~bench_dir() { (void)sluice::remove_tree(path_); }
  bench_dir(const bench_dir&) = delete;
  bench_dir& operator=(const bench_dir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Forwards to the real disk and counts the operations, to report how well group commit
// and vectored writes gather batches.
class counting_disk final : public sluice::disk {
 public:
  explicit counting_disk(sluice::disk& inner) : inner_(inner) {}
  void write(int fd, sluice::file_pos position, std::span<const iovec> buffers,
             sluice::completion* done) noexcept override {
    ++writes;
    inner_.write(fd, position, buffers, done);
  }
  void sync(int fd, sluice::completion* done) noexcept override {
    ++syncs;
    inner_.sync(fd, done);
  }
  void unlink(const char* path, sluice::completion* done) noexcept override {
    inner_.unlink(path, done);
  }
  sluice::reactor& reactor() noexcept override { return inner_.reactor(); }

  std::uint64_t writes = 0;
  std::uint64_t syncs = 0;

 private:
  sluice::disk& inner_;
};

// A reactor with a real io_uring disk behind a counter.
struct io_stack {
  std::unique_ptr<sluice::reactor> reactor;
  std::unique_ptr<sluice::uring_disk> uring;
  std::unique_ptr<counting_disk> disk;

  static std::unique_ptr<io_stack> make(benchmark::State& state) {
    auto made = sluice::reactor::create(sluice::reactor_config{.ring_entries = 1024});
    if (!made.ok()) {
      state.SkipWithError(made.failure().detail());
      return nullptr;
    }
    auto io = std::make_unique<io_stack>();
    io->reactor = std::move(*made);
    io->uring = std::make_unique<sluice::uring_disk>(*io->reactor);
    io->disk = std::make_unique<counting_disk>(*io->uring);
    return io;
  }
};

// One valid batch of exactly batch_bytes_target bytes: records_per_batch records with a
// null key and a value of about 1 KiB; the last value is sized so that the batch fills
// 16 KiB exactly, like fio's bs=16k.
std::vector<std::byte> make_16k_batch() {
  // A record with a value of v bytes (v < 8192) encodes as v + 9 or v + 10 bytes; start a
  // little below the target and grow the last value until the batch is exact.
  const std::size_t value_bytes =
      (batch_bytes_target - sluice::batch_layout::header_bytes) / records_per_batch - 12;
  std::vector<std::byte> value(2 * kib, std::byte{0x5a});
  for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<std::byte>(i * 131 + 7);
  for (std::size_t last_bytes = value_bytes; last_bytes < value.size(); ++last_bytes) {
    sluice::batch_builder builder;
    for (int i = 0; i < records_per_batch; ++i) {
      sluice::batch_builder::record r;
      std::size_t size = i + 1 == records_per_batch ? last_bytes : value_bytes;
      r.value = std::span<const std::byte>(value.data(), size);
      r.timestamp = sluice::timestamp_ms(now_ms.value() + i);
      builder.add(r);
    }
    auto bytes = builder.finish();
    if (bytes.size() == batch_bytes_target) return {bytes.begin(), bytes.end()};
    SLUICE_ASSERT(bytes.size() < batch_bytes_target, "cannot size the batch to 16 KiB");
  }
  SLUICE_ASSERT(false, "cannot size the batch to 16 KiB");
  return {};
}

sluice::log_config bench_log_config() {
  sluice::log_config config;
  config.segment_bytes = gib;
  config.retention_ms.reset();
  return config;
}

std::unique_ptr<sluice::partition_log> open_log(benchmark::State& state, const std::string& dir,
                                                const sluice::log_config& config, sluice::disk& io,
                                                bool clean = true) {
  auto log = sluice::partition_log::open(dir, config, io, offset(0), clean);
  if (!log.ok()) {
    state.SkipWithError(log.failure().detail());
    return nullptr;
  }
  return std::move(*log);
}

// Appends `total_bytes` of copies of `batch` to `log` from a ring of `ring_size` buffers.
// A buffer is reused only once the batch it held is past written_end (or, with
// `wait_for_flush`, past flushed_end: a producer with ring_size requests awaiting acks=all).
// Returns false (and marks the benchmark failed) on any error.
bool append_stream(benchmark::State& state, sluice::reactor& reactor, sluice::partition_log& log,
                   std::vector<std::vector<std::byte>>& ring, std::uint64_t total_bytes,
                   bool wait_for_flush) {
  std::vector<offset> slot_last(ring.size(), offset(-1));
  const std::uint64_t batches = total_bytes / batch_bytes_target;
  for (std::uint64_t i = 0; i < batches; ++i) {
    std::size_t slot = i % ring.size();
    // Bounded: each wait is at most the reactor's 30 s deadline.
    auto released = [&] {
      offset end = wait_for_flush ? log.flushed_end() : log.written_end();
      return end > slot_last[slot];
    };
    if (!released() && !reactor.run_until(released)) {
      state.SkipWithError("the log stopped making progress");
      return false;
    }
    auto info = log.append(ring[slot], now_ms);
    if (!info.ok()) {
      state.SkipWithError(info.failure().detail());
      return false;
    }
    slot_last[slot] = info->last_offset;
  }
  if (!reactor.run_until([&] { return log.idle(); })) {
    state.SkipWithError("the log did not drain");
    return false;
  }
  return true;
}

// Shared by both append benchmarks: `bytes_per_run` appended into a new log per iteration.
void run_append(benchmark::State& state, const sluice::log_config& config, std::size_t ring_size,
                std::uint64_t bytes_per_run, bool wait_for_flush) {
  auto io = io_stack::make(state);
  if (!io) return;
  const auto batch = make_16k_batch();
  std::vector<std::vector<std::byte>> ring(ring_size, batch);
  std::uint64_t bytes_done = 0;
  for (auto _ : state) {
    bench_dir dir;
    auto log = open_log(state, dir.path() + "/bench-0", config, *io->disk);
    if (!log) return;
    auto start = clock_type::now();
    bool ok = append_stream(state, *io->reactor, *log, ring, bytes_per_run, wait_for_flush);
    state.SetIterationTime(seconds_since(start));
    if (!ok) return;
    bytes_done += bytes_per_run;
    (void)log->close();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes_done));
  const double gib_done = static_cast<double>(bytes_done) / gib;
  state.counters["writes_per_GiB"] = static_cast<double>(io->disk->writes) / gib_done;
  state.counters["fdatasyncs_per_GiB"] = static_cast<double>(io->disk->syncs) / gib_done;
}

// Page-cache write path: no fdatasync at all. Every batch is still CRC-checked and its
// records parsed (validate_records is on, as in the broker).
//
// The caller only appends and calls run_once() (through run_until), as a broker's
// produce handling would: the next vectored write, which partition_log prepares inside the
// previous write's completion, reaches the kernel because run_once() submits what its
// completions prepared before returning, so the kernel's copy overlaps the caller's
// validation of the next batches.
void BM_append_flush_off(benchmark::State& state) {
  auto config = bench_log_config();
  config.flush = sluice::flush_policy::never();
  run_append(state, config, /*ring_size=*/256, /*bytes_per_run=*/256 * mib,
             /*wait_for_flush=*/false);
}
BENCHMARK(BM_append_flush_off)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(8);

// Durable appends: the default policy (a sync after every batch, with group commit) and
// 64 batches awaiting their flush at any time.
void BM_append_flush_per_batch(benchmark::State& state) {
  auto config = bench_log_config();  // flush_policy{} : every_messages = 1
  run_append(state, config, /*ring_size=*/64, /*bytes_per_run=*/128 * mib,
             /*wait_for_flush=*/true);
}
BENCHMARK(BM_append_flush_per_batch)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(4);

// 512 MiB written once, read by every repetition of BM_read_sequential; removed at exit.
struct read_fixture {
  static constexpr std::uint64_t bytes = 512 * mib;
  std::unique_ptr<io_stack> io;
  bench_dir dir;
  std::unique_ptr<sluice::partition_log> log;

  ~read_fixture() {
    if (log) (void)log->close();
  }

  static read_fixture* get(benchmark::State& state) {
    static std::unique_ptr<read_fixture> fixture;
    if (fixture) return fixture.get();
    auto made = std::make_unique<read_fixture>();
    made->io = io_stack::make(state);
    if (!made->io) return nullptr;
    auto config = bench_log_config();
    config.flush = sluice::flush_policy::never();
    made->log = open_log(state, made->dir.path() + "/bench-0", config, *made->io->disk);
    if (!made->log) return nullptr;
    std::vector<std::vector<std::byte>> ring(256, make_16k_batch());
    if (!append_stream(state, *made->io->reactor, *made->log, ring, bytes, false)) return nullptr;
    fixture = std::move(made);
    return fixture.get();
  }
};

// Reads the whole log in 1 MiB steps and touches one byte per 64-byte cache line, so every
// line is really read, without a copy. fresh_map:0 keeps the segment's mapping between
// passes (the active segment, always mapped: after the first pass no page faults);
// fresh_map:1 closes the segment's files before each pass, so the pass maps it again and
// faults in every page from the page cache (an older segment opened for a fetch) -- the
// closer match to fio's read(), which also walks the page cache for each call.
void BM_read_sequential(benchmark::State& state) {
  const bool fresh_map = state.range(0) != 0;
  auto* fixture = read_fixture::get(state);
  if (!fixture) return;
  auto& log = *fixture->log;
  std::uint64_t bytes_done = 0;
  for (auto _ : state) {
    if (fresh_map) {
      if (auto closed = log.close_files(); !closed.ok()) {
        state.SkipWithError(closed.failure().detail());
        return;
      }
    }
    auto start = clock_type::now();
    offset next = log.log_start_offset();
    std::uint64_t sum = 0;
    std::uint64_t bytes_read = 0;
    // Bounded: each step returns at least one 16 KiB batch.
    for (std::uint64_t step = 0;
         step < read_fixture::bytes / batch_bytes_target && next < log.written_end(); ++step) {
      auto r = log.read(next, mib);
      if (!r.ok() || r->bytes.empty()) {
        state.SkipWithError(r.ok() ? "empty read before the end" : r.failure().detail());
        return;
      }
      const auto* data = reinterpret_cast<const unsigned char*>(r->bytes.data());
      for (std::size_t i = 0; i < r->bytes.size(); i += 64) sum += data[i];
      bytes_read += r->bytes.size();
      next = r->next_offset;
    }
    benchmark::DoNotOptimize(sum);
    state.SetIterationTime(seconds_since(start));
    if (bytes_read != read_fixture::bytes) {
      state.SkipWithError("read fewer bytes than were written");
      return;
    }
    bytes_done += bytes_read;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes_done));
}
BENCHMARK(BM_read_sequential)
    ->ArgName("fresh_map")
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(8);

// Binary search in an index of 100,000 entries (one per 16 KiB batch of 16 records),
// random targets drawn once so the generator is not measured.
void BM_index_lookup(benchmark::State& state) {
  constexpr std::size_t entries = 100'000;
  constexpr std::int64_t offsets_per_entry = records_per_batch;
  bench_dir dir;
  auto index = sluice::offset_index::open(dir.path() + "/00000000000000000000.index", offset(0),
                                          entries * sluice::offset_index::entry_bytes);
  if (!index.ok()) {
    state.SkipWithError(index.failure().detail());
    return;
  }
  for (std::size_t i = 0; i < entries; ++i) {
    index->append(offset(static_cast<std::int64_t>(i + 1) * offsets_per_entry - 1),
                  sluice::file_pos(i * batch_bytes_target));
  }
  std::mt19937_64 random(42);
  std::uniform_int_distribution<std::int64_t> pick(0, entries * offsets_per_entry - 1);
  std::vector<offset> targets(4096);
  for (auto& t : targets) t = offset(pick(random));
  std::size_t next = 0;
  for (auto _ : state) {
    auto found = index->lookup(targets[next]);
    benchmark::DoNotOptimize(found);
    next = (next + 1) % targets.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_index_lookup);

// Recovery after a crash: open with clean_shutdown = false and recovery point 0, which
// CRC-checks every batch and rebuilds the indexes. Arg 0: the data is in the page cache
// (the CPU cost of validation); arg 1: the segment's pages were dropped from the cache
// with posix_fadvise first (the data comes from the device, as after a power loss).
void BM_recovery_per_gib(benchmark::State& state) {
  const bool cold = state.range(0) != 0;
  quiet_info_logs();
  constexpr std::uint64_t bytes = 512 * mib;
  auto io = io_stack::make(state);
  if (!io) return;
  bench_dir dir;
  const std::string log_dir = dir.path() + "/bench-0";
  auto config = bench_log_config();
  config.flush = sluice::flush_policy::never();
  {
    auto log = open_log(state, log_dir, config, *io->disk);
    if (!log) return;
    std::vector<std::vector<std::byte>> ring(256, make_16k_batch());
    if (!append_stream(state, *io->reactor, *log, ring, bytes, false)) return;
    (void)log->close();
  }
  const std::string segment_path = log_dir + "/00000000000000000000.log";
  double seconds_total = 0;
  std::int64_t runs = 0;
  for (auto _ : state) {
    // Written back first in both variants: recovery ends with an fdatasync of the segment,
    // which should cost what it costs after a crash of the broker, not the writeback of
    // the 512 MiB this benchmark has just produced. (Pages must also be clean before
    // DONTNEED can drop them.)
    auto file = sluice::open_file(segment_path, O_RDONLY);
    if (!file.ok()) {
      state.SkipWithError(file.failure().detail());
      return;
    }
    (void)::fdatasync(file->get());
    if (cold) (void)::posix_fadvise(file->get(), 0, 0, POSIX_FADV_DONTNEED);
    auto start = clock_type::now();
    auto log = open_log(state, log_dir, config, *io->disk, /*clean=*/false);
    double seconds = seconds_since(start);
    if (!log) return;
    if (log->log_end_offset() !=
        offset(static_cast<std::int64_t>(bytes / batch_bytes_target) * records_per_batch)) {
      state.SkipWithError("recovery did not find every batch");
      return;
    }
    (void)log->close();
    state.SetIterationTime(seconds);
    seconds_total += seconds;
    ++runs;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * runs);
  if (runs > 0) {
    state.counters["seconds_per_GiB"] =
        seconds_total / static_cast<double>(runs) * (static_cast<double>(gib) / bytes);
  }
}
BENCHMARK(BM_recovery_per_gib)
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

std::uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size_pages = 0, resident_pages = 0;
  statm >> size_pages >> resident_pages;
  return resident_pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::size_t open_descriptors() {
  DIR* fds = ::opendir("/proc/self/fd");
  if (fds == nullptr) return 0;
  std::size_t count = 0;
  while (::readdir(fds) != nullptr) ++count;
  ::closedir(fds);
  return count - 3;  // ".", ".." and the descriptor of the listing itself
}

// The cost of a partition that exists but is not used: 10,000 partitions created in one
// log_manager with the process's descriptor limit at the common default of 1024, so the
// manager's budget closes the least recently used ones as it goes; then every file is
// closed. Reports resident memory per partition and the descriptors left open.
void BM_idle_partition_memory(benchmark::State& state) {
  constexpr std::int32_t partitions = 10'000;
  quiet_info_logs();
  for (auto _ : state) {
    rlimit saved{};
    ::getrlimit(RLIMIT_NOFILE, &saved);
    rlimit lowered = saved;
    lowered.rlim_cur = std::min<rlim_t>(saved.rlim_cur, 1024);
    ::setrlimit(RLIMIT_NOFILE, &lowered);

    auto io = io_stack::make(state);
    if (!io) return;
    bench_dir dir;
    sluice::log_manager_config config;
    config.data_dir = dir.path();
    config.defaults.segment_bytes = 1 * mib;
    config.defaults.index_bytes_max = 4096;
    config.defaults.retention_ms.reset();
    const std::uint64_t rss_before = resident_bytes();
    const std::size_t fds_before = open_descriptors();
    auto manager = sluice::log_manager::open(config, *io->disk);
    if (!manager.ok()) {
      state.SkipWithError(manager.failure().detail());
      return;
    }
    for (std::int32_t p = 0; p < partitions; ++p) {
      auto created = (*manager)->create(sluice::topic_partition{"bench-idle", p}, config.defaults);
      if (!created.ok()) {
        state.SkipWithError(created.failure().detail());
        return;
      }
    }
    const std::size_t fds_with_budget = open_descriptors();
    const std::size_t open_by_budget = (*manager)->stats().partitions_open;
    (*manager)->for_each([&](const sluice::topic_partition&, sluice::partition_log& log) {
      (void)log.close_files();
    });
    const std::uint64_t rss_after = resident_bytes();
    const std::size_t fds_after = open_descriptors();
    state.counters["bytes_per_idle_partition"] =
        static_cast<double>(rss_after - rss_before) / partitions;
    state.counters["fds_after_create"] = static_cast<double>(fds_with_budget);
    state.counters["fds_after_close"] = static_cast<double>(fds_after);
    state.counters["fds_before"] = static_cast<double>(fds_before);
    state.counters["partitions_open_budget"] = static_cast<double>(open_by_budget);
    (void)(*manager)->shutdown();
    manager->reset();
    ::setrlimit(RLIMIT_NOFILE, &saved);
  }
}
BENCHMARK(BM_idle_partition_memory)
    ->Iterations(1)
    ->Repetitions(1)
    ->Unit(benchmark::kSecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

}  // namespace
