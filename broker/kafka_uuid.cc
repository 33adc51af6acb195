#include "broker/kafka_uuid.h"

#include <sys/random.h>

#include <cstring>

#include "engine/base/assert.h"

namespace sluice {
namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int digit_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

void fill_random(std::uint8_t* out, std::size_t count) noexcept {
  std::size_t done = 0;
  // getrandom() of up to 256 bytes never returns short once the pool is initialised; the
  // loop covers EINTR before that, bounded by a handful of attempts.
  for (int attempt = 0; attempt < 16 && done < count; ++attempt) {
    ssize_t got = ::getrandom(out + done, count - done, 0);
    if (got > 0) done += static_cast<std::size_t>(got);
  }
  SLUICE_ASSERT(done == count, "getrandom(2) failed to produce random bytes");
}

}  // namespace

bool is_zero(const protocol::uuid& id) noexcept {
  for (auto b : id.bytes) {
    if (b != 0) return false;
  }
  return true;
}

protocol::uuid random_uuid() noexcept {
  protocol::uuid id;
  // Bounded: two reserved ids out of 2^122 make a second round practically impossible.
  for (int attempt = 0; attempt < 8; ++attempt) {
    fill_random(id.bytes.data(), id.bytes.size());
    id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0f) | 0x40);  // version 4
    id.bytes[8] = static_cast<std::uint8_t>((id.bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
    protocol::uuid metadata_topic;
    metadata_topic.bytes[15] = 1;
    if (!is_zero(id) && !(id == metadata_topic)) return id;
  }
  SLUICE_ASSERT(false, "random_uuid kept producing reserved ids");
  return id;
}

std::string uuid_to_kafka_string(const protocol::uuid& id) {
  std::string out;
  out.reserve(22);
  // 16 bytes = 5 groups of 3 bytes (20 characters) and one last byte (2 characters).
  for (std::size_t i = 0; i + 3 <= 15; i += 3) {
    std::uint32_t group = (std::uint32_t(id.bytes[i]) << 16) |
                          (std::uint32_t(id.bytes[i + 1]) << 8) | id.bytes[i + 2];
    out += alphabet[(group >> 18) & 63];
    out += alphabet[(group >> 12) & 63];
    out += alphabet[(group >> 6) & 63];
    out += alphabet[group & 63];
  }
  std::uint32_t last = id.bytes[15];
  out += alphabet[(last >> 2) & 63];
  out += alphabet[(last << 4) & 63];
  return out;
}

std::optional<protocol::uuid> uuid_from_kafka_string(std::string_view text) noexcept {
  if (text.size() != 22) return std::nullopt;
  int values[22];
  for (std::size_t i = 0; i < 22; ++i) {
    values[i] = digit_value(text[i]);
    if (values[i] < 0) return std::nullopt;
  }
  protocol::uuid id;
  for (std::size_t g = 0; g < 5; ++g) {
    std::uint32_t group =
        (std::uint32_t(values[4 * g]) << 18) | (std::uint32_t(values[4 * g + 1]) << 12) |
        (std::uint32_t(values[4 * g + 2]) << 6) | std::uint32_t(values[4 * g + 3]);
    id.bytes[3 * g] = static_cast<std::uint8_t>(group >> 16);
    id.bytes[3 * g + 1] = static_cast<std::uint8_t>(group >> 8);
    id.bytes[3 * g + 2] = static_cast<std::uint8_t>(group);
  }
  // The last character carries 2 bits of byte 15 and 4 padding bits that must be zero.
  if ((values[21] & 0x0f) != 0) return std::nullopt;
  id.bytes[15] = static_cast<std::uint8_t>((values[20] << 2) | (values[21] >> 4));
  return id;
}

}  // namespace sluice
