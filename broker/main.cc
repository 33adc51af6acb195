// The `sluice` binary: a single-node Kafka broker.
//
// It opens (and after a crash, recovers) the data directory, loads the topics, listens
// for Kafka clients, and drives everything from one io_uring reactor: sockets, disk
// writes and syncs, fetch deadlines, and -- every few milliseconds -- time-based
// flushes, rolls, retention and checkpoints. On SIGINT or SIGTERM it stops accepting,
// answers the requests in flight (parked fetches answer at once), waits for the
// connections to drain (bounded), flushes everything and writes the clean-shutdown
// marker.
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <variant>

#include "broker/broker_context.h"
#include "broker/groups/group_coordinator.h"
#include "broker/groups/offsets_log.h"
#include "broker/kafka_handler.h"
#include "broker/meta_properties.h"
#include "broker/options.h"
#include "broker/topic_registry.h"
#include "engine/base/log.h"
#include "engine/io/disk.h"
#include "engine/reactor/reactor.h"
#include "engine/storage/log_manager.h"
#include "net/server.h"

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
  storage.cleaner.enabled = options.log_cleaner_enable;
  storage.cleaner.backoff = options.log_cleaner_backoff;
  auto manager = log_manager::open(storage, io);
  if (!manager) {
    SLUICE_LOG(error, "sluice", "cannot open data directory {}: {}", options.data_dir,
               manager.failure().detail());
    return 1;
  }
  auto meta = load_or_create_meta_properties(options.data_dir, options.node_id);
  if (!meta) {
    SLUICE_LOG(error, "sluice", "cannot read or write {}/meta.properties: {}", options.data_dir,
               meta.failure().detail());
    return 1;
  }
  auto topics = topic_registry::open(options.data_dir, **manager, options.log);
  if (!topics) {
    SLUICE_LOG(error, "sluice", "cannot load the topics of {}: {}", options.data_dir,
               topics.failure().detail());
    return 1;
  }
  broker_identity identity;
  identity.node_id = options.node_id;
  identity.advertised_host = options.advertise.host;
  identity.advertised_port = options.advertise.port;
  identity.cluster_id = meta->cluster_id;
  identity.auto_create_topics = options.auto_create_topics;
  identity.default_partitions = options.default_partitions;
  broker_context broker(**ring, **manager, **topics, identity);
  auto producer_ids = producer_id_allocator::open(options.data_dir);
  if (!producer_ids) {
    SLUICE_LOG(error, "sluice", "cannot read the producer id block of {}: {}; fix or remove {}/{}",
               options.data_dir, producer_ids.failure().detail(), options.data_dir,
               producer_id_allocator::file_name);
    return 1;
  }
  broker.set_producer_ids(std::move(*producer_ids));

  // Consumer groups: the offsets log, then the coordinator, rebuilt from the log before
  // the first client is served.
  auto offsets = offsets_log::open(broker, options.offsets_topic_partitions);
  if (!offsets) {
    SLUICE_LOG(error, "sluice", "cannot open the internal topic {} in {}: {}",
               offsets_log::topic_name, options.data_dir, offsets.failure().detail());
    return 1;
  }
  groups::coordinator_config group_config;
  group_config.initial_rebalance_delay = options.group_initial_rebalance_delay;
  group_config.session_timeout_min = options.group_min_session_timeout;
  group_config.session_timeout_max = options.group_max_session_timeout;
  group_config.group_size_max = options.group_max_size;
  group_config.offsets_retention = options.offsets_retention;
  auto coordinator = std::make_unique<groups::group_coordinator>(
      **offsets, group_config,
      [&broker](std::string_view topic, std::int32_t partition) {
        const topic_info* info = broker.topics().find(topic);
        return info != nullptr && partition >= 0 && partition < info->partitions;
      },
      [] { return wall_clock_now().value(); });
  auto loaded = (*offsets)->load(*coordinator);
  if (!loaded) {
    SLUICE_LOG(error, "sluice", "cannot load the consumer groups from {}: {}",
               offsets_log::topic_name, loaded.failure().detail());
    return 1;
  }
  SLUICE_LOG(info, "sluice",
             "consumer groups: {} groups and {} committed offsets loaded from {} partitions of {}",
             coordinator->group_count(), loaded->offsets_loaded, loaded->partitions,
             offsets_log::topic_name);
  broker.set_groups(std::move(*offsets), std::move(coordinator));

  server_config network;
  network.listen.host = options.listen.host;
  network.listen.port = options.listen.port;
  network.connections_max = options.connections_max;
  network.connection.request_bytes_max = options.request_bytes_max;
  auto listening = server::start(**ring, network, [&broker](connection&) {
    return std::unique_ptr<request_handler>(new kafka_handler(broker));
  });
  if (!listening) {
    SLUICE_LOG(error, "sluice", "cannot listen on {}:{}: {}; is another broker running there?",
               options.listen.host, options.listen.port, listening.failure().detail());
    (void)(*manager)->shutdown();
    return 1;
  }
  server& kafka = **listening;
  if (options.advertise.port == 0) broker.set_advertised_port(kafka.port());
  auto stats = (*manager)->stats();
  SLUICE_LOG(info, "sluice",
             "ready: data directory {} holds {} topics, {} partitions ({} recovered); "
             "cluster id {}, node id {}",
             options.data_dir, (*topics)->size(), stats.partitions, stats.partitions_recovered,
             meta->cluster_id, options.node_id);
  SLUICE_LOG(info, "sluice", "listening on {}:{} (advertised as {}:{})", options.listen.host,
             kafka.port(), broker.identity().advertised_host, broker.identity().advertised_port);

  // Time-driven storage work needs no finer grain than this; ticking after every reactor
  // turn would walk every partition thousands of times a second under load.
  constexpr auto tick_interval = std::chrono::milliseconds(10);
  auto last_tick = std::chrono::steady_clock::now() - tick_interval;
  auto tick = [&] {
    auto now = std::chrono::steady_clock::now();
    if (now - last_tick < tick_interval) return;
    last_tick = now;
    (*manager)->tick(wall_clock_now());
    broker.tick();
  };
  while (signals.received() == 0) {
    (*ring)->run_once(std::chrono::milliseconds(100));
    broker.after_reactor_turn();
    tick();
  }
  SLUICE_LOG(info, "sluice", "received {}: stopping the listener and draining {} connections",
             signals.received() == SIGINT ? "SIGINT" : "SIGTERM", kafka.connection_count());
  constexpr auto drain_timeout = std::chrono::seconds(5);
  broker.stop();
  kafka.stop(drain_timeout);
  // Bounded by the drain timeout (connections still busy then are closed), plus the time
  // the kernel takes to return the cancelled operations.
  auto give_up = std::chrono::steady_clock::now() + drain_timeout + std::chrono::seconds(5);
  while (!(kafka.stopped() && broker.idle()) && std::chrono::steady_clock::now() < give_up) {
    (*ring)->run_once(std::chrono::milliseconds(10));
    broker.after_reactor_turn();
    tick();
  }
  if (!kafka.stopped()) {
    SLUICE_LOG(warn, "sluice", "connections did not finish draining; closing them");
  }
  SLUICE_LOG(info, "sluice", "flushing the logs");
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
