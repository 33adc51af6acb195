#include "tools/admin/group_offsets.h"

#include <algorithm>
#include <set>

#include "net/protocol/generated/consumer_protocol.h"
#include "net/protocol/reader.h"

namespace sluice::admin {

result<std::vector<topic_partitions>> decode_assignment(protocol::bytes_view bytes) {
  std::vector<topic_partitions> out;
  if (bytes.empty()) return out;
  protocol::reader in(bytes);
  const std::int16_t version = in.read_int16();
  if (!in.ok() || version < 0) {
    return error(errc::invalid_argument, "the assignment has no consumer protocol version");
  }
  protocol::ConsumerProtocolAssignment assignment;
  assignment.decode(in, std::min(version, protocol::ConsumerProtocolAssignment::max_version));
  if (!in.ok()) {
    return error(errc::invalid_argument, "the assignment is not a consumer protocol assignment");
  }
  for (const auto& entry : assignment.assigned_partitions) {
    out.push_back({std::string(entry.topic), entry.partitions});
  }
  return out;
}

std::vector<partition_offsets> group_partition_offsets(
    const std::vector<group_member>& members,
    const std::map<partition_key, std::int64_t>& committed,
    const std::map<partition_key, std::int64_t>& log_end) {
  std::map<partition_key, std::string> owners;
  for (const auto& member : members) {
    for (const auto& assigned : member.assignment) {
      for (std::int32_t p : assigned.partitions) owners[{assigned.topic, p}] = member.member_id;
    }
  }
  std::set<partition_key> keys;
  for (const auto& [key, offset] : committed) keys.insert(key);
  for (const auto& [key, owner] : owners) keys.insert(key);
  std::vector<partition_offsets> rows;
  rows.reserve(keys.size());
  for (const auto& key : keys) {
    partition_offsets row;
    row.topic = key.first;
    row.partition = key.second;
    if (auto it = committed.find(key); it != committed.end() && it->second >= 0) {
      row.committed_offset = it->second;
    }
    if (auto it = log_end.find(key); it != log_end.end() && it->second >= 0) {
      row.log_end_offset = it->second;
    }
    if (row.committed_offset && row.log_end_offset) {
      row.lag = *row.log_end_offset - *row.committed_offset;
    }
    if (auto it = owners.find(key); it != owners.end()) row.member_id = it->second;
    rows.push_back(std::move(row));
  }
  return rows;
}

std::int64_t clamp_reset_offset(std::int64_t wanted, std::int64_t log_start, std::int64_t log_end) {
  return std::clamp(wanted, log_start, std::max(log_start, log_end));
}

}  // namespace sluice::admin
