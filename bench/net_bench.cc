// Loopback request/response round trips through the network engine: one client thread
// with a blocking socket, one server thread running the reactor and an echo handler.
// The time per iteration is one round trip (write a frame, read its answer), so it shows
// the engine's latency floor: two io_uring completions (receive, send) plus the
// loopback TCP path and two thread wake-ups.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "engine/reactor/reactor.h"
#include "net/server.h"

namespace sluice {
namespace {

class echo_back final : public request_handler {
 public:
  void on_frame(connection& from, std::span<const std::byte> frame) noexcept override {
    outgoing_frame out;
    out.append(frame);
    from.reserve_response().respond(std::move(out));
  }
};

// A server on 127.0.0.1 with its reactor on its own thread.
class loopback_server {
 public:
  loopback_server() {
    thread_ = std::thread([this] { run(); });
    // Bounded: the server thread sets the port or fails within a few milliseconds.
    for (int i = 0; i < 5000 && port_.load() == 0 && !failed_.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~loopback_server() {
    stop_ = true;
    thread_.join();
  }
  std::uint16_t port() const { return port_.load(); }

 private:
  void run() {
    // The ring is created on the thread that drives it (IORING_SETUP_SINGLE_ISSUER).
    auto ring = reactor::create(reactor_config{.ring_entries = 256});
    if (!ring.ok()) {
      failed_ = true;
      return;
    }
    server_config config;
    config.listen.host = "127.0.0.1";
    config.listen.port = 0;
    auto made =
        server::start(**ring, config, [](connection&) { return std::make_unique<echo_back>(); });
    if (!made.ok()) {
      failed_ = true;
      return;
    }
    port_ = (*made)->port();
    while (!stop_.load()) (*ring)->run_once(std::chrono::milliseconds(1));
    (*made)->stop(std::chrono::milliseconds(0));
    (*ring)->run_until([&] { return (*made)->stopped(); }, std::chrono::seconds(5));
  }

  std::thread thread_;
  std::atomic<std::uint16_t> port_{0};
  std::atomic<bool> failed_{false};
  std::atomic<bool> stop_{false};
};

bool write_all(int fd, const std::byte* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool read_exact(int fd, std::byte* out, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::recv(fd, out, size, 0);
    if (n <= 0) return false;
    out += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

void BM_net_round_trip(benchmark::State& state) {
  const auto payload_bytes = static_cast<std::size_t>(state.range(0));
  loopback_server server;
  if (server.port() == 0) {
    state.SkipWithError("the server did not start (io_uring unavailable?)");
    return;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(server.port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    state.SkipWithError("connect failed");
    return;
  }
  std::vector<std::byte> request(4 + payload_bytes, std::byte{0x5a});
  const auto size = static_cast<std::uint32_t>(payload_bytes);
  request[0] = std::byte(size >> 24);
  request[1] = std::byte(size >> 16);
  request[2] = std::byte(size >> 8);
  request[3] = std::byte(size);
  std::vector<std::byte> answer(request.size());
  for (auto _ : state) {
    if (!write_all(fd, request.data(), request.size()) ||
        !read_exact(fd, answer.data(), answer.size())) {
      state.SkipWithError("round trip failed");
      break;
    }
    benchmark::DoNotOptimize(answer.data());
  }
  ::close(fd);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(2 * request.size()));
}
BENCHMARK(BM_net_round_trip)->Arg(64)->Arg(4096)->Arg(64 * 1024)->Arg(1024 * 1024)->UseRealTime();

}  // namespace
}  // namespace sluice
