// The command line, dump printing and --verify driver of sluice-dump-log (see dump_log.h).
// The file access is in segment_files.h, the checks in segment_verifier.h.
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tools/dump_log/dump_log.h"
#include "tools/dump_log/segment_files.h"
#include "tools/dump_log/segment_verifier.h"

namespace sluice {
namespace {

using dump_log::file_kind;
using dump_log::framed_batch;
using dump_log::problem;
using dump_log::read_only_file;

constexpr std::string_view program_name = "sluice-dump-log";

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;

constexpr std::string_view usage_text =
    "usage: sluice-dump-log [--files F1,F2 | F...] [--print-data-log] [--deep-iteration]\n"
    "                       [--verify] [--index-sanity-check]\n"
    "Prints or checks Sluice segment files: <base offset>.log, .index and .timeindex.\n"
    "  --files F1,F2          the files to read (they may also be listed as arguments)\n"
    "  --deep-iteration       print (or, with --verify, check) every record of each batch\n"
    "  --print-data-log       print record keys and values too (implies --deep-iteration)\n"
    "  --index-sanity-check   check index files instead of printing their entries\n"
    "  --verify               check every batch and index entry instead of printing them\n"
    "Exit status: 0 ok, 1 a check failed or a file could not be read, 2 usage error.\n";

struct options {
  std::vector<std::string> files;
  bool print_data_log = false;
  bool deep_iteration = false;
  bool verify = false;
  bool index_sanity_check = false;
  bool help = false;
};

// Splits a --files list; fails on an empty name ("a,,b"), which is surely a typo.
std::optional<std::string> add_file_list(std::string_view list, options& opts) {
  // Bounded: each round consumes at least the comma.
  while (true) {
    const auto comma = list.find(',');
    const std::string_view name = list.substr(0, comma);
    if (name.empty()) return fmt::format("--files has an empty file name in '{}'", list);
    opts.files.emplace_back(name);
    if (comma == std::string_view::npos) return std::nullopt;
    list.remove_prefix(comma + 1);
  }
}

// Parses the command line into `opts`; returns the usage problem, if any.
std::optional<std::string> parse_options(int argc, char** argv, options& opts) {
  bool options_ended = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i] != nullptr ? argv[i] : "";
    if (options_ended || !arg.starts_with('-') || arg == "-") {
      if (arg.empty()) return std::string("an empty file name");
      opts.files.emplace_back(arg);
    } else if (arg == "--") {
      options_ended = true;
    } else if (arg == "--print-data-log") {
      opts.print_data_log = true;
    } else if (arg == "--deep-iteration") {
      opts.deep_iteration = true;
    } else if (arg == "--verify") {
      opts.verify = true;
    } else if (arg == "--index-sanity-check") {
      opts.index_sanity_check = true;
    } else if (arg == "--help" || arg == "-h") {
      opts.help = true;
    } else if (arg == "--files") {
      if (i + 1 >= argc) return std::string("--files needs a comma-separated list of files");
      if (auto bad = add_file_list(argv[++i], opts)) return bad;
    } else if (arg.starts_with("--files=")) {
      if (auto bad = add_file_list(arg.substr(std::string_view("--files=").size()), opts)) {
        return bad;
      }
    } else {
      return fmt::format("unknown option '{}' (see --help)", arg);
    }
  }
  if (!opts.help && opts.files.empty()) {
    return std::string("no files given (list them, or use --files F1,F2)");
  }
  return std::nullopt;
}

// Checks, before anything is printed, that `path` names a segment file the tool can read.
std::optional<std::string> check_file_argument(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return fmt::format("{}: {}", path, errno == ENOENT ? "no such file" : std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return fmt::format("{}: not a regular file", path);
  const auto kind = dump_log::file_kind_of(path);
  if (!kind) {
    return fmt::format("{}: not a segment file (expected a .log, .index or .timeindex name)", path);
  }
  if (*kind != file_kind::log && !dump_log::base_offset_of(path)) {
    return fmt::format(
        "{}: an index file's name must be its segment's base offset, as in "
        "00000000000000000042{}",
        path, dump_log::file_kind_suffix(*kind));
  }
  return std::nullopt;
}

// ---- display helpers ---------------------------------------------------------------------

// True when `bytes` are valid UTF-8 (shortest forms, no surrogates, <= U+10FFFF) without
// control characters, so that printing them as text keeps one record on one line.
bool is_printable_utf8(std::span<const std::byte> bytes) noexcept {
  std::size_t i = 0;
  // Bounded: each round consumes at least one byte.
  while (i < bytes.size()) {
    const auto lead = std::to_integer<std::uint32_t>(bytes[i]);
    std::size_t length = 0;
    std::uint32_t code_point = 0;
    std::uint32_t smallest = 0;
    if (lead < 0x80) {
      if (lead < 0x20 || lead == 0x7f) return false;
      ++i;
      continue;
    } else if ((lead & 0xe0) == 0xc0) {
      length = 2, code_point = lead & 0x1f, smallest = 0x80;
    } else if ((lead & 0xf0) == 0xe0) {
      length = 3, code_point = lead & 0x0f, smallest = 0x800;
    } else if ((lead & 0xf8) == 0xf0) {
      length = 4, code_point = lead & 0x07, smallest = 0x10000;
    } else {
      return false;
    }
    if (bytes.size() - i < length) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto continuation = std::to_integer<std::uint32_t>(bytes[i + k]);
      if ((continuation & 0xc0) != 0x80) return false;
      code_point = (code_point << 6) | (continuation & 0x3f);
    }
    if (code_point < smallest || code_point > 0x10ffff) return false;
    if (code_point >= 0xd800 && code_point <= 0xdfff) return false;
    if (code_point >= 0x80 && code_point <= 0x9f) return false;  // C1 controls
    i += length;
  }
  return true;
}

std::string displayable(std::span<const std::byte> bytes) {
  if (is_printable_utf8(bytes)) {
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  std::string hex = "0x";
  hex.reserve(2 + 2 * bytes.size());
  for (std::byte b : bytes)
    fmt::format_to(std::back_inserter(hex), "{:02x}", std::to_integer<int>(b));
  return hex;
}

std::int64_t size_of(const std::optional<std::span<const std::byte>>& bytes) noexcept {
  return bytes ? static_cast<std::int64_t>(bytes->size()) : -1;
}

// Kafka's DefaultRecordBatch.incrementSequence: sequences wrap from INT32_MAX to 0.
std::int32_t increment_sequence(std::int32_t sequence, std::int32_t increment) noexcept {
  if (sequence == -1) return -1;
  const std::int64_t sum = std::int64_t{sequence} + increment;
  if (sum > std::numeric_limits<std::int32_t>::max()) {
    return static_cast<std::int32_t>(sum - std::numeric_limits<std::int32_t>::max() - 1);
  }
  return static_cast<std::int32_t>(sum);
}

// Two's-complement addition without undefined behaviour, for timestamps read from a file
// that may hold anything.
std::int64_t wrapping_add(std::int64_t a, std::int64_t b) noexcept {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}

std::uint64_t load_be_u(std::span<const std::byte> bytes, std::size_t at, std::size_t size) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < size; ++i) {
    value = (value << 8) | std::to_integer<std::uint64_t>(bytes[at + i]);
  }
  return value;
}

std::string_view timestamp_type_name(const batch_header& h) noexcept {
  return h.timestamp_kind() == timestamp_type::log_append_time ? "LogAppendTime" : "CreateTime";
}

// ---- one run ----------------------------------------------------------------------------

class dump_run {
 public:
  dump_run(const options& opts, std::FILE* out, std::FILE* err)
      : opts_(opts), out_(out), err_(err) {
    check_options_.deep_iteration = opts.deep_iteration || opts.print_data_log;
  }

  int process(const std::string& path) {
    const file_kind kind = *dump_log::file_kind_of(path);
    if (opts_.verify) return verify_file(path, kind);
    if (kind == file_kind::log) return dump_log_file(path);
    return dump_index_file(path, kind);
  }

 private:
  int report(const std::string& path, const problem& p) {
    if (p.at_offset) {
      fmt::print(err_, "{}: {}: {} at byte {} (offset {})\n", program_name, path, p.what, p.byte,
                 *p.at_offset);
    } else {
      fmt::print(err_, "{}: {}: {} at byte {}\n", program_name, path, p.what, p.byte);
    }
    return exit_failed;
  }

  int report_unreadable(const std::string& path, const error& failure) {
    if (failure.os_errno() != 0) {
      fmt::print(err_, "{}: {}: cannot read the file: {} ({})\n", program_name, path,
                 failure.detail(), std::strerror(failure.os_errno()));
    } else {
      fmt::print(err_, "{}: {}: cannot read the file: {}\n", program_name, path, failure.detail());
    }
    return exit_failed;
  }

  // ---- dump of a .log ----

  int dump_log_file(const std::string& path) {
    auto file = read_only_file::open(path, std::numeric_limits<std::uint64_t>::max());
    if (!file) return report_unreadable(path, file.failure());
    const auto base = dump_log::base_offset_of(path);
    const auto log = file->bytes();
    fmt::print(out_, "Dumping {}\n", path);
    if (base) {
      fmt::print(out_, "Log starting offset: {}\n", *base);
    } else {
      fmt::print(out_, "Log starting offset: unknown (not in the file name)\n");
    }
    offset expected = base.value_or(offset(0));
    std::uint64_t position = 0;
    // Bounded: each batch moves the position forward by at least a header.
    while (position < log.size()) {
      framed_batch batch;
      if (auto torn = dump_log::frame_batch(log, position, expected, batch)) {
        fmt::print(out_, "Found {} invalid bytes at the end of {} from position {}: {}\n",
                   log.size() - position, path, position, torn->what);
        break;
      }
      print_batch(batch);
      if (check_options_.deep_iteration && batch.header.magic == batch_magic_v2) {
        print_records(batch);
      }
      expected = batch.header.next_offset();
      position += batch.header.total_bytes();
    }
    return exit_ok;
  }

  void print_batch(const framed_batch& batch) {
    const batch_header& h = batch.header;
    if (h.magic != batch_magic_v2) {
      fmt::print(out_,
                 "baseOffset: {} position: {} size: {} magic: {} (not a RecordBatch v2; not "
                 "decoded)\n",
                 h.base_offset, batch.position, h.total_bytes(), static_cast<int>(h.magic));
      return;
    }
    const std::string delete_horizon =
        h.has_delete_horizon() ? fmt::format("{}", h.base_timestamp) : std::string("none");
    fmt::print(out_,
               "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} "
               "producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} "
               "isControl: {} deleteHorizonMs: {} position: {} {}: {} size: {} magic: {} "
               "compresscodec: {} crc: {} isvalid: {}\n",
               h.base_offset, h.last_offset(), h.records_count, h.base_sequence,
               increment_sequence(h.base_sequence, h.last_offset_delta), h.producer_id,
               h.producer_epoch, h.partition_leader_epoch, h.is_transactional(), h.is_control(),
               delete_horizon, batch.position, timestamp_type_name(h), h.max_timestamp,
               h.total_bytes(), static_cast<int>(h.magic), compression_codec_name(h.compression()),
               h.crc, dump_log::computed_crc(batch) == h.crc);
  }

  void print_records(const framed_batch& batch) {
    const batch_header& h = batch.header;
    auto records = batch_records(h, batch.bytes, scratch_, check_options_.decompressed_bytes_max);
    if (!records) {
      fmt::print(out_, "| invalid records: {}\n", records.failure().detail());
      return;
    }
    std::size_t printed = 0;
    auto walked = for_each_record(h, *records, [&](const record_view& record) {
      print_record(h, record);
      ++printed;
    });
    if (!walked) {
      fmt::print(out_, "| invalid records after {} records: {}\n", printed,
                 walked.failure().detail());
    }
  }

  void print_record(const batch_header& h, const record_view& record) {
    const std::int64_t timestamp =
        h.timestamp_kind() == timestamp_type::log_append_time
            ? h.max_timestamp.value()
            : wrapping_add(h.base_timestamp.value(), record.timestamp_delta);
    std::string header_keys;
    auto headers = for_each_header(record, [&](const header_view& header) {
      if (!header_keys.empty()) header_keys += ',';
      header_keys += displayable(header.key);
    });
    if (!headers) header_keys = fmt::format("invalid: {}", headers.failure().detail());
    fmt::print(out_, "| offset: {} {}: {} keySize: {} valueSize: {} sequence: {} headerKeys: [{}]",
               h.base_offset + record.offset_delta, timestamp_type_name(h), timestamp,
               size_of(record.key), size_of(record.value),
               increment_sequence(h.base_sequence, record.offset_delta), header_keys);
    if (h.is_control()) {
      print_control_record(record);
    } else if (opts_.print_data_log) {
      if (record.key) fmt::print(out_, " key: {}", displayable(*record.key));
      if (record.value) fmt::print(out_, " payload: {}", displayable(*record.value));
    }
    fmt::print(out_, "\n");
  }

  // A control record: key = version int16, type int16 (0 abort, 1 commit); value of an end
  // transaction marker = version int16, coordinator epoch int32.
  void print_control_record(const record_view& record) {
    if (!record.key || record.key->size() < 4) {
      fmt::print(out_, " controlType: unreadable");
      return;
    }
    const auto type = static_cast<std::int16_t>(load_be_u(*record.key, 2, 2));
    if (type != 0 && type != 1) {
      fmt::print(out_, " controlType: {}", type);
      return;
    }
    fmt::print(out_, " endTxnMarker: {}", type == 0 ? "ABORT" : "COMMIT");
    if (record.value && record.value->size() >= 6) {
      fmt::print(out_, " coordinatorEpoch: {}",
                 static_cast<std::int32_t>(load_be_u(*record.value, 2, 4)));
    }
  }

  // ---- dump of an index ----

  int dump_index_file(const std::string& path, file_kind kind) {
    auto file = read_only_file::open(path, dump_log::index_file_bytes_max);
    if (!file) return report_unreadable(path, file.failure());
    const offset base = *dump_log::base_offset_of(path);
    const auto bytes = file->bytes();
    fmt::print(out_, "Dumping {}\n", path);
    if (opts_.index_sanity_check) {
      std::size_t entries = 0;
      std::optional<problem> found;
      if (kind == file_kind::offset_index) {
        auto log_bytes = sibling_log_size(path);
        if (!log_bytes)
          return report_unreadable(dump_log::sibling_path(path, file_kind::log),
                                   log_bytes.failure());
        found = dump_log::check_offset_index(bytes, base, *log_bytes, entries);
      } else {
        found = dump_log::check_time_index(bytes, base, entries);
      }
      if (found) return report(path, *found);
      fmt::print(out_, "{} passed sanity check.\n", path);
      return exit_ok;
    }
    const std::size_t entry_bytes =
        kind == file_kind::offset_index ? offset_index::entry_bytes : time_index::entry_bytes;
    const auto layout = dump_log::read_index_layout(bytes, entry_bytes);
    for (std::size_t i = 0; i < layout.entries; ++i) {
      if (kind == file_kind::offset_index) {
        const auto entry = dump_log::offset_index_entry_at(bytes, base, i);
        fmt::print(out_, "offset: {} position: {}\n", entry.last_offset, entry.position);
      } else {
        const auto entry = dump_log::time_index_entry_at(bytes, base, i);
        fmt::print(out_, "timestamp: {} offset: {}\n", entry.timestamp, entry.last_offset);
      }
    }
    if (layout.unused_entries > 0) {
      fmt::print(out_,
                 "unused: {} zero entries after the last entry (a preallocated index that was "
                 "not trimmed)\n",
                 layout.unused_entries);
    }
    if (layout.stray_bytes > 0) {
      fmt::print(out_, "stray: {} bytes after the last whole entry\n", layout.stray_bytes);
    }
    return exit_ok;
  }

  // The size of the .log beside an index, or nullopt when there is none.
  result<std::optional<std::uint64_t>> sibling_log_size(const std::string& index_path) {
    const std::string log_path = dump_log::sibling_path(index_path, file_kind::log);
    if (!path_exists(log_path)) return std::optional<std::uint64_t>();
    auto log = read_only_file::open(log_path, std::numeric_limits<std::uint64_t>::max());
    if (!log) return log.failure();
    return std::optional<std::uint64_t>(log->bytes().size());
  }

  // ---- --verify ----

  int verify_file(const std::string& path, file_kind kind) {
    const std::string log_path =
        kind == file_kind::log ? path : dump_log::sibling_path(path, file_kind::log);
    const auto base = dump_log::base_offset_of(path);

    std::optional<read_only_file> log;
    if (kind == file_kind::log || path_exists(log_path)) {
      auto opened = read_only_file::open(log_path, std::numeric_limits<std::uint64_t>::max());
      if (!opened) return report_unreadable(log_path, opened.failure());
      log.emplace(std::move(*opened));
    }
    dump_log::log_summary summary;
    if (log) {
      if (auto found = dump_log::verify_log(log->bytes(), base, check_options_, summary)) {
        return report(log_path, *found);
      }
    }

    // A .log brings its sibling indexes along; an index file is checked alone (against its
    // log). Index entries are relative to the base offset, so without one there is nothing
    // to check them against.
    std::vector<std::pair<std::string, file_kind>> indexes;
    if (kind != file_kind::log) {
      indexes.emplace_back(path, kind);
    } else if (base) {
      for (file_kind index_kind : {file_kind::offset_index, file_kind::time_index}) {
        std::string index_path = dump_log::sibling_path(path, index_kind);
        if (path_exists(index_path)) indexes.emplace_back(std::move(index_path), index_kind);
      }
    }
    std::size_t index_entries = 0;
    for (const auto& [index_path, index_kind] : indexes) {
      auto index = read_only_file::open(index_path, dump_log::index_file_bytes_max);
      if (!index) return report_unreadable(index_path, index.failure());
      std::size_t entries = 0;
      if (auto found = verify_index(index->bytes(), index_kind, *base, log, entries)) {
        return report(index_path, *found);
      }
      index_entries += entries;
    }
    fmt::print(out_, "verified {} batches, {} records, {} index entries in {}\n", summary.batches,
               summary.records, index_entries, path);
    return exit_ok;
  }

  std::optional<problem> verify_index(std::span<const std::byte> index, file_kind kind, offset base,
                                      const std::optional<read_only_file>& log,
                                      std::size_t& entries) {
    if (kind == file_kind::offset_index) {
      std::optional<std::uint64_t> log_bytes;
      if (log) log_bytes = log->bytes().size();
      if (auto found = dump_log::check_offset_index(index, base, log_bytes, entries)) return found;
      if (!log) return std::nullopt;
      return dump_log::check_offset_index_against_log(index, base, log->bytes());
    }
    if (auto found = dump_log::check_time_index(index, base, entries)) return found;
    if (!log) return std::nullopt;
    return dump_log::check_time_index_against_log(index, base, log->bytes());
  }

  const options& opts_;
  std::FILE* out_;
  std::FILE* err_;
  dump_log::log_check_options check_options_;
  std::vector<std::byte> scratch_;  // decompressed records, reused across batches
};

int run(int argc, char** argv, std::FILE* out, std::FILE* err) {
  options opts;
  if (auto bad = parse_options(argc, argv, opts)) {
    fmt::print(err, "{}: {}\n", program_name, *bad);
    return exit_usage;
  }
  if (opts.help) {
    fmt::print(out, "{}", usage_text);
    return exit_ok;
  }
  // Every argument is checked before any output, so a typo in the last file name does not
  // come after pages of dump.
  for (const std::string& path : opts.files) {
    if (auto bad = check_file_argument(path)) {
      fmt::print(err, "{}: {}\n", program_name, *bad);
      return exit_usage;
    }
  }
  dump_run run(opts, out, err);
  int status = exit_ok;
  for (const std::string& path : opts.files) status = std::max(status, run.process(path));
  std::fflush(out);
  return status;
}

}  // namespace

int run_dump_log(int argc, char** argv, std::FILE* out, std::FILE* err) {
  // Nothing below throws by design; std::bad_alloc (or fmt's error on a failed write) is
  // the exception, and a command-line tool reports it rather than terminating mid-line.
  try {
    return run(argc, argv, out, err);
  } catch (const std::exception& e) {
    std::fprintf(err, "sluice-dump-log: %s\n", e.what());
    return exit_failed;
  }
}

}  // namespace sluice
