// The keys and values of the records in `__consumer_offsets`, byte for byte as Kafka
// writes them (Kafka's OffsetCommitKey/Value and GroupMetadataKey/Value message
// definitions; prose and a worked example in docs/consumer-groups.md, "The offsets log").
//
// Every key and every value starts with an int16 version. The key's version says what the
// record is about; the value's version says how the value is laid out. A record with a
// null value is a tombstone: the key's state was deleted.
//
// Keys (never flexible; all integers big-endian, strings = int16 length + UTF-8 bytes):
//
//   OffsetCommitKey   version int16 = 0 or 1 (Sluice writes 1)
//                     group string, topic string, partition int32
//   GroupMetadataKey  version int16 = 2
//                     group string
//   Key versions 3 and up name the records of Kafka's newer group protocols (KIP-848,
//   share groups, ...); Sluice does not read them (decoded as record_kind::unknown).
//
// OffsetCommitValue, by version (Sluice writes 3):
//   0, 2   offset int64, metadata string, commit_timestamp int64
//   1      offset int64, metadata string, commit_timestamp int64, expire_timestamp int64
//   3      offset int64, leader_epoch int32, metadata string, commit_timestamp int64
//   4      as 3, flexible: compact string (uvarint length + 1), then a tagged-field section
//   leader_epoch is -1 before version 3; the expire timestamp of version 1 is dropped
//   (Sluice expires offsets by offsets.retention.minutes, as Kafka 2.1+ does).
//
// GroupMetadataValue, by version (Sluice writes 3):
//   protocol_type string, generation int32, protocol nullable string,
//   leader nullable string, [2+] current_state_timestamp int64,
//   members array (int32 count) of:
//     member_id string, [3+] group_instance_id nullable string, client_id string,
//     client_host string, [1+] rebalance_timeout int32, session_timeout int32,
//     subscription bytes (int32 length), assignment bytes (int32 length)
//   Version 4 is the same fields, flexible: compact strings, bytes and array count
//   (uvarint length + 1, 0 = null), and a tagged-field section after each member and
//   after the whole value. Before version 1 the rebalance timeout is the session timeout
//   (as Kafka reads it); before version 2 the state timestamp is -1 (unknown).
//
// Kafka's metadata field of OffsetCommitValue is not nullable: a commit with null
// metadata is stored as "" (as Kafka's coordinator stores it), and so reads back as "".
//
// Pure functions over bytes; no state, any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "broker/groups/group_store.h"
#include "engine/base/result.h"

namespace sluice::groups {

// Key versions (the record's type).
inline constexpr std::int16_t offset_commit_key_version_legacy = 0;
inline constexpr std::int16_t offset_commit_key_version = 1;
inline constexpr std::int16_t group_metadata_key_version = 2;
// The value versions Sluice writes.
inline constexpr std::int16_t offset_commit_value_version = 3;
inline constexpr std::int16_t group_metadata_value_version = 3;
// The highest value versions Sluice reads (4 is Kafka's first flexible version of both).
inline constexpr std::int16_t offset_commit_value_version_max = 4;
inline constexpr std::int16_t group_metadata_value_version_max = 4;

// Sizes of the fixed parts, for the bounds below and for readers of the layout.
inline constexpr std::size_t version_bytes = 2;
inline constexpr std::size_t string_length_bytes = 2;
inline constexpr std::size_t bytes_length_bytes = 4;
// The smallest member of a classic GroupMetadataValue (version 0: three empty strings,
// session timeout, two empty byte fields).
inline constexpr std::size_t member_bytes_min_classic =
    3 * string_length_bytes + 4 + 2 * bytes_length_bytes;
static_assert(member_bytes_min_classic == 18);
// ... and of a flexible one (version 4: one-byte compact lengths, two null-or-empty
// strings, both timeouts, an empty tagged-field section).
inline constexpr std::size_t member_bytes_min_flexible = 4 * 1 + 4 + 4 + 2 * 1 + 1;
static_assert(member_bytes_min_flexible == 15);

enum class record_kind : std::uint8_t { offset_commit, group_metadata, unknown };

// A decoded key. `topic` and `partition` are set for offset commits only.
struct record_key {
  record_kind kind = record_kind::unknown;
  std::int16_t version = 0;
  std::string group;
  std::string topic;
  std::int32_t partition = 0;
};

// Encoders. They fail (errc::invalid_argument) only when a string is longer than the
// 32767 bytes an int16 length allows.
result<std::vector<std::byte>> encode_offset_commit_key(std::string_view group,
                                                        std::string_view topic,
                                                        std::int32_t partition);
result<std::vector<std::byte>> encode_offset_commit_value(const offset_commit_record& record);
result<std::vector<std::byte>> encode_group_metadata_key(std::string_view group);
result<std::vector<std::byte>> encode_group_metadata_value(const group_metadata_record& record);

// The int16 version at the front of a key or value; nullopt when fewer than 2 bytes.
std::optional<std::int16_t> peek_version(std::span<const std::byte> bytes) noexcept;

// Decodes a key. A key whose version is not 0, 1 or 2 decodes as record_kind::unknown
// (with its version) when it has at least its version; a truncated or malformed key of a
// known version fails with errc::invalid_batch. Bytes after the key's fields are
// ignored, as Kafka's readers ignore them.
result<record_key> decode_key(std::span<const std::byte> key);

// Decodes an OffsetCommitValue (versions 0-4) for `key` (kind offset_commit). Fails with
// errc::invalid_argument for another version and errc::invalid_batch for malformed bytes.
result<offset_commit_record> decode_offset_commit_value(const record_key& key,
                                                        std::span<const std::byte> value);

// Decodes a GroupMetadataValue (versions 0-4) for `group`. Fails as above.
result<group_metadata_record> decode_group_metadata_value(std::string_view group,
                                                          std::span<const std::byte> value);

}  // namespace sluice::groups
