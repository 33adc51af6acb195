// sequence_checker: --verify's bookkeeping -- did every record produced arrive exactly
// once, in order per partition?
//
// Records are identified by their stamp (record_stamp.h): partition, run id, sequence.
// Per partition and run ("stream") the checker keeps the sequences seen as a sorted list
// of disjoint ranges [begin, end), not a set: records that arrive in order extend the
// last range, so a clean stream of any length costs one range. Memory is bounded: at
// most streams_max runs per partition and ranges_max ranges per stream; beyond, the
// record is counted as `untracked` and the verdict fails (a log so disordered is a
// failure worth reporting anyway).
//
//   duplicate     a sequence already seen
//   out_of_order  a sequence lower than one already seen in its stream, not seen before
//   misplaced     a record whose stamp names another partition than the one it was read
//                 from, or a value too short to hold a stamp
//   missing       sequences absent from [0, expected end) at finish(): the end is what the
//                 producer says it sent (e2e), or one past the highest sequence seen
//
// Owned by one thread; consumers of one run share one checker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace sluice::bench {

struct verify_counts {
  std::uint64_t received = 0;
  std::uint64_t duplicate = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t misplaced = 0;
  std::uint64_t missing = 0;
  std::uint64_t untracked = 0;
  // Records of runs other than the one expected (e2e ignores them; not a failure).
  std::uint64_t foreign = 0;

  bool clean() const noexcept {
    return duplicate == 0 && out_of_order == 0 && misplaced == 0 && missing == 0 && untracked == 0;
  }
};

class sequence_checker {
 public:
  static constexpr std::size_t streams_max = 64;
  static constexpr std::size_t ranges_max = 4096;

  // `only_run`: count records of this run only (others are `foreign`).
  sequence_checker(std::size_t partitions, std::optional<std::uint32_t> only_run);

  // A record read from `partition` whose value is `value` (nullopt: a null value).
  void observe(std::int32_t partition, std::optional<std::span<const std::byte>> value) noexcept;

  // What a producer of run `run` says it sent to `partition`: sequences [0, end).
  void expect(std::int32_t partition, std::uint32_t run, std::int64_t end);

  // Counts the missing sequences; call once, at the end.
  verify_counts finish() noexcept;
  const verify_counts& counts() const noexcept { return counts_; }

 private:
  struct stream {
    std::uint32_t run = 0;
    std::int64_t expected_end = 0;
    std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  };
  stream* find_stream(std::int32_t partition, std::uint32_t run, bool create);
  void add_sequence(stream& s, std::int64_t sequence) noexcept;

  std::vector<std::vector<stream>> partitions_;
  std::optional<std::uint32_t> only_run_;
  verify_counts counts_;
};

}  // namespace sluice::bench
