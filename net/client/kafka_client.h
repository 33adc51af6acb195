// kafka_client: Sluice's own Kafka client -- one TCP connection to one broker, on the
// io_uring reactor.
//
// Who uses it: sluice-admin (a few requests, call_sync), sluice-bench (hundreds of
// thousands of pipelined produce requests a second, prebuilt bodies) and, later,
// replication. So the hot path is the raw one -- send() with a body the caller encoded
// once -- and the typed call()/call_sync() are conveniences on top of it.
//
// Connecting. connect() resolves the host with getaddrinfo (blocking: fine for tools and
// start-up code, not for a broker's serving loop), then connects through
// IORING_OP_CONNECT, trying each resolved address in turn, and sends ApiVersions. The
// broker's answer is kept; version_for() picks, per API, the highest version both sides
// support. Only then does the client count as ready() and call the connect callback.
//
// Sending. Requests occupy slots of a fixed window of in_flight_max entries, allocated at
// construction and reused: a slot keeps its header buffer (size prefix and request
// header, written in place) and, for typed calls, its body buffer, so a request in the
// steady state costs no heap allocation when its callback captures at most two pointers
// (std::function's inline storage in libstdc++). A full window is backpressure: can_send()
// is false and send() fails with errc::backpressure; nothing queues beyond the window.
// Requests leave in the order they were sent, gathered into one sendmsg (up to iovecs_max
// pieces; each request is two: its header and its body). The first send() of a reactor
// turn queues an IORING_OP_NOP and the sendmsg is built when it completes, so requests
// sent by the many callbacks of one completion batch leave together; a sendmsg in flight
// collects what is sent meanwhile for the next one.
//
// Receiving. One IORING_OP_RECV at a time into a contiguous receive buffer, which holds
// many small responses at once (no copy, decoded in place) and grows, as bytes arrive,
// up to the largest frame allowed. Frames are matched to requests in order (Kafka
// answers a connection's requests in order) and their correlation id is checked. A frame
// larger than response_bytes_max is not buffered: its bytes are skipped, and its request
// fails with a frame-too-large error while the connection carries on.
//
// Callbacks. Each request's callback runs exactly once: with the response body (a view
// into the receive buffer, valid only during the call), or with an error. The slot is
// free again before the callback runs, so a callback may send the next request at once.
// Callbacks must not run the reactor (call_sync, connect_sync), nor destroy the client.
// A borrowed body (send()) must stay valid until its callback has run; to make that
// promise enough, a callback never runs while a sendmsg may still read its request's
// bytes (see closing).
//
// Timeouts. Each request has a deadline (request_timeout by default). When it passes the
// callback gets a timeout error at once; the slot stays taken until the broker's late
// answer arrives and is dropped (or the connection closes), because the broker still
// owes that answer and answers in order: the window keeps counting what the connection
// really carries. A request that has not even left by its deadline means the broker has
// stopped reading: the whole connection fails with the timeout error, as in Kafka. One timer
// (net/timer.h) serves every deadline: it is armed for the earliest, and on expiry every request
// past its deadline is failed.
//
// Closing. close(), a peer close, a socket error or a response that does not match its
// request fails every outstanding request -- each callback is called before close()
// returns, except those of requests a sendmsg in flight may still read, which run as
// soon as that (cancelled) send completes -- then cancels the operations in the ring.
// Closed is final: make a new client to reconnect.
//
// Errors. Everything fails with a sluice::error; the kinds are told apart by the
// predicates below (errc has no timeout or protocol code, so the client uses an errc
// close to the meaning plus a distinct os_errno).
//
// Owned by one thread (the reactor's); not thread-safe. Lifecycle: construct ->
// connect() -> send/call ... -> close() (or just destroy: the destructor closes and runs
// the reactor until the kernel has returned every operation referencing the client).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.h"
#include "engine/reactor/reactor.h"
#include "net/protocol/api_keys.h"
#include "net/protocol/field_types.h"
#include "net/protocol/reader.h"
#include "net/protocol/writer.h"
#include "net/timer.h"

namespace sluice {

struct kafka_client_config {
  static constexpr std::size_t client_id_bytes_max = 255;
  // The request header's client id (at most client_id_bytes_max bytes).
  std::string client_id = "sluice-client";
  // Requests sent and not yet answered (or timed out but not yet answered).
  std::size_t in_flight_max = 64;
  // The largest response frame accepted (without its 4-byte size prefix).
  std::size_t response_bytes_max = 64 * 1024 * 1024;
  // The receive buffer's starting size; it grows towards response_bytes_max as needed.
  std::size_t receive_buffer_bytes = 256 * 1024;
  // A request's deadline, from send() to its response, unless send() is given one.
  std::chrono::milliseconds request_timeout{30000};
  // From connect() to the answer of ApiVersions.
  std::chrono::milliseconds connect_timeout{10000};
  // iovecs per sendmsg (each request takes two).
  std::size_t iovecs_max = 128;
  // What ApiVersions v3+ tells the broker about this client.
  std::string software_name = "sluice";
  std::string software_version = "0.1.0";
};

// A response as the callback sees it. `body` follows the response header and is valid
// only during the callback.
struct response_view {
  protocol::api_key key;
  std::int16_t version;
  std::int32_t correlation_id;
  protocol::bytes_view body;
};

// The error kinds of the client. Each maps to an errc and a distinct os_errno.
namespace client_error {
// The connection is gone (peer close, socket error, close()), or was never made.
inline bool is_closed(const error& e) noexcept {
  return e.code() == errc::closed;
}
inline bool is_timeout(const error& e) noexcept {
  return e.code() == errc::io_error && e.os_errno() == ETIMEDOUT;
}
inline bool is_frame_too_large(const error& e) noexcept {
  return e.code() == errc::batch_too_large && e.os_errno() == EMSGSIZE;
}
// The broker lacks the API, or shares no version of it with the caller.
inline bool is_unsupported(const error& e) noexcept {
  return e.code() == errc::not_found && e.os_errno() == EPROTONOSUPPORT;
}
// The window of in-flight requests is full.
inline bool is_backpressure(const error& e) noexcept {
  return e.code() == errc::backpressure;
}
// A response that does not decode as the message expected.
inline bool is_bad_response(const error& e) noexcept {
  return e.code() == errc::io_error && (e.os_errno() == EBADMSG || e.os_errno() == EPROTO);
}
}  // namespace client_error

// A decoded response together with the bytes its views point into, for results that
// outlive the receive buffer (call_sync). Movable: moving the vector keeps its storage.
template <typename Message>
struct owned_response {
  std::vector<std::byte> bytes;
  Message message;
  Message* operator->() noexcept { return &message; }
  const Message* operator->() const noexcept { return &message; }
  Message& operator*() noexcept { return message; }
  const Message& operator*() const noexcept { return message; }
};

class kafka_client {
 public:
  using response_callback = std::function<void(result<response_view>)>;
  using connect_callback = std::function<void(result<void>)>;

  kafka_client(reactor& ring, kafka_client_config config) noexcept;
  kafka_client(const kafka_client&) = delete;
  kafka_client& operator=(const kafka_client&) = delete;
  ~kafka_client();

  // Resolves `host` (blocking), starts connecting and negotiating; `on_ready` runs once,
  // from the reactor, with the outcome (or before connect() returns, when not even a
  // socket can be made). Fails at once, without calling `on_ready`, for a bad
  // configuration, a name that does not resolve, or a second connect().
  result<void> connect(const std::string& host, std::uint16_t port, connect_callback on_ready);
  // connect(), then runs the reactor until the outcome is known.
  result<void> connect_sync(const std::string& host, std::uint16_t port);

  // Connected and negotiated, not closing.
  bool ready() const noexcept { return state_ == state::ready; }
  // ready() and a free slot in the window.
  bool can_send() const noexcept { return ready() && in_flight() < slots_.size(); }
  // Slots taken: sent or queued, not yet answered.
  std::size_t in_flight() const noexcept { return static_cast<std::size_t>(tail_ - head_); }
  std::size_t in_flight_max() const noexcept { return slots_.size(); }

  // The highest version of `key` within [our_min, our_max] that the broker supports.
  result<std::int16_t> version_for(protocol::api_key key, std::int16_t our_min,
                                   std::int16_t our_max) const noexcept;
  // The broker's advertised range of `key`, nullopt when it lacks the API.
  std::optional<std::pair<std::int16_t, std::int16_t>> broker_versions(
      protocol::api_key key) const noexcept;

  // Sends a request whose body the caller encoded at `version` (header versions follow
  // from net/protocol/api_keys.h). The body is borrowed: it must stay valid and unchanged
  // until `done` has run. `timeout` 0 means the configured request_timeout.
  result<void> send(protocol::api_key key, std::int16_t version, protocol::bytes_view body,
                    response_callback done,
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) noexcept;
  // The same with a body the client keeps (in the slot) until the request completes.
  result<void> send_owned(
      protocol::api_key key, std::int16_t version, std::vector<std::byte> body,
      response_callback done,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) noexcept;

  // Encodes `request` at the highest version both sides support, sends it, and decodes
  // the response. Errors -- including backpressure and an unsupported API -- reach
  // `done`, which runs at once when the request cannot be sent. The decoded response's
  // views point into the receive buffer: valid only during `done`.
  template <typename Response, typename Request>
  void call(const Request& request, std::function<void(result<Response>)> done,
            std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) noexcept;
  // The same at an explicit version.
  template <typename Response, typename Request>
  void call_at(std::int16_t version, const Request& request,
               std::function<void(result<Response>)> done,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) noexcept;

  // call(), then runs the reactor until the answer (or its timeout). The response keeps
  // its bytes, so it may be kept. Not from inside a callback.
  template <typename Response, typename Request>
  result<owned_response<Response>> call_sync(
      const Request& request, std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // The same at an explicit version.
  template <typename Response, typename Request>
  result<owned_response<Response>> call_sync_at(
      std::int16_t version, const Request& request,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  // Fails every outstanding request (their callbacks run before this returns) and
  // starts closing the socket. Idempotent.
  void close() noexcept;
  // No operation referencing the client is in the ring (after close()).
  bool idle() const noexcept;

  reactor& ring() noexcept { return reactor_; }

 private:
  enum class state : std::uint8_t { idle, connecting, negotiating, ready, closed };
  // waiting: sent or queued, callback pending. abandoned: the callback has run (timeout);
  // the broker's answer is still owed and is dropped when it comes.
  enum class slot_state : std::uint8_t { free, waiting, abandoned };

  struct slot {
    slot_state status = slot_state::free;
    std::int32_t correlation_id = 0;
    protocol::api_key key{};
    std::int16_t version = 0;
    bool response_header_flexible = false;
    // Size prefix and request header, written in place (capacity reserved up front).
    std::vector<std::byte> header;
    // The body of send_owned and typed calls; `body` views it or the caller's bytes.
    std::vector<std::byte> owned_body;
    protocol::bytes_view body;
    // The position just past this frame in the stream of every byte queued.
    std::uint64_t end_byte = 0;
    std::chrono::steady_clock::time_point deadline;
    response_callback done;
    // Set by fail() for a callback deferred until the send in flight completes.
    std::optional<error> deferred_failure;

    std::size_t frame_bytes() const noexcept { return header.size() + body.size(); }
  };

  struct operation final : completion {
    kafka_client* owner = nullptr;
    void (kafka_client::*on_complete)(int res) noexcept = nullptr;
    bool in_flight = false;
    void complete(int res, std::uint32_t flags) noexcept override;
  };

  // The body is in `target.owned_body` (owned) or `borrowed`.
  result<void> enqueue(protocol::api_key key, std::int16_t version, bool request_flexible,
                       bool response_flexible, const protocol::bytes_view* borrowed,
                       std::vector<std::byte>* owned, response_callback& done,
                       std::chrono::milliseconds timeout) noexcept;
  result<slot*> take_slot() noexcept;
  void write_header(slot& s, bool request_flexible) noexcept;
  void schedule_send() noexcept;
  void start_send() noexcept;
  void start_connect() noexcept;
  void arm_receive() noexcept;
  void on_flush(int res) noexcept;
  void on_send(int res) noexcept;
  void on_receive(int res) noexcept;
  void on_connect(int res) noexcept;
  void on_cancel(int res) noexcept;
  void on_timer() noexcept;
  void consume_frames() noexcept;
  void deliver(protocol::bytes_view frame) noexcept;
  void complete_head(result<response_view> outcome) noexcept;
  void expire(std::uint64_t sequence) noexcept;
  void advance_sent() noexcept;
  void run_callback(response_callback& done, result<response_view> outcome) noexcept;
  void run_deferred_failures() noexcept;
  void fail(error why) noexcept;
  void negotiate(std::int16_t version) noexcept;
  void on_api_versions(std::int16_t version, result<response_view> response) noexcept;
  void arm_deadline(std::chrono::steady_clock::time_point deadline) noexcept;
  void cancel(operation& op) noexcept;
  void close_socket_when_idle() noexcept;
  template <typename Response>
  static result<Response> decode_response(std::int16_t version,
                                          result<response_view>& response) noexcept;
  template <typename Request>
  result<std::int16_t> negotiated_version(std::int16_t ceiling) const noexcept;

  reactor& reactor_;
  const kafka_client_config config_;
  state state_ = state::idle;
  int fd_ = -1;
  // Depth of callback invocations (callbacks must not run the reactor).
  int callback_depth_ = 0;

  // Connecting.
  std::vector<sockaddr_storage> addresses_;
  std::vector<socklen_t> address_lengths_;
  std::size_t next_address_ = 0;
  int last_connect_errno_ = 0;
  connect_callback on_ready_;
  std::chrono::steady_clock::time_point connect_deadline_;
  // Broker version ranges by API key; min -1 for an API the broker lacks.
  std::vector<std::pair<std::int16_t, std::int16_t>> broker_versions_;

  // The window: slots_[sequence % size] for head_ <= sequence < tail_. Slots before
  // sent_ are wholly on the wire. Byte counts over the whole stream (not per slot) say
  // how far sending got, so a response that overtakes its sendmsg's completion -- the
  // bytes were sent, the CQE is not read yet -- cannot confuse the accounting.
  std::vector<slot> slots_;
  std::uint64_t head_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t tail_ = 0;
  std::uint64_t bytes_queued_total_ = 0;
  std::uint64_t bytes_sent_total_ = 0;
  std::int32_t next_correlation_id_ = 1;

  operation connect_op_;
  operation flush_op_;
  operation send_op_;
  operation receive_op_;
  operation cancel_op_;
  unsigned cancels_in_flight_ = 0;
  std::vector<iovec> iovecs_;
  msghdr message_{};

  // Receiving: bytes [receive_begin_, receive_end_) of receive_buffer_ are unconsumed.
  std::vector<std::byte> receive_buffer_;
  std::size_t receive_begin_ = 0;
  std::size_t receive_end_ = 0;
  // Bytes still to skip of a frame over response_bytes_max.
  std::size_t skip_bytes_ = 0;

  timer deadline_timer_;
  std::optional<std::chrono::steady_clock::time_point> armed_deadline_;
};

// ---- typed calls -------------------------------------------------------------------------

template <typename Response>
result<Response> kafka_client::decode_response(std::int16_t version,
                                               result<response_view>& response) noexcept {
  if (!response.ok()) return response.failure();
  protocol::reader in(response->body);
  Response message;
  message.decode(in, version);
  if (!in.ok() || in.remaining() != 0) {
    return error(errc::io_error, "the response body does not decode at the version sent", EBADMSG);
  }
  return message;
}

template <typename Request>
result<std::int16_t> kafka_client::negotiated_version(std::int16_t ceiling) const noexcept {
  std::int16_t low = Request::min_version;
  std::int16_t high = std::min<std::int16_t>(Request::max_version, ceiling);
  // The codec's supported range may be narrower than the schema's (Produce, Fetch).
  if (const auto* row = protocol::find_api(Request::api_key)) {
    low = std::max(low, row->min_version);
    high = std::min(high, row->max_version);
  }
  return version_for(static_cast<protocol::api_key>(Request::api_key), low, high);
}

template <typename Response, typename Request>
void kafka_client::call(const Request& request, std::function<void(result<Response>)> done,
                        std::chrono::milliseconds timeout) noexcept {
  auto version = negotiated_version<Request>(Request::max_version);
  if (!version.ok()) {
    done(version.failure());
    return;
  }
  call_at<Response>(*version, request, std::move(done), timeout);
}

template <typename Response, typename Request>
void kafka_client::call_at(std::int16_t version, const Request& request,
                           std::function<void(result<Response>)> done,
                           std::chrono::milliseconds timeout) noexcept {
  static_assert(Request::api_key == Response::api_key, "request and response of one API");
  protocol::writer out(256);
  request.encode(out, version);
  if (!out.ok()) {
    done(error(errc::invalid_argument, "the request cannot be encoded at the negotiated version"));
    return;
  }
  const bool flexible =
      Request::first_flexible_version >= 0 && version >= Request::first_flexible_version;
  const bool response_flexible =
      flexible && Request::api_key != static_cast<std::int16_t>(protocol::api_key::api_versions);
  std::vector<std::byte> body = out.take();
  response_callback raw = [version, done = std::move(done)](result<response_view> response) {
    done(decode_response<Response>(version, response));
  };
  // enqueue() takes `raw` only when it succeeds.
  auto queued = enqueue(static_cast<protocol::api_key>(Request::api_key), version, flexible,
                        response_flexible, nullptr, &body, raw, timeout);
  if (!queued.ok()) raw(queued.failure());
}

template <typename Response, typename Request>
result<owned_response<Response>> kafka_client::call_sync(const Request& request,
                                                         std::chrono::milliseconds timeout) {
  auto version = negotiated_version<Request>(Request::max_version);
  if (!version.ok()) return version.failure();
  return call_sync_at<Response>(*version, request, timeout);
}

template <typename Response, typename Request>
result<owned_response<Response>> kafka_client::call_sync_at(std::int16_t version,
                                                            const Request& request,
                                                            std::chrono::milliseconds timeout) {
  static_assert(Request::api_key == Response::api_key, "request and response of one API");
  SLUICE_ASSERT(callback_depth_ == 0, "call_sync from inside a kafka_client callback");
  std::optional<result<std::vector<std::byte>>> answer;
  protocol::writer out(256);
  request.encode(out, version);
  if (!out.ok()) {
    return error(errc::invalid_argument, "the request cannot be encoded at the negotiated version");
  }
  const std::int16_t v = version;
  const bool flexible =
      Request::first_flexible_version >= 0 && v >= Request::first_flexible_version;
  const bool response_flexible =
      flexible && Request::api_key != static_cast<std::int16_t>(protocol::api_key::api_versions);
  std::vector<std::byte> body = out.take();
  response_callback keep = [&answer](result<response_view> response) {
    if (response.ok()) {
      answer.emplace(std::vector<std::byte>(response->body.begin(), response->body.end()));
    } else {
      answer.emplace(response.failure());
    }
  };
  SLUICE_TRY(enqueue(static_cast<protocol::api_key>(Request::api_key), v, flexible,
                     response_flexible, nullptr, &body, keep, timeout));
  const auto limit =
      (timeout.count() > 0 ? timeout : config_.request_timeout) + std::chrono::seconds(5);
  if (!reactor_.run_until([&] { return answer.has_value(); }, limit)) {
    // The deadline timer should have fired. Close, so that `keep`, which refers to this
    // frame, is called (with an error) before the frame goes away; a callback whose bytes
    // a send in flight may still read runs when that send is cancelled, at once.
    close();
    (void)reactor_.run_until([&] { return answer.has_value(); }, std::chrono::seconds(5));
  }
  SLUICE_ASSERT(answer.has_value(), "close() answers every outstanding request");
  if (!answer->ok()) return answer->failure();
  owned_response<Response> owned{std::move(answer->value()), Response{}};
  protocol::reader in(owned.bytes);
  owned.message.decode(in, v);
  if (!in.ok() || in.remaining() != 0) {
    return error(errc::io_error, "the response body does not decode at the version sent", EBADMSG);
  }
  return owned;
}

}  // namespace sluice
