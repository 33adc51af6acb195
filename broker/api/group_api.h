// What the group API handlers (FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups,
// OffsetDelete) share: the step from the wire's views to the coordinator's owned values.
//
// The coordinator (broker/groups/group_coordinator.h) answers JoinGroup, SyncGroup,
// OffsetCommit, DeleteGroups and OffsetDelete later, after the request's bytes are gone:
// everything it keeps is copied out of the request here, and the response slot travels in
// a shared_ptr (std::function needs a copyable callable; the slot is move-only).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "broker/api/request_context.h"
#include "broker/groups/group_coordinator.h"
#include "net/protocol/field_types.h"

namespace sluice {

inline std::string owned(std::string_view text) {
  return std::string(text);
}
inline std::optional<std::string> owned(const std::optional<std::string_view>& text) {
  if (!text) return std::nullopt;
  return std::string(*text);
}
inline std::string owned_bytes(protocol::bytes_view bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}
inline protocol::bytes_view as_bytes(const std::string& bytes) {
  return {reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()};
}
inline std::int16_t code(protocol::error_code error) {
  return static_cast<std::int16_t>(error);
}

inline groups::steady_time steady_now() {
  return std::chrono::steady_clock::now();
}

// Kafka's clientHost: "/" and the peer's address without the port.
std::string client_host(const request_context& ctx);

using shared_slot = std::shared_ptr<response_slot>;
inline shared_slot share(response_slot slot) {
  return std::make_shared<response_slot>(std::move(slot));
}

}  // namespace sluice
