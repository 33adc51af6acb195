// Per-topic configuration overrides (Kafka's topic configs: retention.ms, segment.bytes,
// cleanup.policy, ...) and how they resolve onto the broker's default log_config.
//
// Overrides are kept as the strings a client sent (so DescribeConfigs and the topics file
// can give them back verbatim) and resolved into a log_config whenever a partition log is
// created or reopened. cleanup.policy takes delete, compact or both ("compact,delete"),
// with delete.retention.ms, min.cleanable.dirty.ratio and min.compaction.lag.ms for the
// log cleaner (engine/storage/log_cleaner.h). Names Kafka defines but Sluice cannot honour
// are refused with a reason (message.timestamp.type=LogAppendTime); names that only
// matter in a cluster (min.insync.replicas, ...) or that Sluice does not implement
// (max.compaction.lag.ms) are accepted and have no effect.
#pragma once

#include <map>
#include <string>
#include <variant>

#include "engine/storage/log_config.h"

namespace sluice {

using topic_config_overrides = std::map<std::string, std::string, std::less<>>;

// The resolved config, or a one-line reason naming the offending config for the client
// (CreateTopics' error_message) and the log.
using config_resolution = std::variant<log_config, std::string>;

config_resolution resolve_topic_config(const log_config& defaults,
                                       const topic_config_overrides& overrides);

}  // namespace sluice
