// Read-only access to the files of one segment, for tools that must never change them.
//
// The engine's own classes are the wrong way in for an inspection tool: segment::open
// rebuilds indexes and recover() cuts torn tails, and offset_index::open / time_index::open
// open read-write and grow an index to its preallocated size. A tool pointed at a partition
// directory after a crash must leave the evidence exactly as it found it, so everything
// here opens files O_RDONLY, maps them PROT_READ, and decodes the big-endian index entries
// itself (formats: engine/storage/offset_index.h, engine/storage/time_index.h,
// engine/storage/record_batch.h).
//
// Plain functions and one small RAII type; no threads, no state shared between calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "engine/base/result.h"
#include "engine/base/types.h"
#include "engine/io/file.h"
#include "engine/storage/offset_index.h"
#include "engine/storage/record_batch.h"
#include "engine/storage/time_index.h"

namespace sluice::dump_log {

enum class file_kind : std::uint8_t { log, offset_index, time_index };

// The kind of segment file `path` names, by its suffix; nullopt for any other file.
std::optional<file_kind> file_kind_of(std::string_view path) noexcept;
std::string_view file_kind_suffix(file_kind kind) noexcept;

// The base offset in the name of a segment file ("00000000000000000042.log" -> 42): the
// digits before the suffix. Like Kafka, any number of digits is accepted, not only the 20
// that segment_file_name() writes. nullopt when the name is not digits, or is so large
// that base + a 32-bit relative index offset would overflow.
std::optional<offset> base_offset_of(std::string_view path) noexcept;

// The file of kind `kind` beside `path` with the same base name ("/d/0042.log" ->
// "/d/0042.index"). REQUIRES: file_kind_of(path) has a value.
std::string sibling_path(std::string_view path, file_kind kind);

// One problem found in a file: what, and where.
struct problem {
  std::string what;
  // Byte position in the file the problem is reported against.
  std::uint64_t byte = 0;
  // The offset involved, when one is known.
  std::optional<offset> at_offset;
};

// A whole file mapped read-only. Never written, never resized. Moveable; unmaps when the
// last copy of the mapping goes.
class read_only_file {
 public:
  // Opens `path` O_RDONLY and maps all of it. Fails with errc::invalid_argument when the
  // file is longer than `bytes_max`, and with the I/O error otherwise.
  static result<read_only_file> open(const std::string& path, std::uint64_t bytes_max);

  std::span<const std::byte> bytes() const noexcept;

 private:
  std::shared_ptr<mapped_file> mapping_;  // null for an empty file: mmap of 0 bytes fails
};

// ---- batches in a .log file ---------------------------------------------------------------

struct framed_batch {
  std::uint64_t position = 0;
  batch_header header;
  std::span<const std::byte> bytes;  // the whole batch, header included
};

// Frames the batch that starts at `position` of `log`: a whole header, a batch_length no
// smaller than a header, offsets that cannot overflow (base offset >= 0 and far enough
// from int64 max, last_offset_delta >= 0), and all of the batch's bytes present. Does not
// look at magic or CRC. `expected` is the offset named in the problem when the header
// cannot be read. REQUIRES: position < log.size().
std::optional<problem> frame_batch(std::span<const std::byte> log, std::uint64_t position,
                                   offset expected, framed_batch& out);

// CRC32C over the checked range of the batch (everything after the crc field).
std::uint32_t computed_crc(const framed_batch& batch) noexcept;

// ---- .index and .timeindex files --------------------------------------------------------

// How an index file's bytes divide into entries.
struct index_layout {
  std::size_t entries = 0;         // entries in use
  std::size_t unused_entries = 0;  // all-zero entries at the end: preallocated, never trimmed
  std::size_t stray_bytes = 0;     // bytes after the last whole entry
};

// Splits `bytes` into entries of `entry_bytes`. The entries in use run up to the last entry
// that is not all zero: the engine preallocates index files with zeros and zeroes entries
// it drops, and no entry after the first can be all zero in a valid index (entries are
// strictly increasing). An all-zero first entry counts as an entry only when it is the
// whole file, i.e. a trimmed index whose one entry is (base offset, position 0); in a longer
// all-zero file it is padding, as the engine's recovery also reads it.
index_layout read_index_layout(std::span<const std::byte> bytes, std::size_t entry_bytes) noexcept;

// Entry `i` of an offset index / time index whose segment starts at `base`.
// REQUIRES: i < bytes.size() / entry_bytes.
offset_index_entry offset_index_entry_at(std::span<const std::byte> bytes, offset base,
                                         std::size_t i) noexcept;
time_index_entry time_index_entry_at(std::span<const std::byte> bytes, offset base,
                                     std::size_t i) noexcept;

// The largest index file the tool reads. Kafka caps segment.index.bytes at 2^31 - 1; a
// larger file is not an index, and the bound keeps every entry loop finite and small.
inline constexpr std::uint64_t index_file_bytes_max = std::uint64_t{1} << 31;

}  // namespace sluice::dump_log
