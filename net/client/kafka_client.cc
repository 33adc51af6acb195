#include "net/client/kafka_client.h"

#include <netdb.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "engine/base/assert.h"
#include "engine/base/log.h"
#include "net/protocol/error_codes.h"
#include "net/protocol/generated/api_versions.h"

namespace sluice {

namespace {

constexpr std::size_t frame_prefix_bytes = 4;
// Size prefix, api key, api version, correlation id, client id length.
constexpr std::size_t fixed_header_bytes = frame_prefix_bytes + 2 + 2 + 4 + 2;
// The receive buffer is never smaller than this, so a recv always has room to be useful.
constexpr std::size_t receive_buffer_bytes_min = 4096;
// Kafka API keys are small; a broker listing larger ones is ignored for those.
constexpr std::int16_t api_key_limit = 1024;

void put_int16(std::byte* at, std::int16_t value) noexcept {
  const auto v = static_cast<std::uint16_t>(value);
  at[0] = static_cast<std::byte>(v >> 8);
  at[1] = static_cast<std::byte>(v);
}

void put_int32(std::byte* at, std::int32_t value) noexcept {
  const auto v = static_cast<std::uint32_t>(value);
  at[0] = static_cast<std::byte>(v >> 24);
  at[1] = static_cast<std::byte>(v >> 16);
  at[2] = static_cast<std::byte>(v >> 8);
  at[3] = static_cast<std::byte>(v);
}

std::int32_t get_int32(const std::byte* at) noexcept {
  const std::uint32_t v = (std::to_integer<std::uint32_t>(at[0]) << 24) |
                          (std::to_integer<std::uint32_t>(at[1]) << 16) |
                          (std::to_integer<std::uint32_t>(at[2]) << 8) |
                          std::to_integer<std::uint32_t>(at[3]);
  return static_cast<std::int32_t>(v);
}

error not_connected() noexcept {
  return error(errc::closed, "the client is not connected", ENOTCONN);
}

error protocol_violation(const char* detail) noexcept {
  return error(errc::io_error, detail, EPROTO);
}

}  // namespace

void kafka_client::operation::complete(int res, std::uint32_t) noexcept {
  in_flight = false;
  (owner->*on_complete)(res);
}

kafka_client::kafka_client(reactor& ring, kafka_client_config config) noexcept
    : reactor_(ring),
      config_(std::move(config)),
      slots_(std::max<std::size_t>(config_.in_flight_max, 1)),
      iovecs_(std::max<std::size_t>(config_.iovecs_max, 2)),
      deadline_timer_(ring, [this] {
        armed_deadline_.reset();
        on_timer();
      }) {
  const std::size_t header_bytes = fixed_header_bytes + config_.client_id.size() + 1;
  for (slot& s : slots_) s.header.reserve(header_bytes);
  const std::size_t frame_max = config_.response_bytes_max + frame_prefix_bytes;
  receive_buffer_.resize(
      std::min(frame_max, std::max(config_.receive_buffer_bytes, receive_buffer_bytes_min)));
  const std::pair<operation*, void (kafka_client::*)(int) noexcept> ops[] = {
      {&connect_op_, &kafka_client::on_connect}, {&flush_op_, &kafka_client::on_flush},
      {&send_op_, &kafka_client::on_send},       {&receive_op_, &kafka_client::on_receive},
      {&cancel_op_, &kafka_client::on_cancel},
  };
  for (const auto& [op, handler] : ops) {
    op->owner = this;
    op->on_complete = handler;
  }
}

kafka_client::~kafka_client() {
  close();
  // The kernel must hand back every operation that points at this object before its
  // memory goes; cancelled operations return within a few reactor turns.
  for (int turn = 0; turn < 1000 && !idle(); ++turn) {
    reactor_.run_once(std::chrono::milliseconds(10));
  }
  SLUICE_ASSERT(idle(), "kafka_client destroyed with operations still in the ring");
  if (fd_ >= 0) ::close(fd_);
}

bool kafka_client::idle() const noexcept {
  return !connect_op_.in_flight && !flush_op_.in_flight && !send_op_.in_flight &&
         !receive_op_.in_flight && cancels_in_flight_ == 0 && deadline_timer_.idle();
}

// ---- connecting -------------------------------------------------------------------------

result<void> kafka_client::connect(const std::string& host, std::uint16_t port,
                                   connect_callback on_ready) {
  if (state_ != state::idle) {
    return error(errc::invalid_argument, "connect() may be called once per client");
  }
  if (config_.client_id.size() > kafka_client_config::client_id_bytes_max) {
    return error(errc::invalid_argument, "the client id is longer than 255 bytes");
  }
  if (config_.response_bytes_max >
      static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
    return error(errc::invalid_argument, "response_bytes_max exceeds what a frame can carry");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    return error(errc::not_found, "the broker's host name does not resolve");
  }
  // Bounded by what the resolver returned.
  for (addrinfo* at = found; at != nullptr; at = at->ai_next) {
    if (at->ai_addrlen > sizeof(sockaddr_storage)) continue;
    sockaddr_storage address{};
    std::memcpy(&address, at->ai_addr, at->ai_addrlen);
    addresses_.push_back(address);
    address_lengths_.push_back(at->ai_addrlen);
  }
  ::freeaddrinfo(found);
  if (addresses_.empty()) return error(errc::not_found, "the broker's host name has no address");
  state_ = state::connecting;
  on_ready_ = std::move(on_ready);
  connect_deadline_ = std::chrono::steady_clock::now() + config_.connect_timeout;
  arm_deadline(connect_deadline_);
  start_connect();
  return {};
}

result<void> kafka_client::connect_sync(const std::string& host, std::uint16_t port) {
  SLUICE_ASSERT(callback_depth_ == 0, "connect_sync from inside a kafka_client callback");
  std::optional<result<void>> outcome;
  SLUICE_TRY(connect(host, port, [&outcome](result<void> done) { outcome.emplace(done); }));
  if (!reactor_.run_until([&] { return outcome.has_value(); },
                          config_.connect_timeout + std::chrono::seconds(5))) {
    close();  // calls the callback, which refers to this frame
  }
  SLUICE_ASSERT(outcome.has_value(), "close() ends a connect in progress");
  return *outcome;
}

void kafka_client::start_connect() noexcept {
  if (next_address_ >= addresses_.size()) {
    fail(error(errc::closed, "cannot connect to the broker", last_connect_errno_));
    return;
  }
  const sockaddr_storage& address = addresses_[next_address_];
  fd_ = ::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    fail(error(errc::closed, "cannot create a socket", errno));
    return;
  }
  // Requests are small and latency matters more than packet count; gathering already
  // fills packets under load.
  const int on = 1;
  (void)::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  io_uring_sqe* sqe = reactor_.prepare(&connect_op_);
  io_uring_prep_connect(sqe, fd_, reinterpret_cast<const sockaddr*>(&address),
                        address_lengths_[next_address_]);
  connect_op_.in_flight = true;
}

void kafka_client::on_connect(int res) noexcept {
  if (state_ != state::connecting) {
    close_socket_when_idle();
    return;
  }
  if (res < 0) {
    // Try the next address the name resolved to.
    last_connect_errno_ = -res;
    ::close(fd_);
    fd_ = -1;
    ++next_address_;
    start_connect();
    return;
  }
  state_ = state::negotiating;
  arm_receive();
  negotiate(protocol::ApiVersionsRequest::max_version);
}

// ApiVersions at our newest version; a broker that does not know it answers
// UNSUPPORTED_VERSION with its own range (at v0, KIP-511), and we ask again at its newest.
void kafka_client::negotiate(std::int16_t version) noexcept {
  protocol::ApiVersionsRequest request;
  request.client_software_name = config_.software_name;
  request.client_software_version = config_.software_version;
  protocol::writer out(64);
  request.encode(out, version);
  if (!out.ok()) {
    fail(error(errc::invalid_argument, "the ApiVersions request does not encode"));
    return;
  }
  std::vector<std::byte> body = out.take();
  response_callback done = [this, version](result<response_view> response) {
    on_api_versions(version, std::move(response));
  };
  // Rounded up, so the request does not time out before the connect deadline.
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(connect_deadline_ -
                                                                 std::chrono::steady_clock::now());
  auto queued = enqueue(protocol::api_key::api_versions, version,
                        version >= protocol::ApiVersionsRequest::first_flexible_version, false,
                        nullptr, &body, done, std::max(left, std::chrono::milliseconds(1)));
  if (!queued.ok()) fail(queued.failure());
}

void kafka_client::on_api_versions(std::int16_t version, result<response_view> response) noexcept {
  if (!response.ok()) {
    fail(response.failure());
    return;
  }
  protocol::ApiVersionsResponse answer;
  protocol::reader in(response->body);
  answer.decode(in, version);
  if (!in.ok() && version > 0) {
    // An UNSUPPORTED_VERSION answer comes at v0 whatever was asked.
    in = protocol::reader(response->body);
    answer.decode(in, 0);
  }
  if (!in.ok()) {
    fail(error(errc::io_error, "the ApiVersions response does not decode", EBADMSG));
    return;
  }
  const auto code = static_cast<protocol::error_code>(answer.error_code);
  if (code == protocol::error_code::unsupported_version) {
    for (const auto& row : answer.api_keys) {
      if (row.api_key == protocol::ApiVersionsRequest::api_key && row.max_version < version &&
          row.max_version >= 0) {
        // Strictly lower each time: bounded by our first version.
        negotiate(row.max_version);
        return;
      }
    }
    fail(error(errc::not_found, "the broker supports no ApiVersions version we know",
               EPROTONOSUPPORT));
    return;
  }
  if (code != protocol::error_code::none) {
    fail(protocol_violation("the broker answered ApiVersions with an error"));
    return;
  }
  broker_versions_.assign(api_key_limit, {-1, -1});
  for (const auto& row : answer.api_keys) {
    if (row.api_key < 0 || row.api_key >= api_key_limit || row.min_version < 0 ||
        row.min_version > row.max_version) {
      continue;
    }
    broker_versions_[static_cast<std::size_t>(row.api_key)] = {row.min_version, row.max_version};
  }
  state_ = state::ready;
  if (on_ready_) {
    connect_callback ready = std::move(on_ready_);
    on_ready_ = nullptr;
    ++callback_depth_;
    ready(result<void>());
    --callback_depth_;
  }
}

std::optional<std::pair<std::int16_t, std::int16_t>> kafka_client::broker_versions(
    protocol::api_key key) const noexcept {
  const auto index = static_cast<std::int16_t>(key);
  if (index < 0 || static_cast<std::size_t>(index) >= broker_versions_.size()) return std::nullopt;
  const auto range = broker_versions_[static_cast<std::size_t>(index)];
  if (range.first < 0) return std::nullopt;
  return range;
}

result<std::int16_t> kafka_client::version_for(protocol::api_key key, std::int16_t our_min,
                                               std::int16_t our_max) const noexcept {
  if (broker_versions_.empty()) return not_connected();
  const auto range = broker_versions(key);
  if (!range) {
    return error(errc::not_found, "the broker does not support this API", EPROTONOSUPPORT);
  }
  const std::int16_t low = std::max(our_min, range->first);
  const std::int16_t high = std::min(our_max, range->second);
  if (low > high) {
    return error(errc::not_found, "the broker supports no version of this API that we do",
                 EPROTONOSUPPORT);
  }
  return high;
}

// ---- sending ----------------------------------------------------------------------------

result<void> kafka_client::send(protocol::api_key key, std::int16_t version,
                                protocol::bytes_view body, response_callback done,
                                std::chrono::milliseconds timeout) noexcept {
  const protocol::api_support* row = protocol::find_api(static_cast<std::int16_t>(key));
  if (row == nullptr) {
    return error(errc::invalid_argument, "unknown API key: its header versions are not known");
  }
  const bool flexible = protocol::is_flexible(*row, version);
  return enqueue(key, version, flexible, flexible && key != protocol::api_key::api_versions, &body,
                 nullptr, done, timeout);
}

result<void> kafka_client::send_owned(protocol::api_key key, std::int16_t version,
                                      std::vector<std::byte> body, response_callback done,
                                      std::chrono::milliseconds timeout) noexcept {
  const protocol::api_support* row = protocol::find_api(static_cast<std::int16_t>(key));
  if (row == nullptr) {
    return error(errc::invalid_argument, "unknown API key: its header versions are not known");
  }
  const bool flexible = protocol::is_flexible(*row, version);
  return enqueue(key, version, flexible, flexible && key != protocol::api_key::api_versions,
                 nullptr, &body, done, timeout);
}

result<void> kafka_client::enqueue(protocol::api_key key, std::int16_t version,
                                   bool request_flexible, bool response_flexible,
                                   const protocol::bytes_view* borrowed,
                                   std::vector<std::byte>* owned, response_callback& done,
                                   std::chrono::milliseconds timeout) noexcept {
  const bool open = state_ == state::ready ||
                    (state_ == state::negotiating && key == protocol::api_key::api_versions);
  if (!open) return not_connected();
  if (in_flight() >= slots_.size()) {
    return error(errc::backpressure, "the window of requests in flight is full");
  }
  const std::size_t body_bytes = borrowed != nullptr ? borrowed->size() : owned->size();
  const std::size_t header_bytes =
      fixed_header_bytes + config_.client_id.size() + (request_flexible ? 1 : 0);
  if (body_bytes >
      static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()) - header_bytes) {
    return error(errc::invalid_argument, "the request is larger than a frame can carry");
  }
  slot& s = slots_[tail_ % slots_.size()];
  SLUICE_ASSERT(s.status == slot_state::free, "request slot reused while taken");
  s.correlation_id = next_correlation_id_;
  next_correlation_id_ = next_correlation_id_ == std::numeric_limits<std::int32_t>::max()
                             ? 1
                             : next_correlation_id_ + 1;
  s.key = key;
  s.version = version;
  s.response_header_flexible = response_flexible;
  if (owned != nullptr) {
    // The slot's previous buffer goes back to the caller's vector and dies with it.
    s.owned_body.swap(*owned);
    s.body = s.owned_body;
  } else {
    s.body = *borrowed;
  }
  write_header(s, request_flexible);
  bytes_queued_total_ += s.frame_bytes();
  s.end_byte = bytes_queued_total_;
  s.deadline =
      std::chrono::steady_clock::now() + (timeout.count() > 0 ? timeout : config_.request_timeout);
  s.done = std::move(done);
  s.deferred_failure.reset();
  s.status = slot_state::waiting;
  ++tail_;
  arm_deadline(s.deadline);
  schedule_send();
  return {};
}

// RequestHeader v1 (v2 adds an empty tagged-field section), behind the frame's size.
void kafka_client::write_header(slot& s, bool request_flexible) noexcept {
  const std::string& client_id = config_.client_id;
  const std::size_t header_bytes =
      fixed_header_bytes + client_id.size() + (request_flexible ? 1 : 0);
  SLUICE_ASSERT(s.header.capacity() >= header_bytes, "header buffer reserved too small");
  s.header.resize(header_bytes);  // within the reserved capacity: no allocation
  std::byte* at = s.header.data();
  put_int32(at, static_cast<std::int32_t>(header_bytes - frame_prefix_bytes + s.body.size()));
  put_int16(at + 4, static_cast<std::int16_t>(s.key));
  put_int16(at + 6, s.version);
  put_int32(at + 8, s.correlation_id);
  put_int16(at + 12, static_cast<std::int16_t>(client_id.size()));
  if (!client_id.empty()) std::memcpy(at + fixed_header_bytes, client_id.data(), client_id.size());
  if (request_flexible) at[header_bytes - 1] = std::byte{0};
}

void kafka_client::schedule_send() noexcept {
  if (flush_op_.in_flight || send_op_.in_flight || sent_ == tail_) return;
  if (state_ != state::ready && state_ != state::negotiating) return;
  // A no-op completes in the same reactor turn, after the callbacks of this batch have
  // sent what they will: one sendmsg then carries all of it.
  io_uring_sqe* sqe = reactor_.prepare(&flush_op_);
  io_uring_prep_nop(sqe);
  flush_op_.in_flight = true;
}

void kafka_client::on_flush(int) noexcept {
  if (state_ == state::closed) {
    close_socket_when_idle();
    return;
  }
  start_send();
}

void kafka_client::start_send() noexcept {
  if (send_op_.in_flight || sent_ == tail_) return;
  std::size_t count = 0;
  // Bytes of the first unsent frame that are already out.
  const slot& first = slots_[sent_ % slots_.size()];
  std::size_t skip =
      static_cast<std::size_t>(bytes_sent_total_ - (first.end_byte - first.frame_bytes()));
  // Bounded by the window and by iovecs_max.
  for (std::uint64_t sequence = sent_; sequence < tail_ && count + 2 <= iovecs_.size();
       ++sequence) {
    const slot& s = slots_[sequence % slots_.size()];
    for (protocol::bytes_view piece : {protocol::bytes_view(s.header), s.body}) {
      if (skip >= piece.size()) {
        skip -= piece.size();
        continue;
      }
      piece = piece.subspan(skip);
      skip = 0;
      iovecs_[count].iov_base = const_cast<std::byte*>(piece.data());
      iovecs_[count].iov_len = piece.size();
      ++count;
    }
  }
  SLUICE_ASSERT(count > 0, "a send with nothing to send");
  std::memset(&message_, 0, sizeof message_);
  message_.msg_iov = iovecs_.data();
  message_.msg_iovlen = count;
  io_uring_sqe* sqe = reactor_.prepare(&send_op_);
  // MSG_NOSIGNAL: a broker gone away is an error value, not a SIGPIPE.
  io_uring_prep_sendmsg(sqe, fd_, &message_, MSG_NOSIGNAL);
  send_op_.in_flight = true;
}

void kafka_client::on_send(int res) noexcept {
  if (state_ == state::closed) {
    // The kernel has let go of every byte: deferred callbacks may run now.
    run_deferred_failures();
    close_socket_when_idle();
    return;
  }
  if (res <= 0) {
    fail(error(errc::closed, "sending to the broker failed", res == 0 ? ECONNRESET : -res));
    return;
  }
  bytes_sent_total_ += static_cast<std::uint64_t>(res);
  advance_sent();
  schedule_send();
}

void kafka_client::advance_sent() noexcept {
  sent_ = std::max(sent_, head_);
  // Bounded by the window.
  while (sent_ < tail_ && slots_[sent_ % slots_.size()].end_byte <= bytes_sent_total_) ++sent_;
}

// ---- receiving --------------------------------------------------------------------------

void kafka_client::arm_receive() noexcept {
  if (receive_begin_ == receive_end_) receive_begin_ = receive_end_ = 0;
  // The frame being received needs this many bytes from receive_begin_ (just its size
  // prefix when the prefix is not complete yet).
  std::size_t needed = frame_prefix_bytes;
  const std::size_t have = receive_end_ - receive_begin_;
  if (skip_bytes_ == 0 && have >= frame_prefix_bytes) {
    needed += static_cast<std::size_t>(get_int32(receive_buffer_.data() + receive_begin_));
  }
  const std::size_t tail_room = receive_buffer_.size() - receive_end_;
  if (receive_begin_ > 0 &&
      (tail_room < receive_buffer_bytes_min || receive_begin_ + needed > receive_buffer_.size())) {
    std::memmove(receive_buffer_.data(), receive_buffer_.data() + receive_begin_, have);
    receive_begin_ = 0;
    receive_end_ = have;
  }
  if (receive_end_ == receive_buffer_.size()) {
    // Full of one incomplete frame: grow with the bytes that arrive, doubling, up to the
    // frame's size (which consume_frames() checked against response_bytes_max).
    SLUICE_ASSERT(needed > receive_buffer_.size(), "receive buffer full of complete frames");
    receive_buffer_.resize(std::min(needed, receive_buffer_.size() * 2));
  }
  io_uring_sqe* sqe = reactor_.prepare(&receive_op_);
  io_uring_prep_recv(sqe, fd_, receive_buffer_.data() + receive_end_,
                     receive_buffer_.size() - receive_end_, 0);
  receive_op_.in_flight = true;
}

void kafka_client::on_receive(int res) noexcept {
  if (state_ == state::closed) {
    close_socket_when_idle();
    return;
  }
  if (res == 0) {
    fail(error(errc::closed, "the broker closed the connection", ECONNRESET));
    return;
  }
  if (res < 0) {
    fail(error(errc::closed, "receiving from the broker failed", -res));
    return;
  }
  receive_end_ += static_cast<std::size_t>(res);
  consume_frames();
  if (state_ != state::closed) arm_receive();
}

void kafka_client::consume_frames() noexcept {
  // Each pass consumes bytes or stops: bounded by the bytes received.
  while (state_ != state::closed) {
    const std::size_t have = receive_end_ - receive_begin_;
    if (skip_bytes_ > 0) {
      const std::size_t drop = std::min(skip_bytes_, have);
      receive_begin_ += drop;
      skip_bytes_ -= drop;
      if (skip_bytes_ > 0) break;
      continue;
    }
    if (have < frame_prefix_bytes) break;
    const std::int32_t size = get_int32(receive_buffer_.data() + receive_begin_);
    if (size < 4) {
      fail(protocol_violation("a response frame too short for a correlation id"));
      return;
    }
    if (static_cast<std::size_t>(size) > config_.response_bytes_max) {
      if (head_ == tail_) {
        fail(protocol_violation("a response arrived with no request outstanding"));
        return;
      }
      // Too large to hold: skip it; its request fails, the connection carries on.
      receive_begin_ += frame_prefix_bytes;
      skip_bytes_ = static_cast<std::size_t>(size);
      complete_head(
          error(errc::batch_too_large, "the response is larger than response_bytes_max", EMSGSIZE));
      continue;
    }
    if (have < frame_prefix_bytes + static_cast<std::size_t>(size)) break;
    const protocol::bytes_view frame(receive_buffer_.data() + receive_begin_ + frame_prefix_bytes,
                                     static_cast<std::size_t>(size));
    receive_begin_ += frame_prefix_bytes + static_cast<std::size_t>(size);
    // The buffer is not touched again before the next receive, which cannot complete
    // while the callback runs: the frame stays valid through it.
    deliver(frame);
  }
}

void kafka_client::deliver(protocol::bytes_view frame) noexcept {
  if (head_ == tail_) {
    fail(protocol_violation("a response arrived with no request outstanding"));
    return;
  }
  const slot& s = slots_[head_ % slots_.size()];
  protocol::reader in(frame);
  const std::int32_t correlation_id = in.read_int32();
  if (correlation_id != s.correlation_id) {
    fail(protocol_violation("a response's correlation id does not match the oldest request"));
    return;
  }
  if (s.response_header_flexible) in.skip_tagged_fields();
  if (!in.ok()) {
    fail(protocol_violation("a response header does not decode"));
    return;
  }
  complete_head(response_view{s.key, s.version, correlation_id, in.rest()});
}

void kafka_client::complete_head(result<response_view> outcome) noexcept {
  slot& s = slots_[head_ % slots_.size()];
  const slot_state status = s.status;
  response_callback done = std::move(s.done);
  s.done = nullptr;
  s.status = slot_state::free;
  s.body = {};
  ++head_;
  advance_sent();
  if (status == slot_state::abandoned) return;  // its callback had its timeout already
  run_callback(done, std::move(outcome));
}

void kafka_client::run_callback(response_callback& done, result<response_view> outcome) noexcept {
  if (!done) return;
  ++callback_depth_;
  done(std::move(outcome));
  --callback_depth_;
}

// ---- deadlines --------------------------------------------------------------------------

void kafka_client::arm_deadline(std::chrono::steady_clock::time_point deadline) noexcept {
  if (state_ == state::closed) return;
  if (armed_deadline_ && *armed_deadline_ <= deadline) return;
  armed_deadline_ = deadline;
  deadline_timer_.arm(deadline - std::chrono::steady_clock::now());
}

void kafka_client::on_timer() noexcept {
  if (state_ == state::closed) return;
  const auto now = std::chrono::steady_clock::now();
  if ((state_ == state::connecting || state_ == state::negotiating) && now >= connect_deadline_) {
    fail(error(errc::io_error, "connecting to the broker timed out", ETIMEDOUT));
    return;
  }
  std::optional<std::chrono::steady_clock::time_point> next;
  // Bounded by the window. A callback may send (tail_ grows) or close (state changes).
  for (std::uint64_t sequence = head_; sequence < tail_ && state_ != state::closed; ++sequence) {
    slot& s = slots_[sequence % slots_.size()];
    if (s.status != slot_state::waiting) continue;
    if (s.deadline <= now) {
      expire(sequence);
    } else if (!next || s.deadline < *next) {
      next = s.deadline;
    }
  }
  if (state_ == state::connecting || state_ == state::negotiating) {
    if (!next || connect_deadline_ < *next) next = connect_deadline_;
  }
  if (next) arm_deadline(*next);
}

void kafka_client::expire(std::uint64_t sequence) noexcept {
  if (sequence >= sent_) {
    // Not even sent within its timeout: the broker has stopped reading, and everything
    // behind this request waits as well. Kafka's clients drop such a connection too.
    fail(error(errc::io_error, "the request timed out before the broker read it", ETIMEDOUT));
    return;
  }
  slot& s = slots_[sequence % slots_.size()];
  s.status = slot_state::abandoned;
  response_callback done = std::move(s.done);
  s.done = nullptr;
  run_callback(done, error(errc::io_error, "the request timed out", ETIMEDOUT));
}

// ---- closing ----------------------------------------------------------------------------

void kafka_client::close() noexcept {
  fail(error(errc::closed, "the client was closed"));
}

void kafka_client::fail(error why) noexcept {
  if (state_ == state::closed) return;
  const bool was_connecting = state_ == state::connecting || state_ == state::negotiating;
  state_ = state::closed;
  if (connect_op_.in_flight) cancel(connect_op_);
  if (send_op_.in_flight) cancel(send_op_);
  if (receive_op_.in_flight) cancel(receive_op_);
  deadline_timer_.cancel();
  armed_deadline_.reset();
  // Every outstanding request learns the outcome now, except those a sendmsg in flight
  // may still read: they wait for its (cancelled) completion.
  const bool send_busy = send_op_.in_flight;
  for (std::uint64_t sequence = head_; sequence < tail_; ++sequence) {
    slot& s = slots_[sequence % slots_.size()];
    if (s.status == slot_state::abandoned) continue;
    if (send_busy && sequence >= sent_) {
      s.deferred_failure = why;
      continue;
    }
    s.status = slot_state::abandoned;
    response_callback done = std::move(s.done);
    s.done = nullptr;
    run_callback(done, why);
  }
  if (!send_busy) run_deferred_failures();
  if (was_connecting && on_ready_) {
    connect_callback ready = std::move(on_ready_);
    on_ready_ = nullptr;
    ++callback_depth_;
    ready(why);
    --callback_depth_;
  }
  close_socket_when_idle();
}

void kafka_client::run_deferred_failures() noexcept {
  // Bounded by the window; nothing is added once closed.
  for (std::uint64_t sequence = head_; sequence < tail_; ++sequence) {
    slot& s = slots_[sequence % slots_.size()];
    if (s.status != slot_state::abandoned && s.deferred_failure) {
      s.status = slot_state::abandoned;
      response_callback done = std::move(s.done);
      s.done = nullptr;
      run_callback(done, *s.deferred_failure);
    }
  }
  for (std::uint64_t sequence = head_; sequence < tail_; ++sequence) {
    slot& s = slots_[sequence % slots_.size()];
    s.status = slot_state::free;
    s.body = {};
    s.deferred_failure.reset();
  }
  head_ = sent_ = tail_;
}

void kafka_client::on_cancel(int) noexcept {
  // 0, -ENOENT (already done) and -EALREADY (finishing) all end with the target's own
  // completion arriving or having arrived; only the count matters.
  --cancels_in_flight_;
  close_socket_when_idle();
}

void kafka_client::cancel(operation& op) noexcept {
  io_uring_sqe* sqe = reactor_.prepare(&cancel_op_);
  io_uring_prep_cancel(sqe, &op, 0);
  ++cancels_in_flight_;
}

void kafka_client::close_socket_when_idle() noexcept {
  if (state_ != state::closed || fd_ < 0) return;
  if (connect_op_.in_flight || send_op_.in_flight || receive_op_.in_flight ||
      cancels_in_flight_ > 0) {
    return;
  }
  ::close(fd_);
  fd_ = -1;
}

}  // namespace sluice
