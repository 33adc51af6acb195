#include "engine/reactor/reactor.h"

#include <cerrno>
#include <cstring>
#include <new>

#include "engine/base/assert.h"
#include "engine/base/log.h"

namespace sluice {
namespace {

// The kernel's IORING_MAX_ENTRIES. Asking for more fails with EINVAL, which we would
// otherwise report as "flags not supported"; checking first gives a precise message.
constexpr unsigned ring_entries_max = 32768;

// Setup flags, best first. One thread submits (SINGLE_ISSUER, 6.0+), and completions
// run when that thread enters the kernel anyway instead of by interrupting it
// (COOP_TASKRUN, 5.19+). TASKRUN_FLAG makes the kernel raise IORING_SQ_TASKRUN while such
// deferred work waits, so a run_once() that does not wait still knows to enter the kernel
// and collect it. Kernels that lack a flag reject it with EINVAL; the last entry is what
// every supported kernel (5.15+) accepts.
constexpr unsigned setup_flag_choices[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    0,
};

// Turns a failed io_uring_setup into an error an operator can act on. Details are string
// literals, as sluice::error requires.
error setup_error(int negative_errno) noexcept {
  switch (-negative_errno) {
    case ENOSYS:
      return error(errc::io_error,
                   "io_uring is not available: kernel too old (need Linux 5.15+) or disabled",
                   ENOSYS);
    case EPERM:
    case EACCES:
      return error(errc::io_error,
                   "io_uring is blocked: check sysctl kernel.io_uring_disabled and any seccomp "
                   "profile (Docker's default profile blocks io_uring)",
                   -negative_errno);
    case ENOMEM:
      return error(errc::io_error,
                   "io_uring ring could not be allocated: raise RLIMIT_MEMLOCK (ulimit -l) or "
                   "lower ring_entries",
                   ENOMEM);
    case EMFILE:
    case ENFILE:
      return error(errc::io_error,
                   "io_uring ring needs a file descriptor: raise the open-file limit (ulimit -n)",
                   -negative_errno);
    case EINVAL:
      return error(errc::invalid_argument,
                   "io_uring rejected the ring parameters: kernel too old (need Linux 5.15+) or "
                   "ring_entries out of range",
                   EINVAL);
    default: return error_from_errno(negative_errno, "io_uring ring could not be created");
  }
}

int init_ring(io_uring* ring, unsigned entries, unsigned extra_flags) noexcept {
  io_uring_params params;
  std::memset(&params, 0, sizeof(params));
  params.flags = IORING_SETUP_CQSIZE | extra_flags;
  // Twice the SQ: completions of one full submission plus long-lived (multishot,
  // timer) operations fit without spilling into the kernel's overflow list.
  params.cq_entries = 2 * entries;
  return io_uring_queue_init_params(entries, ring, &params);
}

// Errors of io_uring_enter that mean "not now" rather than "this program is wrong".
bool transient_enter_error(int negative_errno) noexcept {
  switch (-negative_errno) {
    case EAGAIN:  // the kernel could not allocate requests; retry later
    case EBUSY:   // completion overflow could not be flushed; reap first
    case EINTR:   // a signal arrived while waiting
    case ETIME:   // the wait timed out
    case ENOMEM: return true;
    default: return false;
  }
}

void check_enter_result(int rc) noexcept {
  // EBADF, EFAULT, EINVAL, EEXIST (a second thread submitting to a SINGLE_ISSUER ring),
  // ENXIO (ring torn down): every other failure is a bug in how the ring is used.
  SLUICE_ASSERT(rc >= 0 || transient_enter_error(rc), "io_uring_enter failed unexpectedly");
}

}  // namespace

result<std::unique_ptr<reactor>> reactor::create(const reactor_config& config) {
  if (config.ring_entries == 0 || config.ring_entries > ring_entries_max) {
    error failure(errc::invalid_argument, "reactor ring_entries must be between 1 and 32768");
    SLUICE_LOG(error, "reactor", "{} (asked for {})", failure.detail(), config.ring_entries);
    return failure;
  }
  std::unique_ptr<reactor> made(new (std::nothrow) reactor());
  if (!made) return error(errc::io_error, "out of memory creating the reactor", ENOMEM);

  int rc = -EINVAL;
  for (unsigned flags : setup_flag_choices) {
    rc = init_ring(&made->ring_, config.ring_entries, flags);
    if (rc != -EINVAL) break;
  }
  if (rc < 0) {
    // The ring was never set up, so the destructor must not tear it down.
    made->ring_.ring_fd = -1;
    error failure = setup_error(rc);
    SLUICE_LOG(error, "reactor", "{} (errno {}: {})", failure.detail(), -rc, std::strerror(-rc));
    return failure;
  }
  return made;
}

reactor::~reactor() {
  if (ring_.ring_fd >= 0) io_uring_queue_exit(&ring_);
}

io_uring_sqe* reactor::prepare(completion* done) noexcept {
  SLUICE_ASSERT(done != nullptr, "prepare() needs a completion to dispatch to");
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    // The submission queue is full: hand it to the kernel to make room. One retry is
    // enough, since a successful submit consumes the whole queue. (So a chain of
    // IOSQE_IO_LINK entries must be prepared with io_uring_sq_space_left() in mind: a
    // submit in its middle would cut the chain.)
    check_enter_result(io_uring_submit(&ring_));
    sqe = io_uring_get_sqe(&ring_);
  }
  SLUICE_ASSERT(sqe != nullptr, "io_uring submission queue still full after a submit");
  // io_uring_get_sqe does not clear the entry: a field left from an earlier operation
  // (flags, ioprio, buf_index) would silently change this one.
  std::memset(sqe, 0, sizeof(*sqe));
  io_uring_sqe_set_data(sqe, done);
  ++in_flight_;
  return sqe;
}

unsigned reactor::submit() noexcept {
  int rc = io_uring_submit(&ring_);
  check_enter_result(rc);
  return rc > 0 ? static_cast<unsigned>(rc) : 0;
}

unsigned reactor::run_once(std::chrono::microseconds max_wait) noexcept {
  if (max_wait.count() > 0 && io_uring_cq_ready(&ring_) == 0) {
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(max_wait);
    __kernel_timespec wait{};
    wait.tv_sec = seconds.count();
    wait.tv_nsec = std::chrono::duration_cast<std::chrono::nanoseconds>(max_wait - seconds).count();
    io_uring_cqe* first = nullptr;
    // -ETIME and -EINTR mean nothing became ready in time; the drain below finds nothing.
    int rc = io_uring_submit_and_wait_timeout(&ring_, &first, 1, &wait, nullptr);
    check_enter_result(rc);
  } else {
    check_enter_result(io_uring_submit(&ring_));
  }

  // CQEs are copied out and the CQ head advanced before any completion runs. A completion
  // may prepare() from inside complete() -- and prepare() may submit -- or even call
  // run_once() again; neither may see a CQE that is about to be dispatched here.
  struct ready {
    completion* done;
    int res;
    std::uint32_t flags;
  };
  constexpr unsigned batch_max = 64;
  ready batch[batch_max];
  // Bound one call to one CQ ring's worth, so a stream of completions that re-arm
  // themselves cannot keep the loop here forever.
  const unsigned dispatch_max = ring_.cq.ring_entries;
  unsigned dispatched = 0;
  bool flushed = false;
  while (dispatched < dispatch_max) {
    unsigned head = 0;
    unsigned seen = 0;
    unsigned count = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if (count == batch_max || dispatched + count == dispatch_max) break;
      ++seen;
      // Kernels without IORING_FEAT_EXT_ARG (before 5.11) make liburing time waits with
      // its own timeout SQE; its CQE is not ours.
      if (cqe->user_data == LIBURING_UDATA_TIMEOUT) continue;
      batch[count++] = {static_cast<completion*>(io_uring_cqe_get_data(cqe)), cqe->res, cqe->flags};
    }
    io_uring_cq_advance(&ring_, seen);
    if (seen == 0) {
      // The CQ is empty, but the kernel may hold completions it could not post: in its
      // overflow list (the CQ was full) or as deferred task work (COOP_TASKRUN). Entering
      // the kernel once posts them.
      const unsigned pending =
          IO_URING_READ_ONCE(*ring_.sq.kflags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN);
      if (pending == 0 || flushed) break;
      flushed = true;
      check_enter_result(io_uring_get_events(&ring_));
      continue;
    }
    for (unsigned i = 0; i < count; ++i) {
      if ((batch[i].flags & IORING_CQE_F_MORE) == 0) {
        SLUICE_ASSERT(in_flight_ > 0, "a completion arrived for an operation never prepared");
        --in_flight_;
      }
      batch[i].done->complete(batch[i].res, batch[i].flags);
    }
    dispatched += count;
  }
  // Completions often prepare the next operation (the next queued write, the next sync,
  // a re-armed receive). Hand it to the kernel now rather than at the next run_once(),
  // so the kernel works on it while the caller does its own work in between.
  if (io_uring_sq_ready(&ring_) > 0) check_enter_result(io_uring_submit(&ring_));
  return dispatched;
}

}  // namespace sluice
