#include "engine/storage/time_index.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace sluice {
namespace {

// A fresh directory under /tmp for one test, removed with everything in it afterwards.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = "/tmp/sluice-time-index-XXXXXX";
    const char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr) << "mkdtemp failed";
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void overwrite_bytes(const std::string& path, std::size_t at,
                     const std::vector<std::uint8_t>& bytes) {
  std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(io.good());
  io.seekp(static_cast<std::streamoff>(at));
  io.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(io.good());
}

// Bytes of disk the file really occupies (holes excluded).
std::uint64_t allocated_bytes(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

void write_file(const std::string& path, std::size_t bytes) {
  std::ofstream out(path, std::ios::binary);
  const std::string zeros(bytes, '\0');
  out.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
}

std::vector<std::uint8_t> be64(std::uint64_t v) {
  std::vector<std::uint8_t> out;
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(std::uint8_t(v >> shift));
  return out;
}

std::vector<std::uint8_t> be32(std::uint32_t v) {
  return {std::uint8_t(v >> 24), std::uint8_t(v >> 16), std::uint8_t(v >> 8), std::uint8_t(v)};
}

constexpr std::size_t capacity_entries = 64;
constexpr std::size_t capacity_bytes = capacity_entries * time_index::entry_bytes;
constexpr offset base{5000};
constexpr std::int64_t t0 = 1'700'000'000'000;  // a realistic epoch-milliseconds value

time_index open_index(const std::string& path, std::size_t bytes = capacity_bytes) {
  auto opened = time_index::open(path, base, bytes);
  EXPECT_TRUE(opened.ok()) << (opened.ok() ? "" : opened.failure().detail());
  return std::move(opened).value();
}

std::vector<time_index_entry> all_entries(const time_index& index) {
  std::vector<time_index_entry> out;
  for (std::size_t i = 0; i < index.entries(); ++i) out.push_back(index.entry(i));
  return out;
}

// Entries with gaps in both fields, so lookups between entries are meaningful.
std::vector<time_index_entry> sample_entries(std::size_t count) {
  std::vector<time_index_entry> out;
  for (std::size_t i = 0; i < count; ++i) {
    const auto step = static_cast<std::int64_t>(i);
    out.push_back({timestamp_ms(t0 + 100 * step), base + (3 + 10 * step)});
  }
  return out;
}

void append_all(time_index& index, const std::vector<time_index_entry>& entries) {
  for (const auto& e : entries) {
    EXPECT_TRUE(index.maybe_append(e.timestamp, e.last_offset));
  }
}

timestamp_ms later(timestamp_ms t, std::int64_t ms) {
  return timestamp_ms(t.value() + ms);
}

TEST(TimeIndex, LookupAtBetweenBeforeAndAfterEntries) {
  temp_dir dir;
  auto index = open_index(dir.file("a.timeindex"));
  EXPECT_EQ(index.lookup(timestamp_ms(t0)), std::nullopt) << "empty index has no entry";
  const auto entries = sample_entries(3);
  append_all(index, entries);
  ASSERT_EQ(index.entries(), 3u);
  EXPECT_EQ(index.last_entry(), entries[2]);

  EXPECT_EQ(index.lookup(no_timestamp), std::nullopt);
  EXPECT_EQ(index.lookup(later(entries[0].timestamp, -1)), std::nullopt) << "before first";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(index.lookup(entries[i].timestamp), entries[i]) << "at entry " << i;
    EXPECT_EQ(index.lookup(later(entries[i].timestamp, 1)), entries[i]) << "after entry " << i;
  }
  EXPECT_EQ(index.lookup(timestamp_ms(INT64_MAX)), entries[2]) << "far after";
}

TEST(TimeIndex, MaybeAppendIgnoresNonIncreasingTimestamps) {
  temp_dir dir;
  auto index = open_index(dir.file("skip.timeindex"));
  EXPECT_TRUE(index.maybe_append(timestamp_ms(t0), base + 1));
  EXPECT_FALSE(index.maybe_append(timestamp_ms(t0), base + 2)) << "equal timestamp";
  EXPECT_FALSE(index.maybe_append(timestamp_ms(t0 - 50), base + 3)) << "older timestamp";
  EXPECT_EQ(all_entries(index), (std::vector<time_index_entry>{{timestamp_ms(t0), base + 1}}));
  EXPECT_TRUE(index.maybe_append(timestamp_ms(t0 + 1), base + 4));
  EXPECT_EQ(index.last_entry(), (time_index_entry{timestamp_ms(t0 + 1), base + 4}));
  EXPECT_EQ(index.entries(), 2u);
}

TEST(TimeIndex, FillsToCapacityRoundedDownToWholeEntries) {
  temp_dir dir;
  const std::string path = dir.file("full.timeindex");
  auto index = open_index(path, 10 * time_index::entry_bytes + 11);
  EXPECT_EQ(index.max_entries(), 10u);
  EXPECT_EQ(std::filesystem::file_size(path), 10 * time_index::entry_bytes);
  const auto entries = sample_entries(10);
  for (const auto& e : entries) {
    EXPECT_FALSE(index.is_full());
    EXPECT_TRUE(index.maybe_append(e.timestamp, e.last_offset));
  }
  EXPECT_TRUE(index.is_full());
  EXPECT_EQ(all_entries(index), entries);
  index = open_index(path, 10 * time_index::entry_bytes);
  EXPECT_EQ(all_entries(index), entries);
}

TEST(TimeIndex, TruncateToEachPosition) {
  temp_dir dir;
  const auto entries = sample_entries(6);
  for (std::size_t keep = 0; keep <= entries.size(); ++keep) {
    const std::vector<time_index_entry> expected(entries.begin(), entries.begin() + keep);
    auto index = open_index(dir.file("t" + std::to_string(keep) + ".timeindex"));
    append_all(index, entries);
    const offset at =
        keep < entries.size() ? entries[keep].last_offset : entries.back().last_offset + 1;
    index.truncate_to(at);
    EXPECT_EQ(all_entries(index), expected) << "truncate_to entry " << keep;

    auto again = open_index(dir.file("b" + std::to_string(keep) + ".timeindex"));
    append_all(again, entries);
    const offset between =
        keep < entries.size() ? entries[keep].last_offset - 4 : entries.back().last_offset + 100;
    again.truncate_to(between);
    EXPECT_EQ(all_entries(again), expected) << "truncate_to before entry " << keep;
    // A timestamp that was dropped can be indexed again.
    if (keep < entries.size()) {
      EXPECT_TRUE(again.maybe_append(entries[keep].timestamp, entries[keep].last_offset));
    }
  }
  auto index = open_index(dir.file("reset.timeindex"));
  append_all(index, entries);
  index.reset();
  EXPECT_EQ(index.entries(), 0u);
  EXPECT_EQ(index.lookup(entries.back().timestamp), std::nullopt);
}

TEST(TimeIndex, TrimThenReopenKeepsEntries) {
  temp_dir dir;
  const std::string path = dir.file("trim.timeindex");
  const auto entries = sample_entries(5);
  {
    auto index = open_index(path);
    EXPECT_EQ(std::filesystem::file_size(path), capacity_bytes) << "preallocated";
    append_all(index, entries);
    ASSERT_TRUE(index.trim().ok());
    EXPECT_EQ(std::filesystem::file_size(path), entries.size() * time_index::entry_bytes);
    EXPECT_EQ(index.lookup(later(entries[3].timestamp, 7)), entries[3]);
  }
  EXPECT_EQ(std::filesystem::file_size(path), entries.size() * time_index::entry_bytes);
  auto index = open_index(path);
  EXPECT_EQ(all_entries(index), entries);
  EXPECT_EQ(index.max_entries(), capacity_entries);
  EXPECT_EQ(std::filesystem::file_size(path), capacity_bytes) << "regrown for appends";
  EXPECT_TRUE(index.sanity_check(entries.back().last_offset + 1).ok());
}

TEST(TimeIndex, ReopenAfterCrashRecoversEntries) {
  temp_dir dir;
  const std::string path = dir.file("crash.timeindex");
  const auto entries = sample_entries(7);
  {
    auto index = open_index(path);
    append_all(index, entries);
  }  // destroyed without trim, as in a crash
  EXPECT_EQ(std::filesystem::file_size(path), capacity_bytes);
  EXPECT_EQ(all_entries(open_index(path)), entries);

  const std::string empty = dir.file("empty.timeindex");
  { auto index = open_index(empty); }
  EXPECT_EQ(open_index(empty).entries(), 0u);
}

TEST(TimeIndex, CrashAfterTruncateDoesNotResurrectDroppedEntries) {
  temp_dir dir;
  const std::string path = dir.file("resurrect.timeindex");
  const auto entries = sample_entries(10);
  std::vector<time_index_entry> expected(entries.begin(), entries.begin() + 4);
  expected.push_back({later(entries[3].timestamp, 1), entries[3].last_offset + 1});
  {
    auto index = open_index(path);
    append_all(index, entries);
    index.truncate_to(entries[4].last_offset);
    EXPECT_TRUE(index.maybe_append(expected.back().timestamp, expected.back().last_offset));
  }
  EXPECT_EQ(all_entries(open_index(path)), expected);
}

TEST(TimeIndex, AppendAfterTrimRegrowsTheFile) {
  temp_dir dir;
  const std::string path = dir.file("regrow.timeindex");
  const auto entries = sample_entries(8);
  {
    auto index = open_index(path);
    append_all(index, {entries.begin(), entries.begin() + 2});
    ASSERT_TRUE(index.trim().ok());
    append_all(index, {entries.begin() + 2, entries.begin() + 4});
    EXPECT_EQ(std::filesystem::file_size(path), capacity_bytes);
    ASSERT_TRUE(index.trim().ok());
  }
  {
    auto index = open_index(path);
    EXPECT_EQ(all_entries(index), std::vector(entries.begin(), entries.begin() + 4));
    append_all(index, {entries.begin() + 4, entries.begin() + 6});
    ASSERT_TRUE(index.flush().ok());
  }
  {
    auto index = open_index(path);
    EXPECT_EQ(all_entries(index), std::vector(entries.begin(), entries.begin() + 6));
    ASSERT_TRUE(index.trim().ok());
    index.truncate_to(entries[3].last_offset);
  }
  EXPECT_EQ(std::filesystem::file_size(path), 3 * time_index::entry_bytes);
  EXPECT_EQ(all_entries(open_index(path)), std::vector(entries.begin(), entries.begin() + 3));
}

TEST(TimeIndex, CorruptFileSizeIsRejected) {
  temp_dir dir;
  for (std::size_t bytes : {std::size_t{1}, std::size_t{8}, std::size_t{20}, capacity_bytes + 4}) {
    const std::string path = dir.file("bad" + std::to_string(bytes) + ".timeindex");
    write_file(path, bytes);
    auto opened = time_index::open(path, base, capacity_bytes);
    ASSERT_FALSE(opened.ok()) << bytes;
    EXPECT_EQ(opened.code(), errc::corrupt_batch) << bytes;
  }
  auto tiny = time_index::open(dir.file("tiny.timeindex"), base, time_index::entry_bytes - 1);
  ASSERT_FALSE(tiny.ok());
  EXPECT_EQ(tiny.code(), errc::invalid_argument);
}

TEST(TimeIndex, SanityCheckCatchesNonIncreasingEntries) {
  temp_dir dir;
  const auto entries = sample_entries(3);
  const offset next_offset = entries.back().last_offset + 1;
  // Damage is done to a trimmed file before any reopen: a reopen regrows the file, and
  // the crash-recovery scan of a regrown file would stop before a bad entry.
  const auto write_trimmed = [&](const std::string& path) {
    auto index = open_index(path);
    append_all(index, entries);
    EXPECT_TRUE(index.sanity_check(next_offset).ok()) << "intact before damage";
    ASSERT_TRUE(index.trim().ok());
  };
  const std::size_t third = 2 * time_index::entry_bytes;

  const std::string same_timestamp = dir.file("timestamp.timeindex");
  write_trimmed(same_timestamp);
  overwrite_bytes(same_timestamp, third,
                  be64(static_cast<std::uint64_t>(entries[1].timestamp.value())));
  auto result = open_index(same_timestamp).sanity_check(next_offset);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.code(), errc::corrupt_batch);

  const std::string lower_offset = dir.file("offset.timeindex");
  write_trimmed(lower_offset);
  overwrite_bytes(lower_offset, third + 8, be32(1));
  result = open_index(lower_offset).sanity_check(next_offset);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.code(), errc::corrupt_batch);
}

TEST(TimeIndex, SanityCheckCatchesOffsetsAtOrPastTheLogEnd) {
  temp_dir dir;
  auto index = open_index(dir.file("end.timeindex"));
  const auto entries = sample_entries(4);
  append_all(index, entries);
  EXPECT_TRUE(index.sanity_check(entries.back().last_offset + 1).ok());
  auto result = index.sanity_check(entries.back().last_offset);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.code(), errc::corrupt_batch);
}

TEST(TimeIndex, LookupMatchesLinearScanOnRandomEntries) {
  temp_dir dir;
  constexpr std::size_t count = 5000;
  auto index = open_index(dir.file("random.timeindex"), count * time_index::entry_bytes);
  std::mt19937_64 rng(77031);
  std::uniform_int_distribution<std::int64_t> offset_gap(1, 40);
  std::uniform_int_distribution<std::int64_t> time_gap(-5, 2000);  // some do not increase
  std::vector<time_index_entry> entries;
  offset next_offset = base + offset_gap(rng) - 1;
  timestamp_ms next_time(t0);
  for (std::size_t i = 0; i < 3 * count && !index.is_full(); ++i) {
    const bool grew = entries.empty() || next_time > entries.back().timestamp;
    EXPECT_EQ(index.maybe_append(next_time, next_offset), grew);
    if (grew) entries.push_back({next_time, next_offset});
    next_offset = next_offset + offset_gap(rng);
    next_time = later(next_time, time_gap(rng));
  }
  ASSERT_EQ(all_entries(index), entries);
  const auto linear_lookup = [&](timestamp_ms target) -> std::optional<time_index_entry> {
    std::optional<time_index_entry> found;
    for (const auto& e : entries) {
      if (e.timestamp <= target) found = e;
    }
    return found;
  };
  std::uniform_int_distribution<std::int64_t> target(t0 - 100, next_time.value() + 100);
  for (int i = 0; i < 3000; ++i) {
    const timestamp_ms t(target(rng));
    ASSERT_EQ(index.lookup(t), linear_lookup(t)) << "target " << t.value();
  }
}

TEST(TimeIndex, FileBytesAreBigEndianEntries) {
  temp_dir dir;
  const std::string path = dir.file("bytes.timeindex");
  {
    auto index = open_index(path);
    EXPECT_TRUE(index.maybe_append(timestamp_ms(-2), base + 0x10));  // negative: two's complement
    EXPECT_TRUE(index.maybe_append(timestamp_ms(0x0102030405060708), base + 0x0A0B0C0D));
    ASSERT_TRUE(index.trim().ok());
  }
  const std::vector<std::uint8_t> expected = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
                                              0x00, 0x00, 0x00, 0x10, 0x01, 0x02, 0x03, 0x04,
                                              0x05, 0x06, 0x07, 0x08, 0x0A, 0x0B, 0x0C, 0x0D};
  EXPECT_EQ(read_bytes(path), expected);
  auto index = open_index(path);
  EXPECT_EQ(index.entry(0), (time_index_entry{timestamp_ms(-2), base + 0x10}));
  EXPECT_EQ(index.lookup(timestamp_ms(-1)), index.entry(0));
}

TEST(TimeIndex, MoveLeavesSourceClosed) {
  temp_dir dir;
  auto source = open_index(dir.file("move.timeindex"));
  const auto entries = sample_entries(2);
  append_all(source, entries);
  time_index moved(std::move(source));
  EXPECT_EQ(source.entries(), 0u);                 // NOLINT: checking the moved-from state
  EXPECT_EQ(source.flush().code(), errc::closed);  // NOLINT
  EXPECT_EQ(all_entries(moved), entries);

  auto other = open_index(dir.file("other.timeindex"));
  other = std::move(moved);
  EXPECT_EQ(moved.entries(), 0u);                // NOLINT
  EXPECT_EQ(moved.trim().code(), errc::closed);  // NOLINT
  EXPECT_EQ(other.lookup(entries[1].timestamp), entries[1]);
}

// 12-byte entries do not divide a reservation chunk: the entry that straddles the end of
// the first chunk must reserve the second before it is stored.
TEST(TimeIndex, EntryStraddlingAChunkEndReservesTheNextChunk) {
  temp_dir dir;
  const std::string path = dir.file("sparse.timeindex");
  constexpr std::size_t chunk = index_file::reserve_chunk_bytes;
  static_assert(chunk % time_index::entry_bytes != 0);
  auto index = open_index(path, 10 * 1024 * 1024);
  const auto entries = sample_entries(chunk / time_index::entry_bytes + 1);
  append_all(index, {entries.begin(), entries.end() - 1});
  EXPECT_LT(allocated_bytes(path), 2 * chunk) << "whole entries fit the first chunk";
  append_all(index, {entries.end() - 1, entries.end()});
  EXPECT_GE(allocated_bytes(path), 2 * chunk);
  EXPECT_LT(allocated_bytes(path), 4 * chunk) << "the rest of the file stays a hole";
  EXPECT_EQ(all_entries(index), entries);
}

// A sealed segment's index is read as it is, whether trimmed by the seal or left untrimmed
// by a crash: the entries are found, and the file keeps its length and bytes.
TEST(TimeIndex, SealedOpenReadsTheFileWithoutChangingIt) {
  temp_dir dir;
  const auto entries = sample_entries(5);
  for (const bool trimmed : {true, false}) {
    const std::string path = dir.file(trimmed ? "trimmed.timeindex" : "crashed.timeindex");
    {
      auto index = open_index(path);
      append_all(index, entries);
      if (trimmed) {
        ASSERT_TRUE(index.trim().ok());
      }
    }
    const auto before = read_bytes(path);
    ASSERT_EQ(before.size(), trimmed ? entries.size() * time_index::entry_bytes : capacity_bytes);
    {
      auto opened = time_index::open(path, base, capacity_bytes, index_open_mode::sealed);
      ASSERT_TRUE(opened.ok()) << opened.failure().detail();
      EXPECT_TRUE(opened->is_sealed());
      EXPECT_TRUE(opened->is_full()) << "nobody appends to a sealed index";
      EXPECT_EQ(opened->max_entries(), before.size() / time_index::entry_bytes);
      EXPECT_EQ(all_entries(*opened), entries) << "trimmed " << trimmed;
      for (const auto& e : entries) EXPECT_EQ(opened->lookup(later(e.timestamp, 5)), e);
      EXPECT_FALSE(opened->maybe_append(entries[1].timestamp, entries.back().last_offset + 1))
          << "an older timestamp is ignored before any write is considered";
      EXPECT_TRUE(opened->sanity_check(entries.back().last_offset + 1).ok());
      EXPECT_TRUE(opened->trim().ok());
      EXPECT_TRUE(opened->flush().ok());
    }
    EXPECT_EQ(read_bytes(path), before) << "trimmed " << trimmed;
  }
}

}  // namespace
}  // namespace sluice
