// CRC32C (Castagnoli, reflected polynomial 0x82F63B78).
//
// Two implementations share one convention: the public functions take and return the
// finished CRC (inverted), the inner loops work on the raw register (not inverted), on
// which the CRC is linear. That linearity is what lets the hardware path run three
// independent streams and join them: for a block A followed by B,
//   register(s, A || B) = shift_|B|(register(s, A)) ^ register(0, B)
// where shift_n is the (linear) effect of feeding n zero bytes. shift_n is a 32x32 matrix
// over GF(2), computed at compile time and stored as four 256-entry tables, so applying
// it costs four table lookups.
//
// Why three streams: the crc32 instruction has a latency of three cycles and a
// throughput of one per cycle, so a single dependent chain uses a third of the unit.
#include "engine/storage/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace sluice {
namespace {

constexpr std::uint32_t castagnoli_reflected = 0x82F63B78u;

// ---- portable slicing-by-8 -------------------------------------------------------------

using slice_tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr slice_tables make_slice_tables() {
  slice_tables tables{};
  for (std::uint32_t n = 0; n < 256; ++n) {
    std::uint32_t crc = n;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc >> 1) ^ ((crc & 1u) ? castagnoli_reflected : 0u);
    }
    tables[0][n] = crc;
  }
  for (std::size_t k = 1; k < 8; ++k) {
    for (std::uint32_t n = 0; n < 256; ++n) {
      const std::uint32_t previous = tables[k - 1][n];
      tables[k][n] = (previous >> 8) ^ tables[0][previous & 0xffu];
    }
  }
  return tables;
}

constexpr slice_tables slice = make_slice_tables();

inline std::uint32_t byte_at(const std::byte* p, std::size_t i) noexcept {
  return static_cast<std::uint32_t>(p[i]);
}

// Works on the raw register. Bytes are assembled one by one, so the result does not depend
// on the host's byte order or on the alignment of `data`.
std::uint32_t portable_register(std::uint32_t reg, const std::byte* data,
                                std::size_t size) noexcept {
  while (size >= 8) {
    const std::uint32_t low = reg ^ (byte_at(data, 0) | (byte_at(data, 1) << 8) |
                                     (byte_at(data, 2) << 16) | (byte_at(data, 3) << 24));
    reg = slice[7][low & 0xffu] ^ slice[6][(low >> 8) & 0xffu] ^ slice[5][(low >> 16) & 0xffu] ^
          slice[4][low >> 24] ^ slice[3][byte_at(data, 4)] ^ slice[2][byte_at(data, 5)] ^
          slice[1][byte_at(data, 6)] ^ slice[0][byte_at(data, 7)];
    data += 8;
    size -= 8;
  }
  for (std::size_t i = 0; i < size; ++i) {
    reg = (reg >> 8) ^ slice[0][(reg ^ byte_at(data, i)) & 0xffu];
  }
  return reg;
}

// ---- zero-shift operators ----------------------------------------------------------------

// A linear map on the 32-bit register: column i is the image of bit i.
using gf2_matrix = std::array<std::uint32_t, 32>;

constexpr std::uint32_t apply(const gf2_matrix& m, std::uint32_t v) {
  std::uint32_t out = 0;
  for (int i = 0; v != 0; ++i, v >>= 1) {
    if (v & 1u) out ^= m[static_cast<std::size_t>(i)];
  }
  return out;
}

// a after b.
constexpr gf2_matrix compose(const gf2_matrix& a, const gf2_matrix& b) {
  gf2_matrix out{};
  for (std::size_t i = 0; i < 32; ++i) out[i] = apply(a, b[i]);
  return out;
}

// The effect on the register of `bytes` zero bytes, by repeated squaring.
constexpr gf2_matrix zeros_operator(std::size_t bytes) {
  gf2_matrix one_bit{};
  one_bit[0] = castagnoli_reflected;
  for (std::size_t i = 1; i < 32; ++i) one_bit[i] = 1u << (i - 1);
  gf2_matrix power = one_bit;                                 // one zero bit
  for (int i = 0; i < 3; ++i) power = compose(power, power);  // one zero byte
  gf2_matrix result{};
  for (std::size_t i = 0; i < 32; ++i) result[i] = 1u << i;  // identity
  for (; bytes != 0; bytes >>= 1) {
    if (bytes & 1u) result = compose(power, result);
    power = compose(power, power);
  }
  return result;
}

using shift_tables = std::array<std::array<std::uint32_t, 256>, 4>;

constexpr shift_tables make_shift_tables(std::size_t bytes) {
  const gf2_matrix m = zeros_operator(bytes);
  shift_tables tables{};
  for (std::size_t k = 0; k < 4; ++k) {
    for (std::uint32_t n = 0; n < 256; ++n) tables[k][n] = apply(m, n << (8 * k));
  }
  return tables;
}

inline std::uint32_t shift(const shift_tables& t, std::uint32_t reg) noexcept {
  return t[0][reg & 0xffu] ^ t[1][(reg >> 8) & 0xffu] ^ t[2][(reg >> 16) & 0xffu] ^ t[3][reg >> 24];
}

// Stream lengths of the interleaved hardware loop. Long streams make the cost of joining
// negligible for big buffers; short ones keep small buffers (a few KiB, typical batches)
// on three streams too.
constexpr std::size_t long_stream_bytes = 8192;
constexpr std::size_t short_stream_bytes = 256;

#if defined(__x86_64__)

constexpr shift_tables long_shift = make_shift_tables(long_stream_bytes);
constexpr shift_tables short_shift = make_shift_tables(short_stream_bytes);

__attribute__((target("sse4.2"))) inline std::uint64_t hw_word(std::uint64_t reg,
                                                               const std::byte* p) noexcept {
  std::uint64_t word;
  std::memcpy(&word, p, sizeof word);  // unaligned-safe; x86 is little-endian as the CRC wants
  return _mm_crc32_u64(reg, word);
}

// Runs three streams of `stream_bytes` each, as many blocks as fit, and joins them.
__attribute__((target("sse4.2"))) inline std::uint64_t hw_three_streams(
    std::uint64_t reg, const std::byte*& data, std::size_t& size, std::size_t stream_bytes,
    const shift_tables& join) noexcept {
  while (size >= 3 * stream_bytes) {
    std::uint64_t reg1 = 0;
    std::uint64_t reg2 = 0;
    const std::byte* end = data + stream_bytes;
    do {
      reg = hw_word(reg, data);
      reg1 = hw_word(reg1, data + stream_bytes);
      reg2 = hw_word(reg2, data + 2 * stream_bytes);
      data += 8;
    } while (data < end);
    reg = shift(join, static_cast<std::uint32_t>(reg)) ^ static_cast<std::uint32_t>(reg1);
    reg = shift(join, static_cast<std::uint32_t>(reg)) ^ static_cast<std::uint32_t>(reg2);
    data += 2 * stream_bytes;
    size -= 3 * stream_bytes;
  }
  return reg;
}

__attribute__((target("sse4.2"))) std::uint32_t hardware_register(std::uint32_t reg32,
                                                                  const std::byte* data,
                                                                  std::size_t size) noexcept {
  std::uint64_t reg = reg32;
  reg = hw_three_streams(reg, data, size, long_stream_bytes, long_shift);
  reg = hw_three_streams(reg, data, size, short_stream_bytes, short_shift);
  while (size >= 8) {
    reg = hw_word(reg, data);
    data += 8;
    size -= 8;
  }
  std::uint32_t tail = static_cast<std::uint32_t>(reg);
  for (std::size_t i = 0; i < size; ++i) {
    tail = _mm_crc32_u8(tail, static_cast<std::uint8_t>(data[i]));
  }
  return tail;
}

bool detect_hardware() noexcept {
  // The CPU model is normally filled in by a constructor in libgcc; initialising it here
  // as well keeps a CRC computed from another static initialiser on the fast path.
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}

#else

std::uint32_t hardware_register(std::uint32_t reg, const std::byte* data,
                                std::size_t size) noexcept {
  return portable_register(reg, data, size);
}

bool detect_hardware() noexcept {
  return false;
}

#endif

bool use_hardware() noexcept {
  static const bool hardware = detect_hardware();
  return hardware;
}

}  // namespace

std::uint32_t crc32c_extend(std::uint32_t crc, const std::byte* data, std::size_t size) noexcept {
  if (use_hardware()) return ~hardware_register(~crc, data, size);
  return ~portable_register(~crc, data, size);
}

std::uint32_t crc32c_extend_portable(std::uint32_t crc, const std::byte* data,
                                     std::size_t size) noexcept {
  return ~portable_register(~crc, data, size);
}

bool crc32c_is_hardware_accelerated() noexcept {
  return use_hardware();
}

}  // namespace sluice
