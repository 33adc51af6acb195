// cluster_view: what Metadata says about brokers and topics, copied out of the response
// (its views die with it), and the offsets ListOffsets gives, asked of each partition's
// leader. Shared by the topics and groups commands.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "net/protocol/field_types.h"
#include "tools/admin/admin_session.h"
#include "tools/admin/group_offsets.h"

namespace sluice::admin {

struct broker_address {
  std::string host;
  std::uint16_t port = 0;
};

struct partition_view {
  std::int32_t partition = 0;
  std::int16_t error_code = 0;
  std::int32_t leader = -1;
  std::int32_t leader_epoch = -1;
  std::vector<std::int32_t> replicas;
  std::vector<std::int32_t> isr;
  std::vector<std::int32_t> offline_replicas;
};

struct topic_view {
  std::string name;
  protocol::uuid id;
  bool internal = false;
  std::int16_t error_code = 0;
  std::vector<partition_view> partitions;  // sorted by partition
};

struct cluster_view {
  std::map<std::int32_t, broker_address> brokers;
  std::vector<topic_view> topics;  // in the order asked, or by name for "all"
  const topic_view* find(const std::string& name) const;
};

// Metadata for `topics`, or for every topic when null. Never creates topics. nullopt
// (reported) when the request fails; per-topic errors stay in the topic's error_code.
std::optional<cluster_view> fetch_cluster(admin_session& session,
                                          const std::vector<std::string>* topics);

// ListOffsets at `timestamp` (-1 latest, -2 earliest, else the first offset at or after
// that time; -1 when there is none) for `partitions`, each asked of its leader. Partitions
// whose leader is unknown or which fail are missing from the result; failures are
// reported, naming `subject`, when `report_errors`.
std::map<partition_key, std::int64_t> list_offsets(admin_session& session,
                                                   const cluster_view& cluster,
                                                   const std::vector<partition_key>& partitions,
                                                   std::int64_t timestamp, bool report_errors);

// Kafka's text form of a topic id: URL-safe base64 without padding, 22 characters.
std::string topic_id_text(const protocol::uuid& id);

// Kafka's name of a DescribeConfigs config source.
const char* config_source_name(std::int8_t source);

}  // namespace sluice::admin
