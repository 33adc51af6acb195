// Counters of the network engine, for tests, logs and (later) the metrics endpoint.
//
// One instance per server, owned by it and written only by the reactor's thread; read
// them from that thread too (or after the reactor has stopped).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice {

struct net_metrics {
  std::uint64_t connections_accepted = 0;
  // Accepted and closed at once because connections_max was reached.
  std::uint64_t connections_rejected = 0;
  std::uint64_t connections_closed = 0;
  // Multishot accepts ended by an error (EMFILE, ENFILE, ...) and retried after a pause.
  std::uint64_t accept_backoffs = 0;
  std::uint64_t frames_received = 0;
  std::uint64_t frames_sent = 0;
  // Frames assembled in a connection's buffer because they spanned receive buffers.
  std::uint64_t frames_assembled = 0;
  // Frames whose size prefix was negative or above request_bytes_max.
  std::uint64_t frames_rejected = 0;
  // Receives ended by -ENOBUFS: the provided-buffer ring was empty.
  std::uint64_t receive_no_buffers = 0;
  // Times a connection stopped reading because its in-flight or queued-bytes bound was hit.
  std::uint64_t read_pauses = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  // The highest queued_bytes() any connection has reached.
  std::size_t queued_bytes_peak = 0;
};

}  // namespace sluice
