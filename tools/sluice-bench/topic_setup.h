// topic_setup: what sluice-bench asks the broker before any load -- the topic's
// partition count (creating the topic when missing), and offsets by time (ListOffsets).
//
// All synchronous (call_sync on the bootstrap connection): start-up work, not load.
// Failures come back as one line of words in `why` (error details are string literals,
// and these name the topic and the Kafka error).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "net/client/kafka_client.h"
#include "tools/sluice-bench/bench_options.h"

namespace sluice::bench {

struct topic_layout {
  std::int32_t partitions = 0;
  bool created = false;
};

// The topic's layout. When it is missing and `create` is set, creates it with
// options.partitions (CreateTopics) and waits until Metadata shows every partition
// with a leader (bounded by options.timeout).
std::optional<topic_layout> prepare_topic(kafka_client& client, const bench_options& options,
                                          bool create, std::string& why);

// ListOffsets of every partition: `timestamp` -1 for the end offsets, -2 for the log
// start offsets.
std::optional<std::vector<std::int64_t>> list_offsets(kafka_client& client,
                                                      const bench_options& options,
                                                      std::int32_t partitions,
                                                      std::int64_t timestamp, std::string& why);

}  // namespace sluice::bench
