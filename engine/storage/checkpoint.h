// Offset checkpoint files: `recovery-point-offset-checkpoint` and
// `log-start-offset-checkpoint` in the data directory, in Kafka's text format:
//
//   0                      version
//   2                      number of entries
//   orders 0 1042          topic, partition, offset -- one line per partition
//   orders 1 998
//
// Written atomically (temporary file, fsync, rename, fsync of the directory), so a crash
// leaves the old or the new checkpoint, never a torn one. See docs/formats/checkpoints.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "engine/base/result.h"
#include "engine/base/types.h"

namespace sluice {

struct topic_partition {
  std::string topic;
  std::int32_t partition = 0;
  friend auto operator<=>(const topic_partition&, const topic_partition&) = default;
  // "<topic>-<partition>": the partition's directory name, as in Kafka.
  std::string dir_name() const;
  // Parses a directory name; nullopt unless it is "<legal topic>-<partition number>".
  static std::optional<topic_partition> from_dir_name(const std::string& name);
};

// Kafka's rule: 1 to 249 characters of [a-zA-Z0-9._-], and not "." or "..".
bool is_legal_topic_name(std::string_view name) noexcept;

using offset_checkpoint = std::map<topic_partition, offset>;

// A missing file reads as empty. A malformed one fails with errc::corrupt_batch.
result<offset_checkpoint> read_offset_checkpoint(const std::string& path);
result<void> write_offset_checkpoint(const std::string& path, const offset_checkpoint& entries);

}  // namespace sluice
