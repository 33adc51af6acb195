#include "broker/producer_id_allocator.h"

#include <charconv>
#include <limits>
#include <span>
#include <string_view>

#include "engine/base/log.h"
#include "engine/io/file.h"

namespace sluice {
namespace {

constexpr std::size_t file_bytes_max = 4096;
constexpr std::string_view version_key = "version=";
constexpr std::string_view start_key = "next.block.start=";

bool parse_int64(std::string_view text, std::int64_t& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

// The persisted block end, or an error when the file is malformed.
result<std::int64_t> parse_block_file(std::string_view text) {
  std::int64_t version = -1;
  std::int64_t start = -1;
  std::size_t lines = 0;
  while (!text.empty() && lines++ < 64) {
    std::size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    if (line.empty() || line.front() == '#') continue;
    if (line.starts_with(version_key)) {
      if (!parse_int64(line.substr(version_key.size()), version)) version = -1;
    } else if (line.starts_with(start_key)) {
      if (!parse_int64(line.substr(start_key.size()), start)) start = -1;
    }
  }
  if (version != 1) return error(errc::corrupt_batch, "producer id block file: no version=1 line");
  if (start < 0) {
    return error(errc::corrupt_batch, "producer id block file: no valid next.block.start line");
  }
  return start;
}

}  // namespace

result<std::unique_ptr<producer_id_allocator>> producer_id_allocator::open(
    const std::string& data_dir, std::int64_t block_ids) {
  if (block_ids <= 0) return error(errc::invalid_argument, "producer id block size must be > 0");
  std::string path = data_dir + "/" + file_name;
  std::int64_t start = 0;
  if (path_exists(path)) {
    auto text = read_small_file(path, file_bytes_max);
    if (!text) return text.failure();
    auto parsed = parse_block_file(*text);
    if (!parsed) {
      SLUICE_LOG(error, "broker",
                 "{} is damaged ({}); producer ids cannot be handed out safely. Restore it, or "
                 "write next.block.start= above every id ever handed out",
                 path, parsed.failure().detail());
      return parsed.failure();
    }
    start = *parsed;
  }
  return std::unique_ptr<producer_id_allocator>(
      new producer_id_allocator(std::move(path), block_ids, start));
}

result<std::int64_t> producer_id_allocator::next() {
  if (next_id_ == reserved_end_) {
    if (reserved_end_ > std::numeric_limits<std::int64_t>::max() - block_ids_) {
      return error(errc::invalid_argument, "producer ids are exhausted");
    }
    const std::int64_t end = reserved_end_ + block_ids_;
    std::string text =
        "# written by sluice; do not edit\nversion=1\nnext.block.start=" + std::to_string(end) +
        "\n";
    SLUICE_TRY(write_file_atomically(
        path_, std::span(reinterpret_cast<const std::byte*>(text.data()), text.size())));
    reserved_end_ = end;
  }
  return next_id_++;
}

}  // namespace sluice
