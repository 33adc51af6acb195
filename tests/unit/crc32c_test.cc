// CRC32C: published vectors, hardware against portable, and extension in pieces.
#include "engine/storage/crc32c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string_view>
#include <vector>

namespace sluice {
namespace {

std::vector<std::byte> bytes_of(std::string_view text) {
  std::vector<std::byte> out(text.size());
  std::memcpy(out.data(), text.data(), text.size());
  return out;
}

std::vector<std::byte> random_bytes(std::size_t size, std::uint32_t seed) {
  std::mt19937 generator(seed);
  std::vector<std::byte> out(size);
  for (auto& b : out) b = static_cast<std::byte>(generator() & 0xff);
  return out;
}

// The check value of the CRC-32C catalogue entry.
TEST(Crc32c, CheckValue) {
  const auto data = bytes_of("123456789");
  EXPECT_EQ(crc32c(data), 0xE3069283u);
  EXPECT_EQ(crc32c_extend_portable(0, data.data(), data.size()), 0xE3069283u);
}

// RFC 3720 (iSCSI), appendix B.4.
TEST(Crc32c, Rfc3720Vectors) {
  std::vector<std::byte> zeros(32, std::byte{0});
  std::vector<std::byte> ones(32, std::byte{0xff});
  std::vector<std::byte> incrementing(32);
  std::vector<std::byte> decrementing(32);
  for (std::size_t i = 0; i < 32; ++i) {
    incrementing[i] = static_cast<std::byte>(i);
    decrementing[i] = static_cast<std::byte>(31 - i);
  }
  for (bool portable : {false, true}) {
    auto crc = [portable](const std::vector<std::byte>& v) {
      return portable ? crc32c_extend_portable(0, v.data(), v.size()) : crc32c(v);
    };
    EXPECT_EQ(crc(zeros), 0x8A9136AAu) << "portable=" << portable;
    EXPECT_EQ(crc(ones), 0x62A8AB43u) << "portable=" << portable;
    EXPECT_EQ(crc(incrementing), 0x46DD794Eu) << "portable=" << portable;
    EXPECT_EQ(crc(decrementing), 0x113FDB5Cu) << "portable=" << portable;
  }
}

TEST(Crc32c, EmptyInputLeavesCrcUnchanged) {
  EXPECT_EQ(crc32c_extend(0, nullptr, 0), 0u);
  EXPECT_EQ(crc32c_extend(0x12345678u, nullptr, 0), 0x12345678u);
  EXPECT_EQ(crc32c_extend_portable(0x12345678u, nullptr, 0), 0x12345678u);
}

TEST(Crc32c, ReportsHardwareWhenTheCpuHasSse42) {
#if defined(__x86_64__)
  EXPECT_EQ(crc32c_is_hardware_accelerated(), static_cast<bool>(__builtin_cpu_supports("sse4.2")));
#else
  EXPECT_FALSE(crc32c_is_hardware_accelerated());
#endif
}

// Lengths around every boundary of the hardware path: 8-byte words, three 256-byte
// streams (768), three 8 KiB streams (24576), and combinations of them.
TEST(Crc32c, DispatchedEqualsPortableOnManyLengthsAndAlignments) {
  const auto buffer = random_bytes(3 * 24576 + 1024, 7);
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 80; ++n) lengths.push_back(n);
  for (std::size_t base : {256u, 768u, 1024u, 1536u, 8192u, 24576u, 2 * 24576u, 3 * 24576u}) {
    for (std::size_t delta = 0; delta <= 17; ++delta) {
      lengths.push_back(base + delta);
      if (base > delta) lengths.push_back(base - delta);
    }
  }
  for (std::size_t alignment = 0; alignment < 8; ++alignment) {
    for (std::size_t length : lengths) {
      ASSERT_LE(alignment + length, buffer.size());
      const std::byte* p = buffer.data() + alignment;
      ASSERT_EQ(crc32c_extend(0, p, length), crc32c_extend_portable(0, p, length))
          << "length " << length << " alignment " << alignment;
      ASSERT_EQ(crc32c_extend(0xdeadbeefu, p, length),
                crc32c_extend_portable(0xdeadbeefu, p, length))
          << "length " << length << " alignment " << alignment;
    }
  }
}

TEST(Crc32c, DispatchedEqualsPortableOnRandomBuffers) {
  std::mt19937 generator(42);
  for (int round = 0; round < 200; ++round) {
    const std::size_t length = generator() % 100000;
    const auto data = random_bytes(length + 8, static_cast<std::uint32_t>(round));
    const std::size_t alignment = generator() % 8;
    ASSERT_EQ(crc32c_extend(0, data.data() + alignment, length),
              crc32c_extend_portable(0, data.data() + alignment, length))
        << "length " << length;
  }
}

TEST(Crc32c, ExtendInPiecesEqualsWhole) {
  const auto data = random_bytes(70000, 99);
  const std::uint32_t whole = crc32c(data);
  const std::uint32_t whole_portable = crc32c_extend_portable(0, data.data(), data.size());
  ASSERT_EQ(whole, whole_portable);
  std::mt19937 generator(5);
  for (int round = 0; round < 50; ++round) {
    std::uint32_t crc = 0;
    std::uint32_t crc_portable = 0;
    std::size_t at = 0;
    while (at < data.size()) {
      const std::size_t piece = std::min<std::size_t>(generator() % 30000, data.size() - at);
      crc = crc32c_extend(crc, data.data() + at, piece);
      crc_portable = crc32c_extend_portable(crc_portable, data.data() + at, piece);
      at += piece;
    }
    ASSERT_EQ(crc, whole);
    ASSERT_EQ(crc_portable, whole);
  }
}

// A single flipped bit anywhere must change the CRC.
TEST(Crc32c, DetectsEverySingleBitFlip) {
  auto data = random_bytes(2000, 3);
  const std::uint32_t original = crc32c(data);
  for (std::size_t i = 0; i < data.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      data[i] ^= static_cast<std::byte>(1 << bit);
      ASSERT_NE(crc32c(data), original) << "byte " << i << " bit " << bit;
      data[i] ^= static_cast<std::byte>(1 << bit);
    }
  }
  EXPECT_EQ(crc32c(data), original);
}

}  // namespace
}  // namespace sluice
