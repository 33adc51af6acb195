// The four Kafka codecs over the system libraries (zlib, snappy, lz4frame, zstd).
//
// Decompression reads bytes that came from the network or from disk, so it trusts
// nothing: every codec writes into an output_sink that refuses to grow past
// output_bytes_max + 1 bytes (the extra byte is how a codec proves it had more to give),
// every loop makes progress or stops, and on failure `output` is put back to the size it
// had on entry so a caller never sees half a decompression.
#include "engine/storage/compression.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>

#include "engine/base/assert.h"

namespace sluice {
namespace {

// The first growth step of an output whose final size is not known: large enough that
// a typical batch (16 KiB to 1 MiB) needs few steps, small enough to waste little.
constexpr std::size_t output_growth_bytes_min = 64 * 1024;

// The most that an input's own announcement of its decompressed size may reserve.
constexpr std::size_t expected_bytes_trusted_max = 64 * 1024 * 1024;

// zlib counts bytes in uInt (32 bits); larger buffers are fed in pieces of this size.
constexpr std::size_t zlib_piece_bytes_max = std::size_t{1} << 30;

// The Java client (snappy-java SnappyOutputStream, as Kafka uses it) cuts its input into
// blocks of 32 KiB before compressing each on its own; we write the same framing.
constexpr std::size_t snappy_block_bytes_max = 32 * 1024;

// xerial snappy framing (snappy-java):
//   offset  size  field
//   0       8     magic "\x82SNAPPY\0"
//   8       4     version             int32 BE, 1
//   12      4     compatible version  int32 BE, 1
//   16      ...   blocks: int32 BE compressed length, then one raw snappy block
constexpr std::array<unsigned char, 8> xerial_magic = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
constexpr std::size_t xerial_header_bytes = 16;
constexpr std::int32_t xerial_version = 1;
constexpr std::int32_t xerial_compatible_version = 1;
constexpr std::size_t xerial_block_length_bytes = 4;

// Kafka's default zstd level (compression.zstd.level).
constexpr int zstd_level_default = 3;

// Appends to a vector with a hard cap on how much may be appended, for decompression
// (cap = output_bytes_max + 1) and, uncapped, for compression. The vector's size runs
// ahead of the bytes written (`used`) so that codecs can write into it directly;
// finish() trims it, abandon() restores it.
class output_sink {
 public:
  output_sink(std::vector<std::byte>& output, std::size_t bytes_max) noexcept
      : output_(output),
        start_(output.size()),
        bytes_max_(bytes_max),
        // One byte past the maximum, so that a codec which fills the maximum exactly and
        // still has output reveals it instead of being cut off silently.
        bytes_limit_(bytes_max == std::numeric_limits<std::size_t>::max() ? bytes_max
                                                                          : bytes_max + 1) {}

  // Returns writable bytes after the used ones: at least `bytes_min` unless that would
  // cross the limit, then all that the limit leaves (possibly none).
  std::span<std::byte> writable(std::size_t bytes_min) {
    const std::size_t room = bytes_limit_ - used_;
    const std::size_t allocated = output_.size() - start_ - used_;
    if (allocated < bytes_min && allocated < room) {
      // Doubling keeps the number of growth steps logarithmic in the final size.
      const std::size_t want = std::max({bytes_min, output_growth_bytes_min, used_});
      output_.resize(start_ + used_ + std::min(want, room));
    }
    const std::size_t available = std::min(output_.size() - start_ - used_, room);
    return {output_.data() + start_ + used_, available};
  }

  void commit(std::size_t bytes) noexcept {
    SLUICE_ASSERT(bytes <= output_.size() - start_ - used_, "commit past the writable bytes");
    used_ += bytes;
  }

  // Reserves room for `bytes` more when the final size is announced by the input. The
  // announcement is untrusted, so the reservation passes neither the limit nor a fixed
  // cap (the limit may be huge); writable() still grows past the cap when data is real.
  void expect(std::size_t bytes) {
    const std::size_t trusted = std::min({bytes, bytes_limit_ - used_, expected_bytes_trusted_max});
    output_.reserve(start_ + used_ + trusted);
  }

  std::size_t room_left() const noexcept { return bytes_max_ - std::min(used_, bytes_max_); }
  bool exceeded() const noexcept { return used_ > bytes_max_; }

  void finish() { output_.resize(start_ + used_); }
  void abandon() { output_.resize(start_); }

 private:
  std::vector<std::byte>& output_;
  std::size_t start_;
  std::size_t bytes_max_;
  std::size_t bytes_limit_;
  std::size_t used_ = 0;
};

// Runs one codec body against a sink: keeps the output on success, restores it on
// failure, and turns an output that crossed its maximum into batch_too_large.
template <typename Body>
result<void> run_into(std::vector<std::byte>& output, std::size_t bytes_max,
                      const char* too_large_detail, Body&& body) {
  output_sink sink(output, bytes_max);
  result<void> outcome = body(sink);
  if (outcome.ok() && sink.exceeded()) outcome = error(errc::batch_too_large, too_large_detail);
  if (!outcome.ok()) {
    sink.abandon();
    return outcome;
  }
  sink.finish();
  return {};
}

// Every streaming loop below makes progress in each round (consumes input or produces
// output) or stops, so input bytes + output limit + 2 rounds is a hard bound.
std::size_t rounds_max(std::span<const std::byte> input, std::size_t output_bytes_max) {
  const std::size_t cap = std::numeric_limits<std::size_t>::max() / 2;
  return std::min(input.size(), cap) + std::min(output_bytes_max, cap) + 2;
}

const unsigned char* as_uchar(const std::byte* p) {
  return reinterpret_cast<const unsigned char*>(p);
}

std::uint32_t load_u32_be(const std::byte* p) {
  const unsigned char* b = as_uchar(p);
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
         std::uint32_t{b[3]};
}

void store_u32_be(std::byte* p, std::uint32_t v) {
  p[0] = std::byte(v >> 24);
  p[1] = std::byte(v >> 16);
  p[2] = std::byte(v >> 8);
  p[3] = std::byte(v);
}

// ---- gzip -----------------------------------------------------------------------------

// zlib keeps pointers into itself after init, so the stream must not move.
class zlib_inflater {
 public:
  zlib_inflater() {
    // 15 + 32: the largest window, and detect the gzip (or zlib) wrapper from the header.
    const int rc = inflateInit2(&stream_, 15 + 32);
    SLUICE_ASSERT(rc == Z_OK, "inflateInit2 failed: out of memory");
  }
  ~zlib_inflater() { inflateEnd(&stream_); }
  zlib_inflater(const zlib_inflater&) = delete;
  zlib_inflater& operator=(const zlib_inflater&) = delete;
  z_stream& stream() noexcept { return stream_; }

 private:
  z_stream stream_{};
};

class zlib_deflater {
 public:
  zlib_deflater() {
    // 15 + 16: the largest window, with the gzip wrapper (RFC 1952) rather than zlib's.
    const int rc =
        deflateInit2(&stream_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    SLUICE_ASSERT(rc == Z_OK, "deflateInit2 failed: out of memory");
  }
  ~zlib_deflater() { deflateEnd(&stream_); }
  zlib_deflater(const zlib_deflater&) = delete;
  zlib_deflater& operator=(const zlib_deflater&) = delete;
  z_stream& stream() noexcept { return stream_; }

 private:
  z_stream stream_{};
};

// Gives zlib the next piece of input when it has used up the previous one.
void zlib_feed(z_stream& stream, std::span<const std::byte> input, std::size_t& fed) {
  if (stream.avail_in != 0 || fed == input.size()) return;
  const std::size_t piece = std::min(input.size() - fed, zlib_piece_bytes_max);
  // zlib's next_in is not const in older headers; it never writes through it.
  stream.next_in = const_cast<Bytef*>(as_uchar(input.data() + fed));
  stream.avail_in = static_cast<uInt>(piece);
  fed += piece;
}

result<void> gzip_decompress(std::span<const std::byte> input, output_sink& sink,
                             std::size_t output_bytes_max) {
  zlib_inflater inflater;
  z_stream& stream = inflater.stream();
  std::size_t fed = 0;
  const std::size_t rounds = rounds_max(input, output_bytes_max);
  for (std::size_t round = 0; round < rounds; ++round) {
    zlib_feed(stream, input, fed);
    std::span<std::byte> space = sink.writable(1);
    if (space.empty()) return {};  // the limit is reached: run_into reports it
    const std::size_t out_piece = std::min(space.size(), zlib_piece_bytes_max);
    stream.next_out = reinterpret_cast<Bytef*>(space.data());
    stream.avail_out = static_cast<uInt>(out_piece);
    const uInt in_before = stream.avail_in;
    const int rc = inflate(&stream, Z_NO_FLUSH);
    const std::size_t produced = out_piece - stream.avail_out;
    sink.commit(produced);
    const bool input_left = stream.avail_in != 0 || fed < input.size();
    switch (rc) {
      case Z_STREAM_END:
        // Kafka's Java reader (GZIPInputStream) reads concatenated gzip members, and so
        // does `gzip -d`: a member may be followed by another.
        if (!input_left) return {};
        if (inflateReset(&stream) != Z_OK)
          return error(errc::corrupt_batch, "gzip data is corrupt");
        continue;
      case Z_OK:
      case Z_BUF_ERROR: break;
      case Z_MEM_ERROR: SLUICE_ASSERT(false, "inflate failed: out of memory"); break;
      default: return error(errc::corrupt_batch, "gzip data is corrupt");
    }
    // No progress with room to write: the input ran out mid-stream (Z_BUF_ERROR).
    if (produced == 0 && stream.avail_in == in_before) {
      return error(errc::corrupt_batch,
                   input_left ? "gzip data is corrupt" : "gzip data is truncated");
    }
  }
  SLUICE_UNREACHABLE("gzip decompression made no progress within its bound");
}

result<void> gzip_compress(std::span<const std::byte> input, output_sink& sink) {
  zlib_deflater deflater;
  z_stream& stream = deflater.stream();
  // One buffer of the worst-case size lets deflate finish in a single call.
  const std::size_t bound = deflateBound(&stream, input.size());
  std::size_t fed = 0;
  const std::size_t rounds = rounds_max(input, bound);
  for (std::size_t round = 0; round < rounds; ++round) {
    zlib_feed(stream, input, fed);
    const int flush = (fed == input.size()) ? Z_FINISH : Z_NO_FLUSH;
    std::span<std::byte> space = sink.writable(bound);
    const std::size_t out_piece = std::min(space.size(), zlib_piece_bytes_max);
    stream.next_out = reinterpret_cast<Bytef*>(space.data());
    stream.avail_out = static_cast<uInt>(out_piece);
    const int rc = deflate(&stream, flush);
    sink.commit(out_piece - stream.avail_out);
    if (rc == Z_STREAM_END) return {};
    SLUICE_ASSERT(rc == Z_OK || rc == Z_BUF_ERROR, "deflate failed on valid arguments");
  }
  SLUICE_UNREACHABLE("gzip compression made no progress within its bound");
}

// ---- snappy ---------------------------------------------------------------------------

// Decompresses one raw snappy block, refusing it before any work when its announced
// length would pass the maximum.
result<void> snappy_block_decompress(std::span<const std::byte> block, output_sink& sink) {
  const char* in = reinterpret_cast<const char*>(block.data());
  std::size_t length = 0;
  if (snappy_uncompressed_length(in, block.size(), &length) != SNAPPY_OK) {
    return error(errc::corrupt_batch, "snappy block header is corrupt");
  }
  if (length > sink.room_left()) {
    return error(errc::batch_too_large, "snappy output exceeds its maximum size");
  }
  if (length == 0) {
    // Still validate: the header may claim nothing while trailing bytes follow.
    if (snappy_validate_compressed_buffer(in, block.size()) != SNAPPY_OK) {
      return error(errc::corrupt_batch, "snappy block is corrupt");
    }
    return {};
  }
  std::span<std::byte> space = sink.writable(length);
  SLUICE_ASSERT(space.size() >= length, "room_left promised space below the limit");
  std::size_t written = length;
  if (snappy_uncompress(in, block.size(), reinterpret_cast<char*>(space.data()), &written) !=
          SNAPPY_OK ||
      written != length) {
    return error(errc::corrupt_batch, "snappy block is corrupt");
  }
  sink.commit(written);
  return {};
}

bool starts_with_xerial_magic(std::span<const std::byte> bytes) {
  return bytes.size() >= xerial_magic.size() &&
         std::memcmp(bytes.data(), xerial_magic.data(), xerial_magic.size()) == 0;
}

result<void> xerial_decompress(std::span<const std::byte> input, output_sink& sink) {
  std::size_t pos = 0;
  // Each round consumes a header or a block of at least one byte of length word.
  const std::size_t rounds = input.size() / xerial_block_length_bytes + 1;
  for (std::size_t round = 0; round < rounds; ++round) {
    if (pos == input.size()) return {};
    const std::span<const std::byte> rest = input.subspan(pos);
    // The magic may open the stream and, as snappy-java allows, reopen it when streams
    // were concatenated. The versions are not checked: only version 1 exists, and
    // snappy-java itself only rejects a compatible version below 1.
    if (starts_with_xerial_magic(rest)) {
      if (rest.size() < xerial_header_bytes) {
        return error(errc::corrupt_batch, "snappy xerial header is truncated");
      }
      pos += xerial_header_bytes;
      continue;
    }
    if (rest.size() < xerial_block_length_bytes) {
      return error(errc::corrupt_batch, "snappy block length is truncated");
    }
    const std::uint32_t block_bytes = load_u32_be(rest.data());
    if (block_bytes > rest.size() - xerial_block_length_bytes) {
      return error(errc::corrupt_batch, "snappy block length exceeds input");
    }
    SLUICE_TRY(snappy_block_decompress(rest.subspan(xerial_block_length_bytes, block_bytes), sink));
    pos += xerial_block_length_bytes + block_bytes;
  }
  SLUICE_UNREACHABLE("xerial snappy decompression passed its bound");
}

result<void> snappy_decompress(std::span<const std::byte> input, output_sink& sink) {
  // The Java client writes xerial framing; librdkafka writes one raw block. librdkafka
  // tells them apart by the magic, and so do we: a raw block cannot start with it in
  // practice, since its first bytes are the varint length.
  if (starts_with_xerial_magic(input)) return xerial_decompress(input, sink);
  if (input.empty()) return error(errc::corrupt_batch, "snappy data is empty");
  return snappy_block_decompress(input, sink);
}

result<void> snappy_compress_xerial(std::span<const std::byte> input, output_sink& sink) {
  const std::size_t blocks = (input.size() + snappy_block_bytes_max - 1) / snappy_block_bytes_max;
  sink.expect(xerial_header_bytes + blocks * xerial_block_length_bytes +
              snappy_max_compressed_length(input.size()));
  std::span<std::byte> header = sink.writable(xerial_header_bytes);
  std::memcpy(header.data(), xerial_magic.data(), xerial_magic.size());
  store_u32_be(header.data() + 8, static_cast<std::uint32_t>(xerial_version));
  store_u32_be(header.data() + 12, static_cast<std::uint32_t>(xerial_compatible_version));
  sink.commit(xerial_header_bytes);
  for (std::size_t block = 0; block < blocks; ++block) {
    const std::size_t from = block * snappy_block_bytes_max;
    const std::size_t size = std::min(snappy_block_bytes_max, input.size() - from);
    std::size_t compressed = snappy_max_compressed_length(size);
    std::span<std::byte> space = sink.writable(xerial_block_length_bytes + compressed);
    const snappy_status status = snappy_compress(
        reinterpret_cast<const char*>(input.data() + from), size,
        reinterpret_cast<char*>(space.data() + xerial_block_length_bytes), &compressed);
    SLUICE_ASSERT(status == SNAPPY_OK, "snappy_compress failed with a max-sized buffer");
    store_u32_be(space.data(), static_cast<std::uint32_t>(compressed));
    sink.commit(xerial_block_length_bytes + compressed);
  }
  return {};
}

// ---- lz4 ------------------------------------------------------------------------------

struct lz4_dctx_free {
  void operator()(LZ4F_dctx* ctx) const noexcept { LZ4F_freeDecompressionContext(ctx); }
};

result<void> lz4_decompress(std::span<const std::byte> input, output_sink& sink,
                            std::size_t output_bytes_max) {
  LZ4F_dctx* raw = nullptr;
  const LZ4F_errorCode_t rc = LZ4F_createDecompressionContext(&raw, LZ4F_VERSION);
  SLUICE_ASSERT(!LZ4F_isError(rc), "LZ4F_createDecompressionContext failed: out of memory");
  std::unique_ptr<LZ4F_dctx, lz4_dctx_free> ctx(raw);

  std::size_t pos = 0;
  // LZ4F_decompress returns 0 once a frame is decoded and flushed, else a hint > 0.
  std::size_t hint = 1;
  const std::size_t rounds = rounds_max(input, output_bytes_max);
  for (std::size_t round = 0; round < rounds; ++round) {
    if (hint == 0 && pos == input.size()) return {};
    std::span<std::byte> space = sink.writable(1);
    if (space.empty()) return {};  // the limit is reached: run_into reports it
    std::size_t produced = space.size();
    std::size_t consumed = input.size() - pos;
    // After a frame ends the context starts over, so concatenated frames (which the lz4
    // tool reads too) decode one after the other.
    hint =
        LZ4F_decompress(ctx.get(), space.data(), &produced, input.data() + pos, &consumed, nullptr);
    if (LZ4F_isError(hint)) return error(errc::corrupt_batch, "lz4 frame is corrupt");
    sink.commit(produced);
    pos += consumed;
    if (produced == 0 && consumed == 0 && hint != 0) {
      return error(errc::corrupt_batch, "lz4 frame is truncated");
    }
  }
  SLUICE_UNREACHABLE("lz4 decompression made no progress within its bound");
}

result<void> lz4_compress(std::span<const std::byte> input, output_sink& sink) {
  // Like Kafka's own writer (Lz4BlockOutputStream): 64 KiB independent blocks and no
  // optional fields, which every Kafka client version can read. Integrity is the batch
  // CRC's job.
  LZ4F_preferences_t prefs{};
  prefs.frameInfo.blockSizeID = LZ4F_max64KB;
  prefs.frameInfo.blockMode = LZ4F_blockIndependent;
  prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
  prefs.frameInfo.frameType = LZ4F_frame;
  prefs.frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum;
  prefs.compressionLevel = 0;
  const std::size_t bound = LZ4F_compressFrameBound(input.size(), &prefs);
  std::span<std::byte> space = sink.writable(bound);
  const std::size_t written =
      LZ4F_compressFrame(space.data(), space.size(), input.data(), input.size(), &prefs);
  SLUICE_ASSERT(!LZ4F_isError(written), "LZ4F_compressFrame failed with a bound-sized buffer");
  sink.commit(written);
  return {};
}

// ---- zstd -----------------------------------------------------------------------------

// zstd contexts are large (a decompression context with its buffers is hundreds of KiB)
// and built to be reused, so each thread keeps one of each. Every use starts with a
// reset, so a failed decompression leaves nothing behind for the next one.
struct zstd_dctx_free {
  void operator()(ZSTD_DCtx* ctx) const noexcept { ZSTD_freeDCtx(ctx); }
};
struct zstd_cctx_free {
  void operator()(ZSTD_CCtx* ctx) const noexcept { ZSTD_freeCCtx(ctx); }
};

ZSTD_DCtx* zstd_thread_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, zstd_dctx_free> ctx(ZSTD_createDCtx());
  SLUICE_ASSERT(ctx != nullptr, "ZSTD_createDCtx failed: out of memory");
  ZSTD_DCtx_reset(ctx.get(), ZSTD_reset_session_only);
  return ctx.get();
}

ZSTD_CCtx* zstd_thread_cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, zstd_cctx_free> ctx(ZSTD_createCCtx());
  SLUICE_ASSERT(ctx != nullptr, "ZSTD_createCCtx failed: out of memory");
  ZSTD_CCtx_reset(ctx.get(), ZSTD_reset_session_and_parameters);
  return ctx.get();
}

result<void> zstd_failure(std::size_t code) {
  switch (ZSTD_getErrorCode(code)) {
    case ZSTD_error_memory_allocation:
      SLUICE_ASSERT(false, "ZSTD_decompressStream failed: out of memory");
      break;
    case ZSTD_error_frameParameter_windowTooLarge:
      // A well-formed frame that asks for more than the decoder's window limit (the
      // library default, 128 MiB): too large for us rather than damaged.
      return error(errc::batch_too_large, "zstd window exceeds the decoder limit");
    default: break;
  }
  return error(errc::corrupt_batch, "zstd frame is corrupt");
}

result<void> zstd_decompress(std::span<const std::byte> input, output_sink& sink,
                             std::size_t output_bytes_max) {
  ZSTD_DCtx* ctx = zstd_thread_dctx();
  const unsigned long long announced = ZSTD_getFrameContentSize(input.data(), input.size());
  if (announced != ZSTD_CONTENTSIZE_UNKNOWN && announced != ZSTD_CONTENTSIZE_ERROR) {
    // Kafka's Java writer streams, so most frames do not announce their size; when one
    // does, a single allocation suffices (the sink caps it at the limit).
    sink.expect(static_cast<std::size_t>(
        std::min<unsigned long long>(announced, std::numeric_limits<std::size_t>::max())));
  }
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  // ZSTD_decompressStream returns 0 once a frame is decoded and flushed, else a hint.
  std::size_t hint = 1;
  const std::size_t rounds = rounds_max(input, output_bytes_max);
  for (std::size_t round = 0; round < rounds; ++round) {
    if (hint == 0 && in.pos == in.size) return {};
    std::span<std::byte> space = sink.writable(1);
    if (space.empty()) return {};  // the limit is reached: run_into reports it
    ZSTD_outBuffer out{space.data(), space.size(), 0};
    const std::size_t in_before = in.pos;
    // With input left after a frame, the next call decodes the following frame, which
    // is how zstd itself treats concatenated frames.
    hint = ZSTD_decompressStream(ctx, &out, &in);
    if (ZSTD_isError(hint)) return zstd_failure(hint);
    sink.commit(out.pos);
    if (out.pos == 0 && in.pos == in_before && hint != 0) {
      return error(errc::corrupt_batch, "zstd frame is truncated");
    }
  }
  SLUICE_UNREACHABLE("zstd decompression made no progress within its bound");
}

result<void> zstd_compress(std::span<const std::byte> input, output_sink& sink) {
  ZSTD_CCtx* ctx = zstd_thread_cctx();
  const std::size_t bound = ZSTD_compressBound(input.size());
  std::span<std::byte> space = sink.writable(bound);
  const std::size_t written = ZSTD_compressCCtx(ctx, space.data(), space.size(), input.data(),
                                                input.size(), zstd_level_default);
  SLUICE_ASSERT(!ZSTD_isError(written), "ZSTD_compressCCtx failed with a bound-sized buffer");
  sink.commit(written);
  return {};
}

bool is_known(compression_codec codec) {
  return static_cast<std::uint8_t>(codec) <= static_cast<std::uint8_t>(compression_codec::zstd);
}

}  // namespace

result<void> decompress(compression_codec codec, std::span<const std::byte> input,
                        std::vector<std::byte>& output, std::size_t output_bytes_max) {
  if (!is_known(codec)) return error(errc::invalid_argument, "unknown compression codec");
  switch (codec) {
    case compression_codec::none:
      if (input.size() > output_bytes_max) {
        return error(errc::batch_too_large, "uncompressed data exceeds its maximum size");
      }
      output.insert(output.end(), input.begin(), input.end());
      return {};
    case compression_codec::gzip:
      return run_into(
          output, output_bytes_max, "gzip output exceeds its maximum size",
          [&](output_sink& sink) { return gzip_decompress(input, sink, output_bytes_max); });
    case compression_codec::snappy:
      return run_into(output, output_bytes_max, "snappy output exceeds its maximum size",
                      [&](output_sink& sink) { return snappy_decompress(input, sink); });
    case compression_codec::lz4:
      return run_into(
          output, output_bytes_max, "lz4 output exceeds its maximum size",
          [&](output_sink& sink) { return lz4_decompress(input, sink, output_bytes_max); });
    case compression_codec::zstd:
      return run_into(
          output, output_bytes_max, "zstd output exceeds its maximum size",
          [&](output_sink& sink) { return zstd_decompress(input, sink, output_bytes_max); });
  }
  SLUICE_UNREACHABLE("codec checked above");
}

result<void> compress(compression_codec codec, std::span<const std::byte> input,
                      std::vector<std::byte>& output) {
  if (!is_known(codec)) return error(errc::invalid_argument, "unknown compression codec");
  constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();
  switch (codec) {
    case compression_codec::none:
      output.insert(output.end(), input.begin(), input.end());
      return {};
    case compression_codec::gzip:
      return run_into(output, unlimited, "gzip output too large",
                      [&](output_sink& sink) { return gzip_compress(input, sink); });
    case compression_codec::snappy:
      return run_into(output, unlimited, "snappy output too large",
                      [&](output_sink& sink) { return snappy_compress_xerial(input, sink); });
    case compression_codec::lz4:
      return run_into(output, unlimited, "lz4 output too large",
                      [&](output_sink& sink) { return lz4_compress(input, sink); });
    case compression_codec::zstd:
      return run_into(output, unlimited, "zstd output too large",
                      [&](output_sink& sink) { return zstd_compress(input, sink); });
  }
  SLUICE_UNREACHABLE("codec checked above");
}

}  // namespace sluice
