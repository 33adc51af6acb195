// One TCP connection: Kafka frames in through a multishot receive, frames out through
// gathered sendmsg, in request order.
//
// Receiving. One IORING_OP_RECV with IORING_RECV_MULTISHOT and IOSQE_BUFFER_SELECT stays
// armed for the life of the connection; each completion carries one provided buffer
// (buffer_ring.h). The bytes are cut into frames -- a 4-byte big-endian size, then that
// many bytes -- and each complete frame goes to request_handler::on_frame, in order.
// A frame wholly inside one receive buffer is handed over in place, without a copy; a
// frame that spans buffers is assembled in a per-connection buffer that grows with the
// bytes actually received (never to the size a peer merely claims). Either way the span
// passed to on_frame is valid only during the call: the receive buffer is recycled right
// after, so buffers return to the kernel within the same reactor iteration and a slow
// handler cannot drain the shared pool. Handlers decode the request (copying what they
// keep) before returning; that copy happens anyway, so lending the buffer longer would
// buy nothing and cost a pool that could run dry.
// A size prefix < 0 or > request_bytes_max closes the connection with a warning.
//
// Responding. A handler that will answer calls reserve_response() during on_frame and
// fills the slot whenever the answer is ready -- at once, or later from another
// completion on the same reactor thread. Filled slots leave for the wire strictly in
// reservation order, so a request answered early waits for the ones before it (Kafka
// clients match responses by order). At most in_flight_max slots may be reserved; then
// the connection stops reading (cancels its receive) until one is released. It also
// stops reading while queued_bytes() -- bytes of filled responses not yet sent -- is at
// or over queued_bytes_max. Bytes that arrive after reading was paused (the receive was
// still in flight) are kept in a side buffer, bounded by the buffer pool, and processed
// on resume.
//
// Sending. One sendmsg in flight at a time, gathering up to iovecs_max pieces from the
// queued frames (several responses per system call); a partial send resumes where it
// stopped. Frames may borrow memory (outgoing_frame.h), released once sent.
// IORING_OP_SEND_ZC is not used: on loopback and for the frame sizes of Kafka traffic the
// kernel's copy into the socket buffer costs less than the page pinning and the extra
// notification completion of zero-copy send; the interface (borrowed spans held by
// shared_ptr) leaves room to add it for large borrowed spans later.
//
// Closing. close() -- or a peer close (receive of 0), an error, or a bad frame -- cancels
// the operations in the ring (IORING_OP_ASYNC_CANCEL on their user_data) and waits for
// every completion that references this object; only then is the descriptor closed,
// itself through the ring (IORING_OP_CLOSE), and from that last completion the owner is
// told (connection_owner::connection_finished), which destroys the connection. So a
// connection is never destroyed inside a call a handler made (close(), respond()): only
// inside its own final completion. drain() is the graceful variant used by
// server::stop(): stop reading, let reserved slots be filled and queued frames be sent,
// then close.
//
// Owned by its connection_owner (the server), created for an accepted socket, touched
// only by the reactor's thread. Handlers must not keep the connection& beyond on_frame;
// a response_slot is the safe handle for answering later: it outlives the connection
// harmlessly (filling it then drops the response).
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/base/result.h"
#include "engine/reactor/reactor.h"
#include "net/buffer_ring.h"
#include "net/net_metrics.h"
#include "net/outgoing_frame.h"

namespace sluice {

class connection;

struct connection_config {
  // Kafka's socket.request.max.bytes.
  std::size_t request_bytes_max = 100 * 1024 * 1024;
  // Requests reserved and not yet answered; reading pauses at this many.
  std::size_t in_flight_max = 100;
  // Bytes of answered-but-unsent frames; reading pauses at this many.
  std::size_t queued_bytes_max = 16 * 1024 * 1024;
  // iovecs per sendmsg (the kernel's UIO_MAXIOV is 1024).
  std::size_t iovecs_max = 64;
};

// Receives the frames of one connection. One handler per connection, made by the
// server's factory and owned by the connection; called on the reactor's thread.
class request_handler {
 public:
  virtual ~request_handler() = default;
  // A complete frame (without its size prefix). `frame` is valid only during the call.
  virtual void on_frame(connection& from, std::span<const std::byte> frame) noexcept = 0;
  // The server is stopping: no more frames will come; answer (or drop) the response
  // slots held soon, the connection closes once they are all released and sent.
  virtual void on_stopping(connection&) noexcept {}
  // The connection is closing for good: drop any response_slot held (filling them now is
  // harmless but pointless). No further calls follow except the destructor.
  virtual void on_closed(connection&) noexcept {}
};

// The owner of connections: told when one may be destroyed.
class connection_owner {
 public:
  // Every operation of `finished` has completed and its socket is closed. The owner
  // destroys it (from inside this call is fine: the connection touches nothing after).
  virtual void connection_finished(connection* finished) noexcept = 0;

 protected:
  ~connection_owner() = default;
};

// Where the response of a slot goes when it is not a local connection's: a request
// forwarded from another core answers through a sink that carries the frame back to the
// core that owns the connection (broker/cores.h). Called once, on the thread that fills
// the slot.
class response_sink {
 public:
  virtual ~response_sink() = default;
  virtual void on_response(outgoing_frame frame) noexcept = 0;
  // Released without a response.
  virtual void on_release() noexcept = 0;
};

// The place of one response in a connection's send order. Move-only. Fill it with
// respond(); destroying it unfilled releases the place with no response (a request that
// needs none, such as a produce with acks=0). Safe to use after the connection is gone.
class response_slot {
 public:
  response_slot() noexcept = default;
  response_slot(response_slot&& other) noexcept;
  response_slot& operator=(response_slot&& other) noexcept;
  response_slot(const response_slot&) = delete;
  response_slot& operator=(const response_slot&) = delete;
  ~response_slot();

  // A slot whose response goes to `sink` instead of a connection.
  static response_slot to_sink(std::shared_ptr<response_sink> sink) noexcept;

  // Holds a place (false after respond(), release(), or for a slot never reserved).
  explicit operator bool() const noexcept { return link_ != nullptr || sink_ != nullptr; }
  // Queues `frame` to be sent after every response reserved before it. Returns false
  // (and drops the frame) when the connection has closed meanwhile.
  bool respond(outgoing_frame frame) noexcept;
  // Gives the place up without a response.
  void release() noexcept;

 private:
  friend class connection;
  struct link;
  response_slot(std::shared_ptr<link> to, std::uint64_t sequence) noexcept
      : link_(std::move(to)), sequence_(sequence) {}

  std::shared_ptr<link> link_;
  std::shared_ptr<response_sink> sink_;
  std::uint64_t sequence_ = 0;
};

class connection {
 public:
  // Takes ownership of the connected socket `fd`. Nothing happens until start().
  connection(reactor& ring, buffer_ring& buffers, connection_owner& owner, net_metrics& metrics,
             const connection_config& config, int fd, std::string peer) noexcept;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection();

  // Installs the handler and arms the receive.
  void start(std::unique_ptr<request_handler> handler) noexcept;

  // Reserves the next place in the response order. Call from on_frame, once per request
  // that will be answered. Returns an empty slot when in_flight_max places are taken or
  // the connection is closing.
  response_slot reserve_response() noexcept;

  // Queues a frame directly, for connections that do not use response slots (the
  // broker's outbound client sends requests this way). Fails with `closed` once
  // closing, and with `backpressure` (frame not queued) while queued_bytes() is at or over
  // queued_bytes_max. Must not be mixed with unreleased response slots.
  result<void> send(outgoing_frame frame) noexcept;

  // Aborts: unsent responses are dropped. Idempotent.
  void close() noexcept;
  // Stops reading, sends what is reserved once filled, then closes. Idempotent.
  void drain() noexcept;

  // "address:port" of the peer, for logs.
  const std::string& peer() const noexcept { return peer_; }
  int fd() const noexcept { return fd_; }
  std::size_t queued_bytes() const noexcept { return queued_bytes_; }
  std::size_t in_flight() const noexcept { return next_sequence_ - head_sequence_; }
  // Reading is stopped by backpressure (in-flight or queued-bytes bound).
  bool reading_paused() const noexcept { return state_ == state::open && over_bounds(); }
  bool closing() const noexcept { return state_ != state::open; }
  request_handler* handler() noexcept { return handler_.get(); }

 private:
  friend class response_slot;

  enum class state : std::uint8_t { open, draining, closing };
  enum class slot_state : std::uint8_t { reserved, filled, released };
  struct slot {
    slot_state status = slot_state::released;
    outgoing_frame frame;
  };

  // Each operation kind gets its own completion object, so that its user_data names it
  // (for cancellation) and its completion knows what it completes.
  struct receive_op final : completion {
    connection* owner = nullptr;
    void complete(int res, std::uint32_t flags) noexcept override;
  };
  struct send_op final : completion {
    connection* owner = nullptr;
    void complete(int res, std::uint32_t flags) noexcept override;
  };
  struct cancel_op final : completion {
    connection* owner = nullptr;
    void complete(int res, std::uint32_t flags) noexcept override;
  };
  struct close_op final : completion {
    connection* owner = nullptr;
    void complete(int res, std::uint32_t flags) noexcept override;
  };

  // Every entry point (completion, respond, close) runs inside one; when the outermost
  // ends, settle() brings reading, sending and closing up to date. Handlers called from
  // settle() run at depth 1, so what they call does not settle again.
  class entry_guard {
   public:
    explicit entry_guard(connection* c) noexcept : c_(c) { ++c_->depth_; }
    ~entry_guard() {
      if (--c_->depth_ == 0) c_->settle();
    }

   private:
    connection* c_;
  };

  void on_receive(int res, std::uint32_t flags) noexcept;
  void on_send(int res) noexcept;
  void on_cancel() noexcept;
  void on_closed_fd() noexcept;

  void consume(std::span<const std::byte> bytes) noexcept;
  void deliver(std::span<const std::byte> frame) noexcept;
  // Fills (frame) or releases (nullptr) a slot; true if the frame was queued.
  bool fill(std::uint64_t sequence, outgoing_frame* frame) noexcept;
  void release_ready_slots() noexcept;
  void enqueue(outgoing_frame frame) noexcept;

  bool over_bounds() const noexcept;
  void settle() noexcept;
  void arm_receive() noexcept;
  void cancel(completion* target) noexcept;
  void start_send() noexcept;
  void begin_close() noexcept;
  bool operations_done() const noexcept;

  reactor& reactor_;
  buffer_ring& buffers_;
  connection_owner& owner_;
  net_metrics& metrics_;
  const connection_config config_;
  int fd_;
  const std::string peer_;
  std::unique_ptr<request_handler> handler_;
  std::shared_ptr<response_slot::link> link_;
  state state_ = state::open;
  bool handler_told_closed_ = false;
  bool close_submitted_ = false;
  int depth_ = 0;

  receive_op receive_op_;
  send_op send_op_;
  cancel_op cancel_op_;
  close_op close_op_;
  bool receive_armed_ = false;
  bool receive_cancel_sent_ = false;
  bool send_in_flight_ = false;
  bool send_cancel_sent_ = false;
  unsigned cancels_in_flight_ = 0;

  // Frame assembly.
  std::byte size_prefix_[4] = {};
  std::size_t size_prefix_have_ = 0;
  std::size_t frame_bytes_ = 0;           // size of the frame being read (prefix complete)
  std::vector<std::byte> assembly_;       // bytes of a frame spanning receive buffers
  std::vector<std::byte> pending_input_;  // received while reading was paused
  bool pause_counted_ = false;

  // Response order: slots_[sequence % in_flight_max] for head <= sequence < next.
  std::vector<slot> slots_;
  std::uint64_t head_sequence_ = 0;
  std::uint64_t next_sequence_ = 0;

  // Sending.
  std::deque<outgoing_frame> send_queue_;
  std::size_t head_sent_bytes_ = 0;  // of send_queue_.front()
  std::size_t queued_bytes_ = 0;
  std::vector<iovec> iovecs_;
  msghdr message_{};
};

}  // namespace sluice
