#include "net/listener.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/base/assert.h"
#include "engine/base/log.h"

namespace sluice {
namespace {

// Closes a descriptor on every early return of open().
struct fd_closer {
  int fd;
  ~fd_closer() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

result<std::unique_ptr<listener>> listener::open(reactor& ring, const listener_config& config,
                                                 observer& to, net_metrics& metrics) {
  addrinfo hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  const std::string port_text = std::to_string(config.port);
  addrinfo* found = nullptr;
  const int gai = ::getaddrinfo(config.host.empty() ? nullptr : config.host.c_str(),
                                port_text.c_str(), &hints, &found);
  if (gai != 0 || found == nullptr) {
    SLUICE_LOG(error, "net", "cannot resolve listen address {}: {}", config.host,
               ::gai_strerror(gai));
    return error(errc::invalid_argument, "listen address does not resolve");
  }
  // The first address the resolver prefers; a host name with several gets one listener.
  const int family = found->ai_family;
  sockaddr_storage address;
  std::memset(&address, 0, sizeof(address));
  std::memcpy(&address, found->ai_addr, found->ai_addrlen);
  const socklen_t address_bytes = found->ai_addrlen;
  ::freeaddrinfo(found);

  fd_closer socket_fd{::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (socket_fd.fd < 0) return error_from_errno(-errno, "cannot create the listening socket");
  const int on = 1;
  // A restarted broker must rebind its port while old connections sit in TIME_WAIT.
  ::setsockopt(socket_fd.fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  if (::bind(socket_fd.fd, reinterpret_cast<const sockaddr*>(&address), address_bytes) != 0) {
    const int bind_errno = errno;
    SLUICE_LOG(error, "net", "cannot bind {}:{}: {}", config.host, config.port,
               std::strerror(bind_errno));
    return error_from_errno(-bind_errno, "cannot bind the listen address");
  }
  if (::listen(socket_fd.fd, config.backlog) != 0) {
    return error_from_errno(-errno, "cannot listen on the socket");
  }
  sockaddr_storage bound;
  socklen_t bound_bytes = sizeof(bound);
  if (::getsockname(socket_fd.fd, reinterpret_cast<sockaddr*>(&bound), &bound_bytes) != 0) {
    return error_from_errno(-errno, "cannot read the bound address");
  }
  std::uint16_t port = 0;
  if (bound.ss_family == AF_INET6) {
    port = ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
  } else {
    port = ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  }

  std::unique_ptr<listener> made(new (std::nothrow)
                                     listener(ring, config, to, metrics, socket_fd.fd));
  if (!made) return error(errc::io_error, "out of memory creating the listener", ENOMEM);
  socket_fd.fd = -1;
  made->port_ = port;
  return made;
}

listener::listener(reactor& ring, const listener_config& config, observer& to, net_metrics& metrics,
                   int fd) noexcept
    : reactor_(ring),
      config_(config),
      observer_(to),
      metrics_(metrics),
      fd_(fd),
      retry_(ring, [this] {
        if (!stopping_ && !accept_armed_) arm_accept();
      }) {
  accept_op_.owner = this;
  cancel_op_.owner = this;
}

listener::~listener() {
  SLUICE_ASSERT(idle(), "listener destroyed with operations in the ring: stop() and wait");
  if (fd_ >= 0) ::close(fd_);
}

void listener::start() noexcept {
  SLUICE_ASSERT(!stopping_, "listener started after stop()");
  if (!accept_armed_) arm_accept();
}

void listener::stop() noexcept {
  if (stopping_) return;
  stopping_ = true;
  retry_.cancel();
  if (accept_armed_) {
    io_uring_sqe* sqe = reactor_.prepare(&cancel_op_);
    io_uring_prep_cancel(sqe, &accept_op_, 0);
    ++cancels_in_flight_;
  }
}

void listener::arm_accept() noexcept {
  io_uring_sqe* sqe = reactor_.prepare(&accept_op_);
  // No peer address: with multishot one address buffer would be overwritten by each
  // accept before its completion is read. The server asks getpeername() instead.
  io_uring_prep_multishot_accept(sqe, fd_, nullptr, nullptr, SOCK_CLOEXEC);
  accept_armed_ = true;
}

void listener::accept_op::complete(int res, std::uint32_t flags) noexcept {
  owner->on_accept(res, flags);
}

void listener::cancel_op::complete(int, std::uint32_t) noexcept {
  --owner->cancels_in_flight_;
}

void listener::on_accept(int res, std::uint32_t flags) noexcept {
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (!more) accept_armed_ = false;
  if (res >= 0) {
    failing_ = false;
    if (stopping_) {
      ::close(res);
    } else {
      observer_.on_accept(res);
    }
  } else if (res != -ECANCELED) {
    if (!failing_) {
      // Once per episode: a descriptor shortage produces one failure per retry.
      failing_ = true;
      const bool out_of_descriptors = res == -EMFILE || res == -ENFILE;
      SLUICE_LOG(warn, "net", "accept on port {} failed: {}{}; retrying every {} ms", port_,
                 std::strerror(-res),
                 out_of_descriptors ? " (raise the open-file limit or lower max connections)" : "",
                 config_.accept_retry_ms.count());
    }
  }
  if (more || accept_armed_ || stopping_) return;
  if (res < 0) {
    ++metrics_.accept_backoffs;
    retry_.arm(config_.accept_retry_ms);
  } else {
    arm_accept();
  }
}

}  // namespace sluice
