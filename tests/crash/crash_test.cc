// Crash tests of the storage engine, with real processes and SIGKILL.
//
// The promises under test:
//   - nothing the writer was told is flushed (on_flushed) is lost across a crash;
//   - after recovery, the log never serves a byte that was not appended: every batch read
//     validates (CRC, records) and is byte for byte the batch the workload put at its
//     offset, and every offset from the log start to the log end is in a batch (no holes);
//   - damage to segment files (torn, flipped, trailing garbage, lost or torn indexes) is
//     cut off or rebuilt at open, keeping every batch that lies before the damage.
//
// The writer is storage_crash_writer (crash_writer.cc), found through the compile
// definition STORAGE_CRASH_WRITER. Both sides share the workload of crash_workload.h, so
// the test knows, without asking the writer, which bytes belong at every offset.
//
// Replay a failure with the seed it prints: SLUICE_CRASH_SEED=<seed> repeats every random
// choice (kill delays, damage, writer pacing), though not the kernel's scheduling, so a
// kill lands at a similar moment rather than the same one. Scale the number of rounds with
// SLUICE_CRASH_ROUNDS (a percentage of the default, e.g. 300).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/base/log.h"
#include "engine/io/disk.h"
#include "engine/io/file.h"
#include "engine/reactor/reactor.h"
#include "engine/storage/log_manager.h"
#include "engine/storage/record_batch.h"
#include "engine/storage/segment.h"
#include "tests/crash/crash_workload.h"
#include "tests/support/storage_fixture.h"

#ifndef STORAGE_CRASH_WRITER
#error "STORAGE_CRASH_WRITER must name the storage_crash_writer binary"
#endif

namespace sluice {
// Failure messages show offsets as numbers.
template <typename Tag, typename Rep>
void PrintTo(strong<Tag, Rep> value, std::ostream* out) {
  *out << value.value();
}
}  // namespace sluice

namespace sluice::crash {
namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* clean_shutdown_marker = ".sluice_cleanshutdown";
constexpr const char* recovery_point_file = "recovery-point-offset-checkpoint";

bool sanitized() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

// The default number of rounds, scaled down under the sanitizers (several times slower
// in both processes) and by SLUICE_CRASH_ROUNDS (a percentage).
int rounds(int normal, int sanitized_rounds) {
  int n = sanitized() ? sanitized_rounds : normal;
  if (const char* scale = std::getenv("SLUICE_CRASH_ROUNDS")) {
    n = std::max(1, n * std::atoi(scale) / 100);
  }
  return n;
}

// The seed of a test: SLUICE_CRASH_SEED when set, otherwise a fresh one (printed, so any
// failure can be replayed).
std::uint64_t test_seed() {
  std::uint64_t seed = std::random_device{}();
  if (const char* fixed = std::getenv("SLUICE_CRASH_SEED"))
    seed = std::strtoull(fixed, nullptr, 10);
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  std::fprintf(stderr, "crash test seed: %llu (replay with SLUICE_CRASH_SEED)\n",
               static_cast<unsigned long long>(seed));
  return seed;
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string tail_of(const std::string& text, std::size_t bytes_max = 2000) {
  return text.size() <= bytes_max ? text : "..." + text.substr(text.size() - bytes_max);
}

// ---------------------------------------------------------------------------------------
// The writer process.

// A running storage_crash_writer, with its stdout on a pipe and its stderr in a file.
class writer_process {
 public:
  // `stop_before`: the batch number the writer stops before (it keeps running, idle), or
  // nullopt to write until killed.
  writer_process(const std::string& data_dir, std::uint64_t seed, std::string stderr_path,
                 std::optional<std::int64_t> stop_before = std::nullopt)
      : stderr_path_(std::move(stderr_path)) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      anomaly_ = "pipe2 failed";
      return;
    }
    // Everything the child needs is prepared before fork: after it, only exec.
    std::string seed_text = std::to_string(seed);
    std::string stop_text = stop_before ? std::to_string(*stop_before) : "";
    const char* stop_argument = stop_before ? stop_text.c_str() : nullptr;
    int error_fd = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      if (error_fd >= 0) ::dup2(error_fd, STDERR_FILENO);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::execl(STORAGE_CRASH_WRITER, "storage_crash_writer", data_dir.c_str(), seed_text.c_str(),
              stop_argument, static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    if (error_fd >= 0) ::close(error_fd);
    out_fd_ = fds[0];
    if (pid_ < 0) anomaly_ = "fork failed";
  }

  writer_process(const writer_process&) = delete;
  writer_process& operator=(const writer_process&) = delete;

  ~writer_process() {
    if (pid_ > 0) (void)kill_and_reap();
    if (out_fd_ >= 0) ::close(out_fd_);
  }

  // Reads the writer's promises until `deadline`, or until `done()` holds.
  template <typename Predicate>
  void pump_until(steady::time_point deadline, Predicate done) {
    // Bounded by the deadline: every pass waits at most until it.
    while (out_fd_ >= 0 && !done()) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now()).count();
      if (left <= 0) return;
      pollfd p{out_fd_, POLLIN, 0};
      int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 50)));
      if (ready > 0 && !read_available()) return;  // the writer died early: EOF
    }
  }
  void run_for(milliseconds duration) {
    pump_until(steady::now() + duration, [] { return false; });
  }

  // SIGKILLs the writer, reaps it, and reads what it printed before it died. Returns ""
  // when it died of that SIGKILL, and otherwise how it ended (it never should on its own).
  std::string kill_and_reap() {
    if (pid_ <= 0) return anomaly_.empty() ? "no writer" : anomaly_;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    // Drain the pipe to EOF: everything printed before the kill is a promise.
    for (int guard = 0; guard < 100000 && read_available(); ++guard) {
    }
    std::string how;
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
      how = WIFEXITED(status) ? "writer exited with status " + std::to_string(WEXITSTATUS(status))
                              : "writer died of signal " + std::to_string(WTERMSIG(status));
      how += "; its stderr:\n" + tail_of(read_whole_file(stderr_path_));
    }
    if (!anomaly_.empty()) how += (how.empty() ? "" : "; ") + anomaly_;
    return how;
  }

  // The highest flushed_end the writer promised for partition p.
  offset promised(std::int32_t p) const { return promised_[static_cast<std::size_t>(p)]; }
  std::size_t promises() const { return promises_; }

 private:
  // Reads what is in the pipe now (blocking at most until something arrives). False at
  // EOF or on an error.
  bool read_available() {
    char chunk[4096];
    ssize_t got = ::read(out_fd_, chunk, sizeof(chunk));
    if (got < 0 && errno == EINTR) return true;
    if (got <= 0) return false;
    pending_.append(chunk, static_cast<std::size_t>(got));
    std::size_t line_end;
    while ((line_end = pending_.find('\n')) != std::string::npos) {
      parse_line(std::string_view(pending_).substr(0, line_end));
      pending_.erase(0, line_end + 1);
    }
    return true;
  }

  void parse_line(std::string_view line) {
    std::int32_t p = -1;
    std::int64_t end = -1;
    std::istringstream in{std::string(line)};
    std::string word;
    in >> word >> p >> end;
    if (word != "flushed" || !in || p < 0 || p >= partitions || end < 0) {
      anomaly_ = "the writer printed an unexpected line: " + std::string(line);
      return;
    }
    auto& promised = promised_[static_cast<std::size_t>(p)];
    if (offset(end) < promised) {
      anomaly_ = "flushed_end of partition " + std::to_string(p) + " went backwards, from " +
                 std::to_string(promised.value()) + " to " + std::to_string(end);
    }
    promised = std::max(promised, offset(end));
    ++promises_;
  }

  std::string stderr_path_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string pending_;
  std::array<offset, partitions> promised_{};
  std::size_t promises_ = 0;
  std::string anomaly_;
};

// ---------------------------------------------------------------------------------------
// Opening the data directory in the test process.

// A reactor, a disk and a log_manager on a data directory, destroyed in the right order.
struct store {
  std::unique_ptr<reactor> ring;
  std::unique_ptr<uring_disk> io;
  std::unique_ptr<log_manager> manager;

  // Opens `data_dir`; the error in words when that fails.
  std::string open(const std::string& data_dir) {
    auto created = reactor::create(reactor_config{256});
    if (!created) return std::string("reactor: ") + created.failure().detail();
    ring = std::move(*created);
    io = std::make_unique<uring_disk>(*ring);
    auto opened = log_manager::open(workload_manager_config(data_dir), *io);
    // The lock of a killed writer is released when the kernel has closed its files, which
    // it may finish just after the writer is reaped. Bounded wait.
    for (int retry = 0; retry < 100 && !opened && opened.code() == errc::invalid_argument;
         ++retry) {
      ::usleep(20'000);
      opened = log_manager::open(workload_manager_config(data_dir), *io);
    }
    if (!opened) {
      return std::string("log_manager::open failed: ") + opened.failure().detail() + " (" +
             std::string(errc_name(opened.code())) + ")";
    }
    manager = std::move(*opened);
    return "";
  }
  partition_log* log(std::int32_t p) { return manager->get(partition_of(p)); }
};

// ---------------------------------------------------------------------------------------
// Checking what a log serves.

struct served_batch {
  offset base;
  std::int64_t number;  // the workload's batch number
  friend bool operator==(const served_batch&, const served_batch&) = default;
};

struct log_check {
  offset start;
  offset end;
  std::vector<served_batch> batches;
  // Every offset from start to end is in a served batch: no batch is missing.
  bool contiguous = true;
  // Ranges [first, second) below the log end that no batch holds: reads there serve
  // nothing (up to the log end) or skip ahead.
  std::vector<std::pair<offset, offset>> holes;
  std::string problem;  // empty when every served batch is right

  std::string describe_holes() const {
    std::string text;
    for (const auto& [from, to] : holes) {
      text += " [" + std::to_string(from.value()) + ", " + std::to_string(to.value()) + ")";
    }
    return "offsets" + text + " lie below the log end " + std::to_string(end.value()) +
           " but no batch holds them: reads there serve nothing or skip ahead";
  }
};

std::string describe(const served_batch& b) {
  return "batch " + std::to_string(b.number) + " at offset " + std::to_string(b.base.value());
}
void PrintTo(const served_batch& b, std::ostream* out) {
  *out << describe(b);
}

// Reads `log` from its start to its end and checks every batch it serves: it validates
// (CRC and records), it is batch number k of the workload for some k, it sits at the
// offset the workload gives batch k, and its bytes are exactly those of batch k with that
// offset assigned. Batch numbers must increase. Stops at the first problem.
log_check read_and_check(partition_log& log, std::int32_t p) {
  log_check out;
  out.start = log.log_start_offset();
  out.end = log.log_end_offset();
  auto fail = [&](const std::string& what) {
    out.problem = "partition " + std::to_string(p) + ": " + what;
    return out;
  };
  if (log.written_end() != out.end) return fail("written_end differs from the log end");
  offset_plan plan(p);
  batch_builder builder;
  std::vector<std::byte> scratch;
  const batch_limits limits{std::size_t{1} << 30};
  offset next = out.start;
  // Bounded: every pass serves at least one batch, so at least one offset.
  for (std::int64_t guard = 0; next < out.end; ++guard) {
    if (guard > out.end - out.start) return fail("reads do not advance");
    auto read = log.read(next, 1 << 20);
    if (!read) {
      return fail("read at " + std::to_string(next.value()) +
                  " failed: " + read.failure().detail());
    }
    if (read->bytes.empty()) {
      // A hole: the log claims offsets it holds no batch for. Find where data resumes, so
      // that the rest of the log is still checked. Bounded by the log end.
      offset resume = next + 1;
      for (; resume < out.end; resume = resume + 1) {
        auto probe = log.read(resume, 1);
        if (!probe) return fail("read in a hole failed: " + std::string(probe.failure().detail()));
        if (!probe->bytes.empty()) break;
      }
      out.holes.emplace_back(next, resume);
      out.contiguous = false;
      next = resume;
      continue;
    }
    std::span<const std::byte> rest = read->bytes;
    offset after = next;
    while (!rest.empty()) {
      std::string where = "at offset " + std::to_string(after.value()) + ": ";
      auto header = decode_batch_header(rest);
      if (!header || header->total_bytes() > rest.size()) {
        return fail(where + "served bytes that do not frame as a batch");
      }
      auto batch = rest.first(header->total_bytes());
      rest = rest.subspan(header->total_bytes());
      if (auto valid = validate_batch(batch, limits, timestamp_ms(0)); !valid) {
        return fail(where + "served a batch that fails validation: " + valid.failure().detail());
      }
      if (auto records = validate_records(*header, batch, scratch, limits.batch_bytes_max);
          !records) {
        return fail(where +
                    "served a batch whose records are invalid: " + records.failure().detail());
      }
      auto records = batch_records(*header, batch, scratch, limits.batch_bytes_max);
      std::optional<std::int64_t> number;
      (void)for_each_record(*header, *records, [&](const record_view& r) {
        if (r.key) {
          number = batch_number_in_key(
              std::string_view(reinterpret_cast<const char*>(r.key->data()), r.key->size()), p);
        }
        return false;
      });
      if (!number) return fail(where + "served a batch that is not one of the workload's");
      if (!out.batches.empty() && *number <= out.batches.back().number) {
        return fail(where + "batch numbers do not increase: " + std::to_string(*number) +
                    " after " + std::to_string(out.batches.back().number));
      }
      if (header->base_offset != plan.base_of(*number)) {
        return fail(where + "batch " + std::to_string(*number) + " has base offset " +
                    std::to_string(header->base_offset.value()) + ", the workload puts it at " +
                    std::to_string(plan.base_of(*number).value()));
      }
      if (header->base_offset < after) return fail(where + "a batch served twice");
      std::span<std::byte> expected = build_batch(builder, p, *number);
      assign_batch_offsets(expected, plan.base_of(*number), leader_epoch(-1));
      if (!std::equal(expected.begin(), expected.end(), batch.begin(), batch.end())) {
        return fail(where + "batch " + std::to_string(*number) +
                    " differs from what the workload appended");
      }
      if (header->base_offset > after) {
        // Reads skip ahead over offsets that no batch holds.
        out.holes.emplace_back(after, header->base_offset);
        out.contiguous = false;
      }
      out.batches.push_back(served_batch{header->base_offset, *number});
      after = header->next_offset();
    }
    if (read->next_offset != after) return fail("read's next_offset is not after its last batch");
    next = after;
  }
  if (next != out.end) return fail("the last batch ends past the log end");
  return out;
}

// "" when the log holds every offset from its start to its end, else what is missing.
// Holes listed in `known` (reported before) are left out.
std::string continuity_problem(const log_check& check, std::int32_t p,
                               std::vector<std::pair<offset, offset>>* known = nullptr) {
  log_check fresh = check;
  if (known) {
    std::erase_if(fresh.holes, [&](const auto& hole) {
      return std::find(known->begin(), known->end(), hole) != known->end();
    });
    known->insert(known->end(), fresh.holes.begin(), fresh.holes.end());
    if (fresh.holes.empty()) return "";
  }
  if (fresh.contiguous) return "";
  std::string what = "partition " + std::to_string(p) + ": ";
  if (!fresh.holes.empty()) return what + fresh.describe_holes();
  return what + "batches are missing between the log start and the log end";
}

// ---------------------------------------------------------------------------------------
// Test 1: kill the writer at random moments, many times over, on one data directory.

TEST(CrashTest, KillAtRandomMoments) {
  set_log_level(log_level::error);
  const std::uint64_t seed = test_seed();
  std::mt19937_64 rng(seed);
  test::temp_dir root;
  const std::string data_dir = root.path() + "/data";
  const std::string writer_log = root.path() + "/writer.stderr";
  std::array<offset, partitions> start_seen{};
  std::array<offset, partitions> promised_total{};
  std::array<std::vector<std::pair<offset, offset>>, partitions> holes_seen;
  const int n = rounds(40, 20);
  for (int round = 0; round < n; ++round) {
    SCOPED_TRACE("seed " + std::to_string(seed) + ", round " + std::to_string(round));
    auto lifetime = milliseconds(20 + rng() % 281);
    std::array<offset, partitions> promised{};
    {
      writer_process writer(data_dir, rng(), writer_log);
      writer.run_for(lifetime);
      std::string how = writer.kill_and_reap();
      ASSERT_EQ(how, "") << "the writer did not just die of SIGKILL";
      for (std::int32_t p = 0; p < partitions; ++p) promised[p] = writer.promised(p);
    }
    store s;
    ASSERT_EQ(s.open(data_dir), "");
    for (std::int32_t p = 0; p < partitions; ++p) {
      partition_log* log = s.log(p);
      if (log == nullptr) {
        // Killed before it created the partition: it cannot have promised anything.
        ASSERT_EQ(promised[p], offset(0)) << "partition " << p << " vanished";
        continue;
      }
      EXPECT_GE(log->log_end_offset(), promised[p])
          << "partition " << p << " lost data that was reported flushed";
      log_check check = read_and_check(*log, p);
      ASSERT_EQ(check.problem, "");
      // A hole stays in the log once the writer has appended past it: report each once.
      EXPECT_EQ(continuity_problem(check, p, &holes_seen[p]), "");
      EXPECT_GE(check.start, start_seen[p]) << "the log start offset went backwards";
      start_seen[p] = check.start;
      promised_total[p] = std::max(promised_total[p], promised[p]);
    }
    // Every fifth round the checker stops cleanly (flush, checkpoints, clean-shutdown
    // marker), so the next writer starts without recovery; otherwise it just goes away,
    // like another crash, and the next writer recovers on top of this recovery.
    if (round % 5 == 4) {
      ASSERT_TRUE(s.manager->shutdown().ok());
      EXPECT_TRUE(path_exists(data_dir + "/" + clean_shutdown_marker));
    }
  }
  // The test must have exercised something: the writer got far enough to promise data.
  for (std::int32_t p = 0; p < partitions; ++p) {
    EXPECT_GT(promised_total[p], offset(0)) << "the writer never flushed partition " << p;
  }
}

// ---------------------------------------------------------------------------------------
// Test 2: damage the files of a killed writer, then open.

// One batch in a segment file, as found by walking the file here (not by the engine).
struct file_batch {
  std::uint64_t position = 0;
  std::uint64_t bytes = 0;
  served_batch id;
  offset next;  // the offset after the batch
};

struct segment_layout {
  offset base;
  std::string dir;
  std::uint64_t size = 0;
  std::vector<file_batch> batches;
  offset end() const { return batches.empty() ? base : batches.back().next; }
  std::string path(const char* suffix) const { return dir + "/" + segment_file_name(base, suffix); }
};

// Walks every batch of a segment file, checking each against the workload. Returns the
// problem in words when the file is not a run of whole, valid workload batches.
std::string walk_segment(std::int32_t p, segment_layout& out) {
  std::string bytes_text = read_whole_file(out.path(".log"));
  auto bytes = std::as_bytes(std::span(bytes_text.data(), bytes_text.size()));
  out.size = bytes.size();
  offset_plan plan(p);
  std::uint64_t position = 0;
  offset expected = out.base;
  // Bounded: each pass consumes at least one whole batch header.
  while (position < bytes.size()) {
    auto rest = bytes.subspan(position);
    auto header = decode_batch_header(rest);
    std::string where = out.path(".log") + " byte " + std::to_string(position) + ": ";
    if (!header || header->total_bytes() > rest.size()) return where + "not a whole batch";
    auto batch = rest.first(header->total_bytes());
    if (!validate_batch(batch, batch_limits{std::size_t{1} << 30}, timestamp_ms(0))) {
      return where + "batch does not validate";
    }
    if (header->base_offset != expected) return where + "batch offsets are not contiguous";
    auto number = plan.batch_starting_at(header->base_offset);
    if (!number) return where + "batch is not at a workload batch offset";
    out.batches.push_back(
        file_batch{position, batch.size(), {header->base_offset, *number}, header->next_offset()});
    expected = header->next_offset();
    position += batch.size();
  }
  return "";
}

std::vector<segment_layout> segments_of(const std::string& partition_dir) {
  std::vector<segment_layout> out;
  auto names = list_directory(partition_dir);
  if (!names) return out;
  for (const auto& name : *names) {
    if (auto base = parse_segment_file_name(name, ".log")) {
      segment_layout s;
      s.base = *base;
      s.dir = partition_dir;
      out.push_back(s);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const segment_layout& a, const segment_layout& b) { return a.base < b.base; });
  return out;
}

enum class damage {
  truncate_log,            // cut the .log at a random byte (a torn write)
  flip_log_byte,           // change one byte of a batch (bit rot, a misdirected write)
  append_garbage,          // random bytes after the last batch (a write of junk)
  delete_offset_index,     // the .index is gone
  delete_time_index,       // the .timeindex is gone
  delete_both_indexes,     // both are gone
  unaligned_offset_index,  // the .index length is not a multiple of its 8-byte entry
  unaligned_time_index,    // the .timeindex length is not a multiple of its 12-byte entry
  kinds,
};

const char* damage_name(damage d) {
  switch (d) {
    case damage::truncate_log: return "truncate_log";
    case damage::flip_log_byte: return "flip_log_byte";
    case damage::append_garbage: return "append_garbage";
    case damage::delete_offset_index: return "delete_offset_index";
    case damage::delete_time_index: return "delete_time_index";
    case damage::delete_both_indexes: return "delete_both_indexes";
    case damage::unaligned_offset_index: return "unaligned_offset_index";
    case damage::unaligned_time_index: return "unaligned_time_index";
    case damage::kinds: break;
  }
  return "?";
}

bool damages_log_bytes(damage d) {
  return d == damage::truncate_log || d == damage::flip_log_byte || d == damage::append_garbage;
}

std::uint64_t file_bytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

bool resize_file(const std::string& path, std::uint64_t bytes) {
  return ::truncate(path.c_str(), static_cast<off_t>(bytes)) == 0;
}

bool write_at(const std::string& path, std::uint64_t position, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(position)) ==
            static_cast<ssize_t>(data.size());
  ::close(fd);
  return ok;
}

// What one round did, in words, for failure messages.
struct damage_plan {
  damage kind = damage::truncate_log;
  std::size_t segment = 0;     // index into the partition's segments
  std::uint64_t position = 0;  // the damaged byte of the .log (byte kinds)
  bool checkpoint_removed = false;
  std::string describe(const std::vector<segment_layout>& segments) const {
    return std::string(damage_name(kind)) + " on segment " +
           std::to_string(segments[segment].base.value()) + " (" + std::to_string(segment + 1) +
           " of " + std::to_string(segments.size()) + ", " +
           std::to_string(segments[segment].size) + " bytes) at byte " + std::to_string(position) +
           (checkpoint_removed ? ", recovery point checkpoint removed" : "");
  }
};

TEST(CrashTest, TornAndCorruptFiles) {
  set_log_level(log_level::error);
  const std::uint64_t seed = test_seed();
  std::mt19937_64 rng(seed);
  const int n = rounds(80, 40);
  const int kind_offset = static_cast<int>(rng() % static_cast<int>(damage::kinds));
  std::array<int, static_cast<int>(damage::kinds)> tried{};
  std::array<int, static_cast<int>(damage::kinds)> failed{};
  for (int round = 0; round < n; ++round) {
    SCOPED_TRACE("seed " + std::to_string(seed) + ", round " + std::to_string(round));
    test::temp_dir root;
    const std::string data_dir = root.path() + "/data";
    {
      // The writer stops after a few hundred batches (a few segments, retention at work
      // for the longer runs) and is killed once all of them are flushed: this test is
      // about damage done to the files, not about where the kill lands (KillAtRandomMoments
      // covers that), so the baseline before the damage is a complete log.
      const std::int64_t stop_before = 100 + static_cast<std::int64_t>(rng() % 500);
      writer_process writer(data_dir, rng(), root.path() + "/writer.stderr", stop_before);
      auto all_flushed = [&] {
        for (std::int32_t q = 0; q < partitions; ++q) {
          if (writer.promised(q) != offset_plan(q).base_of(stop_before)) return false;
        }
        return true;
      };
      writer.pump_until(steady::now() + std::chrono::seconds(20), all_flushed);
      EXPECT_TRUE(all_flushed()) << "the writer did not flush its " << stop_before
                                 << " batches within 20 s";
      ASSERT_EQ(writer.kill_and_reap(), "");
    }

    // The baseline: what the engine recovers from the crash alone (checked like test 1).
    // The manager goes away without a clean shutdown, so the next open recovers again.
    std::array<log_check, partitions> baseline;
    {
      store s;
      ASSERT_EQ(s.open(data_dir), "");
      for (std::int32_t p = 0; p < partitions; ++p) {
        ASSERT_NE(s.log(p), nullptr);
        baseline[p] = read_and_check(*s.log(p), p);
        ASSERT_EQ(baseline[p].problem, "");
        EXPECT_EQ(continuity_problem(baseline[p], p), "");
      }
    }
    ASSERT_TRUE(baseline[0].contiguous && baseline[1].contiguous);

    const std::int32_t p = static_cast<std::int32_t>(rng() % partitions);
    const std::string partition_dir = data_dir + "/" + partition_of(p).dir_name();
    std::vector<segment_layout> segments = segments_of(partition_dir);
    ASSERT_FALSE(segments.empty());
    // After recovery every segment file must be whole, valid batches end to end.
    for (auto& s : segments) ASSERT_EQ(walk_segment(p, s), "");
    for (std::size_t i = 1; i < segments.size(); ++i) {
      ASSERT_EQ(segments[i].base, segments[i - 1].end()) << "segments are not contiguous";
    }

    // Damage a segment: mostly the newest one holding data, sometimes an older one.
    damage_plan plan;
    // Every kind of damage in turn, so that a short run covers each of them.
    plan.kind = static_cast<damage>((round + kind_offset) % static_cast<int>(damage::kinds));
    std::vector<std::size_t> with_data;
    for (std::size_t i = 0; i < segments.size(); ++i) {
      if (!segments[i].batches.empty()) with_data.push_back(i);
    }
    ASSERT_FALSE(with_data.empty());
    plan.segment = rng() % 4 == 0 ? with_data[rng() % with_data.size()] : with_data.back();
    segment_layout& target = segments[plan.segment];
    const bool newest = plan.segment + 1 == segments.size();
    // Recovery validates only the segments from the one holding the recovery point on;
    // older segments are trusted, as in Kafka, so damage to their bytes is found only by a
    // full recovery: remove the checkpoint (recovery point 0) for those. The newest
    // segment holds the recovery point or lies after it, so it is always validated; the
    // checkpoint is removed there at random too.
    plan.checkpoint_removed = (damages_log_bytes(plan.kind) && !newest) || rng() % 3 == 0;
    if (plan.checkpoint_removed) {
      ASSERT_TRUE(remove_file(data_dir + "/" + recovery_point_file).ok());
    }

    // What must survive: the batches of earlier segments, the batches of the damaged
    // segment that end at or before the damaged byte, and the later segments only when
    // recovery sees no damaged byte at all in the damaged segment (a cut exactly between
    // two batches, or index damage): a log with a gap is what Kafka keeps then, too.
    std::uint64_t survive_below = target.size;  // bytes of the damaged segment that stay
    bool damaged_bytes_remain = false;
    std::uniform_int_distribution<int> byte_values(0, 255);
    switch (plan.kind) {
      case damage::truncate_log: {
        plan.position = rng() % target.size;
        survive_below = plan.position;
        ASSERT_TRUE(resize_file(target.path(".log"), plan.position));
        damaged_bytes_remain =
            std::none_of(target.batches.begin(), target.batches.end(),
                         [&](const file_batch& b) { return b.position == plan.position; });
        break;
      }
      case damage::flip_log_byte: {
        // Any byte but the base offset and the leader epoch, which the log assigns and so
        // lie outside the CRC: no reader can tell a damaged epoch from a real one (Kafka
        // cannot either), and a damaged base offset is DamagedBaseOffsetIsCutAtRecovery's.
        const file_batch& b = target.batches[rng() % target.batches.size()];
        std::uint64_t within = 0;
        do {
          within = rng() % b.bytes;
        } while (within < batch_layout::batch_length ||
                 (within >= batch_layout::partition_leader_epoch && within < batch_layout::magic));
        plan.position = b.position + within;
        std::string old_byte = read_whole_file(target.path(".log")).substr(plan.position, 1);
        std::string new_byte(1, static_cast<char>(old_byte[0] ^ (1 + rng() % 255)));
        ASSERT_TRUE(write_at(target.path(".log"), plan.position, new_byte));
        survive_below = b.position;
        damaged_bytes_remain = true;
        break;
      }
      case damage::append_garbage: {
        std::string garbage(1 + rng() % 300, '\0');
        for (char& c : garbage) c = static_cast<char>(byte_values(rng));
        plan.position = target.size;
        ASSERT_TRUE(write_at(target.path(".log"), target.size, garbage));
        damaged_bytes_remain = true;
        break;
      }
      case damage::delete_offset_index: ASSERT_TRUE(remove_file(target.path(".index")).ok()); break;
      case damage::delete_time_index:
        ASSERT_TRUE(remove_file(target.path(".timeindex")).ok());
        break;
      case damage::delete_both_indexes:
        ASSERT_TRUE(remove_file(target.path(".index")).ok());
        ASSERT_TRUE(remove_file(target.path(".timeindex")).ok());
        break;
      case damage::unaligned_offset_index:
      case damage::unaligned_time_index: {
        const bool offsets = plan.kind == damage::unaligned_offset_index;
        const std::uint64_t entry = offsets ? 8 : 12;
        std::string path = target.path(offsets ? ".index" : ".timeindex");
        std::uint64_t entries = file_bytes(path) / entry;
        plan.position = (rng() % (entries + 1)) * entry + 1 + rng() % (entry - 1);
        ASSERT_TRUE(resize_file(path, plan.position));
        break;
      }
      case damage::kinds: break;
    }
    ++tried[static_cast<int>(plan.kind)];
    SCOPED_TRACE("partition " + std::to_string(p) + ": " + plan.describe(segments));

    std::vector<served_batch> expected;
    offset expected_end = segments.front().base;
    for (std::size_t i = 0; i < segments.size(); ++i) {
      if (i > plan.segment && damaged_bytes_remain) break;
      expected_end = segments[i].base;  // a segment that stays starts the log end here
      for (const auto& b : segments[i].batches) {
        if (i == plan.segment && b.position + b.bytes > survive_below) break;
        expected.push_back(b.id);
        expected_end = b.next;
      }
    }

    // Each round stands alone (a fresh directory): a failed round is reported and the
    // next one still runs, so one run shows every kind of damage that is mishandled.
    store s;
    std::string opened = s.open(data_dir);
    EXPECT_EQ(opened, "") << "the damaged data directory does not open";
    if (!opened.empty()) {
      ++failed[static_cast<int>(plan.kind)];
      continue;
    }
    for (std::int32_t q = 0; q < partitions; ++q) {
      ASSERT_NE(s.log(q), nullptr);
      log_check check = read_and_check(*s.log(q), q);
      EXPECT_EQ(check.problem, "");
      if (q != p) {
        EXPECT_EQ(check.batches, baseline[q].batches) << "an undamaged partition changed";
        continue;
      }
      EXPECT_EQ(check.end, expected_end) << "wrong log end after the damage";
      EXPECT_EQ(check.batches.size(), expected.size())
          << "the log serves a different number of batches than survive the damage";
      auto mismatch = std::mismatch(check.batches.begin(), check.batches.end(), expected.begin(),
                                    expected.end());
      if (mismatch.first != check.batches.end() && mismatch.second != expected.end()) {
        ADD_FAILURE() << "served " << describe(*mismatch.first) << ", expected "
                      << describe(*mismatch.second);
      }
      if (!check.problem.empty() || check.end != expected_end || check.batches != expected) {
        ++failed[static_cast<int>(plan.kind)];
      }
    }
  }
  for (int k = 0; k < static_cast<int>(damage::kinds); ++k) {
    std::fprintf(stderr, "damage %s: %d rounds, %d failed\n", damage_name(static_cast<damage>(k)),
                 tried[k], failed[k]);
  }
}

// ---------------------------------------------------------------------------------------
// Test 3: a clean shutdown is trusted; a kill is recovered.

TEST(CrashTest, CleanShutdownSkipsRecoveryAndKillForcesIt) {
  set_log_level(log_level::error);
  const std::uint64_t seed = test_seed();
  test::temp_dir root;
  const std::string data_dir = root.path() + "/data";
  const std::string marker = data_dir + "/" + clean_shutdown_marker;
  constexpr std::int64_t batches = 200;

  {
    // Write the first batches of the workload from the test itself, then stop cleanly.
    store s;
    ASSERT_EQ(s.open(data_dir), "");
    EXPECT_EQ(s.manager->stats().partitions_recovered, 0u) << "a new directory was recovered";
    std::vector<std::vector<std::byte>> owned;
    owned.reserve(batches * partitions);
    batch_builder builder;
    for (std::int32_t p = 0; p < partitions; ++p) {
      auto log = s.manager->create(partition_of(p), workload_log_config());
      ASSERT_TRUE(log.ok());
      for (std::int64_t i = 0; i < batches; ++i) {
        auto built = build_batch(builder, p, i);
        owned.emplace_back(built.begin(), built.end());
        auto appended = (*log)->append(owned.back(), timestamp_ms(0));
        ASSERT_TRUE(appended.ok()) << appended.failure().detail();
      }
    }
    ASSERT_TRUE(s.manager->shutdown().ok());
  }
  EXPECT_TRUE(path_exists(marker)) << "a clean shutdown left no marker";

  {
    store s;
    ASSERT_EQ(s.open(data_dir), "");
    EXPECT_EQ(s.manager->stats().partitions, static_cast<std::size_t>(partitions));
    EXPECT_EQ(s.manager->stats().partitions_recovered, 0u)
        << "partitions were recovered after a clean shutdown";
    EXPECT_FALSE(path_exists(marker)) << "the marker outlived the open that trusted it";
    for (std::int32_t p = 0; p < partitions; ++p) {
      log_check check = read_and_check(*s.log(p), p);
      ASSERT_EQ(check.problem, "");
      EXPECT_EQ(continuity_problem(check, p), "");
      EXPECT_EQ(check.end, offset_plan(p).base_of(batches));
    }
  }

  // The writer continues the same workload; kill it once it has flushed something more.
  std::array<offset, partitions> promised{};
  {
    writer_process writer(data_dir, seed, root.path() + "/writer.stderr");
    auto more = [&] {
      for (std::int32_t p = 0; p < partitions; ++p) {
        if (writer.promised(p) <= offset_plan(p).base_of(batches)) return false;
      }
      return true;
    };
    writer.pump_until(steady::now() + std::chrono::seconds(10), more);
    ASSERT_TRUE(more()) << "the writer did not flush anything past the clean shutdown";
    ASSERT_EQ(writer.kill_and_reap(), "");
    for (std::int32_t p = 0; p < partitions; ++p) promised[p] = writer.promised(p);
  }
  EXPECT_FALSE(path_exists(marker)) << "a killed writer left a clean-shutdown marker";
  {
    store s;
    ASSERT_EQ(s.open(data_dir), "");
    EXPECT_EQ(s.manager->stats().partitions_recovered, static_cast<std::size_t>(partitions))
        << "a directory left by a kill was trusted without recovery";
    for (std::int32_t p = 0; p < partitions; ++p) {
      log_check check = read_and_check(*s.log(p), p);
      ASSERT_EQ(check.problem, "");
      EXPECT_EQ(continuity_problem(check, p), "");
      EXPECT_GE(check.end, promised[p]);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Test 4: the state a kill leaves when it lands after a roll while writes for the sealed
// segment were still queued, built deterministically.
//
// partition_log::append rolls when a batch does not fit, before the batches queued for
// the old segment are written: the new segment's files exist (segment::create) while the
// old one's tail is still in the queue. A SIGKILL (or a power loss, for unsynced bytes)
// then leaves the old segment ending at offset A and an empty segment based at B > A.
// KillAtRandomMoments finds this state in most runs; here it is built directly: batches
// 0-9 written to the first segment, batches 10 and 11 lost from the queue, and the new
// segment created by the roll at batch 12, empty.

TEST(CrashTest, KillWithWritesQueuedBeforeARollLeavesNoHole) {
  set_log_level(log_level::error);
  test::temp_dir root;
  const std::string data_dir = root.path() + "/data";
  constexpr std::int32_t p = 0;
  offset_plan plan(p);
  {
    store s;
    ASSERT_EQ(s.open(data_dir), "");
    auto log = s.manager->create(partition_of(p), workload_log_config());
    ASSERT_TRUE(log.ok());
    std::vector<std::vector<std::byte>> owned;
    batch_builder builder;
    for (std::int64_t i = 0; i < 10; ++i) {
      auto built = build_batch(builder, p, i);
      owned.emplace_back(built.begin(), built.end());
      ASSERT_TRUE((*log)->append(owned.back(), timestamp_ms(0)).ok());
    }
    ASSERT_TRUE(s.ring->run_until([&] { return (*log)->idle(); }));
    ASSERT_EQ((*log)->flushed_end(), plan.base_of(10));
    // Gone without a clean shutdown, as if killed.
  }
  const std::string partition_dir = data_dir + "/" + partition_of(p).dir_name();
  for (const char* suffix : {".log", ".index", ".timeindex"}) {
    auto created = open_file(partition_dir + "/" + segment_file_name(plan.base_of(12), suffix),
                             O_CREAT | O_RDWR);
    ASSERT_TRUE(created.ok());
  }

  store s;
  ASSERT_EQ(s.open(data_dir), "");
  log_check check = read_and_check(*s.log(p), p);
  ASSERT_EQ(check.problem, "");
  EXPECT_EQ(continuity_problem(check, p), "")
      << "recovery kept the segment created by the roll although the batches before it "
         "never reached the file";
  EXPECT_EQ(check.end, plan.base_of(10)) << "the log end is not where the data ends";
  EXPECT_EQ(check.batches.size(), 10u);
}

// ---------------------------------------------------------------------------------------
// Test 5: a damaged base offset field. The base offset lies outside the CRC (the log
// assigns it in place), so only its value can give it away. TornAndCorruptFiles leaves
// these 8 bytes out of its random flips; this test covers them: a batch whose base offset
// is not the offset after the batch before it (or the segment's base offset, for the first
// batch) is damage, and recovery must cut it, or the log serves batches at offsets they
// were never given and moves its end to wherever the damaged value points.

TEST(CrashTest, DamagedBaseOffsetIsCutAtRecovery) {
  set_log_level(log_level::error);
  constexpr std::int32_t p = 0;
  constexpr std::int64_t batches = 10;
  offset_plan plan(p);
  // Which byte of the last batch's base offset to change: the most significant one (a jump
  // of 2^56, out of the segment's 32-bit relative range). A change of the low bytes (a
  // small forward jump) cannot be told from a legitimate gap in the offsets -- after
  // truncate_to, or compaction -- because the base offset lies outside the CRC; Kafka
  // cannot tell either.
  for (std::size_t byte : {std::size_t{0}}) {
    SCOPED_TRACE("base offset byte " + std::to_string(byte));
    test::temp_dir root;
    const std::string data_dir = root.path() + "/data";
    {
      store s;
      ASSERT_EQ(s.open(data_dir), "");
      auto log = s.manager->create(partition_of(p), workload_log_config());
      ASSERT_TRUE(log.ok());
      std::vector<std::vector<std::byte>> owned;
      batch_builder builder;
      for (std::int64_t i = 0; i < batches; ++i) {
        auto built = build_batch(builder, p, i);
        owned.emplace_back(built.begin(), built.end());
        ASSERT_TRUE((*log)->append(owned.back(), timestamp_ms(0)).ok());
      }
      ASSERT_TRUE(s.ring->run_until([&] { return (*log)->idle(); }));
      // Gone without a clean shutdown, as if killed.
    }
    segment_layout segment;
    segment.base = offset(0);
    segment.dir = data_dir + "/" + partition_of(p).dir_name();
    ASSERT_EQ(walk_segment(p, segment), "");
    ASSERT_EQ(segment.batches.size(), static_cast<std::size_t>(batches));
    const file_batch& last = segment.batches.back();
    std::uint64_t position = last.position + batch_layout::base_offset + byte;
    std::string old_byte = read_whole_file(segment.path(".log")).substr(position, 1);
    ASSERT_TRUE(write_at(segment.path(".log"), position, std::string(1, old_byte[0] ^ 0x01)));

    store s;
    ASSERT_EQ(s.open(data_dir), "");
    log_check check = read_and_check(*s.log(p), p);
    EXPECT_EQ(check.problem, "");
    EXPECT_EQ(check.end, plan.base_of(batches - 1))
        << "recovery kept a batch whose base offset does not follow the batch before it";
    EXPECT_EQ(check.batches.size(), static_cast<std::size_t>(batches - 1));
  }
}

}  // namespace
}  // namespace sluice::crash
