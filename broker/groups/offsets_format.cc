#include "broker/groups/offsets_format.h"

#include "net/protocol/reader.h"
#include "net/protocol/writer.h"

namespace sluice::groups {
namespace {

// Keys and the versions Sluice writes are classic (non-flexible) encodings.
constexpr bool classic = false;

result<std::vector<std::byte>> finish(protocol::writer& out) {
  if (!out.ok()) return error(errc::invalid_argument, "a string is too long for an offsets record");
  return out.take();
}

protocol::bytes_view bytes_of(const std::string& text) noexcept {
  return std::as_bytes(std::span(text.data(), text.size()));
}

std::string to_string(protocol::bytes_view bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

result<void> check(const protocol::reader& in) {
  if (!in.ok()) return error(errc::invalid_batch, "malformed offsets record");
  return {};
}

}  // namespace

result<std::vector<std::byte>> encode_offset_commit_key(std::string_view group,
                                                        std::string_view topic,
                                                        std::int32_t partition) {
  protocol::writer out(version_bytes + 2 * string_length_bytes + group.size() + topic.size() + 4);
  out.write_int16(offset_commit_key_version);
  out.write_string(group, classic);
  out.write_string(topic, classic);
  out.write_int32(partition);
  return finish(out);
}

result<std::vector<std::byte>> encode_offset_commit_value(const offset_commit_record& record) {
  const std::string_view metadata = record.metadata ? std::string_view(*record.metadata) : "";
  protocol::writer out(version_bytes + 8 + 4 + string_length_bytes + metadata.size() + 8);
  out.write_int16(offset_commit_value_version);
  out.write_int64(record.committed_offset);
  out.write_int32(record.leader_epoch);
  out.write_string(metadata, classic);
  out.write_int64(record.commit_timestamp_ms);
  return finish(out);
}

result<std::vector<std::byte>> encode_group_metadata_key(std::string_view group) {
  protocol::writer out(version_bytes + string_length_bytes + group.size());
  out.write_int16(group_metadata_key_version);
  out.write_string(group, classic);
  return finish(out);
}

result<std::vector<std::byte>> encode_group_metadata_value(const group_metadata_record& record) {
  std::size_t expected = 64;
  for (const member_record& m : record.members) {
    expected += 64 + m.member_id.size() + m.client_id.size() + m.client_host.size() +
                m.subscription.size() + m.assignment.size();
  }
  protocol::writer out(expected);
  out.write_int16(group_metadata_value_version);
  out.write_string(record.protocol_type, classic);
  out.write_int32(record.generation);
  out.write_nullable_string(record.protocol, classic);
  out.write_nullable_string(record.leader, classic);
  out.write_int64(record.state_timestamp_ms);
  out.write_array_length(record.members.size(), classic);
  for (const member_record& m : record.members) {
    out.write_string(m.member_id, classic);
    out.write_nullable_string(m.group_instance_id, classic);
    out.write_string(m.client_id, classic);
    out.write_string(m.client_host, classic);
    out.write_int32(m.rebalance_timeout_ms);
    out.write_int32(m.session_timeout_ms);
    out.write_bytes(bytes_of(m.subscription), classic);
    out.write_bytes(bytes_of(m.assignment), classic);
  }
  return finish(out);
}

std::optional<std::int16_t> peek_version(std::span<const std::byte> bytes) noexcept {
  if (bytes.size() < version_bytes) return std::nullopt;
  protocol::reader in(bytes);
  return in.read_int16();
}

result<record_key> decode_key(std::span<const std::byte> key) {
  protocol::reader in(key);
  record_key out;
  out.version = in.read_int16();
  SLUICE_TRY(check(in));
  switch (out.version) {
    case offset_commit_key_version_legacy:
    case offset_commit_key_version:
      out.kind = record_kind::offset_commit;
      out.group = in.read_string(classic);
      out.topic = in.read_string(classic);
      out.partition = in.read_int32();
      break;
    case group_metadata_key_version:
      out.kind = record_kind::group_metadata;
      out.group = in.read_string(classic);
      break;
    default: out.kind = record_kind::unknown; return out;
  }
  SLUICE_TRY(check(in));
  return out;
}

result<offset_commit_record> decode_offset_commit_value(const record_key& key,
                                                        std::span<const std::byte> value) {
  SLUICE_ASSERT(key.kind == record_kind::offset_commit,
                "decode_offset_commit_value for a key that is not an offset commit");
  protocol::reader in(value);
  const std::int16_t version = in.read_int16();
  SLUICE_TRY(check(in));
  if (version < 0 || version > offset_commit_value_version_max) {
    return error(errc::invalid_argument, "unknown OffsetCommitValue version");
  }
  const bool flexible = version >= 4;
  offset_commit_record out;
  out.group = key.group;
  out.topic = key.topic;
  out.partition = key.partition;
  out.committed_offset = in.read_int64();
  out.leader_epoch = version >= 3 ? in.read_int32() : -1;
  out.metadata = std::string(in.read_string(flexible));
  out.commit_timestamp_ms = in.read_int64();
  if (version == 1) (void)in.read_int64();  // expire_timestamp: not used (see header)
  if (flexible) in.skip_tagged_fields();
  SLUICE_TRY(check(in));
  return out;
}

result<group_metadata_record> decode_group_metadata_value(std::string_view group,
                                                          std::span<const std::byte> value) {
  protocol::reader in(value);
  const std::int16_t version = in.read_int16();
  SLUICE_TRY(check(in));
  if (version < 0 || version > group_metadata_value_version_max) {
    return error(errc::invalid_argument, "unknown GroupMetadataValue version");
  }
  const bool flexible = version >= 4;
  group_metadata_record out;
  out.group = std::string(group);
  out.protocol_type = in.read_string(flexible);
  out.generation = in.read_int32();
  if (auto protocol = in.read_nullable_string(flexible)) out.protocol = std::string(*protocol);
  if (auto leader = in.read_nullable_string(flexible)) out.leader = std::string(*leader);
  out.state_timestamp_ms = version >= 2 ? in.read_int64() : -1;
  const std::int32_t members = in.read_array_length(
      flexible, flexible ? member_bytes_min_flexible : member_bytes_min_classic, false);
  SLUICE_TRY(check(in));
  if (members < 0) return error(errc::invalid_batch, "malformed offsets record");
  // Bounded by the bytes left: read_array_length refuses counts that cannot fit.
  out.members.reserve(static_cast<std::size_t>(members));
  for (std::int32_t i = 0; i < members && in.ok(); ++i) {
    member_record& m = out.members.emplace_back();
    m.member_id = in.read_string(flexible);
    if (version >= 3) {
      if (auto instance = in.read_nullable_string(flexible)) {
        m.group_instance_id = std::string(*instance);
      }
    }
    m.client_id = in.read_string(flexible);
    m.client_host = in.read_string(flexible);
    const std::int32_t first_timeout = in.read_int32();
    if (version >= 1) {
      m.rebalance_timeout_ms = first_timeout;
      m.session_timeout_ms = in.read_int32();
    } else {
      m.session_timeout_ms = first_timeout;
      m.rebalance_timeout_ms = first_timeout;
    }
    m.subscription = to_string(in.read_bytes(flexible));
    m.assignment = to_string(in.read_bytes(flexible));
    if (flexible) in.skip_tagged_fields();
  }
  if (flexible) in.skip_tagged_fields();
  SLUICE_TRY(check(in));
  return out;
}

}  // namespace sluice::groups
