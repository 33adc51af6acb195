// CRC32C (Castagnoli), the checksum of Kafka RecordBatch v2.
//
// Uses the SSE4.2 crc32 instruction (several independent streams interleaved and
// combined, to hide its three-cycle latency) when the CPU has it, and a portable
// slicing-by-8 table otherwise. The choice is made once, at first use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace sluice {

// Extends `crc` (the value returned for the bytes before) over `data`. Start with 0.
std::uint32_t crc32c_extend(std::uint32_t crc, const std::byte* data, std::size_t size) noexcept;

inline std::uint32_t crc32c(std::span<const std::byte> data) noexcept {
  return crc32c_extend(0, data.data(), data.size());
}

// The portable implementation, exposed so tests can compare it with the hardware one.
std::uint32_t crc32c_extend_portable(std::uint32_t crc, const std::byte* data,
                                     std::size_t size) noexcept;

// True when the hardware implementation is in use.
bool crc32c_is_hardware_accelerated() noexcept;

}  // namespace sluice
