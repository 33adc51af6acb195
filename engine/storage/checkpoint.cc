#include "engine/storage/checkpoint.h"

#include <charconv>
#include <sstream>

#include "engine/io/file.h"

namespace sluice {
namespace {

constexpr std::size_t checkpoint_bytes_max = 64 * 1024 * 1024;

template <typename Int>
bool parse_int(std::string_view text, Int& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::string topic_partition::dir_name() const {
  return topic + "-" + std::to_string(partition);
}

std::optional<topic_partition> topic_partition::from_dir_name(const std::string& name) {
  auto dash = name.rfind('-');
  if (dash == std::string::npos || dash == 0) return std::nullopt;
  topic_partition tp;
  tp.topic = name.substr(0, dash);
  if (!is_legal_topic_name(tp.topic)) return std::nullopt;
  if (!parse_int(std::string_view(name).substr(dash + 1), tp.partition) || tp.partition < 0) {
    return std::nullopt;
  }
  return tp;
}

bool is_legal_topic_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

result<offset_checkpoint> read_offset_checkpoint(const std::string& path) {
  if (!path_exists(path)) return offset_checkpoint{};
  auto content = read_small_file(path, checkpoint_bytes_max);
  if (!content) return content.failure();
  std::istringstream in(*content);
  std::string line;
  auto malformed = error(errc::corrupt_batch, "offset checkpoint file is malformed");
  int version = -1;
  if (!std::getline(in, line) || !parse_int(line, version) || version != 0) return malformed;
  std::size_t count = 0;
  if (!std::getline(in, line) || !parse_int(line, count)) return malformed;
  offset_checkpoint entries;
  for (std::size_t i = 0; i < count; ++i) {
    if (!std::getline(in, line)) return malformed;
    std::istringstream fields(line);
    std::string topic, partition_text, offset_text, extra;
    if (!(fields >> topic >> partition_text >> offset_text) || (fields >> extra)) return malformed;
    topic_partition tp{topic, 0};
    std::int64_t value = 0;
    if (!is_legal_topic_name(topic) || !parse_int(partition_text, tp.partition) ||
        !parse_int(offset_text, value) || value < 0) {
      return malformed;
    }
    entries[tp] = offset(value);
  }
  return entries;
}

result<void> write_offset_checkpoint(const std::string& path, const offset_checkpoint& entries) {
  std::string text = "0\n" + std::to_string(entries.size()) + "\n";
  for (const auto& [tp, value] : entries) {
    text +=
        tp.topic + " " + std::to_string(tp.partition) + " " + std::to_string(value.value()) + "\n";
  }
  return write_file_atomically(path, std::as_bytes(std::span(text.data(), text.size())));
}

}  // namespace sluice
