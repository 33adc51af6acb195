// The `sluice` binary: a single-node Kafka broker.
//
// It opens (and after a crash, recovers) the data directory, loads the topics, listens
// for Kafka clients, and drives everything from one io_uring reactor per core (`--cores`,
// broker/cores.h): sockets, disk writes and syncs, fetch deadlines, and -- every few
// milliseconds -- time-based flushes, rolls, retention and checkpoints. Core 0 runs on
// the main thread and accepts the connections, handing them round-robin to the cores. On SIGINT or
// SIGTERM it stops accepting, answers the requests in flight (parked fetches answer at once), waits
// for the connections to drain (bounded), flushes everything and writes the clean-shutdown marker.
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <latch>
#include <thread>
#include <variant>
#include <vector>

#include "broker/broker_context.h"
#include "broker/cores.h"
#include "broker/groups/group_coordinator.h"
#include "broker/groups/offsets_log.h"
#include "broker/kafka_handler.h"
#include "broker/meta_properties.h"
#include "broker/options.h"
#include "broker/topic_registry.h"
#include "engine/base/log.h"
#include "engine/io/disk.h"
#include "engine/io/file.h"
#include "engine/reactor/core_mesh.h"
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

// Servers need many descriptors: every partition holds a few open files. The soft limit
// (often 1024) may be raised to the hard one without privileges; a process that may raise
// the hard limit too (root, CAP_SYS_RESOURCE) takes what the kernel allows (fs.nr_open,
// at most 1,048,576), as Kafka's operators set LimitNOFILE for their brokers.
void raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t before = limit.rlim_cur;
  rlim_t ceiling = 1048576;
  if (auto text = read_small_file("/proc/sys/fs/nr_open", 64)) {
    ceiling = std::min<rlim_t>(ceiling, std::strtoull(text->c_str(), nullptr, 10));
  }
  if (limit.rlim_max < ceiling) {
    rlimit wider{ceiling, ceiling};
    if (::setrlimit(RLIMIT_NOFILE, &wider) == 0) limit = wider;
  }
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  }
  if (limit.rlim_cur != before) {
    SLUICE_LOG(debug, "sluice", "raised the open file limit from {} to {}", before, limit.rlim_cur);
  }
}

// One reactor thread and what it owns (broker/cores.h).
struct core {
  std::uint32_t index = 0;
  std::unique_ptr<reactor> ring;
  std::unique_ptr<uring_disk> io;
  std::unique_ptr<log_manager> manager;
  std::unique_ptr<broker_context> broker;
  std::unique_ptr<core_router> router;
  std::unique_ptr<server> kafka;
  std::thread thread;
  bool failed = false;
  bool shutdown_failed = false;
  // The logs shut down with everything flushed: only then may the marker vouch for them.
  bool stopped_clean = false;
};

// What the cores share while they run. The counters are the phases of a stop, which
// every core passes together: requests drained, logs shut down, messages drained.
struct run_state {
  explicit run_state(std::uint32_t cores) : opened(cores) {}
  std::latch opened;
  std::atomic<bool> aborting{false};
  std::atomic<bool> stopping{false};
  std::atomic<std::uint32_t> drained{0};
  std::atomic<std::uint32_t> shut_down{0};
  std::atomic<std::uint32_t> finished{0};
};

std::uint32_t available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    return static_cast<std::uint32_t>(std::max(1, CPU_COUNT(&set)));
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

// Creates a core's ring, storage and context; on that core's thread.
bool open_core(core& c, const broker_options& options, std::uint32_t cores, data_directory& dir,
               core_mesh& mesh, topic_catalog& catalog, std::vector<broker_context*>& contexts,
               const broker_identity& identity) {
  auto ring = reactor::create(reactor_config{});
  if (!ring) return false;  // create() logged what the operator can do
  c.ring = std::move(*ring);
  mesh.attach(c.index, *c.ring);
  c.io = std::make_unique<uring_disk>(*c.ring);
  log_manager_config storage;
  storage.data_dir = options.data_dir;
  storage.defaults = options.log;
  storage.open_partitions_max = options.open_partitions_max == 0
                                    ? 0
                                    : std::max<std::size_t>(1, options.open_partitions_max / cores);
  storage.cleaner.enabled = options.log_cleaner_enable;
  storage.cleaner.backoff = options.log_cleaner_backoff;
  storage.retention_check_interval = options.retention_check_interval;
  storage.shared = &dir;
  storage.shard.index = c.index;
  storage.shard.count = cores;
  storage.shard.owns = [index = c.index, cores](const topic_partition& tp) {
    return partition_owner(tp.topic, tp.partition, cores) == index;
  };
  auto manager = log_manager::open(storage, *c.io);
  if (!manager) {
    SLUICE_LOG(error, "sluice", "core {}: cannot open data directory {}: {}", c.index,
               options.data_dir, manager.failure().detail());
    return false;
  }
  c.manager = std::move(*manager);
  c.broker = std::make_unique<broker_context>(*c.ring, *c.manager, catalog, identity);
  c.router = std::make_unique<core_router>(mesh, c.index, contexts);
  if (cores > 1) c.broker->set_router(c.router.get());
  contexts[c.index] = c.broker.get();
  return true;
}

// One reactor turn of a core, and its periodic work.
class core_loop {
 public:
  core_loop(core& c, core_mesh& mesh) : c_(c), mesh_(mesh) {}
  void turn(std::chrono::milliseconds wait) {
    c_.ring->run_once(wait);
    // Topics created on core 0 are seen by the tasks that follow (a produce forwarded to
    // this core for a partition of a topic just created).
    if (c_.broker) c_.broker->refresh_topics();
    mesh_.drain(c_.index);
    if (c_.broker) c_.broker->after_reactor_turn();
    // Time-driven storage work needs no finer grain than this; ticking after every
    // reactor turn would walk every partition thousands of times a second under load.
    constexpr auto tick_interval = std::chrono::milliseconds(10);
    auto now = std::chrono::steady_clock::now();
    if (now - last_tick_ < tick_interval) return;
    last_tick_ = now;
    if (c_.manager && !shut_down_) c_.manager->tick(wall_clock_now());
    // After the shutdown the logs are closed, and core 0 must not call into a core that
    // may have finished (a registry tick removing logs would wait for it forever).
    if (c_.broker && !shut_down_) c_.broker->tick();
  }
  void mark_shut_down() { shut_down_ = true; }

 private:
  core& c_;
  core_mesh& mesh_;
  std::chrono::steady_clock::time_point last_tick_{};
  bool shut_down_ = false;
};

// A core's stop, in step with the others: answer and drain its connections (while still
// serving the other cores' requests for its partitions), shut its logs down once every
// core has drained, and drain the messages that the shutdown's last completions send.
void stop_core(core& c, core_mesh& mesh, run_state& state, std::uint32_t cores) {
  core_loop loop(c, mesh);
  SLUICE_LOG(info, "sluice", "core {}: stopping; it owns {} partitions and served {} connections",
             c.index, c.manager->stats().partitions,
             c.kafka ? c.kafka->metrics().connections_accepted : 0);
  constexpr auto drain_timeout = std::chrono::seconds(5);
  c.broker->stop();
  if (c.kafka) c.kafka->stop(drain_timeout);
  auto give_up = std::chrono::steady_clock::now() + drain_timeout + std::chrono::seconds(5);
  auto quiet = [&] {
    return (!c.kafka || c.kafka->stopped()) && c.broker->idle() &&
           c.broker->forwarded_waiting() == 0;
  };
  while (!quiet() && std::chrono::steady_clock::now() < give_up) {
    loop.turn(std::chrono::milliseconds(10));
  }
  if (!quiet()) {
    SLUICE_LOG(warn, "sluice", "core {}: connections did not finish draining; closing them",
               c.index);
  }
  state.drained.fetch_add(1);
  while (state.drained.load() < cores && std::chrono::steady_clock::now() < give_up) {
    loop.turn(std::chrono::milliseconds(1));
  }
  if (auto stopped = c.manager->shutdown(); !stopped) {
    SLUICE_LOG(error, "sluice",
               "core {}: shutdown incomplete: {}; the next start will recover "
               "the logs",
               c.index, stopped.failure().detail());
    c.shutdown_failed = true;
  }
  c.stopped_clean = !c.shutdown_failed && c.manager->stopped_clean();
  loop.mark_shut_down();
  state.shut_down.fetch_add(1);
  auto last = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (state.shut_down.load() < cores && std::chrono::steady_clock::now() < last) {
    loop.turn(std::chrono::milliseconds(1));
  }
  while (mesh.pending(c.index) && std::chrono::steady_clock::now() < last) {
    loop.turn(std::chrono::milliseconds(0));
  }
  state.finished.fetch_add(1);
  while (state.finished.load() < cores && std::chrono::steady_clock::now() < last) {
    loop.turn(std::chrono::milliseconds(1));
  }
  mesh.drain(c.index);
}

// The thread of core 1..N-1.
void run_other_core(core& c, const broker_options& options, std::uint32_t cores,
                    data_directory& dir, core_mesh& mesh, topic_catalog& catalog,
                    std::vector<broker_context*>& contexts, const broker_identity& identity,
                    run_state& state) {
  // "sluice-core-N" in ps and /proc/<pid>/task/*/comm (15 characters at most).
  const std::string name = "sluice-core-" + std::to_string(c.index);
  (void)::pthread_setname_np(::pthread_self(), name.c_str());
  c.failed = !open_core(c, options, cores, dir, mesh, catalog, contexts, identity);
  state.opened.count_down();
  if (c.failed) return;
  core_loop loop(c, mesh);
  while (!state.stopping.load() && !state.aborting.load()) {
    loop.turn(std::chrono::milliseconds(100));
  }
  if (state.aborting.load()) {
    (void)c.manager->shutdown();
  } else {
    stop_core(c, mesh, state, cores);
  }
  if (c.shutdown_failed) return;  // I/O may be in flight: main() leaves with _Exit
  // On this thread: the ring allows (un)registering buffers from its own thread only.
  c.kafka.reset();
  c.broker.reset();
  c.manager.reset();
}

int run(const broker_options& options) {
  set_log_level(options.level);
  raise_descriptor_limit();
  // Blocked before any core's thread starts (threads inherit the mask), so SIGINT and
  // SIGTERM reach only core 0's signalfd instead of killing the process on another thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  if (::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr) != 0) {
    SLUICE_LOG(error, "sluice", "cannot block SIGINT/SIGTERM for the signalfd");
    return 1;
  }
  const std::uint32_t cores = options.cores == 0 ? std::min(available_cpus(), core_mesh::cores_max)
                                                 : static_cast<std::uint32_t>(options.cores);
  auto dir = data_directory::claim(options.data_dir);
  if (!dir) {
    SLUICE_LOG(error, "sluice", "cannot open data directory {}: {}", options.data_dir,
               dir.failure().detail());
    return 1;
  }
  auto meta = load_or_create_meta_properties(options.data_dir, options.node_id);
  if (!meta) {
    SLUICE_LOG(error, "sluice", "cannot read or write {}/meta.properties: {}", options.data_dir,
               meta.failure().detail());
    return 1;
  }
  auto mesh = core_mesh::create(cores);
  if (!mesh) {
    SLUICE_LOG(error, "sluice", "cannot set up {} cores: {}", cores, mesh.failure().detail());
    return 1;
  }
  broker_identity identity;
  identity.node_id = options.node_id;
  identity.advertised_host = options.advertise.host;
  identity.advertised_port = options.advertise.port;
  identity.cluster_id = meta->cluster_id;
  identity.auto_create_topics = options.auto_create_topics;
  identity.default_partitions = options.default_partitions;

  topic_catalog catalog;
  std::vector<broker_context*> contexts(cores, nullptr);
  std::vector<core> all(cores);
  for (std::uint32_t k = 0; k < cores; ++k) all[k].index = k;
  run_state state(cores);
  for (std::uint32_t k = 1; k < cores; ++k) {
    all[k].thread = std::thread(run_other_core, std::ref(all[k]), std::cref(options), cores,
                                std::ref(**dir), std::ref(**mesh), std::ref(catalog),
                                std::ref(contexts), std::cref(identity), std::ref(state));
  }
  core& home = all[0];
  // Every other core runs while core 0 sets up (the registry creates and configures
  // logs on their owners); on any failure they are told to stop, and joined.
  auto abort_all = [&](int code) {
    state.aborting = true;
    for (std::uint32_t k = 1; k < cores; ++k) {
      if (all[k].thread.joinable()) all[k].thread.join();
    }
    if (home.manager) (void)home.manager->shutdown();
    return code;
  };
  home.failed = !open_core(home, options, cores, **dir, **mesh, catalog, contexts, identity);
  state.opened.count_down();
  state.opened.wait();
  for (const auto& c : all) {
    if (c.failed) return abort_all(1);
  }
  if (auto finished = (*dir)->finish_open(cores); !finished) {
    SLUICE_LOG(error, "sluice", "cannot finish opening {}: {}", options.data_dir,
               finished.failure().detail());
    return abort_all(1);
  }
  signal_watch signals;
  if (!signals.arm(*home.ring)) {
    SLUICE_LOG(error, "sluice", "cannot watch SIGINT/SIGTERM: {}", std::strerror(errno));
    return abort_all(1);
  }
  auto topics = topic_registry::open(
      options.data_dir, std::make_unique<sharded_log_set>(*home.router), options.log, &catalog);
  if (!topics) {
    SLUICE_LOG(error, "sluice", "cannot load the topics of {}: {}", options.data_dir,
               topics.failure().detail());
    return abort_all(1);
  }
  broker_context& broker = *home.broker;
  broker.set_registry(topics->get());
  broker.refresh_topics();
  auto producer_ids = producer_id_allocator::open(options.data_dir);
  if (!producer_ids) {
    SLUICE_LOG(error, "sluice", "cannot read the producer id block of {}: {}; fix or remove {}/{}",
               options.data_dir, producer_ids.failure().detail(), options.data_dir,
               producer_id_allocator::file_name);
    return abort_all(1);
  }
  broker.set_producer_ids(std::move(*producer_ids));

  // Consumer groups: the offsets log, then the coordinator, rebuilt from the log before
  // the first client is served. Both on core 0, which owns __consumer_offsets.
  auto offsets = offsets_log::open(broker, options.offsets_topic_partitions);
  if (!offsets) {
    SLUICE_LOG(error, "sluice", "cannot open the internal topic {} in {}: {}",
               offsets_log::topic_name, options.data_dir, offsets.failure().detail());
    return abort_all(1);
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
        const topic_info* info = broker.table().find(topic);
        return info != nullptr && partition >= 0 && partition < info->partitions;
      },
      [] { return wall_clock_now().value(); });
  auto loaded = (*offsets)->load(*coordinator);
  if (!loaded) {
    SLUICE_LOG(error, "sluice", "cannot load the consumer groups from {}: {}",
               offsets_log::topic_name, loaded.failure().detail());
    return abort_all(1);
  }
  SLUICE_LOG(info, "sluice",
             "consumer groups: {} groups and {} committed offsets loaded from {} partitions of {}",
             coordinator->group_count(), loaded->offsets_loaded, loaded->partitions,
             offsets_log::topic_name);
  broker.set_groups(std::move(*offsets), std::move(coordinator));

  server_config network;
  network.listen.host = options.listen.host;
  network.listen.port = options.listen.port;
  // Kafka's max.connections is for the broker: each core takes its share.
  network.connections_max = std::max<std::size_t>(1, (options.connections_max + cores - 1) / cores);
  network.connection.request_bytes_max = options.request_bytes_max;
  auto make_handler = [](broker_context& b) {
    return [&b](connection&) { return std::unique_ptr<request_handler>(new kafka_handler(b)); };
  };
  auto listening = server::start(*home.ring, network, make_handler(broker));
  if (!listening) {
    SLUICE_LOG(error, "sluice", "cannot listen on {}:{}: {}; is another broker running there?",
               options.listen.host, options.listen.port, listening.failure().detail());
    return abort_all(1);
  }
  home.kafka = std::move(*listening);
  const std::int32_t advertised_port =
      options.advertise.port == 0 ? home.kafka->port() : options.advertise.port;
  broker.set_advertised_port(advertised_port);
  // The other cores serve the connections core 0 hands them, round-robin.
  for (std::uint32_t k = 1; k < cores; ++k) {
    core* target = &all[k];
    home.router->run_on(k, [target, network, advertised_port, make_handler](broker_context& b) {
      b.set_advertised_port(advertised_port);
      server_config local = network;
      local.listen_enabled = false;
      auto started = server::start(*target->ring, local, make_handler(b));
      if (!started) {
        SLUICE_LOG(error, "sluice", "core {}: cannot start serving connections: {}", target->index,
                   started.failure().detail());
        return;
      }
      target->kafka = std::move(*started);
    });
  }
  if (cores > 1) {
    home.kafka->set_hand_off([&all, &home, cores, next = std::uint32_t{0}](int fd) mutable {
      next = (next + 1) % cores;
      if (next == 0) return false;
      core* target = &all[next];
      home.router->run_on(next, [target, fd](broker_context&) {
        if (target->kafka) {
          target->kafka->adopt(fd);
        } else {
          ::close(fd);
        }
      });
      return true;
    });
  }
  std::size_t partitions = 0;
  std::size_t recovered = 0;
  for (std::uint32_t k = 0; k < cores; ++k) {
    // Read after the cores opened (the latch orders it); stats() only reads counters.
    auto stats = all[k].manager->stats();
    partitions += stats.partitions;
    recovered += stats.partitions_recovered;
  }
  SLUICE_LOG(info, "sluice",
             "ready: data directory {} holds {} topics, {} partitions ({} recovered) on {} "
             "cores; cluster id {}, node id {}",
             options.data_dir, (*topics)->size(), partitions, recovered, cores, meta->cluster_id,
             options.node_id);
  SLUICE_LOG(info, "sluice", "listening on {}:{} (advertised as {}:{})", options.listen.host,
             home.kafka->port(), broker.identity().advertised_host,
             broker.identity().advertised_port);

  core_loop loop(home, **mesh);
  while (signals.received() == 0) loop.turn(std::chrono::milliseconds(100));
  std::size_t connections = home.kafka->connection_count();
  SLUICE_LOG(info, "sluice",
             "received {}: stopping the listener and draining the connections "
             "({} on core 0)",
             signals.received() == SIGINT ? "SIGINT" : "SIGTERM", connections);
  state.stopping = true;
  // Wake the other cores out of their wait.
  for (std::uint32_t k = 1; k < cores; ++k) home.router->run_on(k, [](broker_context&) {});
  SLUICE_LOG(info, "sluice", "flushing the logs");
  stop_core(home, **mesh, state, cores);
  bool clean = !home.shutdown_failed;
  for (std::uint32_t k = 1; k < cores; ++k) {
    all[k].thread.join();
    clean = clean && !all[k].shutdown_failed;
  }
  if (!clean) {
    // I/O may still be in flight into the logs' memory: leave without running
    // destructors; the kernel closes the rings and the files.
    std::_Exit(1);
  }
  bool every_log_flushed = home.stopped_clean;
  for (std::uint32_t k = 1; k < cores; ++k)
    every_log_flushed = every_log_flushed && all[k].stopped_clean;
  if (!every_log_flushed) {
    SLUICE_LOG(warn, "sluice",
               "some partitions were not fully flushed at the stop (logged above); "
               "no clean-shutdown marker, so the next start checks the logs");
    return 0;
  }
  if (auto marked = (*dir)->mark_clean_shutdown(); !marked) {
    SLUICE_LOG(error, "sluice",
               "cannot write the clean-shutdown marker in {}: {}; the next start "
               "will check the logs",
               options.data_dir, marked.failure().detail());
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
