// Hands out producer ids for InitProducerId, never the same one twice, across restarts.
//
// Ids are reserved in blocks: before the first id of a block is handed out, the end of
// the block is written to `<data-dir>/producer-id-block.properties` (atomically, with
// write_file_atomically), so one file write serves `block_ids` requests. At start-up the
// allocator resumes at the persisted end, skipping what was left of the block in use at a
// crash or a stop, as Kafka's ProducerIdManager skips the rest of its block (the id space
// is 2^63; a thousand ids per restart do not matter). The file, in the Java-properties
// syntax of meta.properties:
//
//   # written by sluice; do not edit
//   version=1
//   next.block.start=3000      every id below this may have been handed out
//
// A missing file means no id was ever handed out (start at 0). A file that cannot be read
// or parsed is an error: starting again at 0 could hand out an id a live producer holds.
//
// Owned by the broker (one per data directory); touched only by the reactor thread. The
// write blocks (an fsync, once per block).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "engine/base/result.h"

namespace sluice {

class producer_id_allocator {
 public:
  static constexpr std::int64_t default_block_ids = 1000;

  // Reads the block file of `data_dir` (which must exist). Nothing is written until the
  // first next().
  static result<std::unique_ptr<producer_id_allocator>> open(
      const std::string& data_dir, std::int64_t block_ids = default_block_ids);

  producer_id_allocator(const producer_id_allocator&) = delete;
  producer_id_allocator& operator=(const producer_id_allocator&) = delete;

  // A fresh producer id. Fails only when a new block cannot be persisted (disk full,
  // I/O error) or the id space is exhausted; nothing is handed out then.
  result<std::int64_t> next();

  // The next id next() returns without writing; == reserved_end() when it must write.
  std::int64_t next_id() const noexcept { return next_id_; }
  std::int64_t reserved_end() const noexcept { return reserved_end_; }
  const std::string& path() const noexcept { return path_; }

  static constexpr const char* file_name = "producer-id-block.properties";

 private:
  producer_id_allocator(std::string path, std::int64_t block_ids, std::int64_t start) noexcept
      : path_(std::move(path)), block_ids_(block_ids), next_id_(start), reserved_end_(start) {}

  std::string path_;
  std::int64_t block_ids_;
  std::int64_t next_id_;
  std::int64_t reserved_end_;  // exclusive; persisted
};

}  // namespace sluice
