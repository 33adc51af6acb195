// Tests of the Kafka compression codecs: round trips, the output maximum, corrupt input,
// the two snappy framings, and interoperability with the codec libraries used directly
// and with the command-line tools Debian ships (gzip, lz4, zstd).
#include "engine/storage/compression.h"

#include <gtest/gtest.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {
namespace {

using bytes = std::vector<std::byte>;

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * 1024;

const char* codec_label(compression_codec codec) {
  static thread_local std::string name;
  name = std::string(compression_codec_name(codec));
  return name.c_str();
}

bytes random_bytes(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  bytes out(size);
  for (auto& b : out) b = std::byte(rng() & 0xff);
  return out;
}

// Text-like records drawn from a small vocabulary: compresses well, like real batches.
bytes compressible_bytes(std::size_t size, std::uint64_t seed) {
  static constexpr std::string_view words[] = {"order",
                                               "customer",
                                               "id",
                                               "=",
                                               "amount",
                                               "\"EUR\"",
                                               "{",
                                               "}",
                                               ",",
                                               "status:shipped",
                                               "2024-05-01T12:00:00Z",
                                               "\n"};
  std::mt19937_64 rng(seed);
  bytes out;
  out.reserve(size);
  while (out.size() < size) {
    std::string_view word = words[rng() % std::size(words)];
    for (char c : word) {
      if (out.size() == size) break;
      out.push_back(std::byte(c));
    }
  }
  return out;
}

bytes from_string(std::string_view text) {
  bytes out(text.size());
  std::memcpy(out.data(), text.data(), text.size());
  return out;
}

bytes compress_or_die(compression_codec codec, const bytes& input) {
  bytes out;
  auto rc = compress(codec, input, out);
  EXPECT_TRUE(rc.ok()) << codec_label(codec) << ": " << rc.failure().detail();
  return out;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// ---- tests for every real codec ---------------------------------------------------------

class CodecTest : public ::testing::TestWithParam<compression_codec> {
 protected:
  compression_codec codec() const { return GetParam(); }

  void expect_round_trip(const bytes& input) {
    bytes compressed = compress_or_die(codec(), input);
    bytes decompressed;
    auto rc = decompress(codec(), compressed, decompressed, input.size());
    ASSERT_TRUE(rc.ok()) << rc.failure().detail();
    EXPECT_TRUE(decompressed == input) << "round trip changed " << input.size() << " bytes";
  }
};

TEST_P(CodecTest, RoundTripEmpty) {
  expect_round_trip({});
}

TEST_P(CodecTest, RoundTripTiny) {
  expect_round_trip(from_string("a"));
  expect_round_trip(from_string("hello, kafka"));
}

TEST_P(CodecTest, RoundTripRandom1MiB) {
  expect_round_trip(random_bytes(mib, 1));
}

TEST_P(CodecTest, RoundTripCompressible1MiB) {
  const bytes input = compressible_bytes(mib, 2);
  expect_round_trip(input);
  // The codec must really compress, not just frame the bytes.
  EXPECT_LT(compress_or_die(codec(), input).size(), input.size() / 3);
}

TEST_P(CodecTest, AppendsAfterExistingBytes) {
  const bytes input = compressible_bytes(100 * kib, 3);
  const bytes prefix = from_string("existing bytes");

  bytes compressed = prefix;
  ASSERT_TRUE(compress(codec(), input, compressed).ok());
  ASSERT_GT(compressed.size(), prefix.size());
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), compressed.begin()));
  const bytes alone = compress_or_die(codec(), input);
  EXPECT_TRUE(bytes(compressed.begin() + prefix.size(), compressed.end()) == alone);

  bytes decompressed = prefix;
  ASSERT_TRUE(decompress(codec(), alone, decompressed, input.size()).ok());
  ASSERT_EQ(decompressed.size(), prefix.size() + input.size());
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), decompressed.begin()));
  EXPECT_TRUE(std::equal(input.begin(), input.end(), decompressed.begin() + prefix.size()));
}

TEST_P(CodecTest, DecompressionBombStopsAtMaximum) {
  const bytes input(10 * mib, std::byte{'x'});
  const bytes compressed = compress_or_die(codec(), input);
  ASSERT_LT(compressed.size(), mib) << "not a bomb: the test needs a high ratio";

  const bytes prefix = from_string("kept");
  bytes output = prefix;
  auto rc = decompress(codec(), compressed, output, mib);
  ASSERT_FALSE(rc.ok());
  EXPECT_EQ(rc.code(), errc::batch_too_large);
  // A failed decompression leaves the output as it found it.
  EXPECT_TRUE(output == prefix);
  // And it stopped near the maximum instead of inflating all 10 MiB and then checking:
  // the output never grew far past 1 MiB.
  EXPECT_LT(output.capacity(), 4 * mib);
}

TEST_P(CodecTest, MaximumIsExact) {
  const bytes input = compressible_bytes(200 * kib + 17, 4);
  const bytes compressed = compress_or_die(codec(), input);
  bytes output;
  ASSERT_TRUE(decompress(codec(), compressed, output, input.size()).ok());
  EXPECT_TRUE(output == input);

  output.clear();
  auto rc = decompress(codec(), compressed, output, input.size() - 1);
  EXPECT_EQ(rc.code(), errc::batch_too_large);
  EXPECT_TRUE(output.empty());

  output.clear();
  EXPECT_EQ(decompress(codec(), compressed, output, 0).code(), errc::batch_too_large);
}

TEST_P(CodecTest, EmptyInputIsCorrupt) {
  bytes output;
  auto rc = decompress(codec(), {}, output, mib);
  EXPECT_EQ(rc.code(), errc::corrupt_batch);
}

TEST_P(CodecTest, TruncationIsCorrupt) {
  const bytes input = compressible_bytes(300 * kib, 5);
  const bytes compressed = compress_or_die(codec(), input);
  const std::size_t cuts[] = {1,
                              2,
                              7,
                              compressed.size() / 3,
                              compressed.size() / 2,
                              compressed.size() - 2,
                              compressed.size() - 1};
  for (std::size_t keep : cuts) {
    bytes output;
    auto rc = decompress(codec(), std::span(compressed).first(keep), output, input.size());
    ASSERT_FALSE(rc.ok()) << "kept " << keep << " of " << compressed.size();
    EXPECT_EQ(rc.code(), errc::corrupt_batch) << "kept " << keep;
    EXPECT_TRUE(contains(rc.failure().detail(), codec_label(codec()))) << rc.failure().detail();
    EXPECT_TRUE(output.empty());
  }
}

TEST_P(CodecTest, DamagedMagicIsCorrupt) {
  bytes compressed = compress_or_die(codec(), compressible_bytes(64 * kib, 6));
  compressed[0] ^= std::byte{0x01};
  bytes output;
  auto rc = decompress(codec(), compressed, output, mib);
  EXPECT_EQ(rc.code(), errc::corrupt_batch);
  EXPECT_TRUE(output.empty());
}

TEST_P(CodecTest, TrailingGarbageIsCorrupt) {
  bytes compressed = compress_or_die(codec(), compressible_bytes(10 * kib, 7));
  const bytes garbage = from_string("\x01garbage after the end");
  compressed.insert(compressed.end(), garbage.begin(), garbage.end());
  bytes output;
  EXPECT_EQ(decompress(codec(), compressed, output, mib).code(), errc::corrupt_batch);
}

// Random damage must never crash, never write past the maximum, and fail only with the
// documented codes. (Under AddressSanitizer this is the memory-safety test.)
TEST_P(CodecTest, RandomDamageNeverCrashes) {
  const bytes input = compressible_bytes(8 * kib, 8);
  const bytes compressed = compress_or_die(codec(), input);
  const std::size_t output_max = 4 * input.size();
  std::mt19937_64 rng(9);
  int failures = 0;
  for (int trial = 0; trial < 400; ++trial) {
    bytes damaged = compressed;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) {
      damaged[rng() % damaged.size()] ^= std::byte(1 + rng() % 255);
    }
    if (trial % 4 == 0) damaged.resize(rng() % damaged.size());
    bytes output = from_string("p");
    auto rc = decompress(codec(), damaged, output, output_max);
    if (rc.ok()) {
      EXPECT_LE(output.size(), 1 + output_max);
    } else {
      ++failures;
      EXPECT_TRUE(rc.code() == errc::corrupt_batch || rc.code() == errc::batch_too_large)
          << errc_name(rc.code());
      EXPECT_EQ(output.size(), 1u);
    }
  }
  EXPECT_GT(failures, 0);
}

TEST_P(CodecTest, ConcatenatedStreamsDecodeInOrder) {
  const bytes first = compressible_bytes(50 * kib, 10);
  const bytes second = random_bytes(20 * kib, 11);
  bytes joined = compress_or_die(codec(), first);
  const bytes tail = compress_or_die(codec(), second);
  joined.insert(joined.end(), tail.begin(), tail.end());
  bytes output;
  auto rc = decompress(codec(), joined, output, mib);
  ASSERT_TRUE(rc.ok()) << rc.failure().detail();
  bytes expected = first;
  expected.insert(expected.end(), second.begin(), second.end());
  EXPECT_TRUE(output == expected);
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, CodecTest,
                         ::testing::Values(compression_codec::gzip, compression_codec::snappy,
                                           compression_codec::lz4, compression_codec::zstd),
                         [](const auto& info) { return std::string(codec_label(info.param)); });

// ---- none and invalid codecs ----------------------------------------------------------

TEST(CompressionNone, CopiesAndEnforcesMaximum) {
  const bytes input = random_bytes(1000, 12);
  bytes compressed = from_string("x");
  ASSERT_TRUE(compress(compression_codec::none, input, compressed).ok());
  EXPECT_TRUE(bytes(compressed.begin() + 1, compressed.end()) == input);

  bytes output = from_string("y");
  ASSERT_TRUE(decompress(compression_codec::none, input, output, 1000).ok());
  EXPECT_TRUE(bytes(output.begin() + 1, output.end()) == input);

  output.clear();
  EXPECT_EQ(decompress(compression_codec::none, input, output, 999).code(), errc::batch_too_large);
  EXPECT_TRUE(output.empty());
}

TEST(CompressionInvalid, UnknownCodecIsInvalidArgument) {
  const bytes input = from_string("data");
  for (int value : {5, 6, 7, 200}) {
    const auto codec = static_cast<compression_codec>(value);
    bytes output;
    EXPECT_EQ(compress(codec, input, output).code(), errc::invalid_argument) << value;
    EXPECT_EQ(decompress(codec, input, output, mib).code(), errc::invalid_argument) << value;
    EXPECT_TRUE(output.empty());
  }
}

// ---- gzip -----------------------------------------------------------------------------

// zlib's own gzip reader, independent of the code under test.
bytes zlib_gunzip(const bytes& gz) {
  z_stream stream{};
  EXPECT_EQ(inflateInit2(&stream, 15 + 16), Z_OK);
  bytes out;
  std::vector<unsigned char> buffer(64 * kib);
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(gz.data()));
  stream.avail_in = static_cast<uInt>(gz.size());
  int rc = Z_OK;
  for (int round = 0; round < 100000 && rc == Z_OK; ++round) {
    stream.next_out = buffer.data();
    stream.avail_out = static_cast<uInt>(buffer.size());
    rc = inflate(&stream, Z_NO_FLUSH);
    const std::size_t n = buffer.size() - stream.avail_out;
    for (std::size_t i = 0; i < n; ++i) out.push_back(std::byte(buffer[i]));
  }
  EXPECT_EQ(rc, Z_STREAM_END);
  inflateEnd(&stream);
  return out;
}

TEST(Gzip, OutputIsAGzipStreamZlibReads) {
  const bytes input = compressible_bytes(mib, 13);
  const bytes gz = compress_or_die(compression_codec::gzip, input);
  // RFC 1952: ID1 ID2 CM(deflate).
  ASSERT_GE(gz.size(), 18u);
  EXPECT_EQ(gz[0], std::byte{0x1f});
  EXPECT_EQ(gz[1], std::byte{0x8b});
  EXPECT_EQ(gz[2], std::byte{8});
  EXPECT_TRUE(zlib_gunzip(gz) == input);
}

TEST(Gzip, ReadsGzipWrittenByZlibAtAnotherLevel) {
  const bytes input = compressible_bytes(300 * kib, 14);
  z_stream stream{};
  ASSERT_EQ(deflateInit2(&stream, 9, Z_DEFLATED, 15 + 16, 9, Z_FILTERED), Z_OK);
  std::vector<unsigned char> gz(deflateBound(&stream, input.size()));
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(input.data()));
  stream.avail_in = static_cast<uInt>(input.size());
  stream.next_out = gz.data();
  stream.avail_out = static_cast<uInt>(gz.size());
  ASSERT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  gz.resize(stream.total_out);
  deflateEnd(&stream);

  bytes output;
  const auto* first = reinterpret_cast<const std::byte*>(gz.data());
  ASSERT_TRUE(decompress(compression_codec::gzip, std::span(first, gz.size()), output, mib).ok());
  EXPECT_TRUE(output == input);
}

TEST(Gzip, AnyFlippedPayloadByteIsCaught) {
  // gzip carries a CRC32 of the content, so damage can never go unnoticed: either the
  // stream fails or (damage in ignored header fields such as MTIME) the output is intact.
  const bytes input = compressible_bytes(16 * kib, 15);
  const bytes gz = compress_or_die(compression_codec::gzip, input);
  for (std::size_t pos = 0; pos < gz.size(); pos += 7) {
    bytes damaged = gz;
    damaged[pos] ^= std::byte{0x20};
    bytes output;
    auto rc = decompress(compression_codec::gzip, damaged, output, mib);
    if (rc.ok()) {
      EXPECT_TRUE(output == input) << "undetected damage at " << pos;
    } else {
      EXPECT_EQ(rc.code(), errc::corrupt_batch) << "at " << pos;
    }
  }
}

// ---- snappy ---------------------------------------------------------------------------

bytes snappy_raw(const bytes& input) {
  std::size_t size = snappy_max_compressed_length(input.size());
  bytes out(size);
  EXPECT_EQ(snappy_compress(reinterpret_cast<const char*>(input.data()), input.size(),
                            reinterpret_cast<char*>(out.data()), &size),
            SNAPPY_OK);
  out.resize(size);
  return out;
}

void append_be32(bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(std::byte((v >> shift) & 0xff));
}

std::uint32_t read_be32(const bytes& in, std::size_t pos) {
  return (std::uint32_t(in[pos]) << 24) | (std::uint32_t(in[pos + 1]) << 16) |
         (std::uint32_t(in[pos + 2]) << 8) | std::uint32_t(in[pos + 3]);
}

bytes xerial_header() {
  bytes out = {std::byte{0x82}, std::byte{'S'}, std::byte{'N'}, std::byte{'A'},
               std::byte{'P'},  std::byte{'P'}, std::byte{'Y'}, std::byte{0}};
  append_be32(out, 1);
  append_be32(out, 1);
  return out;
}

TEST(Snappy, AcceptsRawBlockAsLibrdkafkaWrites) {
  for (const bytes& input :
       {from_string("x"), compressible_bytes(mib, 16), random_bytes(70 * kib, 17)}) {
    bytes output;
    auto rc = decompress(compression_codec::snappy, snappy_raw(input), output, mib);
    ASSERT_TRUE(rc.ok()) << rc.failure().detail();
    EXPECT_TRUE(output == input);
  }
}

TEST(Snappy, RawBlockAnnouncingTooMuchIsRefused) {
  const bytes raw = snappy_raw(bytes(2 * mib, std::byte{0}));
  bytes output;
  EXPECT_EQ(decompress(compression_codec::snappy, raw, output, mib).code(), errc::batch_too_large);
  EXPECT_TRUE(output.empty());
}

TEST(Snappy, AcceptsHandMadeXerialFrame) {
  const bytes input = compressible_bytes(20 * kib, 18);
  bytes frame = xerial_header();
  const bytes block = snappy_raw(input);
  append_be32(frame, static_cast<std::uint32_t>(block.size()));
  frame.insert(frame.end(), block.begin(), block.end());
  bytes output;
  auto rc = decompress(compression_codec::snappy, frame, output, mib);
  ASSERT_TRUE(rc.ok()) << rc.failure().detail();
  EXPECT_TRUE(output == input);
}

TEST(Snappy, WritesXerialFramingWithBlocksOfAtMost32KiB) {
  const bytes input = compressible_bytes(100 * kib + 5, 19);
  const bytes framed = compress_or_die(compression_codec::snappy, input);
  const bytes header = xerial_header();
  ASSERT_GE(framed.size(), header.size());
  EXPECT_TRUE(std::equal(header.begin(), header.end(), framed.begin()));

  // Walk the blocks with the snappy library alone.
  bytes rebuilt;
  std::size_t pos = header.size();
  int blocks = 0;
  while (pos < framed.size()) {
    ASSERT_LE(pos + 4, framed.size());
    const std::uint32_t length = read_be32(framed, pos);
    pos += 4;
    ASSERT_LE(pos + length, framed.size());
    const char* block = reinterpret_cast<const char*>(framed.data() + pos);
    std::size_t plain = 0;
    ASSERT_EQ(snappy_uncompressed_length(block, length, &plain), SNAPPY_OK);
    EXPECT_LE(plain, 32 * kib);
    const std::size_t at = rebuilt.size();
    rebuilt.resize(at + plain);
    ASSERT_EQ(
        snappy_uncompress(block, length, reinterpret_cast<char*>(rebuilt.data() + at), &plain),
        SNAPPY_OK);
    pos += length;
    ++blocks;
  }
  EXPECT_EQ(blocks, 4);  // 32 + 32 + 32 + 4 KiB (and 5 bytes)
  EXPECT_TRUE(rebuilt == input);
}

TEST(Snappy, EmptyInputWritesHeaderOnly) {
  const bytes framed = compress_or_die(compression_codec::snappy, {});
  EXPECT_TRUE(framed == xerial_header());
}

TEST(Snappy, BlockLengthPastInputIsCorrupt) {
  bytes frame = xerial_header();
  const bytes block = snappy_raw(from_string("some records"));
  append_be32(frame, static_cast<std::uint32_t>(block.size() + 1));
  frame.insert(frame.end(), block.begin(), block.end());
  bytes output;
  auto rc = decompress(compression_codec::snappy, frame, output, mib);
  ASSERT_EQ(rc.code(), errc::corrupt_batch);
  EXPECT_STREQ(rc.failure().detail(), "snappy block length exceeds input");
}

TEST(Snappy, TruncatedXerialHeaderIsCorrupt) {
  bytes frame = xerial_header();
  frame.resize(12);
  bytes output;
  EXPECT_EQ(decompress(compression_codec::snappy, frame, output, mib).code(), errc::corrupt_batch);
}

TEST(Snappy, XerialBlocksPastMaximumAreRefused) {
  // Each block is small, the sum is not: the maximum holds across blocks.
  const bytes input(3 * mib, std::byte{7});
  const bytes framed = compress_or_die(compression_codec::snappy, input);
  bytes output;
  EXPECT_EQ(decompress(compression_codec::snappy, framed, output, 2 * mib).code(),
            errc::batch_too_large);
  EXPECT_TRUE(output.empty());
}

// ---- lz4 ------------------------------------------------------------------------------

bytes lz4f_decompress_all(const bytes& frame) {
  LZ4F_dctx* ctx = nullptr;
  EXPECT_FALSE(LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION)));
  bytes out;
  std::vector<std::byte> buffer(64 * kib);
  std::size_t pos = 0;
  std::size_t hint = 1;
  for (int round = 0; round < 100000 && hint != 0; ++round) {
    std::size_t produced = buffer.size();
    std::size_t consumed = frame.size() - pos;
    hint = LZ4F_decompress(ctx, buffer.data(), &produced, frame.data() + pos, &consumed, nullptr);
    EXPECT_FALSE(LZ4F_isError(hint));
    if (LZ4F_isError(hint)) break;
    pos += consumed;
    out.insert(out.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(produced));
  }
  EXPECT_EQ(hint, 0u);
  EXPECT_EQ(pos, frame.size());
  LZ4F_freeDecompressionContext(ctx);
  return out;
}

TEST(Lz4, OutputIsAFrameLz4fReads) {
  const bytes input = compressible_bytes(mib, 20);
  const bytes frame = compress_or_die(compression_codec::lz4, input);
  EXPECT_TRUE(lz4f_decompress_all(frame) == input);
}

TEST(Lz4, FrameUsesWhatEveryKafkaClientReads) {
  const bytes frame = compress_or_die(compression_codec::lz4, compressible_bytes(300 * kib, 21));
  ASSERT_GE(frame.size(), 7u);
  // LZ4 frame format: magic 0x184D2204 little-endian, then FLG and BD.
  EXPECT_EQ(frame[0], std::byte{0x04});
  EXPECT_EQ(frame[1], std::byte{0x22});
  EXPECT_EQ(frame[2], std::byte{0x4d});
  EXPECT_EQ(frame[3], std::byte{0x18});
  const auto flg = std::to_integer<unsigned>(frame[4]);
  EXPECT_EQ(flg >> 6, 1u) << "version";
  EXPECT_TRUE(flg & 0x20) << "independent blocks";
  EXPECT_EQ(flg & 0x01, 0u) << "no dictionary id";
  EXPECT_EQ((std::to_integer<unsigned>(frame[5]) >> 4) & 0x7, 4u) << "64 KiB blocks";
}

TEST(Lz4, ReadsFramesWithChecksumsAndLinkedBlocks) {
  const bytes input = compressible_bytes(500 * kib, 22);
  LZ4F_preferences_t prefs{};
  prefs.frameInfo.blockMode = LZ4F_blockLinked;
  prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
  prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
  prefs.frameInfo.contentSize = input.size();
  prefs.compressionLevel = 9;
  bytes frame(LZ4F_compressFrameBound(input.size(), &prefs));
  const std::size_t size =
      LZ4F_compressFrame(frame.data(), frame.size(), input.data(), input.size(), &prefs);
  ASSERT_FALSE(LZ4F_isError(size));
  frame.resize(size);

  bytes output;
  ASSERT_TRUE(decompress(compression_codec::lz4, frame, output, mib).ok());
  EXPECT_TRUE(output == input);

  // With a content checksum, damage in the middle of the data is always caught.
  frame[frame.size() / 2] ^= std::byte{0x10};
  output.clear();
  EXPECT_EQ(decompress(compression_codec::lz4, frame, output, mib).code(), errc::corrupt_batch);
}

// ---- zstd -----------------------------------------------------------------------------

TEST(Zstd, OutputIsAFrameZstdReads) {
  const bytes input = compressible_bytes(mib, 23);
  const bytes frame = compress_or_die(compression_codec::zstd, input);
  bytes output(input.size() + 1);
  const std::size_t size =
      ZSTD_decompress(output.data(), output.size(), frame.data(), frame.size());
  ASSERT_FALSE(ZSTD_isError(size)) << ZSTD_getErrorName(size);
  output.resize(size);
  EXPECT_TRUE(output == input);
}

// Kafka's Java client streams into zstd, so its frames do not announce their size.
bytes zstd_streamed(const bytes& input) {
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  bytes frame(ZSTD_compressBound(input.size()) + 64);
  ZSTD_outBuffer out{frame.data(), frame.size(), 0};
  // Feed in pieces so that the frame header cannot learn the total size.
  for (std::size_t from = 0; from < input.size(); from += 10 * kib) {
    const std::size_t piece = std::min<std::size_t>(10 * kib, input.size() - from);
    ZSTD_inBuffer in{input.data() + from, piece, 0};
    while (in.pos < in.size) {
      const std::size_t rc = ZSTD_compressStream2(ctx, &out, &in, ZSTD_e_continue);
      EXPECT_FALSE(ZSTD_isError(rc));
      if (ZSTD_isError(rc)) break;
    }
  }
  ZSTD_inBuffer none{nullptr, 0, 0};
  std::size_t remaining = 1;
  for (int round = 0; round < 1000 && remaining != 0; ++round) {
    remaining = ZSTD_compressStream2(ctx, &out, &none, ZSTD_e_end);
    EXPECT_FALSE(ZSTD_isError(remaining));
    if (ZSTD_isError(remaining)) break;
  }
  ZSTD_freeCCtx(ctx);
  frame.resize(out.pos);
  return frame;
}

TEST(Zstd, ReadsStreamedFramesWithoutContentSize) {
  const bytes input = compressible_bytes(700 * kib, 24);
  const bytes frame = zstd_streamed(input);
  EXPECT_EQ(ZSTD_getFrameContentSize(frame.data(), frame.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  bytes output;
  ASSERT_TRUE(decompress(compression_codec::zstd, frame, output, mib).ok());
  EXPECT_TRUE(output == input);
}

TEST(Zstd, StreamedBombStopsAtMaximum) {
  const bytes frame = zstd_streamed(bytes(10 * mib, std::byte{0}));
  EXPECT_EQ(ZSTD_getFrameContentSize(frame.data(), frame.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  bytes output;
  EXPECT_EQ(decompress(compression_codec::zstd, frame, output, mib).code(), errc::batch_too_large);
  EXPECT_TRUE(output.empty());
}

// ---- the command-line tools -----------------------------------------------------------

bool tool_present(const char* tool) {
  const std::string probe = std::string("command -v ") + tool + " >/dev/null 2>&1";
  return std::system(probe.c_str()) == 0;
}

class ToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "sluice_compression_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_EQ(std::system(("mkdir -p '" + dir_ + "'").c_str()), 0);
  }
  void TearDown() override {
    const int rc = std::system(("rm -rf '" + dir_ + "'").c_str());
    EXPECT_EQ(rc, 0);
  }

  std::string path(const char* name) const { return dir_ + "/" + name; }

  static void write_file(const std::string& file, const bytes& data) {
    std::ofstream out(file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size()));
    ASSERT_TRUE(out.good());
  }
  static bytes read_file(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    bytes out(chars.size());
    if (!chars.empty()) std::memcpy(out.data(), chars.data(), chars.size());
    return out;
  }

  // Our compressed output, decompressed by `tool -dc`, must give back the input.
  void expect_tool_reads_ours(compression_codec codec, const char* tool) {
    for (const bytes& input :
         {compressible_bytes(mib, 25), random_bytes(300 * kib, 26), from_string("k")}) {
      write_file(path("ours"), compress_or_die(codec, input));
      const std::string command =
          std::string(tool) + " -q -dc < '" + path("ours") + "' > '" + path("plain") + "'";
      ASSERT_EQ(std::system(command.c_str()), 0) << command;
      EXPECT_TRUE(read_file(path("plain")) == input) << tool << " disagrees, " << input.size();
    }
  }

  // The tool's output, from a file (size known) and from a pipe (size unknown), must
  // decompress with ours.
  void expect_we_read_tool(compression_codec codec, const char* tool) {
    const bytes input = compressible_bytes(800 * kib, 27);
    write_file(path("plain"), input);
    const std::string commands[] = {
        std::string(tool) + " -q -c '" + path("plain") + "' > '" + path("theirs") + "'",
        "cat '" + path("plain") + "' | " + tool + " -q -c > '" + path("theirs") + "'"};
    for (const std::string& command : commands) {
      ASSERT_EQ(std::system(command.c_str()), 0) << command;
      bytes output;
      auto rc = decompress(codec, read_file(path("theirs")), output, mib);
      ASSERT_TRUE(rc.ok()) << command << ": " << rc.failure().detail();
      EXPECT_TRUE(output == input) << command;
    }
  }

  std::string dir_;
};

TEST_F(ToolTest, GzipToolReadsOurs) {
  if (!tool_present("gzip")) GTEST_SKIP() << "gzip is not installed";
  expect_tool_reads_ours(compression_codec::gzip, "gzip");
}

TEST_F(ToolTest, WeReadGzipTool) {
  if (!tool_present("gzip")) GTEST_SKIP() << "gzip is not installed";
  expect_we_read_tool(compression_codec::gzip, "gzip");
}

TEST_F(ToolTest, Lz4ToolReadsOurs) {
  if (!tool_present("lz4")) GTEST_SKIP() << "lz4 is not installed";
  expect_tool_reads_ours(compression_codec::lz4, "lz4");
}

TEST_F(ToolTest, WeReadLz4Tool) {
  if (!tool_present("lz4")) GTEST_SKIP() << "lz4 is not installed";
  expect_we_read_tool(compression_codec::lz4, "lz4");
}

TEST_F(ToolTest, ZstdToolReadsOurs) {
  if (!tool_present("zstd")) GTEST_SKIP() << "zstd is not installed";
  expect_tool_reads_ours(compression_codec::zstd, "zstd");
}

TEST_F(ToolTest, WeReadZstdTool) {
  if (!tool_present("zstd")) GTEST_SKIP() << "zstd is not installed";
  expect_we_read_tool(compression_codec::zstd, "zstd");
}

}  // namespace
}  // namespace sluice
