#include "net/connection.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "engine/base/assert.h"
#include "engine/base/log.h"

namespace sluice {

// The shared part of a response_slot: nulled by the connection's destructor, so a slot
// that outlives its connection knows not to touch it.
struct response_slot::link {
  connection* conn;
};

namespace {

constexpr std::size_t frame_prefix_bytes = 4;
// An assembly buffer grown past this is given back after its frame, so one large request
// does not pin its memory for the life of the connection.
constexpr std::size_t assembly_keep_bytes_max = 1024 * 1024;

std::int32_t read_big_endian_32(const std::byte* p) noexcept {
  const std::uint32_t value =
      (std::to_integer<std::uint32_t>(p[0]) << 24) | (std::to_integer<std::uint32_t>(p[1]) << 16) |
      (std::to_integer<std::uint32_t>(p[2]) << 8) | std::to_integer<std::uint32_t>(p[3]);
  return static_cast<std::int32_t>(value);
}

}  // namespace

// ---- response_slot ----------------------------------------------------------------------

response_slot::response_slot(response_slot&& other) noexcept
    : link_(std::move(other.link_)), sink_(std::move(other.sink_)), sequence_(other.sequence_) {}

response_slot& response_slot::operator=(response_slot&& other) noexcept {
  if (this != &other) {
    release();
    link_ = std::move(other.link_);
    sink_ = std::move(other.sink_);
    sequence_ = other.sequence_;
  }
  return *this;
}

response_slot response_slot::to_sink(std::shared_ptr<response_sink> sink) noexcept {
  response_slot slot;
  slot.sink_ = std::move(sink);
  return slot;
}

response_slot::~response_slot() {
  release();
}

bool response_slot::respond(outgoing_frame frame) noexcept {
  if (sink_) {
    auto sink = std::move(sink_);
    sink->on_response(std::move(frame));
    return true;
  }
  if (!link_) return false;
  connection* conn = link_->conn;
  link_.reset();
  if (conn == nullptr) return false;
  connection::entry_guard guard(conn);
  return conn->fill(sequence_, &frame);
}

void response_slot::release() noexcept {
  if (sink_) {
    auto sink = std::move(sink_);
    sink->on_release();
    return;
  }
  if (!link_) return;
  connection* conn = link_->conn;
  link_.reset();
  if (conn == nullptr) return;
  connection::entry_guard guard(conn);
  conn->fill(sequence_, nullptr);
}

// ---- connection -------------------------------------------------------------------------

connection::connection(reactor& ring, buffer_ring& buffers, connection_owner& owner,
                       net_metrics& metrics, const connection_config& config, int fd,
                       std::string peer) noexcept
    : reactor_(ring),
      buffers_(buffers),
      owner_(owner),
      metrics_(metrics),
      config_(config),
      fd_(fd),
      peer_(std::move(peer)),
      link_(std::make_shared<response_slot::link>(response_slot::link{this})),
      slots_(std::max<std::size_t>(config.in_flight_max, 1)),
      iovecs_(std::max<std::size_t>(config.iovecs_max, 1)) {
  receive_op_.owner = this;
  send_op_.owner = this;
  cancel_op_.owner = this;
  close_op_.owner = this;
}

connection::~connection() {
  // A started connection is destroyed only from its final completion (on_closed_fd).
  SLUICE_ASSERT(!handler_ || (fd_ < 0 && operations_done()),
                "connection destroyed with operations in the ring");
  // Slots still held (by the handler being destroyed below, or elsewhere) become inert.
  link_->conn = nullptr;
  handler_.reset();
  if (fd_ >= 0) ::close(fd_);
}

void connection::start(std::unique_ptr<request_handler> handler) noexcept {
  SLUICE_ASSERT(handler != nullptr, "a connection needs a handler");
  SLUICE_ASSERT(!handler_, "connection started twice");
  handler_ = std::move(handler);
  entry_guard guard(this);
}

response_slot connection::reserve_response() noexcept {
  if (state_ != state::open || in_flight() >= slots_.size()) return {};
  slot& place = slots_[next_sequence_ % slots_.size()];
  SLUICE_ASSERT(place.status == slot_state::released, "response slot reused while taken");
  place.status = slot_state::reserved;
  return response_slot(link_, next_sequence_++);
}

result<void> connection::send(outgoing_frame frame) noexcept {
  if (state_ != state::open) return error(errc::closed, "connection is closing");
  if (queued_bytes_ >= config_.queued_bytes_max) {
    return error(errc::backpressure, "connection send queue is full");
  }
  SLUICE_ASSERT(in_flight() == 0, "send() mixed with reserved response slots");
  entry_guard guard(this);
  frame.seal();
  queued_bytes_ += frame.wire_bytes();
  metrics_.queued_bytes_peak = std::max(metrics_.queued_bytes_peak, queued_bytes_);
  send_queue_.push_back(std::move(frame));
  return {};
}

void connection::close() noexcept {
  entry_guard guard(this);
  begin_close();
}

void connection::drain() noexcept {
  if (state_ != state::open) return;
  entry_guard guard(this);
  state_ = state::draining;
  // Requests received but not yet handed over are dropped: the client resends them to
  // whichever broker takes over.
  pending_input_.clear();
  if (handler_) handler_->on_stopping(*this);
}

bool connection::over_bounds() const noexcept {
  return in_flight() >= slots_.size() || queued_bytes_ >= config_.queued_bytes_max;
}

bool connection::operations_done() const noexcept {
  return !receive_armed_ && !send_in_flight_ && cancels_in_flight_ == 0;
}

// ---- receiving --------------------------------------------------------------------------

void connection::receive_op::complete(int res, std::uint32_t flags) noexcept {
  owner->on_receive(res, flags);
}

void connection::arm_receive() noexcept {
  io_uring_sqe* sqe = reactor_.prepare(&receive_op_);
  // Length 0: each completion fills (part of) one buffer of the group, whatever its size.
  io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = buffers_.group_id();
  receive_armed_ = true;
  receive_cancel_sent_ = false;
}

void connection::on_receive(int res, std::uint32_t flags) noexcept {
  entry_guard guard(this);
  if ((flags & IORING_CQE_F_MORE) == 0) {
    receive_armed_ = false;
    receive_cancel_sent_ = false;
  }
  if ((flags & IORING_CQE_F_BUFFER) != 0) {
    const auto id = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    buffers_.note_delivered(id);
    if (res > 0) {
      metrics_.bytes_received += static_cast<std::uint64_t>(res);
      auto bytes = buffers_.bytes(id, static_cast<std::size_t>(res));
      if (pending_input_.empty()) {
        consume(bytes);
      } else if (state_ == state::open) {
        // Older bytes wait in pending_input_: keep the order.
        pending_input_.insert(pending_input_.end(), bytes.begin(), bytes.end());
      }
    }
    // The frames in it were handed over or copied: the buffer goes back at once.
    buffers_.recycle(id);
    return;
  }
  if (res == 0) {
    // The peer closed its side. A Kafka client that closes wants no more responses.
    begin_close();
  } else if (res == -ENOBUFS) {
    // The pool ran dry; settle() re-arms, by which time this batch has recycled buffers.
    ++metrics_.receive_no_buffers;
  } else if (res < 0 && res != -ECANCELED) {
    SLUICE_LOG(debug, "net", "receive from {} failed: {}", peer_, std::strerror(-res));
    begin_close();
  }
}

// Cuts `bytes` into frames. Stops (keeping the rest in pending_input_) when a bound is
// hit, and drops everything once the connection is no longer open.
void connection::consume(std::span<const std::byte> bytes) noexcept {
  // Each pass consumes at least one byte or returns: bounded by bytes.size().
  while (!bytes.empty()) {
    if (state_ != state::open) return;
    if (over_bounds()) {
      pending_input_.insert(pending_input_.end(), bytes.begin(), bytes.end());
      return;
    }
    if (size_prefix_have_ < frame_prefix_bytes) {
      const std::size_t take = std::min(frame_prefix_bytes - size_prefix_have_, bytes.size());
      std::memcpy(size_prefix_ + size_prefix_have_, bytes.data(), take);
      size_prefix_have_ += take;
      bytes = bytes.subspan(take);
      if (size_prefix_have_ < frame_prefix_bytes) return;
      const std::int32_t size = read_big_endian_32(size_prefix_);
      if (size < 0 || static_cast<std::size_t>(size) > config_.request_bytes_max) {
        ++metrics_.frames_rejected;
        SLUICE_LOG(warn, "net",
                   "closing connection from {}: request size {} is outside [0, {}] "
                   "(socket.request.max.bytes)",
                   peer_, size, config_.request_bytes_max);
        begin_close();
        return;
      }
      frame_bytes_ = static_cast<std::size_t>(size);
      if (frame_bytes_ == 0) {
        size_prefix_have_ = 0;
        deliver({});
      }
      continue;
    }
    if (assembly_.empty() && bytes.size() >= frame_bytes_) {
      // The whole frame is in this buffer: hand it over in place.
      const auto frame = bytes.first(frame_bytes_);
      bytes = bytes.subspan(frame_bytes_);
      size_prefix_have_ = 0;
      deliver(frame);
      continue;
    }
    const std::size_t take = std::min(frame_bytes_ - assembly_.size(), bytes.size());
    if (assembly_.capacity() < assembly_.size() + take) {
      // Grow with the bytes that arrived, never straight to the size the peer claimed.
      assembly_.reserve(
          std::min(frame_bytes_, std::max(assembly_.capacity() * 2, assembly_.size() + take)));
    }
    assembly_.insert(assembly_.end(), bytes.begin(), bytes.begin() + take);
    bytes = bytes.subspan(take);
    if (assembly_.size() == frame_bytes_) {
      size_prefix_have_ = 0;
      ++metrics_.frames_assembled;
      deliver(assembly_);
      if (assembly_.capacity() > assembly_keep_bytes_max) {
        std::vector<std::byte>().swap(assembly_);
      } else {
        assembly_.clear();
      }
    }
  }
}

void connection::deliver(std::span<const std::byte> frame) noexcept {
  ++metrics_.frames_received;
  handler_->on_frame(*this, frame);
}

// ---- responding -------------------------------------------------------------------------

bool connection::fill(std::uint64_t sequence, outgoing_frame* frame) noexcept {
  SLUICE_ASSERT(sequence >= head_sequence_ && sequence < next_sequence_,
                "response slot outside the in-flight window");
  slot& place = slots_[sequence % slots_.size()];
  SLUICE_ASSERT(place.status == slot_state::reserved, "response slot filled twice");
  const bool queued = frame != nullptr && state_ != state::closing;
  if (queued) {
    place.frame = std::move(*frame);
    place.frame.seal();
    queued_bytes_ += place.frame.wire_bytes();
    metrics_.queued_bytes_peak = std::max(metrics_.queued_bytes_peak, queued_bytes_);
    place.status = slot_state::filled;
  } else {
    place.status = slot_state::released;
  }
  release_ready_slots();
  return queued;
}

// Moves the filled slots at the head of the order to the send queue.
void connection::release_ready_slots() noexcept {
  // Bounded by the window size.
  while (head_sequence_ < next_sequence_) {
    slot& place = slots_[head_sequence_ % slots_.size()];
    if (place.status == slot_state::reserved) break;
    if (place.status == slot_state::filled) {
      send_queue_.push_back(std::move(place.frame));
      place.frame = outgoing_frame();
    }
    place.status = slot_state::released;
    ++head_sequence_;
  }
}

// ---- sending ----------------------------------------------------------------------------

void connection::send_op::complete(int res, std::uint32_t) noexcept {
  owner->on_send(res);
}

void connection::start_send() noexcept {
  if (send_in_flight_ || send_queue_.empty()) return;
  std::size_t count = 0;
  // Bounded by iovecs_max: every frame adds at least one iovec.
  for (std::size_t i = 0; i < send_queue_.size() && count < iovecs_.size(); ++i) {
    const std::size_t skip = i == 0 ? head_sent_bytes_ : 0;
    count += send_queue_[i].fill_iovecs(skip, std::span<iovec>(iovecs_).subspan(count));
  }
  std::memset(&message_, 0, sizeof(message_));
  message_.msg_iov = iovecs_.data();
  message_.msg_iovlen = count;
  io_uring_sqe* sqe = reactor_.prepare(&send_op_);
  // MSG_NOSIGNAL: a peer gone away is an error value, not a SIGPIPE.
  io_uring_prep_sendmsg(sqe, fd_, &message_, MSG_NOSIGNAL);
  send_in_flight_ = true;
  send_cancel_sent_ = false;
}

void connection::on_send(int res) noexcept {
  entry_guard guard(this);
  send_in_flight_ = false;
  send_cancel_sent_ = false;
  if (res <= 0) {
    // 0 bytes for a non-empty message cannot happen on a healthy stream socket.
    if (res != -ECANCELED && res != -EPIPE && res != -ECONNRESET) {
      SLUICE_LOG(debug, "net", "send to {} failed: {}", peer_,
                 res == 0 ? "no progress" : std::strerror(-res));
    }
    begin_close();
    return;
  }
  metrics_.bytes_sent += static_cast<std::uint64_t>(res);
  auto left = static_cast<std::size_t>(res);
  // Bounded by the queue length: each pass pops a frame or ends.
  while (left > 0) {
    SLUICE_ASSERT(!send_queue_.empty(), "sent more bytes than were queued");
    outgoing_frame& front = send_queue_.front();
    const std::size_t remaining = front.wire_bytes() - head_sent_bytes_;
    if (left < remaining) {
      // A partial send: the next sendmsg starts inside this frame.
      head_sent_bytes_ += left;
      break;
    }
    left -= remaining;
    queued_bytes_ -= front.wire_bytes();
    head_sent_bytes_ = 0;
    ++metrics_.frames_sent;
    // Releases the frame's borrowed memory (its keep_alive pointers).
    send_queue_.pop_front();
  }
}

// ---- closing ----------------------------------------------------------------------------

void connection::cancel_op::complete(int, std::uint32_t) noexcept {
  owner->on_cancel();
}

void connection::cancel(completion* target) noexcept {
  io_uring_sqe* sqe = reactor_.prepare(&cancel_op_);
  io_uring_prep_cancel(sqe, target, 0);
  ++cancels_in_flight_;
}

void connection::on_cancel() noexcept {
  // 0, -ENOENT (already finished) and -EALREADY (finishing) all end with the target's
  // own final completion arriving or having arrived; only the count matters.
  entry_guard guard(this);
  --cancels_in_flight_;
}

void connection::begin_close() noexcept {
  if (state_ == state::closing) return;
  state_ = state::closing;
  pending_input_.clear();
  if (receive_armed_ && !receive_cancel_sent_) {
    cancel(&receive_op_);
    receive_cancel_sent_ = true;
  }
  if (send_in_flight_ && !send_cancel_sent_) {
    cancel(&send_op_);
    send_cancel_sent_ = true;
  }
}

void connection::close_op::complete(int, std::uint32_t) noexcept {
  owner->on_closed_fd();
}

void connection::on_closed_fd() noexcept {
  // close(2) of a socket does not fail in a way that leaves the descriptor open.
  fd_ = -1;
  ++metrics_.connections_closed;
  // The last thing this object does: the owner destroys it.
  owner_.connection_finished(this);
}

void connection::settle() noexcept {
  ++depth_;
  if (state_ == state::open && !pending_input_.empty() && !over_bounds()) {
    std::vector<std::byte> input;
    input.swap(pending_input_);
    consume(input);
  }
  switch (state_) {
    case state::open:
      if (over_bounds()) {
        if (!pause_counted_) {
          ++metrics_.read_pauses;
          pause_counted_ = true;
        }
        if (receive_armed_ && !receive_cancel_sent_) {
          cancel(&receive_op_);
          receive_cancel_sent_ = true;
        }
      } else {
        pause_counted_ = false;
        if (!receive_armed_ && pending_input_.empty()) arm_receive();
      }
      start_send();
      break;
    case state::draining:
      if (receive_armed_ && !receive_cancel_sent_) {
        cancel(&receive_op_);
        receive_cancel_sent_ = true;
      }
      if (in_flight() == 0 && send_queue_.empty() && !send_in_flight_) {
        begin_close();
      } else {
        start_send();
      }
      break;
    case state::closing: break;
  }
  if (state_ == state::closing) {
    if (!handler_told_closed_ && handler_) {
      handler_told_closed_ = true;
      handler_->on_closed(*this);
    }
    if (operations_done() && !close_submitted_) {
      close_submitted_ = true;
      io_uring_sqe* sqe = reactor_.prepare(&close_op_);
      io_uring_prep_close(sqe, fd_);
    }
  }
  --depth_;
}

}  // namespace sluice
