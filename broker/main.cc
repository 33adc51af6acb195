// The `sluice` binary.
//
// This build runs the storage node: it opens (and after a crash, recovers) the data
// directory, drives time-based flushes, rolls, retention and checkpoints from its
// io_uring reactor, and on SIGINT or SIGTERM flushes everything and writes the
// clean-shutdown marker. The Kafka listener comes with the network layer.
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <variant>

#include "broker/options.h"
#include "engine/base/log.h"
#include "engine/io/disk.h"
#include "engine/reactor/reactor.h"
#include "engine/storage/log_manager.h"

namespace sluice {
namespace {

// Reads SIGINT / SIGTERM from a signalfd through the ring, so stopping is just another
// completion on the reactor thread.
class signal_watch final : public completion {
 public:
  bool arm(reactor& r) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) return false;
    fd_ = ::signalfd(-1, &mask, SFD_CLOEXEC);
    if (fd_ < 0) return false;
    io_uring_prep_read(r.prepare(this), fd_, &info_, sizeof info_, 0);
    return true;
  }
  void complete(int res, std::uint32_t) noexcept override {
    if (res == static_cast<int>(sizeof info_))
      signal_ = static_cast<int>(info_.ssi_signo);
    else
      signal_ = SIGTERM;  // a failed read of the signalfd: stop rather than hang
  }
  int received() const noexcept { return signal_; }
  ~signal_watch() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_ = -1;
  signalfd_siginfo info_{};
  int signal_ = 0;
};

timestamp_ms wall_clock_now() {
  using namespace std::chrono;
  return timestamp_ms(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

// Servers need many descriptors; the soft limit (often 1024) may be raised to the hard
// one without privileges.
void raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  rlim_t before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) == 0) {
    SLUICE_LOG(debug, "sluice", "raised the open file limit from {} to {}", before, limit.rlim_max);
  }
}

int run(const broker_options& options) {
  set_log_level(options.level);
  raise_descriptor_limit();
  auto ring = reactor::create(reactor_config{});
  if (!ring) return 1;  // create() logged what the operator can do
  uring_disk io(**ring);
  signal_watch signals;
  if (!signals.arm(**ring)) {
    SLUICE_LOG(error, "sluice", "cannot watch SIGINT/SIGTERM: {}", std::strerror(errno));
    return 1;
  }
  log_manager_config storage;
  storage.data_dir = options.data_dir;
  storage.defaults = options.log;
  storage.open_partitions_max = options.open_partitions_max;
  auto manager = log_manager::open(storage, io);
  if (!manager) {
    SLUICE_LOG(error, "sluice", "cannot open data directory {}: {}", options.data_dir,
               manager.failure().detail());
    return 1;
  }
  auto stats = (*manager)->stats();
  SLUICE_LOG(info, "sluice",
             "storage node ready: data directory {} holds {} partitions ({} recovered); no "
             "Kafka listener in this build yet",
             options.data_dir, stats.partitions, stats.partitions_recovered);
  while (signals.received() == 0) {
    (*ring)->run_once(std::chrono::milliseconds(100));
    (*manager)->tick(wall_clock_now());
  }
  SLUICE_LOG(info, "sluice", "received {}: flushing and stopping",
             signals.received() == SIGINT ? "SIGINT" : "SIGTERM");
  if (auto stopped = (*manager)->shutdown(); !stopped) {
    SLUICE_LOG(error, "sluice", "shutdown incomplete: {}; the next start will recover the logs",
               stopped.failure().detail());
    // I/O may still be in flight into the logs' memory: leave without running
    // destructors; the kernel closes the ring and the files.
    std::_Exit(1);
  }
  SLUICE_LOG(info, "sluice", "stopped cleanly");
  return 0;
}

}  // namespace
}  // namespace sluice

int main(int argc, char** argv) {
  auto outcome = sluice::parse_broker_options(argc, argv);
  if (auto* help = std::get_if<sluice::parse_help>(&outcome)) {
    std::fputs(help->text.c_str(), stdout);
    return 0;
  }
  if (auto* failure = std::get_if<sluice::parse_error>(&outcome)) {
    std::fprintf(stderr, "sluice: %s (see sluice --help)\n", failure->message.c_str());
    return 2;
  }
  return sluice::run(std::get<sluice::broker_options>(outcome));
}
