#include "engine/io/faulty_disk.h"

#include <algorithm>
#include <new>

#include "engine/base/assert.h"

namespace sluice {

// One operation whose outcome the faulty_disk decides. It is the completion of either a
// NOP (an injected failure: reports `injected_res`) or of the inner disk's write of a cut
// iovec array (a short write: reports what that write did). The faulty_disk owns it from
// creation until its completion runs, because the kernel holds its address until then.
struct faulty_disk::injected final : completion {
  faulty_disk* owner = nullptr;
  completion* target = nullptr;
  int injected_res = 0;
  bool report_inner = false;
  // The first bytes of a short write, described by the caller's iovecs cut to size. The
  // kernel may read this array until the write completes, so it lives here.
  std::unique_ptr<iovec[]> cut;

  void complete(int res, std::uint32_t /*flags*/) noexcept override {
    completion* forward_to = target;
    const int forwarded = report_inner ? res : injected_res;
    // Take ownership back from the queue before forwarding: the caller's completion may
    // start new operations (which grow the queue) or check that nothing is left over.
    std::unique_ptr<injected> self;
    auto& queue = owner->injected_;
    // Completions usually arrive in submission order, so the search ends at the front.
    auto found =
        std::find_if(queue.begin(), queue.end(),
                     [this](const std::unique_ptr<injected>& p) { return p.get() == this; });
    SLUICE_ASSERT(found != queue.end(), "faulty_disk completion not owned by its disk");
    self = std::move(*found);
    queue.erase(found);
    forward_to->complete(forwarded, 0);
    // `self` frees this object here; nothing below may touch a member.
  }
};

faulty_disk::faulty_disk(disk& inner) noexcept : inner_(inner) {}

faulty_disk::~faulty_disk() {
  // Freeing an operation the kernel still holds would let its completion write into freed
  // memory. The owner must drive the reactor until its own I/O is done first.
  SLUICE_ASSERT(injected_.empty(), "faulty_disk destroyed with injected operations in flight");
  // A held sync's completion would never run: its owner would wait forever.
  SLUICE_ASSERT(held_.empty(), "faulty_disk destroyed with held syncs; release_syncs() first");
}

void faulty_disk::fail_writes(int negative_errno, std::size_t count) noexcept {
  SLUICE_ASSERT(negative_errno < 0, "fail_writes takes a negative errno");
  write_errno_ = negative_errno;
  write_failures_left_ = count;
}

void faulty_disk::fail_syncs(int negative_errno, std::size_t count) noexcept {
  SLUICE_ASSERT(negative_errno < 0, "fail_syncs takes a negative errno");
  sync_errno_ = negative_errno;
  sync_failures_left_ = count;
}

void faulty_disk::short_write_next(std::size_t bytes) noexcept {
  short_write_bytes_ = bytes;
}

void faulty_disk::heal() noexcept {
  write_errno_ = 0;
  write_failures_left_ = 0;
  sync_errno_ = 0;
  sync_failures_left_ = 0;
  short_write_bytes_.reset();
}

void faulty_disk::hold_syncs() noexcept {
  holding_syncs_ = true;
}

void faulty_disk::release_syncs() noexcept {
  holding_syncs_ = false;
  std::deque<std::pair<int, completion*>> parked;
  parked.swap(held_);
  for (auto [fd, done] : parked) inner_.sync(fd, done);
}

void faulty_disk::write(int fd, file_pos position, std::span<const iovec> buffers,
                        completion* done) noexcept {
  ++writes_;
  // A failure wins over an armed short write, which then applies to the next write.
  if (write_failures_left_ > 0) {
    --write_failures_left_;
    deliver(done, write_errno_);
    return;
  }
  if (short_write_bytes_.has_value()) {
    std::size_t total_bytes = 0;
    for (const iovec& buffer : buffers) total_bytes += buffer.iov_len;
    // A real short write makes progress whenever there is something to write.
    const std::size_t keep_bytes = std::max<std::size_t>(*short_write_bytes_, 1);
    short_write_bytes_.reset();
    if (total_bytes > keep_bytes) {
      auto op = std::unique_ptr<injected>(new (std::nothrow) injected());
      SLUICE_ASSERT(op != nullptr, "out of memory injecting a short write");
      op->cut.reset(new (std::nothrow) iovec[buffers.size()]);
      SLUICE_ASSERT(op->cut != nullptr, "out of memory injecting a short write");
      std::size_t cut_count = 0;
      std::size_t left_bytes = keep_bytes;
      for (const iovec& buffer : buffers) {
        if (left_bytes == 0) break;
        iovec part = buffer;
        part.iov_len = std::min(part.iov_len, left_bytes);
        left_bytes -= part.iov_len;
        op->cut[cut_count++] = part;
      }
      op->owner = this;
      op->target = done;
      op->report_inner = true;
      injected* raw = op.get();
      const iovec* cut = op->cut.get();
      injected_.push_back(std::move(op));
      inner_.write(fd, position, std::span<const iovec>(cut, cut_count), raw);
      return;
    }
  }
  inner_.write(fd, position, buffers, done);
}

void faulty_disk::sync(int fd, completion* done) noexcept {
  ++syncs_;
  if (sync_failures_left_ > 0) {
    --sync_failures_left_;
    deliver(done, sync_errno_);
    return;
  }
  if (holding_syncs_) {
    held_.emplace_back(fd, done);
    return;
  }
  inner_.sync(fd, done);
}

void faulty_disk::deliver(completion* done, int res) noexcept {
  auto op = std::unique_ptr<injected>(new (std::nothrow) injected());
  SLUICE_ASSERT(op != nullptr, "out of memory injecting a failure");
  op->owner = this;
  op->target = done;
  op->injected_res = res;
  // Through the ring, not a direct call: the caller must see the failure from run_once(),
  // exactly when and how a real one would arrive.
  io_uring_prep_nop(inner_.reactor().prepare(op.get()));
  injected_.push_back(std::move(op));
}

}  // namespace sluice
