// The Kafka APIs Sluice serves: their keys, names, the versions Sluice supports, and the
// rules for which request and response header version goes with an API version.
//
// This table says which versions the codec is used for (a subset of the schema's); the
// broker serves a subset of it again, declared in broker/api/api_table.h, which is what
// its ApiVersions response lists. The codec itself (net/protocol/generated/) can read and
// write every version of the schema; a test checks that each supported range lies within
// the schema's and that the flexible versions agree.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice::protocol {

enum class api_key : std::int16_t {
  produce = 0,
  fetch = 1,
  list_offsets = 2,
  metadata = 3,
  offset_commit = 8,
  offset_fetch = 9,
  find_coordinator = 10,
  join_group = 11,
  heartbeat = 12,
  leave_group = 13,
  sync_group = 14,
  describe_groups = 15,
  list_groups = 16,
  api_versions = 18,
  create_topics = 19,
  delete_topics = 20,
  init_producer_id = 22,
  describe_configs = 32,
  create_partitions = 37,
  delete_groups = 42,
  incremental_alter_configs = 44,
  offset_delete = 47,
  describe_cluster = 60,
};

// The first_flexible_version of an API none of whose versions is flexible (OffsetDelete);
// the same value as the generated messages' first_flexible_version in that case.
inline constexpr std::int16_t no_flexible_version = -1;

struct api_support {
  api_key key;
  // Kafka's name for the API, as in protocol.html and ApiVersions tooling.
  std::string_view name;
  // The versions Sluice accepts, inclusive.
  std::int16_t min_version;
  std::int16_t max_version;
  // The first version with flexible (compact, tagged) encoding: a protocol fact.
  // no_flexible_version when the API has none.
  std::int16_t first_flexible_version;
};

// One row per API, in increasing key order.
//
// Produce v0-v2 and Fetch v0-v3 are left out: they carry message format v0/v1 (magic 0
// and 1), which the engine does not store and which Kafka 4 no longer serves either.
// Every other API is supported over the whole range its schema defines.
inline constexpr std::array<api_support, 23> supported_versions = {{
    {api_key::produce, "Produce", 3, 11, 9},
    {api_key::fetch, "Fetch", 4, 17, 12},
    {api_key::list_offsets, "ListOffsets", 0, 10, 6},
    {api_key::metadata, "Metadata", 0, 12, 9},
    {api_key::offset_commit, "OffsetCommit", 0, 9, 8},
    {api_key::offset_fetch, "OffsetFetch", 0, 9, 6},
    {api_key::find_coordinator, "FindCoordinator", 0, 6, 3},
    {api_key::join_group, "JoinGroup", 0, 9, 6},
    {api_key::heartbeat, "Heartbeat", 0, 4, 4},
    {api_key::leave_group, "LeaveGroup", 0, 5, 4},
    {api_key::sync_group, "SyncGroup", 0, 5, 4},
    {api_key::describe_groups, "DescribeGroups", 0, 5, 5},
    {api_key::list_groups, "ListGroups", 0, 5, 3},
    {api_key::api_versions, "ApiVersions", 0, 4, 3},
    {api_key::create_topics, "CreateTopics", 0, 7, 5},
    {api_key::delete_topics, "DeleteTopics", 0, 6, 4},
    {api_key::init_producer_id, "InitProducerId", 0, 5, 2},
    {api_key::describe_configs, "DescribeConfigs", 0, 4, 4},
    {api_key::create_partitions, "CreatePartitions", 0, 3, 2},
    {api_key::delete_groups, "DeleteGroups", 0, 2, 2},
    {api_key::incremental_alter_configs, "IncrementalAlterConfigs", 0, 1, 1},
    {api_key::offset_delete, "OffsetDelete", 0, 0, no_flexible_version},
    {api_key::describe_cluster, "DescribeCluster", 0, 1, 0},
}};

// The row of an API key read from the wire, or nullptr for an API Sluice does not serve.
constexpr const api_support* find_api(std::int16_t key) noexcept {
  for (const auto& row : supported_versions) {
    if (static_cast<std::int16_t>(row.key) == key) return &row;
  }
  return nullptr;
}

constexpr bool is_supported(std::int16_t key, std::int16_t version) noexcept {
  const api_support* row = find_api(key);
  return row != nullptr && row->min_version <= version && version <= row->max_version;
}

// Whether `version` of the API uses flexible encoding. Versions above the supported
// maximum count as flexible when the API has flexible versions at all, as in Kafka: that
// is what lets a broker parse the header of a too-new request and answer it.
constexpr bool is_flexible(const api_support& row, std::int16_t version) noexcept {
  return row.first_flexible_version != no_flexible_version && version >= row.first_flexible_version;
}

// The request header version for a request of API `key` at `version`: 2 for flexible
// versions, 1 otherwise (header v0, without a client id, is only used by
// ControlledShutdown v0, which Sluice does not serve). nullopt for an unknown API.
constexpr std::optional<std::int16_t> request_header_version(std::int16_t key,
                                                             std::int16_t version) noexcept {
  const api_support* row = find_api(key);
  if (row == nullptr) return std::nullopt;
  return is_flexible(*row, version) ? 2 : 1;
}

// The response header version: 1 for flexible versions, 0 otherwise, and always 0 for
// ApiVersions, so that a client that sent a version the broker does not know can still
// read the broker's answer (KIP-511). nullopt for an unknown API.
constexpr std::optional<std::int16_t> response_header_version(std::int16_t key,
                                                              std::int16_t version) noexcept {
  const api_support* row = find_api(key);
  if (row == nullptr) return std::nullopt;
  if (row->key == api_key::api_versions) return 0;
  return is_flexible(*row, version) ? 1 : 0;
}

constexpr std::string_view api_name(api_key key) noexcept {
  const api_support* row = find_api(static_cast<std::int16_t>(key));
  return row == nullptr ? std::string_view("Unknown") : row->name;
}

}  // namespace sluice::protocol
