// load_stats: what one side of a load (producers or consumers) has done since measuring
// started: records, bytes, requests, failures, and the latency histogram.
//
// Bytes are record batch bytes as they travel (header and records, compressed when
// compressed): what the broker stores and serves.
//
// Owned by the run (bench_run.cc); single-threaded, shared by reference between the
// connections of one side.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "net/client/kafka_client.h"
#include "net/protocol/reader.h"
#include "tools/sluice-bench/latency_histogram.h"

namespace sluice::bench {

struct load_stats {
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
  std::uint64_t requests = 0;
  // Requests that failed (client errors) and partitions answered with a Kafka error.
  std::uint64_t request_errors = 0;
  std::uint64_t partition_errors = 0;
  // The first failure, in words, for the report.
  std::string first_error;
  latency_histogram latency_us;

  void note_error(const std::string& what) {
    if (first_error.empty()) first_error = what;
  }
  // Counts the answer to one request and decodes it into `out` at `version`; false (the
  // request counted as failed, the first failure noted for the report) when the request
  // failed or its answer does not decode. `api` names it in the note.
  template <typename Message>
  bool decode_answer(std::string_view api, const result<response_view>& response,
                     std::int16_t version, Message& out) {
    ++requests;
    if (!response.ok()) {
      ++request_errors;
      note_error(fmt::format("{}: {}", api, response.failure().detail()));
      return false;
    }
    protocol::reader in(response->body);
    out.decode(in, version);
    if (!in.ok()) {
      ++request_errors;
      note_error(fmt::format("{}: the response does not decode", api));
      return false;
    }
    return true;
  }
  // Forgets what the warm-up did (keeps first_error: a failure is never forgotten).
  void reset() noexcept {
    records = bytes = requests = 0;
    latency_us.reset();
  }
};

}  // namespace sluice::bench
