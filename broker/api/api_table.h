// The Kafka APIs this broker serves: each handler declared once, with the versions it
// accepts. kafka_handler dispatches through this table, and ApiVersions answers from it,
// so what the broker advertises is exactly what it dispatches.
//
// Each range lies within net/protocol/api_keys.h's supported_versions (what the codec
// can read and write; checked by static_assert below) and may be narrower. Versions are
// from the lowest that librdkafka 2.x, kafka-python 2.0 and kafkajs 2.2 send, to the
// newest in our schema.
//
// APIs outside the table, or versions outside a range, get what Kafka gives them: an
// ApiVersions request at an unsupported version gets UNSUPPORTED_VERSION and the list
// (encoded at v0, KIP-511), anything else has its connection closed (Kafka's
// SocketServer fails to parse such a request header and closes the channel).
#pragma once

#include <array>
#include <cstdint>

#include "broker/api/request_context.h"
#include "net/protocol/api_keys.h"

namespace sluice {

using api_handler_function = handler_status (*)(request_context&, protocol::reader& body);

struct api_handler {
  protocol::api_key key;
  std::int16_t min_version;
  std::int16_t max_version;
  api_handler_function handle;
};

// One per file in broker/api/.
handler_status handle_produce(request_context& ctx, protocol::reader& body);
handler_status handle_fetch(request_context& ctx, protocol::reader& body);
handler_status handle_list_offsets(request_context& ctx, protocol::reader& body);
handler_status handle_metadata(request_context& ctx, protocol::reader& body);
handler_status handle_api_versions(request_context& ctx, protocol::reader& body);
handler_status handle_create_topics(request_context& ctx, protocol::reader& body);
handler_status handle_delete_topics(request_context& ctx, protocol::reader& body);
handler_status handle_init_producer_id(request_context& ctx, protocol::reader& body);
handler_status handle_describe_configs(request_context& ctx, protocol::reader& body);
handler_status handle_create_partitions(request_context& ctx, protocol::reader& body);
handler_status handle_incremental_alter_configs(request_context& ctx, protocol::reader& body);
handler_status handle_describe_cluster(request_context& ctx, protocol::reader& body);
handler_status handle_offset_commit(request_context& ctx, protocol::reader& body);
handler_status handle_offset_fetch(request_context& ctx, protocol::reader& body);
handler_status handle_find_coordinator(request_context& ctx, protocol::reader& body);
handler_status handle_join_group(request_context& ctx, protocol::reader& body);
handler_status handle_heartbeat(request_context& ctx, protocol::reader& body);
handler_status handle_leave_group(request_context& ctx, protocol::reader& body);
handler_status handle_sync_group(request_context& ctx, protocol::reader& body);
handler_status handle_describe_groups(request_context& ctx, protocol::reader& body);
handler_status handle_list_groups(request_context& ctx, protocol::reader& body);
handler_status handle_delete_groups(request_context& ctx, protocol::reader& body);
handler_status handle_offset_delete(request_context& ctx, protocol::reader& body);

// In increasing key order.
inline constexpr std::array<api_handler, 23> api_handlers = {{
    // v0-v2 carry message format v0/v1, which the engine does not store.
    {protocol::api_key::produce, 3, 11, handle_produce},
    // v0-v3 likewise.
    {protocol::api_key::fetch, 4, 17, handle_fetch},
    // v0 (a list of offsets per partition) predates every client we target.
    {protocol::api_key::list_offsets, 1, 10, handle_list_offsets},
    {protocol::api_key::metadata, 0, 12, handle_metadata},
    // The group APIs from v0: librdkafka 2.0 probes with ApiVersions and falls back to
    // the oldest versions for some, and never joins when they are missing.
    {protocol::api_key::offset_commit, 0, 9, handle_offset_commit},
    {protocol::api_key::offset_fetch, 0, 9, handle_offset_fetch},
    {protocol::api_key::find_coordinator, 0, 6, handle_find_coordinator},
    {protocol::api_key::join_group, 0, 9, handle_join_group},
    {protocol::api_key::heartbeat, 0, 4, handle_heartbeat},
    {protocol::api_key::leave_group, 0, 5, handle_leave_group},
    {protocol::api_key::sync_group, 0, 5, handle_sync_group},
    {protocol::api_key::describe_groups, 0, 5, handle_describe_groups},
    {protocol::api_key::list_groups, 0, 5, handle_list_groups},
    {protocol::api_key::api_versions, 0, 4, handle_api_versions},
    {protocol::api_key::create_topics, 0, 7, handle_create_topics},
    {protocol::api_key::delete_topics, 0, 6, handle_delete_topics},
    {protocol::api_key::init_producer_id, 0, 5, handle_init_producer_id},
    {protocol::api_key::describe_configs, 0, 4, handle_describe_configs},
    {protocol::api_key::create_partitions, 0, 3, handle_create_partitions},
    {protocol::api_key::delete_groups, 0, 2, handle_delete_groups},
    {protocol::api_key::incremental_alter_configs, 0, 1, handle_incremental_alter_configs},
    {protocol::api_key::offset_delete, 0, 0, handle_offset_delete},
    {protocol::api_key::describe_cluster, 0, 1, handle_describe_cluster},
}};

constexpr const api_handler* find_api_handler(std::int16_t key) noexcept {
  for (const auto& row : api_handlers) {
    if (static_cast<std::int16_t>(row.key) == key) return &row;
  }
  return nullptr;
}

namespace detail {
// Written without pointers into the table: GCC does not treat their comparison as a
// constant expression under -fsanitize=undefined.
constexpr bool handlers_within_codec() {
  std::int16_t previous = -1;
  for (const auto& row : api_handlers) {
    bool within = false;
    for (const auto& codec : protocol::supported_versions) {
      within = within || (codec.key == row.key && row.min_version >= codec.min_version &&
                          row.max_version <= codec.max_version);
    }
    if (!within || row.min_version > row.max_version) return false;
    if (static_cast<std::int16_t>(row.key) <= previous) return false;
    previous = static_cast<std::int16_t>(row.key);
  }
  return true;
}
}  // namespace detail
static_assert(detail::handlers_within_codec(),
              "every handler range must lie within net/protocol/api_keys.h, keys ascending");

// What to do with a request header's (key, version), decided from the table alone.
enum class dispatch_verdict : std::uint8_t {
  handle,                    // a handler accepts it
  api_versions_unsupported,  // answer UNSUPPORTED_VERSION with the list, at v0
  close_connection,          // unknown API or unsupported version
};
constexpr dispatch_verdict verdict_for(std::int16_t key, std::int16_t version) noexcept {
  const api_handler* row = find_api_handler(key);
  if (row != nullptr && row->min_version <= version && version <= row->max_version) {
    return dispatch_verdict::handle;
  }
  if (key == static_cast<std::int16_t>(protocol::api_key::api_versions)) {
    return dispatch_verdict::api_versions_unsupported;
  }
  return dispatch_verdict::close_connection;
}

}  // namespace sluice
