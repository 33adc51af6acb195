// Kafka UUIDs as the broker makes and prints them: random version 4 ids for topics and
// the cluster, written the way Kafka writes them (Uuid.toString: the 16 bytes in URL-safe
// base64 without padding, 22 characters, e.g. "MwAtpFnoQ7uVY2Zla1MKSg").
//
// Free functions over protocol::uuid; no state.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "net/protocol/field_types.h"

namespace sluice {

// A random version 4 (RFC 4122) UUID from getrandom(2). Never the zero UUID, nor one of
// the two ids Kafka reserves (zero and "metadata topic" 0...01).
protocol::uuid random_uuid() noexcept;

// Kafka's text form: 22 characters of URL-safe base64.
std::string uuid_to_kafka_string(const protocol::uuid& id);
// Parses the text form; nullopt unless exactly 22 characters of URL-safe base64.
std::optional<protocol::uuid> uuid_from_kafka_string(std::string_view text) noexcept;

bool is_zero(const protocol::uuid& id) noexcept;

}  // namespace sluice
