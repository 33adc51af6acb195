#include "tools/sluice-bench/sequence_checker.h"

#include <algorithm>

#include "tools/sluice-bench/record_stamp.h"

namespace sluice::bench {

sequence_checker::sequence_checker(std::size_t partitions, std::optional<std::uint32_t> only_run)
    : partitions_(partitions), only_run_(only_run) {}

sequence_checker::stream* sequence_checker::find_stream(std::int32_t partition, std::uint32_t run,
                                                        bool create) {
  auto& streams = partitions_[static_cast<std::size_t>(partition)];
  for (auto& s : streams) {
    if (s.run == run) return &s;
  }
  if (!create || streams.size() >= streams_max) return nullptr;
  streams.push_back(stream{run, 0, {}});
  return &streams.back();
}

void sequence_checker::observe(std::int32_t partition,
                               std::optional<std::span<const std::byte>> value) noexcept {
  ++counts_.received;
  if (partition < 0 || static_cast<std::size_t>(partition) >= partitions_.size() || !value) {
    ++counts_.misplaced;
    return;
  }
  auto stamp = read_stamp(*value);
  if (!stamp || stamp->partition != partition || stamp->sequence < 0) {
    ++counts_.misplaced;
    return;
  }
  if (only_run_ && stamp->run_id != *only_run_) {
    ++counts_.foreign;
    return;
  }
  stream* s = find_stream(partition, stamp->run_id, true);
  if (s == nullptr) {
    ++counts_.untracked;
    return;
  }
  add_sequence(*s, stamp->sequence);
}

void sequence_checker::add_sequence(stream& s, std::int64_t sequence) noexcept {
  auto& ranges = s.ranges;
  // The common case: the next sequence of the stream.
  if (!ranges.empty() && ranges.back().second == sequence) {
    ++ranges.back().second;
    return;
  }
  if (ranges.empty() || sequence > ranges.back().second) {
    // Ahead of everything: a gap, which a later record may still fill (out of order).
    if (ranges.size() >= ranges_max) {
      ++counts_.untracked;
      return;
    }
    ranges.emplace_back(sequence, sequence + 1);
    return;
  }
  // Behind the highest sequence seen: a duplicate, or an out-of-order arrival.
  auto after = std::upper_bound(ranges.begin(), ranges.end(), sequence,
                                [](std::int64_t v, const auto& r) { return v < r.first; });
  if (after != ranges.begin() && std::prev(after)->second > sequence) {
    ++counts_.duplicate;
    return;
  }
  ++counts_.out_of_order;
  const bool joins_before = after != ranges.begin() && std::prev(after)->second == sequence;
  const bool joins_after = after != ranges.end() && after->first == sequence + 1;
  if (joins_before && joins_after) {
    std::prev(after)->second = after->second;
    ranges.erase(after);
  } else if (joins_before) {
    ++std::prev(after)->second;
  } else if (joins_after) {
    --after->first;
  } else if (ranges.size() < ranges_max) {
    ranges.insert(after, {sequence, sequence + 1});
  } else {
    ++counts_.untracked;
  }
}

void sequence_checker::expect(std::int32_t partition, std::uint32_t run, std::int64_t end) {
  if (partition < 0 || static_cast<std::size_t>(partition) >= partitions_.size()) return;
  stream* s = find_stream(partition, run, true);
  if (s == nullptr) {
    ++counts_.untracked;
    return;
  }
  s->expected_end = std::max(s->expected_end, end);
}

verify_counts sequence_checker::finish() noexcept {
  for (const auto& streams : partitions_) {
    for (const auto& s : streams) {
      std::int64_t end = s.expected_end;
      std::int64_t seen = 0;
      for (const auto& [begin, stop] : s.ranges) {
        end = std::max(end, stop);
        seen += stop - begin;
      }
      counts_.missing += static_cast<std::uint64_t>(end - seen);
    }
  }
  return counts_;
}

}  // namespace sluice::bench
