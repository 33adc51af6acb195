// The log cleaner (engine/storage/log_cleaner.h): compaction of logs with
// cleanup.policy=compact, through the synchronous entry point and the cleaner thread.
//
// Expected results are derived from what the test wrote: a record must survive a
// cleaning exactly when no later record (up to the end of the cleaned range) has its key,
// and it is not an expired tombstone.
#include "engine/storage/log_cleaner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/io/file.h"
#include "engine/storage/log_manager.h"
#include "engine/storage/partition_log.h"
#include "engine/storage/record_batch.h"
#include "engine/storage/segment.h"
#include "tests/support/storage_fixture.h"
#include "tools/dump_log/segment_verifier.h"

namespace sluice::test {
namespace {

namespace fs = std::filesystem;

// One record as the test writes it: nullopt key = keyless, nullopt value = tombstone.
struct rec {
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::int64_t timestamp = 1000;
  friend bool operator==(const rec&, const rec&) = default;
};

// One record as read back, with its offset.
struct read_record {
  std::int64_t at = 0;
  rec record;
};

std::optional<std::span<const std::byte>> bytes_of(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  return as_bytes(*s);
}

owned_batch build(const std::vector<rec>& records,
                  compression_codec codec = compression_codec::none) {
  batch_builder builder(codec);
  std::vector<header_view> headers;
  for (const rec& r : records) {
    batch_builder::record b;
    b.key = bytes_of(r.key);
    b.value = bytes_of(r.value);
    b.timestamp = timestamp_ms(r.timestamp);
    builder.add(b);
  }
  auto finished = builder.finish();
  return owned_batch{std::vector<std::byte>(finished.begin(), finished.end())};
}

std::optional<std::string> string_of(const std::optional<std::span<const std::byte>>& bytes) {
  if (!bytes) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size());
}

// Every record in `bytes` (whole stored batches), checked as stored data.
void decode_batches(std::span<const std::byte> bytes, std::vector<read_record>& out,
                    std::vector<batch_header>* headers = nullptr) {
  std::vector<std::byte> scratch;
  while (!bytes.empty()) {
    auto decoded = decode_batch_header(bytes);
    ASSERT_TRUE(decoded.ok());
    auto batch = bytes.first(decoded->total_bytes());
    auto h = validate_batch(batch, batch_limits{std::size_t{1} << 30}, timestamp_ms(0),
                            batch_source::stored);
    ASSERT_TRUE(h.ok()) << h.failure().detail();
    if (headers) headers->push_back(*h);
    auto records = batch_records(*h, batch, scratch, 1 << 26);
    ASSERT_TRUE(records.ok());
    auto walked = for_each_record(*h, *records, [&](const record_view& r) {
      out.push_back(read_record{h->base_offset.value() + r.offset_delta,
                                rec{string_of(r.key), string_of(r.value),
                                    h->base_timestamp.value() + r.timestamp_delta}});
    });
    ASSERT_TRUE(walked.ok()) << walked.failure().detail();
    bytes = bytes.subspan(h->total_bytes());
  }
}

std::vector<std::string> files_with_suffix(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (name.ends_with(suffix)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::byte> file_bytes(const std::string& path) {
  std::vector<std::byte> out(fs::file_size(path));
  FILE* f = std::fopen(path.c_str(), "rb");
  EXPECT_NE(f, nullptr) << path;
  if (f == nullptr) return {};
  EXPECT_EQ(std::fread(out.data(), 1, out.size(), f), out.size());
  std::fclose(f);
  return out;
}

class LogCleanerTest : public storage_test {
 protected:
  log_config compact_config() {
    log_config c = small_config();
    c.compact = true;
    c.delete_old = false;
    c.index_interval_bytes = 64;  // several index entries per segment
    c.delete_retention = std::chrono::milliseconds(1000);
    c.min_cleanable_dirty_ratio = 0.5;
    return c;
  }

  std::string log_dir() const { return dir_.path() + "/t-0"; }

  std::unique_ptr<partition_log> open_log(const log_config& config, bool clean_shutdown = true,
                                          offset recovery_point = offset(0)) {
    auto log = partition_log::open(log_dir(), config, *disk_, recovery_point, clean_shutdown);
    EXPECT_TRUE(log.ok()) << (log.ok() ? "" : log.failure().detail());
    return log.ok() ? std::move(*log) : nullptr;
  }

  // Appends one batch and remembers its records at their offsets.
  void append(partition_log& log, const std::vector<rec>& records,
              compression_codec codec = compression_codec::none) {
    batches_.push_back(build(records, codec));
    auto appended = log.append(batches_.back().span(), timestamp_ms(records.back().timestamp));
    ASSERT_TRUE(appended.ok()) << appended.failure().detail();
    for (std::size_t i = 0; i < records.size(); ++i) {
      written_[appended->base_offset.value() + static_cast<std::int64_t>(i)] = records[i];
    }
    drain(log);
  }

  void roll(partition_log& log) {
    ASSERT_TRUE(log.roll(timestamp_ms(0)).ok());
    drain(log);
  }

  // Everything readable, in offset order, read batch by batch from the log start.
  std::vector<read_record> read_all(partition_log& log,
                                    std::vector<batch_header>* headers = nullptr) {
    std::vector<read_record> out;
    offset at = log.log_start_offset();
    // Bounded: every read moves forward or ends the loop.
    for (int reads = 0; at < log.written_end() && reads < 100000; ++reads) {
      auto r = log.read(at, 1);
      EXPECT_TRUE(r.ok());
      if (!r.ok() || r->bytes.empty()) break;
      decode_batches(r->bytes, out, headers);
      EXPECT_GT(r->next_offset, at);
      at = r->next_offset;
    }
    return out;
  }

  // The latest value of each key (tombstones and absent keys are "deleted").
  static std::map<std::string, std::string> latest_values(const std::vector<read_record>& log) {
    std::map<std::string, std::string> out;
    for (const auto& r : log) {
      if (!r.record.key) continue;
      if (r.record.value) {
        out[*r.record.key] = *r.record.value;
      } else {
        out.erase(*r.record.key);
      }
    }
    return out;
  }

  std::map<std::string, std::string> written_latest() const {
    std::vector<read_record> all;
    for (const auto& [at, r] : written_) all.push_back(read_record{at, r});
    return latest_values(all);
  }

  // Checks every record read is the one written at its offset, and that no record in the
  // cleaned range [0, cleaned_up_to) survived a later record with its key below that
  // bound.
  void expect_faithful(const std::vector<read_record>& got, std::int64_t cleaned_up_to) {
    std::int64_t previous = -1;
    for (const auto& r : got) {
      EXPECT_GT(r.at, previous);
      previous = r.at;
      auto it = written_.find(r.at);
      ASSERT_NE(it, written_.end()) << "offset " << r.at << " was never written";
      EXPECT_EQ(r.record, it->second) << "offset " << r.at;
      if (!r.record.key || r.at >= cleaned_up_to) continue;
      for (auto later = written_.upper_bound(r.at);
           later != written_.end() && later->first < cleaned_up_to; ++later) {
        EXPECT_NE(later->second.key, r.record.key)
            << "offset " << r.at << " kept although offset " << later->first << " has the same key";
      }
    }
    // Keyless records are always kept.
    for (const auto& [at, r] : written_) {
      if (r.key) continue;
      EXPECT_TRUE(std::any_of(got.begin(), got.end(), [&](const auto& g) { return g.at == at; }))
          << "keyless record at " << at << " was dropped";
    }
  }

  std::vector<owned_batch> batches_;
  std::map<std::int64_t, rec> written_;
};

std::vector<std::int64_t> offsets_of(const std::vector<read_record>& records) {
  std::vector<std::int64_t> out;
  for (const auto& r : records) out.push_back(r.at);
  return out;
}

// ---- what is kept ------------------------------------------------------------------------

TEST_F(LogCleanerTest, KeepsTheLatestValueOfEachKeyAcrossSegments) {
  auto log = open_log(compact_config());
  ASSERT_NE(log, nullptr);
  append(*log, {{"a", "a1"}, {"b", "b1"}, {"c", "c1"}});  // 0-2
  roll(*log);
  append(*log, {{"a", "a2"}, {"d", "d1"}});  // 3-4
  roll(*log);
  append(*log, {{"b", "b2"}, {"a", "a3"}});  // 5-6
  roll(*log);
  append(*log, {{"c", "c2"}});  // 7, in the active segment: never cleaned
  const auto before = written_latest();

  auto summary = log_cleaner::clean_now(*log, timestamp_ms(2000));
  ASSERT_TRUE(summary.ok()) << summary.failure().detail();
  EXPECT_EQ(summary->segments_cleaned, 3u);
  EXPECT_EQ(summary->cleaned_up_to, offset(7));
  EXPECT_EQ(summary->records_removed, 3u);  // a1, b1, a2
  auto got = read_all(*log);
  // c1 stays: its successor c2 lies outside the cleaned range.
  EXPECT_EQ(offsets_of(got), (std::vector<std::int64_t>{2, 4, 5, 6, 7}));
  expect_faithful(got, 7);
  EXPECT_EQ(latest_values(got), before);
  EXPECT_EQ(log->log_start_offset(), offset(0));
  EXPECT_EQ(log->log_end_offset(), offset(8));
  EXPECT_TRUE(files_with_suffix(log_dir(), ".cleaned").empty());
  EXPECT_FALSE(path_exists(log_dir() + "/" + cleaner_swap_marker));

  // A second cleaning right away finds nothing to drop.
  auto again = log_cleaner::clean_now(*log, timestamp_ms(2000));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->records_removed, 0u);
  EXPECT_EQ(offsets_of(read_all(*log)), offsets_of(got));
}

TEST_F(LogCleanerTest, TombstonesStayForDeleteRetentionThenGo) {
  log_config config = compact_config();
  auto log = open_log(config);
  ASSERT_NE(log, nullptr);
  append(*log, {{"a", "a1", 1000}, {"b", "b1", 1000}});  // 0-1
  roll(*log);
  append(*log, {{"a", std::nullopt, 5000}});  // 2: tombstone, batch max timestamp 5000
  roll(*log);
  append(*log, {{"c", "c1", 5000}});  // 3, active

  // Within delete.retention.ms (1000) of 5000: the tombstone stays, a1 goes.
  auto early = log_cleaner::clean_now(*log, timestamp_ms(5500));
  ASSERT_TRUE(early.ok());
  auto got = read_all(*log);
  EXPECT_EQ(offsets_of(got), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(got[1].record.value, std::nullopt);
  EXPECT_EQ(early->tombstones_removed, 0u);

  // Exactly at the horizon (5000 is not older than 6000 - 1000) it still stays.
  ASSERT_TRUE(log_cleaner::clean_now(*log, timestamp_ms(6000)).ok());
  EXPECT_EQ(offsets_of(read_all(*log)), (std::vector<std::int64_t>{1, 2, 3}));

  // Past it: gone, and "a" stays deleted (a1 does not come back).
  auto late = log_cleaner::clean_now(*log, timestamp_ms(6001));
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->tombstones_removed, 1u);
  got = read_all(*log);
  EXPECT_EQ(offsets_of(got), (std::vector<std::int64_t>{1, 3}));
  EXPECT_EQ(latest_values(got), written_latest());
  // The segment that held only the tombstone is now empty, but its offsets still lead on.
  EXPECT_EQ(log->segment_count(), 3u);
  auto at_gap = log->read(offset(2), 1 << 20);
  ASSERT_TRUE(at_gap.ok());
  std::vector<read_record> from_gap;
  decode_batches(at_gap->bytes, from_gap);
  ASSERT_FALSE(from_gap.empty());
  EXPECT_EQ(from_gap.front().at, 3);
}

TEST_F(LogCleanerTest, KeylessRecordsAreKept) {
  auto log = open_log(compact_config());
  ASSERT_NE(log, nullptr);
  append(*log, {{std::nullopt, "x1"}, {"k", "k1"}, {std::nullopt, std::nullopt}});
  roll(*log);
  append(*log, {{"k", "k2"}, {std::nullopt, "x2"}});
  roll(*log);
  ASSERT_TRUE(log_cleaner::clean_now(*log, timestamp_ms(100000)).ok());
  auto got = read_all(*log);
  EXPECT_EQ(offsets_of(got), (std::vector<std::int64_t>{0, 2, 3, 4}));
  expect_faithful(got, 5);
}

TEST_F(LogCleanerTest, OffsetsArePreservedAndReadsCrossGaps) {
  auto log = open_log(compact_config());
  ASSERT_NE(log, nullptr);
  // Batch 0-3 loses its middle records, batch 4-5 loses everything.
  append(*log, {{"a", "a1"}, {"b", "b1"}, {"c", "c1"}, {"d", "d1"}});
  append(*log, {{"e", "e1"}, {"f", "f1"}});
  roll(*log);
  append(*log, {{"b", "b2"}, {"c", "c2"}, {"e", "e2"}, {"f", "f2"}});  // 6-9
  roll(*log);
  ASSERT_TRUE(log_cleaner::clean_now(*log, timestamp_ms(2000)).ok());
  std::vector<batch_header> headers;
  auto got = read_all(*log, &headers);
  EXPECT_EQ(offsets_of(got), (std::vector<std::int64_t>{0, 3, 6, 7, 8, 9}));
  expect_faithful(got, 10);
  // The partly cleaned batch keeps its offset range: the next offset after it is unchanged.
  ASSERT_GE(headers.size(), 2u);
  EXPECT_EQ(headers[0].base_offset, offset(0));
  EXPECT_EQ(headers[0].last_offset_delta, 3);
  EXPECT_EQ(headers[0].records_count, 2);
  EXPECT_EQ(headers[1].base_offset, offset(6));

  // A read at any offset inside a gap returns the next batch that exists.
  for (std::int64_t start : {1, 2, 4, 5}) {
    auto r = log->read(offset(start), 1);
    ASSERT_TRUE(r.ok()) << start;
    std::vector<read_record> one;
    decode_batches(r->bytes, one);
    ASSERT_FALSE(one.empty()) << start;
    // Offsets 1-2 fall inside the batch 0-3 (a consumer skips records before its
    // position); 4-5 lie in a dropped batch, so the next segment's batch comes.
    EXPECT_EQ(one.front().at, start < 4 ? 0 : 6) << start;
  }
  EXPECT_EQ(log->log_end_offset(), offset(10));
}

class LogCleanerCodecTest : public LogCleanerTest,
                            public ::testing::WithParamInterface<compression_codec> {};

TEST_P(LogCleanerCodecTest, CompressedBatchesAreCleaned) {
  auto log = open_log(compact_config());
  ASSERT_NE(log, nullptr);
  const compression_codec codec = GetParam();
  append(*log, {{"a", std::string(200, 'a')}, {"b", std::string(200, 'b')}, {"c", "c1"}}, codec);
  append(*log, {{"x", "x1"}, {"y", "y1"}}, codec);  // all kept: copied as it is
  roll(*log);
  append(*log, {{"b", "b2"}, {"c", std::nullopt, 1500}}, codec);
  roll(*log);
  ASSERT_TRUE(log_cleaner::clean_now(*log, timestamp_ms(2000)).ok());
  std::vector<batch_header> headers;
  auto got = read_all(*log, &headers);
  EXPECT_EQ(offsets_of(got), (std::vector<std::int64_t>{0, 3, 4, 5, 6}));
  expect_faithful(got, 7);
  EXPECT_EQ(latest_values(got), written_latest());
  ASSERT_EQ(headers.size(), 3u);
  EXPECT_EQ(headers[0].compression(), compression_codec::none);  // rebuilt
  EXPECT_EQ(headers[1].compression(), codec);                    // untouched
  EXPECT_EQ(headers[2].compression(), codec);
}

INSTANTIATE_TEST_SUITE_P(Codecs, LogCleanerCodecTest,
                         ::testing::Values(compression_codec::gzip, compression_codec::zstd,
                                           compression_codec::lz4, compression_codec::snappy),
                         [](const auto& info) {
                           return std::string(compression_codec_name(info.param));
                         });

// ---- stored-data validation ----------------------------------------------------------------

TEST_F(LogCleanerTest, APartlyCleanedBatchIsValidStoredDataButNotAProducedBatch) {
  auto log = open_log(compact_config());
  ASSERT_NE(log, nullptr);
  append(*log, {{"a", "a1"}, {"b", "b1"}, {"c", "c1"}});
  roll(*log);
  append(*log, {{"b", "b2"}});
  roll(*log);
  ASSERT_TRUE(log_cleaner::clean_now(*log, timestamp_ms(2000)).ok());

  auto r = log->read(offset(0), 1);
  ASSERT_TRUE(r.ok());
  auto decoded = decode_batch_header(r->bytes);
  ASSERT_TRUE(decoded.ok());
  std::vector<std::byte> batch(r->bytes.begin(), r->bytes.begin() + decoded->total_bytes());
  const batch_limits limits{std::size_t{1} << 20};
  auto stored = validate_batch(batch, limits, timestamp_ms(0), batch_source::stored);
  ASSERT_TRUE(stored.ok()) << stored.failure().detail();  // the CRC was recomputed
  EXPECT_EQ(stored->records_count, 2);
  EXPECT_EQ(stored->last_offset_delta, 2);
  std::vector<std::byte> scratch;
  EXPECT_TRUE(validate_records(*stored, batch, scratch, 1 << 20, batch_source::stored).ok());
  // A producer may not send it: count and offset deltas break the append rules.
  EXPECT_EQ(validate_batch(batch, limits, timestamp_ms(0)).code(), errc::invalid_batch);
  EXPECT_EQ(validate_records(*stored, batch, scratch, 1 << 20).code(), errc::invalid_batch);
  // A flipped byte is still caught by the recomputed CRC.
  batch.back() ^= std::byte{1};
  EXPECT_EQ(validate_batch(batch, limits, timestamp_ms(0), batch_source::stored).code(),
            errc::corrupt_batch);

  // sluice-dump-log --verify --deep-iteration accepts the cleaned segment.
  ASSERT_TRUE(log->close().ok());
  auto cleaned = file_bytes(log_dir() + "/" + segment_file_name(offset(0), ".log"));
  dump_log::log_summary summary;
  auto problem =
      dump_log::verify_log(cleaned, offset(0), dump_log::log_check_options{true}, summary);
  EXPECT_FALSE(problem.has_value()) << (problem ? problem->what : "");
  EXPECT_EQ(summary.records, 2u);

  // Recovery of the whole log (an unclean start that validates every batch) keeps it.
  log.reset();
  log = open_log(compact_config(), /*clean_shutdown=*/false, offset(0));
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(offsets_of(read_all(*log)), (std::vector<std::int64_t>{0, 2, 3}));
}

// ---- crash safety of the swap ---------------------------------------------------------------

TEST_F(LogCleanerTest, AMarkerLeftByACrashCompletesTheSwapAtOpen) {
  log_config config = compact_config();
  std::vector<read_record> expected;
  std::vector<offset> rewritten;
  const std::string copy = dir_.path() + "/copy";
  {
    auto log = open_log(config);
    ASSERT_NE(log, nullptr);
    for (int round = 0; round < 3; ++round) {
      // One record per batch, so that the offset index has entries.
      for (int k = 0; k < 8; ++k)
        append(*log, {{"k" + std::to_string(k), "v" + std::to_string(round)}});
      roll(*log);
    }
    append(*log, {{"k0", std::nullopt, 900}});  // active
    ASSERT_TRUE(log->close().ok());
  }
  // Clean a copy to obtain the cleaned files the crashed swap was installing.
  fs::copy(log_dir(), copy, fs::copy_options::recursive);
  {
    auto cleaned = partition_log::open(copy, config, *disk_, offset(0), true);
    ASSERT_TRUE(cleaned.ok());
    auto summary = log_cleaner::clean_now(**cleaned, timestamp_ms(2000));
    ASSERT_TRUE(summary.ok());
    ASSERT_EQ(summary->segments_rewritten, 2u);
    expected = read_all(**cleaned);
    ASSERT_TRUE((*cleaned)->close().ok());
  }
  for (const auto& name : files_with_suffix(log_dir(), ".log")) {
    auto base = parse_segment_file_name(name, ".log");
    ASSERT_TRUE(base.has_value());
    if (file_bytes(log_dir() + "/" + name) != file_bytes(copy + "/" + name)) {
      rewritten.push_back(*base);
      fs::copy_file(copy + "/" + name, log_dir() + "/" + segment_file_name(*base, cleaned_suffix));
    }
  }
  ASSERT_EQ(rewritten.size(), 2u);
  std::string listing;
  for (offset base : rewritten) listing += std::to_string(base.value()) + "\n";
  ASSERT_TRUE(write_file_atomically(log_dir() + "/" + cleaner_swap_marker,
                                    std::as_bytes(std::span(listing)))
                  .ok());
  // The crash came after the first rename: its old (now wrong) index files are still there.
  const std::string first = log_dir() + "/" + segment_file_name(rewritten[0], ".log");
  ASSERT_TRUE(
      rename_file(log_dir() + "/" + segment_file_name(rewritten[0], cleaned_suffix), first).ok());
  ASSERT_GT(fs::file_size(log_dir() + "/" + segment_file_name(rewritten[0], ".index")), 0u);

  auto log = open_log(config, /*clean_shutdown=*/false, offset(24));
  ASSERT_NE(log, nullptr);
  EXPECT_FALSE(path_exists(log_dir() + "/" + cleaner_swap_marker));
  EXPECT_TRUE(files_with_suffix(log_dir(), ".cleaned").empty());
  auto got = read_all(*log);
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].at, expected[i].at);
    EXPECT_EQ(got[i].record, expected[i].record);
  }
  // Indexes were rebuilt for the new files: a lookup in the middle finds its batch.
  auto middle = log->read(offset(12), 1);
  ASSERT_TRUE(middle.ok());
  EXPECT_FALSE(middle->bytes.empty());
  EXPECT_EQ(log->log_end_offset(), offset(25));
}

TEST_F(LogCleanerTest, StrayCleanedFilesWithoutAMarkerAreDeleted) {
  log_config config = compact_config();
  {
    auto log = open_log(config);
    ASSERT_NE(log, nullptr);
    append(*log, {{"a", "a1"}, {"b", "b1"}});
    roll(*log);
    append(*log, {{"a", "a2"}});
    ASSERT_TRUE(log->close().ok());
  }
  const std::string stray = log_dir() + "/" + segment_file_name(offset(0), cleaned_suffix);
  const std::string garbage = "half a cleaned segment";
  ASSERT_TRUE(write_file_atomically(stray, as_bytes(garbage)).ok());
  auto log = open_log(config, /*clean_shutdown=*/false, offset(0));
  ASSERT_NE(log, nullptr);
  EXPECT_FALSE(path_exists(stray));
  EXPECT_EQ(offsets_of(read_all(*log)), (std::vector<std::int64_t>{0, 1, 2}));
}

// ---- restarts --------------------------------------------------------------------------------

TEST_F(LogCleanerTest, ACleanedLogRecoversAfterAnUncleanRestartWithItsOffsets) {
  log_config config = compact_config();
  std::vector<read_record> before;
  offset end;
  offset recovery_point;
  {
    auto log = open_log(config);
    ASSERT_NE(log, nullptr);
    append(*log, {{"a", "a1"}, {"b", "b1"}}, compression_codec::zstd);
    roll(*log);
    append(*log, {{"a", "a2"}, {"c", "c1"}});
    // The last sealed segment ends with a tombstone that expires: a gap at its end.
    append(*log, {{"b", std::nullopt, 1000}});
    roll(*log);
    ASSERT_TRUE(log_cleaner::clean_now(*log, timestamp_ms(10000)).ok());
    before = read_all(*log);
    end = log->log_end_offset();
    recovery_point = log->flushed_end();  // what log_manager checkpoints before a swap
    ASSERT_TRUE(log->close().ok());
  }
  EXPECT_EQ(offsets_of(before), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(end, offset(5));
  // Unclean: every segment is validated from offset 0, the trailing empty segment after
  // the cleaner's gap is kept.
  auto log = open_log(config, /*clean_shutdown=*/false, recovery_point);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_end_offset(), end);
  EXPECT_EQ(log->log_start_offset(), offset(0));
  auto after = read_all(*log);
  EXPECT_EQ(offsets_of(after), offsets_of(before));
  expect_faithful(after, 5);
  // Appends continue at the old end.
  append(*log, {{"d", "d1"}});
  EXPECT_EQ(log->log_end_offset(), offset(6));
  // A first cleaning after a restart treats everything as dirty and finds nothing new.
  auto again = log_cleaner::clean_now(*log, timestamp_ms(10000));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->records_removed, 0u);
}

// ---- policies --------------------------------------------------------------------------------

TEST_F(LogCleanerTest, CompactOnlyKeepsSegmentsPastRetention) {
  for (bool delete_old : {false, true}) {
    SCOPED_TRACE(delete_old);
    written_.clear();
    log_config config = compact_config();
    config.delete_old = delete_old;
    config.retention_ms = std::chrono::milliseconds(10);
    config.retention_bytes = 1;
    const std::string dir = dir_.path() + (delete_old ? "/both-0" : "/compact-0");
    auto opened = partition_log::open(dir, config, *disk_, offset(0), true);
    ASSERT_TRUE(opened.ok());
    auto& log = **opened;
    append(log, {{"a", "a1", 1000}});
    roll(log);
    append(log, {{"b", "b1", 1000}});
    roll(log);
    auto deleted = log.enforce_retention(timestamp_ms(1'000'000));
    ASSERT_TRUE(deleted.ok());
    EXPECT_EQ(*deleted, delete_old ? 2u : 0u);
    EXPECT_EQ(log.log_start_offset(), offset(delete_old ? 2 : 0));
  }
}

TEST_F(LogCleanerTest, MinCompactionLagHoldsBackYoungSegments) {
  log_config config = compact_config();
  config.min_compaction_lag = std::chrono::milliseconds(5000);
  auto log = open_log(config);
  ASSERT_NE(log, nullptr);
  append(*log, {{"a", "a1", 1000}});
  roll(*log);
  append(*log, {{"a", "a2", 8000}});
  roll(*log);
  // At 9000 only the first segment (newest record 1000) is old enough; the map does not
  // reach into the second, so a1 stays.
  auto young = log_cleaner::clean_now(*log, timestamp_ms(9000));
  ASSERT_TRUE(young.ok());
  EXPECT_EQ(young->segments_cleaned, 1u);
  EXPECT_EQ(offsets_of(read_all(*log)), (std::vector<std::int64_t>{0, 1}));
  auto old = log_cleaner::clean_now(*log, timestamp_ms(13000));
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->segments_cleaned, 2u);
  EXPECT_EQ(offsets_of(read_all(*log)), (std::vector<std::int64_t>{1}));
}

TEST_F(LogCleanerTest, ASmallOffsetMapCleansInSteps) {
  auto log = open_log(compact_config());
  ASSERT_NE(log, nullptr);
  for (int round = 0; round < 4; ++round) {
    append(*log, {{"a", "a" + std::to_string(round)}, {"b", "b" + std::to_string(round)}});
    roll(*log);
  }
  // Room for three keys: a map holding one segment's two keys cannot take the next
  // segment's two records, so each cleaning maps one more dirty segment than the last
  // cleaned and removes the segment before it.
  for (std::size_t step = 1; step <= 4; ++step) {
    SCOPED_TRACE(step);
    auto summary = log_cleaner::clean_now(*log, timestamp_ms(2000), 3);
    ASSERT_TRUE(summary.ok());
    EXPECT_EQ(summary->segments_cleaned, step);
    std::vector<std::int64_t> expected;
    for (auto at = static_cast<std::int64_t>(2 * (step - 1)); at < 8; ++at) expected.push_back(at);
    auto got = read_all(*log);
    EXPECT_EQ(offsets_of(got), expected);
    expect_faithful(got, summary->cleaned_up_to.value());
  }
}

// ---- the cleaner thread ----------------------------------------------------------------------

TEST_F(LogCleanerTest, TheCleanerThreadCleansAndTheReactorSwaps) {
  auto log = open_log(compact_config());
  ASSERT_NE(log, nullptr);
  for (int round = 0; round < 3; ++round) {
    append(*log, {{"a", "a" + std::to_string(round)}, {"b", "b" + std::to_string(round)}});
    roll(*log);
  }
  log_cleaner cleaner(log_cleaner_config{});
  ASSERT_TRUE(cleaner.schedule(*log, timestamp_ms(2000)));
  EXPECT_TRUE(log->cleaning());
  EXPECT_FALSE(cleaner.schedule(*log, timestamp_ms(2000)));  // one job per log
  EXPECT_EQ(log->truncate_to(offset(1)).code(), errc::backpressure);
  std::size_t changed = 0;
  for (int i = 0; i < 2000 && cleaner.jobs_in_flight() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    changed += cleaner.poll();
  }
  EXPECT_EQ(changed, 1u);
  EXPECT_FALSE(log->cleaning());
  auto got = read_all(*log);
  EXPECT_EQ(offsets_of(got), (std::vector<std::int64_t>{4, 5}));
  // Nothing new is dirty: not due again.
  EXPECT_FALSE(cleaner.schedule(*log, timestamp_ms(2000)));
}

TEST_F(LogCleanerTest, RetentionDuringACleaningDiscardsTheJob) {
  log_config config = compact_config();
  config.delete_old = true;
  config.retention_ms.reset();
  auto log = open_log(config);
  ASSERT_NE(log, nullptr);
  for (int round = 0; round < 3; ++round) {
    append(*log, {{"a", "a" + std::to_string(round)}, {"b", "b" + std::to_string(round)}});
    roll(*log);
  }
  log_cleaner cleaner(log_cleaner_config{});
  ASSERT_TRUE(cleaner.schedule(*log, timestamp_ms(2000)));
  // Retention takes the oldest segment while the job runs (or waits).
  log_config smaller = config;
  smaller.retention_bytes = log->size_bytes() * 2 / 3;  // three equal sealed segments
  log->set_config(smaller);
  auto deleted = log->enforce_retention(timestamp_ms(2000));
  ASSERT_TRUE(deleted.ok());
  ASSERT_EQ(*deleted, 1u);
  std::size_t changed = 0;
  for (int i = 0; i < 2000 && cleaner.jobs_in_flight() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    changed += cleaner.poll();
  }
  EXPECT_EQ(changed, 0u);
  EXPECT_TRUE(files_with_suffix(log_dir(), ".cleaned").empty());
  EXPECT_FALSE(path_exists(log_dir() + "/" + cleaner_swap_marker));
  EXPECT_EQ(offsets_of(read_all(*log)), (std::vector<std::int64_t>{2, 3, 4, 5}));
  // The next cleaning works on what is left.
  log->set_config(config);
  ASSERT_TRUE(log_cleaner::clean_now(*log, timestamp_ms(2000)).ok());
  EXPECT_EQ(offsets_of(read_all(*log)), (std::vector<std::int64_t>{4, 5}));
}

TEST_F(LogCleanerTest, LogManagerRunsTheCleanerOnItsTicks) {
  log_manager_config manager_config;
  manager_config.data_dir = dir_.path() + "/data";
  manager_config.cleaner.backoff = std::chrono::milliseconds(10);
  auto manager = log_manager::open(manager_config, *disk_);
  ASSERT_TRUE(manager.ok());
  topic_partition tp{"compacted", 0};
  auto created = (*manager)->create(tp, compact_config());
  ASSERT_TRUE(created.ok());
  partition_log& log = **created;
  for (int round = 0; round < 3; ++round) {
    append(log, {{"a", "a" + std::to_string(round)}, {"b", "b" + std::to_string(round)}});
    roll(log);
  }
  std::int64_t now = 100000;
  for (int i = 0; i < 2000 && read_all(log).size() != 2; ++i) {
    (*manager)->tick(timestamp_ms(now += 20));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(offsets_of(read_all(log)), (std::vector<std::int64_t>{4, 5}));
  // Removing a partition while it may be cleaned lets go of it first.
  append(log, {{"a", "a9"}});
  roll(log);
  (*manager)->tick(timestamp_ms(now += 20));
  ASSERT_TRUE((*manager)->remove(tp).ok());
  EXPECT_FALSE(path_exists(manager_config.data_dir + "/compacted-0"));
  ASSERT_TRUE((*manager)->shutdown().ok());
}

// ---- randomized, against a model --------------------------------------------------------------

TEST_F(LogCleanerTest, RandomHistoriesMatchTheModel) {
  for (std::uint32_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937 random(seed);
    written_.clear();
    log_config config = compact_config();
    config.delete_retention = std::chrono::milliseconds(300);
    const std::string dir = dir_.path() + "/random" + std::to_string(seed) + "-0";
    auto opened = partition_log::open(dir, config, *disk_, offset(0), true);
    ASSERT_TRUE(opened.ok());
    auto& log = **opened;
    std::int64_t clock = 1000;
    const compression_codec codecs[] = {compression_codec::none, compression_codec::gzip,
                                        compression_codec::zstd};
    for (int step = 0; step < 60; ++step) {
      std::vector<rec> records;
      int count = 1 + static_cast<int>(random() % 6);
      for (int i = 0; i < count; ++i) {
        rec r;
        r.timestamp = clock;
        unsigned kind = random() % 10;
        if (kind > 0) r.key = "k" + std::to_string(random() % 12);
        if (kind == 0 || random() % 5 != 0) {
          r.value = "v" + std::to_string(step) + "." + std::to_string(i);
        }
        records.push_back(r);
      }
      append(log, records, codecs[random() % 3]);
      clock += static_cast<std::int64_t>(random() % 60);
      if (random() % 3 == 0) roll(log);
      if (random() % 6 == 0) {
        auto summary = log_cleaner::clean_now(log, timestamp_ms(clock));
        ASSERT_TRUE(summary.ok()) << summary.failure().detail();
        auto got = read_all(log);
        expect_faithful(got, summary->cleaned_up_to.value());
        EXPECT_EQ(latest_values(got), written_latest());
        // Tombstones kept in the cleaned range are young enough.
        for (const auto& r : got) {
          if (r.record.key && !r.record.value && r.at < summary->cleaned_up_to.value()) {
            EXPECT_GE(r.record.timestamp, clock - 300) << "offset " << r.at;
          }
        }
      }
    }
    // After a restart the log reads the same.
    auto before = read_all(log);
    offset recovery_point = log.flushed_end();
    ASSERT_TRUE(log.close().ok());
    opened->reset();
    auto reopened = partition_log::open(dir, config, *disk_, recovery_point, false);
    ASSERT_TRUE(reopened.ok());
    auto after = read_all(**reopened);
    EXPECT_EQ(offsets_of(after), offsets_of(before));
    expect_faithful(after, 0);
  }
}

}  // namespace
}  // namespace sluice::test
