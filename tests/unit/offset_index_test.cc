#include "engine/storage/offset_index.h"

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

// Replaces index_file's reservation call (posix_fallocate) for the life of the object, so
// that a test can watch the reservations and make them fail as a full disk would.
struct index_file_testing {
  struct reservation {
    std::int64_t offset;
    std::int64_t length;
    friend bool operator==(const reservation&, const reservation&) = default;
  };
  static inline std::vector<reservation> calls;
  static inline int fail_with_errno = 0;

  index_file_testing() {
    calls.clear();
    calls.reserve(64);
    fail_with_errno = 0;
    saved_ = std::exchange(index_file::reserve_blocks_, &record_and_reserve);
  }
  ~index_file_testing() { index_file::reserve_blocks_ = saved_; }
  index_file_testing(const index_file_testing&) = delete;
  index_file_testing& operator=(const index_file_testing&) = delete;

 private:
  static int record_and_reserve(int fd, std::int64_t offset, std::int64_t length) noexcept {
    if (calls.size() < calls.capacity()) calls.push_back({offset, length});
    if (fail_with_errno != 0) return fail_with_errno;
    return saved_(fd, offset, length);
  }

  static inline index_file::reserve_blocks_fn saved_ = nullptr;
};

namespace {

// A fresh directory under /tmp for one test, removed with everything in it afterwards.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = "/tmp/sluice-offset-index-XXXXXX";
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

std::vector<std::uint8_t> be32(std::uint32_t v) {
  return {std::uint8_t(v >> 24), std::uint8_t(v >> 16), std::uint8_t(v >> 8), std::uint8_t(v)};
}

constexpr std::size_t capacity_entries = 64;
constexpr std::size_t capacity_bytes = capacity_entries * offset_index::entry_bytes;
constexpr offset base{1000};

offset_index open_index(const std::string& path, std::size_t bytes = capacity_bytes) {
  auto opened = offset_index::open(path, base, bytes);
  EXPECT_TRUE(opened.ok()) << (opened.ok() ? "" : opened.failure().detail());
  return std::move(opened).value();
}

std::vector<offset_index_entry> all_entries(const offset_index& index) {
  std::vector<offset_index_entry> out;
  for (std::size_t i = 0; i < index.entries(); ++i) out.push_back(index.entry(i));
  return out;
}

// Entries with gaps in both fields, so lookups between entries are meaningful.
std::vector<offset_index_entry> sample_entries(std::size_t count) {
  std::vector<offset_index_entry> out;
  for (std::size_t i = 0; i < count; ++i) {
    out.push_back({base + static_cast<std::int64_t>(5 + 10 * i), file_pos(4096 * i)});
  }
  return out;
}

void append_all(offset_index& index, const std::vector<offset_index_entry>& entries) {
  for (const auto& e : entries) index.append(e.last_offset, e.position);
}

// A closed index file holding `entries`, trimmed as a seal leaves it or untrimmed as a
// crash leaves it.
void write_index(const std::string& path, const std::vector<offset_index_entry>& entries,
                 bool trimmed) {
  auto index = open_index(path);
  append_all(index, entries);
  if (trimmed) {
    ASSERT_TRUE(index.trim().ok());
  }
}

offset_index open_sealed(const std::string& path) {
  auto opened = offset_index::open(path, base, capacity_bytes, index_open_mode::sealed);
  EXPECT_TRUE(opened.ok()) << (opened.ok() ? "" : opened.failure().detail());
  return std::move(opened).value();
}

TEST(OffsetIndex, LookupAtBetweenBeforeAndAfterEntries) {
  temp_dir dir;
  auto index = open_index(dir.file("a.index"));
  EXPECT_EQ(index.lookup(base + 50), std::nullopt) << "empty index has no entry";
  const auto entries = sample_entries(3);  // offsets 1005, 1015, 1025
  append_all(index, entries);
  ASSERT_EQ(index.entries(), 3u);
  EXPECT_EQ(index.last_entry(), entries[2]);

  EXPECT_EQ(index.lookup(base - 1), std::nullopt) << "before the segment";
  EXPECT_EQ(index.lookup(base), std::nullopt) << "before the first entry";
  EXPECT_EQ(index.lookup(entries[0].last_offset - 1), std::nullopt);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(index.lookup(entries[i].last_offset), entries[i]) << "at entry " << i;
    EXPECT_EQ(index.lookup(entries[i].last_offset + 1), entries[i]) << "after entry " << i;
  }
  EXPECT_EQ(index.lookup(entries[2].last_offset + 1'000'000), entries[2]) << "far after";
  EXPECT_EQ(index.lookup(offset(INT64_MAX)), entries[2]) << "beyond 32-bit relative range";
}

TEST(OffsetIndex, FillsToCapacityRoundedDownToWholeEntries) {
  temp_dir dir;
  const std::string path = dir.file("full.index");
  auto index = open_index(path, 10 * offset_index::entry_bytes + 5);
  EXPECT_EQ(index.max_entries(), 10u);
  EXPECT_EQ(std::filesystem::file_size(path), 10 * offset_index::entry_bytes);
  const auto entries = sample_entries(10);
  for (const auto& e : entries) {
    EXPECT_FALSE(index.is_full());
    index.append(e.last_offset, e.position);
  }
  EXPECT_TRUE(index.is_full());
  EXPECT_EQ(all_entries(index), entries);
  for (const auto& e : entries) EXPECT_EQ(index.lookup(e.last_offset + 3), e);
  // A full file is exactly the preallocated size, so a reopen must find all entries.
  index = open_index(path, 10 * offset_index::entry_bytes);
  EXPECT_EQ(all_entries(index), entries);
  EXPECT_TRUE(index.is_full());
}

TEST(OffsetIndex, RejectsCapacityBelowOneEntry) {
  temp_dir dir;
  auto opened = offset_index::open(dir.file("tiny.index"), base, offset_index::entry_bytes - 1);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.code(), errc::invalid_argument);
}

TEST(OffsetIndex, OpenFailureIsAnError) {
  auto opened = offset_index::open("/nonexistent-dir-for-sluice/x.index", base, capacity_bytes);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.failure().os_errno(), ENOENT);
}

TEST(OffsetIndex, TruncateToEachPosition) {
  temp_dir dir;
  const auto entries = sample_entries(6);
  for (std::size_t keep = 0; keep <= entries.size(); ++keep) {
    const std::string path = dir.file("t" + std::to_string(keep) + ".index");
    auto index = open_index(path);
    append_all(index, entries);
    const offset target =
        keep < entries.size() ? entries[keep].last_offset : entries.back().last_offset + 1;
    index.truncate_to(target);
    const std::vector<offset_index_entry> expected(entries.begin(), entries.begin() + keep);
    EXPECT_EQ(all_entries(index), expected) << "truncate_to entry " << keep;

    // Between entries: every entry below the target survives.
    auto again = open_index(dir.file("b" + std::to_string(keep) + ".index"));
    append_all(again, entries);
    const offset between =
        keep < entries.size() ? entries[keep].last_offset - 3 : entries.back().last_offset + 100;
    again.truncate_to(between);
    EXPECT_EQ(all_entries(again), expected) << "truncate_to before entry " << keep;

    // After truncation the index accepts the next entries again, and a crash keeps them.
    if (keep < entries.size()) {
      index.append(entries[keep].last_offset, entries[keep].position);
      EXPECT_EQ(index.entries(), keep + 1);
    }
  }
  auto index = open_index(dir.file("reset.index"));
  append_all(index, entries);
  index.reset();
  EXPECT_EQ(index.entries(), 0u);
  EXPECT_EQ(index.lookup(entries.back().last_offset), std::nullopt);
  index.truncate_to(base - 10);
  EXPECT_EQ(index.entries(), 0u);
}

TEST(OffsetIndex, TrimThenReopenKeepsEntries) {
  temp_dir dir;
  const std::string path = dir.file("trim.index");
  const auto entries = sample_entries(5);
  {
    auto index = open_index(path);
    EXPECT_EQ(std::filesystem::file_size(path), capacity_bytes) << "preallocated";
    append_all(index, entries);
    ASSERT_TRUE(index.trim().ok());
    EXPECT_EQ(std::filesystem::file_size(path), entries.size() * offset_index::entry_bytes);
    EXPECT_EQ(all_entries(index), entries) << "entries readable after trim";
    EXPECT_EQ(index.lookup(entries[3].last_offset + 1), entries[3]);
  }
  EXPECT_EQ(std::filesystem::file_size(path), entries.size() * offset_index::entry_bytes)
      << "closing does not re-grow the file";
  auto index = open_index(path);
  EXPECT_EQ(all_entries(index), entries);
  EXPECT_EQ(index.max_entries(), capacity_entries);
  EXPECT_EQ(std::filesystem::file_size(path), capacity_bytes) << "regrown for appends";
  EXPECT_TRUE(index.sanity_check(1 << 20).ok());
}

TEST(OffsetIndex, TrimOfEmptyIndexLeavesEmptyFile) {
  temp_dir dir;
  const std::string path = dir.file("empty.index");
  {
    auto index = open_index(path);
    ASSERT_TRUE(index.trim().ok());
    EXPECT_EQ(std::filesystem::file_size(path), 0u);
    EXPECT_EQ(index.lookup(base + 1), std::nullopt);
    ASSERT_TRUE(index.flush().ok());
    index.append(base + 1, file_pos(0));  // regrows from an empty file
    EXPECT_EQ(index.lookup(base + 1), (offset_index_entry{base + 1, file_pos(0)}));
  }
  auto index = open_index(path);
  EXPECT_EQ(all_entries(index), (std::vector<offset_index_entry>{{base + 1, file_pos(0)}}));
}

TEST(OffsetIndex, ReopenAfterCrashRecoversEntries) {
  temp_dir dir;
  const std::string path = dir.file("crash.index");
  const auto entries = sample_entries(7);
  {
    auto index = open_index(path);
    append_all(index, entries);
  }  // destroyed without trim, as in a crash
  EXPECT_EQ(std::filesystem::file_size(path), capacity_bytes);
  auto index = open_index(path);
  EXPECT_EQ(all_entries(index), entries);
  EXPECT_TRUE(index.sanity_check(1 << 20).ok());
}

TEST(OffsetIndex, CrashRecoveryKeepsLeadingZeroEntry) {
  temp_dir dir;
  const std::string path = dir.file("zero.index");
  const std::vector<offset_index_entry> entries = {{base, file_pos(0)}, {base + 9, file_pos(700)}};
  {
    auto index = open_index(path);
    append_all(index, entries);
  }
  EXPECT_EQ(all_entries(open_index(path)), entries);
}

TEST(OffsetIndex, CrashRecoveryOfEmptyIndexFindsNoEntries) {
  temp_dir dir;
  const std::string path = dir.file("none.index");
  { auto index = open_index(path); }
  EXPECT_EQ(std::filesystem::file_size(path), capacity_bytes);
  EXPECT_EQ(open_index(path).entries(), 0u);
}

TEST(OffsetIndex, CrashAfterTruncateDoesNotResurrectDroppedEntries) {
  temp_dir dir;
  const std::string path = dir.file("resurrect.index");
  const auto entries = sample_entries(10);
  std::vector<offset_index_entry> expected(entries.begin(), entries.begin() + 4);
  // A new entry between old entries 4 and 5: old entries 5.. would still increase after it.
  expected.push_back({entries[4].last_offset + 1, file_pos(entries[4].position.value() + 1)});
  {
    auto index = open_index(path);
    append_all(index, entries);
    index.truncate_to(entries[4].last_offset);
    index.append(expected.back().last_offset, expected.back().position);
    ASSERT_TRUE(index.flush().ok());
  }
  EXPECT_EQ(all_entries(open_index(path)), expected);
}

TEST(OffsetIndex, AppendAfterTrimRegrowsTheFile) {
  temp_dir dir;
  const std::string path = dir.file("regrow.index");
  const auto entries = sample_entries(9);
  {
    auto index = open_index(path);
    append_all(index, {entries.begin(), entries.begin() + 3});
    ASSERT_TRUE(index.trim().ok());
    append_all(index, {entries.begin() + 3, entries.begin() + 5});
    EXPECT_EQ(std::filesystem::file_size(path), capacity_bytes);
    EXPECT_EQ(all_entries(index), std::vector(entries.begin(), entries.begin() + 5));
    ASSERT_TRUE(index.trim().ok());
  }
  {
    auto index = open_index(path);
    EXPECT_EQ(all_entries(index), std::vector(entries.begin(), entries.begin() + 5));
    append_all(index, {entries.begin() + 5, entries.begin() + 7});
  }  // no trim: the reopened file was regrown, so this is the crash case again
  {
    auto index = open_index(path);
    EXPECT_EQ(all_entries(index), std::vector(entries.begin(), entries.begin() + 7));
    ASSERT_TRUE(index.trim().ok());
    // Truncating a trimmed index cuts the file too, so a reopen sees only what is left.
    index.truncate_to(entries[2].last_offset);
  }
  EXPECT_EQ(std::filesystem::file_size(path), 2 * offset_index::entry_bytes);
  auto index = open_index(path);
  EXPECT_EQ(all_entries(index), std::vector(entries.begin(), entries.begin() + 2));
  EXPECT_TRUE(index.sanity_check(1 << 20).ok());
}

TEST(OffsetIndex, CorruptFileSizeIsRejected) {
  temp_dir dir;
  for (std::size_t bytes : {std::size_t{1}, std::size_t{7}, std::size_t{13}, capacity_bytes + 3}) {
    const std::string path = dir.file("bad" + std::to_string(bytes) + ".index");
    write_file(path, bytes);
    auto opened = offset_index::open(path, base, capacity_bytes);
    ASSERT_FALSE(opened.ok()) << bytes;
    EXPECT_EQ(opened.code(), errc::corrupt_batch) << bytes;
  }
}

TEST(OffsetIndex, FileLongerThanConfiguredKeepsItsEntries) {
  temp_dir dir;
  const std::string path = dir.file("shrunk.index");
  const auto entries = sample_entries(20);
  {
    auto index = open_index(path);
    append_all(index, entries);
    ASSERT_TRUE(index.trim().ok());
  }
  auto index = open_index(path, 4 * offset_index::entry_bytes);
  EXPECT_EQ(all_entries(index), entries);
  EXPECT_TRUE(index.is_full());
}

TEST(OffsetIndex, SanityCheckCatchesNonIncreasingEntries) {
  temp_dir dir;
  const auto entries = sample_entries(3);
  const auto write_trimmed = [&](const std::string& path) {
    auto index = open_index(path);
    append_all(index, entries);
    EXPECT_TRUE(index.sanity_check(1 << 20).ok()) << "intact before damage";
    ASSERT_TRUE(index.trim().ok());
  };
  // The damage is done to the trimmed file before any reopen: a reopen regrows the file,
  // and the crash-recovery scan of a regrown file would stop before a bad entry.
  const std::size_t third = 2 * offset_index::entry_bytes;

  const std::string same_offset = dir.file("offset.index");
  write_trimmed(same_offset);
  overwrite_bytes(same_offset, third,
                  be32(static_cast<std::uint32_t>(entries[1].last_offset - base)));
  auto result = open_index(same_offset).sanity_check(1 << 20);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.code(), errc::corrupt_batch);

  const std::string lower_position = dir.file("position.index");
  write_trimmed(lower_position);
  overwrite_bytes(lower_position, third + 4, be32(1));
  result = open_index(lower_position).sanity_check(1 << 20);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.code(), errc::corrupt_batch);
}

TEST(OffsetIndex, SanityCheckCatchesPositionsBeyondTheLog) {
  temp_dir dir;
  auto index = open_index(dir.file("pos.index"));
  const auto entries = sample_entries(4);
  append_all(index, entries);
  const std::uint64_t last_position = entries.back().position.value();
  EXPECT_TRUE(index.sanity_check(last_position + 1).ok());
  auto result = index.sanity_check(last_position);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.code(), errc::corrupt_batch);
  EXPECT_FALSE(index.sanity_check(0).ok());
}

TEST(OffsetIndex, LookupMatchesLinearScanOnRandomEntries) {
  temp_dir dir;
  constexpr std::size_t count = 5000;
  auto index = open_index(dir.file("random.index"), count * offset_index::entry_bytes);
  std::mt19937_64 rng(20240611);
  std::uniform_int_distribution<std::int64_t> offset_gap(1, 50);
  std::uniform_int_distribution<std::uint64_t> position_gap(1, 9000);
  std::vector<offset_index_entry> entries;
  offset next_offset = base + offset_gap(rng) - 1;
  file_pos next_position(position_gap(rng) - 1);
  for (std::size_t i = 0; i < count; ++i) {
    entries.push_back({next_offset, next_position});
    index.append(next_offset, next_position);
    next_offset = next_offset + offset_gap(rng);
    next_position = next_position + position_gap(rng);
  }
  ASSERT_TRUE(index.is_full());
  const auto linear_lookup = [&](offset target) -> std::optional<offset_index_entry> {
    std::optional<offset_index_entry> found;
    for (const auto& e : entries) {
      if (e.last_offset <= target) found = e;
    }
    return found;
  };
  std::uniform_int_distribution<std::int64_t> target(base.value() - 10, next_offset.value() + 10);
  for (int i = 0; i < 3000; ++i) {
    const offset t(target(rng));
    ASSERT_EQ(index.lookup(t), linear_lookup(t)) << "target " << t.value();
  }
  // Random truncations agree with counting the entries below the target.
  for (int i = 0; i < 20 && index.entries() > 0; ++i) {
    const offset t(target(rng));
    std::size_t below = 0;
    while (below < index.entries() && entries[below].last_offset < t) ++below;
    index.truncate_to(t);
    ASSERT_EQ(index.entries(), below) << "truncate_to " << t.value();
  }
}

TEST(OffsetIndex, FileBytesAreBigEndianEntries) {
  temp_dir dir;
  const std::string path = dir.file("bytes.index");
  {
    auto index = open_index(path);
    index.append(base + 0x01020304, file_pos(0x0A0B0C0D));
    index.append(base + 0x7FEDCBA9, file_pos(0xFFFFFFF0));
    ASSERT_TRUE(index.trim().ok());
  }
  const std::vector<std::uint8_t> expected = {0x01, 0x02, 0x03, 0x04, 0x0A, 0x0B, 0x0C, 0x0D,
                                              0x7F, 0xED, 0xCB, 0xA9, 0xFF, 0xFF, 0xFF, 0xF0};
  EXPECT_EQ(read_bytes(path), expected);
}

TEST(OffsetIndex, FlushWritesEntriesWithoutTrim) {
  temp_dir dir;
  const std::string path = dir.file("flush.index");
  auto index = open_index(path);
  index.append(base + 0x11, file_pos(0x22));
  ASSERT_TRUE(index.flush().ok());
  const auto bytes = read_bytes(path);
  ASSERT_EQ(bytes.size(), capacity_bytes);
  EXPECT_EQ(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + 8),
            (std::vector<std::uint8_t>{0, 0, 0, 0x11, 0, 0, 0, 0x22}));
}

TEST(OffsetIndex, MoveLeavesSourceClosed) {
  temp_dir dir;
  auto source = open_index(dir.file("move.index"));
  const auto entries = sample_entries(2);
  append_all(source, entries);
  offset_index moved(std::move(source));
  EXPECT_EQ(source.entries(), 0u);                 // NOLINT: checking the moved-from state
  EXPECT_EQ(source.flush().code(), errc::closed);  // NOLINT
  EXPECT_EQ(all_entries(moved), entries);

  auto other = open_index(dir.file("other.index"));
  other = std::move(moved);
  EXPECT_EQ(moved.entries(), 0u);                // NOLINT
  EXPECT_EQ(moved.trim().code(), errc::closed);  // NOLINT
  EXPECT_EQ(all_entries(other), entries);
  EXPECT_EQ(other.lookup(entries[1].last_offset), entries[1]);
}

// The file gets its full length at open, but as a hole: disk blocks come a chunk at a
// time as entries are appended (10,000 partitions must not cost 200 GiB of empty indexes).
TEST(OffsetIndex, NewFileIsSparseAndBlocksGrowWithEntries) {
  temp_dir dir;
  const std::string path = dir.file("sparse.index");
  constexpr std::size_t index_bytes_max = 10 * 1024 * 1024;
  constexpr std::size_t chunk = index_file::reserve_chunk_bytes;
  auto index = open_index(path, index_bytes_max);
  EXPECT_EQ(std::filesystem::file_size(path), index_bytes_max) << "length is preallocated";
  EXPECT_LT(allocated_bytes(path), chunk) << "but no blocks are";

  const auto entries = sample_entries(2 * chunk / offset_index::entry_bytes + 100);
  index.append(entries[0].last_offset, entries[0].position);
  const std::uint64_t after_one = allocated_bytes(path);
  EXPECT_GE(after_one, chunk) << "the first append reserves a chunk";
  EXPECT_LT(after_one, index_bytes_max / 16);

  append_all(index, {entries.begin() + 1, entries.end()});
  ASSERT_EQ(index.entries(), entries.size());
  const std::uint64_t after_all = allocated_bytes(path);
  EXPECT_GE(after_all, 3 * chunk) << "entries spill into a third chunk";
  EXPECT_GT(after_all, after_one);
  EXPECT_LT(after_all, index_bytes_max / 16);
  EXPECT_EQ(all_entries(index), entries);
}

// Reservations start where the last one (or the entries found at open) ended, one chunk
// at a time, and only when an append reaches past them.
TEST(OffsetIndex, ReservesChunksFromTheReservationEnd) {
  index_file_testing fake;
  using call = index_file_testing::reservation;
  temp_dir dir;
  const std::string path = dir.file("chunks.index");
  constexpr std::int64_t chunk = index_file::reserve_chunk_bytes;
  constexpr std::size_t per_chunk = chunk / offset_index::entry_bytes;
  const auto entries = sample_entries(per_chunk + 3);
  {
    auto index = open_index(path, 10 * 1024 * 1024);
    EXPECT_TRUE(fake.calls.empty()) << "open reserves nothing";
    append_all(index, {entries.begin(), entries.begin() + per_chunk});
    EXPECT_EQ(fake.calls, (std::vector<call>{{0, chunk}})) << "one chunk holds " << per_chunk;
    index.append(entries[per_chunk].last_offset, entries[per_chunk].position);
    EXPECT_EQ(fake.calls, (std::vector<call>{{0, chunk}, {chunk, chunk}}));

    // Trimming gives the blocks past the entries back; the next append reserves again
    // from the end of the entries up to the chunk boundary.
    ASSERT_TRUE(index.trim().ok());
    fake.calls.clear();
    index.append(entries[per_chunk + 1].last_offset, entries[per_chunk + 1].position);
    const std::int64_t trimmed_end = (per_chunk + 1) * offset_index::entry_bytes;
    EXPECT_EQ(fake.calls, (std::vector<call>{{trimmed_end, 2 * chunk - trimmed_end}}));
  }  // no trim: reopened as untrimmed
  fake.calls.clear();
  auto index = open_index(path, 10 * 1024 * 1024);
  ASSERT_EQ(index.entries(), per_chunk + 2);
  EXPECT_TRUE(fake.calls.empty());
  index.append(entries.back().last_offset, entries.back().position);
  const std::int64_t entries_end = (per_chunk + 2) * offset_index::entry_bytes;
  EXPECT_EQ(fake.calls, (std::vector<call>{{entries_end, 2 * chunk - entries_end}}))
      << "the entries found at open count as reserved";

  // A small file reserves up to its end, not a whole chunk.
  fake.calls.clear();
  auto small = open_index(dir.file("small.index"));
  small.append(entries[0].last_offset, entries[0].position);
  EXPECT_EQ(fake.calls, (std::vector<call>{{0, std::int64_t{capacity_bytes}}}));
}

// A full disk shows up as a failed reservation: the entry is skipped (the index is
// sparse), nothing is stored into unallocated pages, and appends resume once space is back.
TEST(OffsetIndex, FailedReservationSkipsTheEntry) {
  index_file_testing fake;
  temp_dir dir;
  const std::string path = dir.file("enospc.index");
  constexpr std::size_t per_chunk = index_file::reserve_chunk_bytes / offset_index::entry_bytes;
  const auto entries = sample_entries(per_chunk + 2);
  auto index = open_index(path, 10 * 1024 * 1024);

  fake.fail_with_errno = ENOSPC;
  index.append(entries[0].last_offset, entries[0].position);
  EXPECT_EQ(index.entries(), 0u) << "skipped";
  EXPECT_EQ(fake.calls.size(), 1u);
  EXPECT_LT(allocated_bytes(path), index_file::reserve_chunk_bytes);

  fake.fail_with_errno = 0;
  append_all(index, {entries.begin(), entries.begin() + per_chunk});
  EXPECT_EQ(index.entries(), per_chunk);

  fake.fail_with_errno = ENOSPC;
  index.append(entries[per_chunk].last_offset, entries[per_chunk].position);
  EXPECT_EQ(index.entries(), per_chunk) << "the entry past the reserved chunk is skipped";
  EXPECT_EQ(index.lookup(entries[per_chunk].last_offset), entries[per_chunk - 1])
      << "a lookup falls back to the entry before";

  fake.fail_with_errno = 0;
  index.append(entries[per_chunk + 1].last_offset, entries[per_chunk + 1].position);
  EXPECT_EQ(index.last_entry(), entries[per_chunk + 1]) << "appends resume";
  EXPECT_TRUE(index.sanity_check(1 << 30).ok());
}

// Opening a sealed segment's trimmed index reads it as it is: same length, same bytes,
// and no appends.
TEST(OffsetIndex, SealedOpenOfTrimmedFileChangesNothing) {
  temp_dir dir;
  const std::string path = dir.file("sealed.index");
  const auto entries = sample_entries(5);
  write_index(path, entries, /*trimmed=*/true);
  const auto before = read_bytes(path);
  ASSERT_EQ(before.size(), entries.size() * offset_index::entry_bytes);
  {
    auto index = open_sealed(path);
    EXPECT_TRUE(index.is_sealed());
    EXPECT_TRUE(index.is_full()) << "nobody appends to a sealed index";
    EXPECT_EQ(index.max_entries(), entries.size());
    EXPECT_EQ(std::filesystem::file_size(path), before.size()) << "not grown";
    EXPECT_EQ(all_entries(index), entries);
    for (const auto& e : entries) EXPECT_EQ(index.lookup(e.last_offset + 2), e);
    EXPECT_EQ(index.lookup(entries[0].last_offset - 1), std::nullopt);
    EXPECT_TRUE(index.sanity_check(1 << 20).ok());
    EXPECT_TRUE(index.trim().ok());
    EXPECT_TRUE(index.flush().ok());
    offset_index moved(std::move(index));
    EXPECT_EQ(all_entries(moved), entries);
  }
  EXPECT_EQ(read_bytes(path), before);

  // A missing or empty index of a sealed segment opens with no entries.
  const std::string missing = dir.file("missing.index");
  auto empty = open_sealed(missing);
  EXPECT_EQ(empty.entries(), 0u);
  EXPECT_EQ(empty.lookup(base + 100), std::nullopt);
  EXPECT_TRUE(empty.is_full());
  EXPECT_EQ(std::filesystem::file_size(missing), 0u);
}

// An untrimmed file (a crash before the seal) opened sealed: the recovery scan finds the
// entries, and the file keeps its length and bytes.
TEST(OffsetIndex, SealedOpenOfUntrimmedFileFindsEntriesWithoutChangingIt) {
  temp_dir dir;
  const std::string path = dir.file("crashed.index");
  const auto entries = sample_entries(7);
  {
    auto index = open_index(path);
    append_all(index, entries);
    index.truncate_to(entries[6].last_offset);  // a zeroed slot inside the scanned range
  }
  const std::vector<offset_index_entry> expected(entries.begin(), entries.begin() + 6);
  const auto before = read_bytes(path);
  ASSERT_EQ(before.size(), capacity_bytes);
  const std::uint64_t allocated_before = allocated_bytes(path);
  {
    auto index = open_sealed(path);
    EXPECT_EQ(all_entries(index), expected);
    EXPECT_TRUE(index.is_full());
    EXPECT_EQ(index.lookup(expected[3].last_offset + 1), expected[3]);
    EXPECT_EQ(index.lookup(entries[6].last_offset), expected[5]) << "dropped entry stays out";
    EXPECT_TRUE(index.trim().ok());
  }
  EXPECT_EQ(read_bytes(path), before) << "not trimmed, not grown, not written";
  EXPECT_EQ(allocated_bytes(path), allocated_before);
  // The same file still opens for appends afterwards.
  EXPECT_EQ(all_entries(open_index(path)), expected);
}

TEST(OffsetIndexDeathTest, SealedIndexRefusesTruncation) {
  temp_dir dir;
  const std::string path = dir.file("refuse.index");
  write_index(path, sample_entries(2), /*trimmed=*/true);
  auto index = open_sealed(path);
  EXPECT_DEATH(index.truncate_to(base), "sealed");
  EXPECT_DEATH(index.append(base + 1000, file_pos(1 << 20)), "full");
}

}  // namespace
}  // namespace sluice
