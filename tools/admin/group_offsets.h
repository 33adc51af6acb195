// What `sluice-admin groups` computes from the broker's answers, apart from the talking:
// the partitions a member's assignment bytes name, and the per-partition view of a
// group (committed offset, log end offset, lag, owning member).
//
// Pure functions over plain values, so tests can feed them canned responses.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/base/result.h"
#include "net/protocol/field_types.h"

namespace sluice::admin {

struct topic_partitions {
  std::string topic;
  std::vector<std::int32_t> partitions;
  friend bool operator==(const topic_partitions&, const topic_partitions&) = default;
};

// Decodes a member's assignment as the consumer protocol writes it: an int16 version,
// then ConsumerProtocolAssignment at that version (a version newer than we know is read
// as our newest, as Kafka does: newer versions only append fields). Empty bytes -- a
// member that has not been assigned anything yet -- decode to no partitions.
result<std::vector<topic_partitions>> decode_assignment(protocol::bytes_view bytes);

struct group_member {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  std::vector<topic_partitions> assignment;
  // The assignment bytes were not the consumer protocol (another protocol type).
  bool assignment_unreadable = false;
};

using partition_key = std::pair<std::string, std::int32_t>;

struct partition_offsets {
  std::string topic;
  std::int32_t partition = 0;
  std::optional<std::int64_t> committed_offset;
  std::optional<std::int64_t> log_end_offset;
  // log_end_offset - committed_offset, when both are known.
  std::optional<std::int64_t> lag;
  // The member assigned this partition, if any.
  std::optional<std::string> member_id;
};

// One row per partition that has a committed offset or is assigned to a member, sorted
// by topic and partition. `committed` holds the committed offsets (absent: none, as
// OffsetFetch's -1 means); `log_end` the log end offsets found.
std::vector<partition_offsets> group_partition_offsets(
    const std::vector<group_member>& members,
    const std::map<partition_key, std::int64_t>& committed,
    const std::map<partition_key, std::int64_t>& log_end);

// The offset a reset moves a partition to, for --to-offset: Kafka's tool keeps it within
// [log start, log end].
std::int64_t clamp_reset_offset(std::int64_t wanted, std::int64_t log_start, std::int64_t log_end);

}  // namespace sluice::admin
