// sluice-dump-log: dump output of logs and indexes, --verify on good segments and on each
// kind of damage (bad CRC, torn tail, offsets going backwards, index entries that do not
// match the log), --index-sanity-check, and usage errors.
//
// Segments are real files in a temporary directory: batches made with batch_builder and
// given offsets with assign_batch_offsets, indexes written by hand here in Kafka's
// big-endian entry format. Expected positions, offsets, sizes and CRCs are taken from the
// bytes the test itself wrote, never from the tool.
#include "tools/dump_log/dump_log.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/file.h"
#include "engine/storage/crc32c.h"
#include "engine/storage/record_batch.h"

namespace sluice {
namespace {

using bytes = std::vector<std::byte>;

bytes bytes_of(std::string_view text) {
  bytes out(text.size());
  if (!text.empty()) std::memcpy(out.data(), text.data(), text.size());
  return out;
}

template <typename T>
void append_big_endian(bytes& out, T value) {
  auto u = static_cast<std::make_unsigned_t<T>>(value);
  for (int shift = 8 * (static_cast<int>(sizeof(T)) - 1); shift >= 0; shift -= 8) {
    out.push_back(static_cast<std::byte>((u >> shift) & 0xff));
  }
}

template <typename T>
void write_big_endian(std::span<std::byte> out, std::size_t at, T value) {
  bytes encoded;
  append_big_endian(encoded, value);
  std::memcpy(out.data() + at, encoded.data(), encoded.size());
}

std::uint32_t read_big_endian_u32(std::span<const std::byte> in, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | std::to_integer<std::uint32_t>(in[at + i]);
  return v;
}

// Stores a fresh CRC32C after the test edited bytes inside the checked range.
void reseal_crc(std::span<std::byte> batch) {
  const std::uint32_t crc = crc32c(std::span<const std::byte>(batch).subspan(21));
  write_big_endian(batch, 17, crc);
}

void write_file(const std::string& path, std::span<const std::byte> content) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(content.data()),
             static_cast<std::streamsize>(content.size()));
  ASSERT_TRUE(file.good()) << path;
}

bytes read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  return bytes_of(text);
}

struct temp_dir {
  temp_dir() {
    char pattern[] = "/tmp/dump_log_test.XXXXXX";
    const char* made = ::mkdtemp(pattern);
    EXPECT_NE(made, nullptr);
    path = made != nullptr ? made : "/tmp";
  }
  ~temp_dir() { (void)remove_tree(path); }
  std::string file(std::string_view name) const { return path + "/" + std::string(name); }
  std::string path;
};

// ---- running the tool in-process ----------------------------------------------------------

struct tool_output {
  int status = -1;
  std::string out;
  std::string err;
};

tool_output run_tool(std::vector<std::string> args) {
  args.insert(args.begin(), "sluice-dump-log");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* out_buffer = nullptr;
  std::size_t out_size = 0;
  char* err_buffer = nullptr;
  std::size_t err_size = 0;
  std::FILE* out = ::open_memstream(&out_buffer, &out_size);
  std::FILE* err = ::open_memstream(&err_buffer, &err_size);
  tool_output result;
  result.status = run_dump_log(static_cast<int>(args.size()), argv.data(), out, err);
  std::fclose(out);
  std::fclose(err);
  result.out.assign(out_buffer, out_size);
  result.err.assign(err_buffer, err_size);
  std::free(out_buffer);
  std::free(err_buffer);
  return result;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return lines;
}

// Lines starting with `prefix`.
std::vector<std::string> lines_starting(const std::string& text, std::string_view prefix) {
  std::vector<std::string> selected;
  for (auto& line : lines_of(text)) {
    if (std::string_view(line).starts_with(prefix)) selected.push_back(line);
  }
  return selected;
}

std::size_t count_newlines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// ---- building segments ---------------------------------------------------------------

struct test_record {
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<std::pair<std::string, std::string>> headers;
  std::int64_t timestamp = 0;
};

struct producer {
  std::int64_t id = -1;
  std::int16_t epoch = -1;
  std::int32_t base_sequence = -1;
};

bytes make_batch(const std::vector<test_record>& records, offset base_offset,
                 compression_codec codec = compression_codec::none, producer p = {},
                 leader_epoch epoch = leader_epoch(4)) {
  batch_builder builder(codec);
  builder.set_producer(p.id, p.epoch, p.base_sequence);
  // The builder keeps spans; the backing bytes must outlive finish().
  std::vector<bytes> keep;
  std::vector<std::vector<header_view>> header_views;
  keep.reserve(records.size() * 8);
  header_views.reserve(records.size());
  for (const test_record& r : records) {
    batch_builder::record record;
    if (r.key) record.key = keep.emplace_back(bytes_of(*r.key));
    if (r.value) record.value = keep.emplace_back(bytes_of(*r.value));
    auto& views = header_views.emplace_back();
    for (const auto& [k, v] : r.headers) {
      header_view h;
      h.key = keep.emplace_back(bytes_of(k));
      h.value = std::span<const std::byte>(keep.emplace_back(bytes_of(v)));
      views.push_back(h);
    }
    record.headers = views;
    record.timestamp = timestamp_ms(r.timestamp);
    builder.add(record);
  }
  auto finished = builder.finish();
  bytes batch(finished.begin(), finished.end());
  assign_batch_offsets(batch, base_offset, epoch);
  return batch;
}

// A batch as written into a log, with what the test knows about it.
struct placed_batch {
  std::uint64_t position = 0;
  std::uint64_t size = 0;
  std::int64_t base = 0;
  std::int64_t last = 0;
  std::int64_t max_timestamp = -1;
  std::uint32_t crc = 0;
};

class log_image {
 public:
  placed_batch add(const bytes& batch, std::int64_t base, std::size_t record_count,
                   std::int64_t max_timestamp) {
    placed_batch placed;
    placed.position = bytes_.size();
    placed.size = batch.size();
    placed.base = base;
    placed.last = base + static_cast<std::int64_t>(record_count) - 1;
    placed.max_timestamp = max_timestamp;
    placed.crc = read_big_endian_u32(batch, 17);
    bytes_.insert(bytes_.end(), batch.begin(), batch.end());
    batches_.push_back(placed);
    return placed;
  }
  bytes& content() { return bytes_; }
  const std::vector<placed_batch>& batches() const { return batches_; }

 private:
  bytes bytes_;
  std::vector<placed_batch> batches_;
};

bytes offset_index_bytes(std::int64_t base,
                         const std::vector<std::pair<std::int64_t, std::uint64_t>>& entries,
                         std::size_t zero_slots = 0) {
  bytes out;
  for (const auto& [last_offset, position] : entries) {
    append_big_endian(out, static_cast<std::uint32_t>(last_offset - base));
    append_big_endian(out, static_cast<std::uint32_t>(position));
  }
  out.resize(out.size() + zero_slots * 8);
  return out;
}

bytes time_index_bytes(std::int64_t base,
                       const std::vector<std::pair<std::int64_t, std::int64_t>>& entries,
                       std::size_t zero_slots = 0) {
  bytes out;
  for (const auto& [timestamp, last_offset] : entries) {
    append_big_endian(out, timestamp);
    append_big_endian(out, static_cast<std::uint32_t>(last_offset - base));
  }
  out.resize(out.size() + zero_slots * 12);
  return out;
}

std::string segment_name(std::int64_t base, std::string_view suffix) {
  return fmt::format("{:020d}{}", base, suffix);
}

// Three batches starting at offset 0: plain records with headers, a batch from an
// idempotent producer, and a gzip batch whose max timestamp is below the first two.
class dump_log_test : public ::testing::Test {
 protected:
  void SetUp() override {
    first_ = image_.add(make_batch(first_records_, offset(0)), 0, 2, 1005);
    second_ = image_.add(
        make_batch(second_records_, offset(2), compression_codec::none, producer{7, 2, 10}), 2, 3,
        2002);
    third_ = image_.add(make_batch(third_records_, offset(5), compression_codec::gzip), 5, 2, 1500);
    log_path_ = dir_.file(segment_name(0, ".log"));
    index_path_ = dir_.file(segment_name(0, ".index"));
    time_index_path_ = dir_.file(segment_name(0, ".timeindex"));
    write_file(log_path_, image_.content());
  }

  // Indexes that match the log: an entry for the second and third batches (the engine
  // indexes a batch once index_interval_bytes have passed), time entries for the largest
  // timestamps so far; both preallocated with zero slots, as an untrimmed active segment.
  void write_good_indexes(std::size_t zero_slots = 0) {
    write_file(
        index_path_,
        offset_index_bytes(0, {{second_.last, second_.position}, {third_.last, third_.position}},
                           zero_slots));
    write_file(time_index_path_,
               time_index_bytes(0, {{1005, first_.last}, {2002, second_.last}}, zero_slots));
  }

  std::string expected_batch_line(const placed_batch& b, std::int64_t count, producer p,
                                  std::int32_t last_sequence, std::string_view codec) const {
    return fmt::format(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: "
        "{} producerEpoch: {} partitionLeaderEpoch: 4 isTransactional: false isControl: false "
        "deleteHorizonMs: none position: {} CreateTime: {} size: {} magic: 2 compresscodec: {} "
        "crc: {} isvalid: true",
        b.base, b.last, count, p.base_sequence, last_sequence, p.id, p.epoch, b.position,
        b.max_timestamp, b.size, codec, b.crc);
  }

  std::vector<test_record> first_records_ = {
      {"k0", "hello", {{"a", "1"}, {"b", "2"}}, 1000},
      {"k1", "world", {}, 1005},
  };
  std::vector<test_record> second_records_ = {
      {std::nullopt, "v2", {}, 2000},
      {"k3", std::nullopt, {}, 2002},
      {"k4", "v4", {{"trace", "x"}}, 2001},
  };
  std::vector<test_record> third_records_ = {
      {"k5", "zipped five", {}, 1400},
      {"k6", "zipped six", {}, 1500},
  };

  temp_dir dir_;
  log_image image_;
  placed_batch first_, second_, third_;
  std::string log_path_, index_path_, time_index_path_;
};

// ---- dump ---------------------------------------------------------------------------------

TEST_F(dump_log_test, DumpPrintsOneLinePerBatchWithKafkaFieldNames) {
  const auto result = run_tool({log_path_});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.err, "");
  const auto batch_lines = lines_starting(result.out, "baseOffset:");
  ASSERT_EQ(batch_lines.size(), 3u) << result.out;
  EXPECT_EQ(batch_lines[0], expected_batch_line(first_, 2, {}, -1, "none"));
  // Sequences of an idempotent producer: base 10 over three records ends at 12.
  EXPECT_EQ(batch_lines[1], expected_batch_line(second_, 3, {7, 2, 10}, 12, "none"));
  EXPECT_EQ(batch_lines[2], expected_batch_line(third_, 2, {}, -1, "gzip"));
  EXPECT_TRUE(lines_starting(result.out, "|").empty()) << "records printed without asking";
  EXPECT_EQ(lines_starting(result.out, "Dumping ")[0], "Dumping " + log_path_);
  EXPECT_EQ(lines_starting(result.out, "Log starting offset: ")[0], "Log starting offset: 0");
}

TEST_F(dump_log_test, PrintDataLogShowsEveryRecordWithKeyAndPayload) {
  const auto result = run_tool({"--print-data-log", log_path_});
  ASSERT_EQ(result.status, 0) << result.err;
  const auto records = lines_starting(result.out, "| offset:");
  const std::vector<std::string> expected = {
      "| offset: 0 CreateTime: 1000 keySize: 2 valueSize: 5 sequence: -1 headerKeys: [a,b] "
      "key: k0 payload: hello",
      "| offset: 1 CreateTime: 1005 keySize: 2 valueSize: 5 sequence: -1 headerKeys: [] "
      "key: k1 payload: world",
      // A null key has size -1 and no "key:"; a null value no "payload:".
      "| offset: 2 CreateTime: 2000 keySize: -1 valueSize: 2 sequence: 10 headerKeys: [] "
      "payload: v2",
      "| offset: 3 CreateTime: 2002 keySize: 2 valueSize: -1 sequence: 11 headerKeys: [] key: k3",
      "| offset: 4 CreateTime: 2001 keySize: 2 valueSize: 2 sequence: 12 headerKeys: [trace] "
      "key: k4 payload: v4",
      // Decompressed from gzip.
      "| offset: 5 CreateTime: 1400 keySize: 2 valueSize: 11 sequence: -1 headerKeys: [] "
      "key: k5 payload: zipped five",
      "| offset: 6 CreateTime: 1500 keySize: 2 valueSize: 10 sequence: -1 headerKeys: [] "
      "key: k6 payload: zipped six",
  };
  EXPECT_EQ(records, expected) << result.out;
  // Each batch line comes right before its records.
  const auto all = lines_of(result.out);
  const auto first_batch =
      std::find(all.begin(), all.end(), expected_batch_line(first_, 2, {}, -1, "none"));
  ASSERT_NE(first_batch, all.end());
  EXPECT_EQ(*(first_batch + 1), expected[0]);
}

TEST_F(dump_log_test, DeepIterationPrintsRecordsWithoutTheirData) {
  const auto result = run_tool({"--deep-iteration", log_path_});
  ASSERT_EQ(result.status, 0) << result.err;
  const auto records = lines_starting(result.out, "| offset:");
  ASSERT_EQ(records.size(), 7u);
  for (const auto& line : records) {
    EXPECT_EQ(line.find("key:"), std::string::npos) << line;
    EXPECT_EQ(line.find("payload:"), std::string::npos) << line;
  }
  EXPECT_EQ(records[0],
            "| offset: 0 CreateTime: 1000 keySize: 2 valueSize: 5 sequence: -1 headerKeys: [a,b]");
}

TEST(dump_log, BytesThatAreNotPrintableTextAreShownAsHex) {
  temp_dir dir;
  const std::string binary_key("\x00\xff", 2);
  bytes batch =
      make_batch({{binary_key, "line\nbreak", {}, 7}, {"h\xc3\xa9llo", "", {}, 8}}, offset(0));
  const std::string path = dir.file(segment_name(0, ".log"));
  write_file(path, batch);
  const auto result = run_tool({"--print-data-log", path});
  ASSERT_EQ(result.status, 0) << result.err;
  const auto records = lines_starting(result.out, "| offset:");
  ASSERT_EQ(records.size(), 2u) << result.out;
  // Hex spelled out by hand: 00 ff; "line\nbreak" = 6c 69 6e 65 0a 62 72 65 61 6b.
  EXPECT_NE(records[0].find(" key: 0x00ff payload: 0x6c696e650a627265616b"), std::string::npos)
      << records[0];
  // Valid UTF-8 stays text; an empty value is printed as nothing.
  EXPECT_TRUE(records[1].ends_with(" key: h\xc3\xa9llo payload: ")) << records[1];
}

TEST(dump_log, ControlBatchShowsItsTransactionMarker) {
  temp_dir dir;
  // End transaction marker: key = version 0, type 1 (commit); value = version 0, epoch 5.
  const std::string key("\x00\x00\x00\x01", 4);
  const std::string value("\x00\x00\x00\x00\x00\x05", 6);
  bytes batch =
      make_batch({{key, value, {}, 9}}, offset(3), compression_codec::none, producer{42, 1, -1});
  write_big_endian<std::int16_t>(batch, 21, 0x10 | 0x20);  // transactional, control
  reseal_crc(batch);
  const std::string path = dir.file(segment_name(3, ".log"));
  write_file(path, batch);
  const auto result = run_tool({"--deep-iteration", path});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_NE(result.out.find("isTransactional: true isControl: true"), std::string::npos)
      << result.out;
  const auto records = lines_starting(result.out, "| offset: 3 ");
  ASSERT_EQ(records.size(), 1u) << result.out;
  EXPECT_TRUE(records[0].ends_with(" endTxnMarker: COMMIT coordinatorEpoch: 5")) << records[0];
  EXPECT_EQ(run_tool({"--verify", path}).status, 0);
}

TEST_F(dump_log_test, DumpShowsBadCrcAsInvalidAndGoesOn) {
  image_.content()[second_.position + 70] ^= std::byte{0x01};
  write_file(log_path_, image_.content());
  const auto result = run_tool({log_path_});
  ASSERT_EQ(result.status, 0) << result.err;
  const auto batch_lines = lines_starting(result.out, "baseOffset:");
  ASSERT_EQ(batch_lines.size(), 3u);
  EXPECT_TRUE(batch_lines[0].ends_with("isvalid: true"));
  EXPECT_TRUE(batch_lines[1].ends_with("isvalid: false")) << batch_lines[1];
  EXPECT_TRUE(batch_lines[2].ends_with("isvalid: true"));
}

TEST_F(dump_log_test, DumpReportsATornTailAndStops) {
  auto& content = image_.content();
  content.resize(third_.position + 30);
  write_file(log_path_, content);
  const auto result = run_tool({log_path_});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(lines_starting(result.out, "baseOffset:").size(), 2u);
  const auto found = lines_starting(result.out, "Found ");
  ASSERT_EQ(found.size(), 1u) << result.out;
  EXPECT_TRUE(found[0].starts_with(
      fmt::format("Found 30 invalid bytes at the end of {} from position {}: truncated", log_path_,
                  third_.position)))
      << found[0];
}

TEST_F(dump_log_test, DumpsIndexEntriesAndReportsPreallocatedZeroTail) {
  write_good_indexes(/*zero_slots=*/5);
  const auto offsets = run_tool({index_path_});
  ASSERT_EQ(offsets.status, 0) << offsets.err;
  EXPECT_EQ(lines_starting(offsets.out, "offset:"),
            (std::vector<std::string>{
                fmt::format("offset: {} position: {}", second_.last, second_.position),
                fmt::format("offset: {} position: {}", third_.last, third_.position)}))
      << offsets.out;
  EXPECT_EQ(lines_starting(offsets.out, "unused:").size(), 1u);
  EXPECT_TRUE(lines_starting(offsets.out, "unused:")[0].starts_with("unused: 5 zero entries"));

  const auto times = run_tool({time_index_path_});
  ASSERT_EQ(times.status, 0) << times.err;
  EXPECT_EQ(lines_starting(times.out, "timestamp:"),
            (std::vector<std::string>{fmt::format("timestamp: 1005 offset: {}", first_.last),
                                      fmt::format("timestamp: 2002 offset: {}", second_.last)}))
      << times.out;
  EXPECT_TRUE(lines_starting(times.out, "unused:")[0].starts_with("unused: 5 zero entries"));
}

TEST(dump_log, IndexEntriesAreRelativeToTheBaseOffsetInTheName) {
  temp_dir dir;
  // A trimmed index whose one entry is all zero is (base offset, position 0) ...
  const std::string single = dir.file(segment_name(100, ".index"));
  write_file(single, offset_index_bytes(100, {{100, 0}}));
  auto result = run_tool({single});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(lines_starting(result.out, "offset:"),
            std::vector<std::string>{"offset: 100 position: 0"});
  // ... while a longer all-zero file is an empty preallocated index.
  const std::string empty = dir.file(segment_name(200, ".index"));
  write_file(empty, offset_index_bytes(200, {}, 4));
  result = run_tool({empty});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_TRUE(lines_starting(result.out, "offset:").empty()) << result.out;
  EXPECT_TRUE(lines_starting(result.out, "unused:")[0].starts_with("unused: 4 zero entries"));
}

TEST_F(dump_log_test, ToolNeverChangesTheFilesItReads) {
  write_good_indexes(/*zero_slots=*/7);
  const bytes log_before = read_file(log_path_);
  const bytes index_before = read_file(index_path_);
  const bytes time_before = read_file(time_index_path_);
  EXPECT_EQ(run_tool({"--print-data-log", log_path_, index_path_, time_index_path_}).status, 0);
  EXPECT_EQ(run_tool({"--verify", "--deep-iteration", log_path_}).status, 0);
  EXPECT_EQ(run_tool({"--index-sanity-check", index_path_, time_index_path_}).status, 0);
  // The untrimmed indexes keep their preallocated zero tail: nothing trimmed or regrown.
  EXPECT_EQ(read_file(log_path_), log_before);
  EXPECT_EQ(read_file(index_path_), index_before);
  EXPECT_EQ(read_file(time_index_path_), time_before);
}

// ---- --verify on good segments ------------------------------------------------------------

TEST_F(dump_log_test, VerifyPassesAGoodSegmentWithItsIndexes) {
  write_good_indexes(/*zero_slots=*/3);
  for (const char* depth : {"--verify", "--deep-iteration"}) {
    std::vector<std::string> args = {"--verify", log_path_};
    if (std::string_view(depth) != "--verify") args.push_back(depth);
    const auto result = run_tool(args);
    ASSERT_EQ(result.status, 0) << result.err;
    EXPECT_EQ(result.err, "");
    // 3 batches, 2 + 3 + 2 records, 2 offset index + 2 time index entries (padding not
    // counted). Nothing else is printed.
    EXPECT_EQ(result.out,
              fmt::format("verified 3 batches, 7 records, 4 index entries in {}\n", log_path_));
  }
}

TEST_F(dump_log_test, VerifyOfAnIndexFileChecksItAgainstItsLog) {
  write_good_indexes();
  const auto result = run_tool({"--verify", "--files", index_path_ + "," + time_index_path_});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.out, fmt::format("verified 3 batches, 7 records, 2 index entries in {}\n"
                                    "verified 3 batches, 7 records, 2 index entries in {}\n",
                                    index_path_, time_index_path_));
}

TEST_F(dump_log_test, IndexSanityCheckPassesGoodIndexes) {
  write_good_indexes(2);
  const auto result = run_tool({"--index-sanity-check", index_path_, time_index_path_});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(lines_starting(result.out, "/"),
            (std::vector<std::string>{index_path_ + " passed sanity check.",
                                      time_index_path_ + " passed sanity check."}));
}

// ---- --verify on damage: each names the byte where it is --------------------------------

std::string problem_suffix(std::uint64_t byte, std::int64_t at_offset) {
  return fmt::format(" at byte {} (offset {})\n", byte, at_offset);
}

void expect_one_problem(const tool_output& result, const std::string& path, std::string_view words,
                        const std::string& where) {
  EXPECT_EQ(result.status, 1) << result.out;
  EXPECT_EQ(count_newlines(result.err), 1u) << result.err;
  EXPECT_TRUE(result.err.starts_with("sluice-dump-log: " + path + ": ")) << result.err;
  EXPECT_NE(result.err.find(words), std::string::npos) << result.err;
  EXPECT_TRUE(result.err.ends_with(where)) << result.err << " should end with " << where;
  EXPECT_EQ(result.out.find("verified"), std::string::npos) << result.out;
}

TEST_F(dump_log_test, VerifyFindsAFlippedByteByItsCrc) {
  image_.content()[second_.position + 70] ^= std::byte{0x40};
  write_file(log_path_, image_.content());
  expect_one_problem(run_tool({"--verify", log_path_}), log_path_, "CRC32C mismatch",
                     problem_suffix(second_.position, second_.base));
}

TEST_F(dump_log_test, VerifyFindsATruncatedBatch) {
  auto& content = image_.content();
  content.resize(third_.position + 70);
  write_file(log_path_, content);
  expect_one_problem(run_tool({"--verify", log_path_}), log_path_, "truncated batch",
                     problem_suffix(third_.position, third_.base));
}

TEST_F(dump_log_test, VerifyFindsATruncatedBatchHeader) {
  auto& content = image_.content();
  content.resize(third_.position + 10);
  write_file(log_path_, content);
  // The header cannot be read, so the offset named is the one the next batch should have.
  expect_one_problem(run_tool({"--verify", log_path_}), log_path_, "truncated batch header",
                     problem_suffix(third_.position, second_.last + 1));
}

TEST_F(dump_log_test, VerifyFindsOffsetsGoingBackwards) {
  // The third batch claims offsets 3-4, inside the second batch's 2-4.
  assign_batch_offsets(std::span(image_.content()).subspan(third_.position, third_.size), offset(3),
                       leader_epoch(4));
  write_file(log_path_, image_.content());
  expect_one_problem(run_tool({"--verify", log_path_}), log_path_,
                     "does not follow the previous batch's last offset 4",
                     problem_suffix(third_.position, 3));
}

TEST_F(dump_log_test, VerifyFindsABatchBelowTheSegmentBaseOffset) {
  const std::string path = dir_.file(segment_name(1, ".log"));
  write_file(path, image_.content());
  expect_one_problem(run_tool({"--verify", path}), path, "below the segment's base offset 1",
                     problem_suffix(0, 0));
}

TEST_F(dump_log_test, VerifyFindsAWrongMagic) {
  image_.content()[first_.position + 16] = std::byte{1};  // magic lies outside the CRC
  write_file(log_path_, image_.content());
  expect_one_problem(run_tool({"--verify", log_path_}), log_path_, "magic 1 is not 2",
                     problem_suffix(0, 0));
}

TEST_F(dump_log_test, DeepIterationVerifiesRecordsBehindAGoodCrc) {
  // Claim three records where two are encoded, with a CRC that matches the lie.
  auto batch = std::span(image_.content()).subspan(first_.position, first_.size);
  write_big_endian<std::int32_t>(batch, 23, 2);  // last_offset_delta
  write_big_endian<std::int32_t>(batch, 57, 3);  // records_count
  reseal_crc(batch);
  // Keep offsets increasing: the first batch now covers 0-2, so move the others up by one.
  assign_batch_offsets(std::span(image_.content()).subspan(second_.position, second_.size),
                       offset(3), leader_epoch(4));
  assign_batch_offsets(std::span(image_.content()).subspan(third_.position, third_.size), offset(6),
                       leader_epoch(4));
  write_file(log_path_, image_.content());
  const auto shallow = run_tool({"--verify", log_path_});
  EXPECT_EQ(shallow.status, 0) << shallow.err;
  expect_one_problem(run_tool({"--verify", "--deep-iteration", log_path_}), log_path_,
                     "records do not decode", problem_suffix(0, 0));
}

TEST_F(dump_log_test, VerifyFindsAnIndexEntryInsideABatch) {
  const std::uint64_t inside = third_.position + 5;
  write_file(index_path_,
             offset_index_bytes(0, {{second_.last, second_.position}, {third_.last, inside}}));
  // Reported against the index file, at entry 1 (byte 8), naming the log position.
  const auto result = run_tool({"--verify", log_path_});
  expect_one_problem(result, index_path_,
                     fmt::format("names log position {}, which is inside the batch that starts "
                                 "at log position {}",
                                 inside, third_.position),
                     problem_suffix(8, third_.last));
}

TEST_F(dump_log_test, VerifyFindsAnIndexEntryNamingTheWrongOffset) {
  write_file(index_path_, offset_index_bytes(0, {{second_.base, second_.position}}));
  expect_one_problem(run_tool({"--verify", log_path_}), index_path_,
                     fmt::format("whose last offset is {}", second_.last),
                     problem_suffix(0, second_.base));
}

TEST_F(dump_log_test, VerifyFindsAnIndexEntryPastTheEndOfTheLog) {
  write_file(index_path_, offset_index_bytes(0, {{second_.last, second_.position},
                                                 {third_.last + 5, image_.content().size()}}));
  expect_one_problem(run_tool({"--verify", log_path_}), index_path_, "past the end of the log",
                     problem_suffix(8, third_.last + 5));
}

TEST_F(dump_log_test, VerifyFindsIndexEntriesThatDoNotIncrease) {
  write_file(index_path_, offset_index_bytes(0, {{third_.last, third_.position},
                                                 {second_.last, second_.position}}));
  const auto result = run_tool({"--verify", log_path_});
  expect_one_problem(result, index_path_, "entries must strictly increase",
                     problem_suffix(8, second_.last));
  // --index-sanity-check finds the same without the log's batches.
  expect_one_problem(run_tool({"--index-sanity-check", index_path_}), index_path_,
                     "entries must strictly increase", problem_suffix(8, second_.last));
}

TEST_F(dump_log_test, VerifyFindsATimeIndexTimestampThatIsNotTheLargestSoFar) {
  write_good_indexes();
  // The third batch's max timestamp (1500) is below the segment's largest so far (2002).
  write_file(time_index_path_,
             time_index_bytes(0, {{1005, first_.last}, {2002, second_.last}, {2003, third_.last}}));
  expect_one_problem(run_tool({"--verify", log_path_}), time_index_path_,
                     "the largest timestamp of the segment up to the batch holding offset",
                     problem_suffix(24, third_.last));
}

TEST_F(dump_log_test, VerifyFindsAnIndexFileOfPartialLength) {
  bytes index = offset_index_bytes(0, {{second_.last, second_.position}});
  index.resize(index.size() + 3, std::byte{1});
  write_file(index_path_, index);
  const auto result = run_tool({"--verify", log_path_});
  EXPECT_EQ(result.status, 1);
  EXPECT_EQ(result.err, "sluice-dump-log: " + index_path_ +
                            ": file length 11 is not a multiple of the 8-byte entry at byte 8\n");
}

TEST_F(dump_log_test, VerifyChecksEveryFileAndFailsIfAnyFails) {
  temp_dir other;
  const std::string bad = other.file(segment_name(0, ".log"));
  bytes damaged = image_.content();
  damaged[first_.position + 30] ^= std::byte{0xff};
  write_file(bad, damaged);
  const auto result = run_tool({"--verify", bad, log_path_});
  EXPECT_EQ(result.status, 1);
  EXPECT_TRUE(result.err.starts_with("sluice-dump-log: " + bad + ": CRC32C mismatch"))
      << result.err;
  EXPECT_EQ(result.out,
            fmt::format("verified 3 batches, 7 records, 0 index entries in {}\n", log_path_));
}

// Every byte a batch protects -- batch_length, magic, CRC and everything the CRC covers --
// is caught by --verify when damaged, and neither the dump nor the check trips on any
// damage (the sanitizer build runs this too). Only base_offset and partition_leader_epoch
// lie outside the CRC; damage there is found only when it breaks offset order.
TEST_F(dump_log_test, EveryProtectedByteIsCheckedAndNoDamageCrashesTheTool) {
  const bytes good = image_.content();
  for (std::size_t at = 0; at < good.size(); ++at) {
    bytes damaged = good;
    damaged[at] ^= std::byte{0x5a};
    write_file(log_path_, damaged);
    const auto verify = run_tool({"--verify", "--deep-iteration", log_path_});
    const auto dump = run_tool({"--print-data-log", log_path_});
    ASSERT_EQ(dump.status, 0) << "byte " << at << ": " << dump.err;
    ASSERT_TRUE(verify.status == 0 || verify.status == 1) << "byte " << at;
    const placed_batch* holder = nullptr;
    for (const auto& b : image_.batches()) {
      if (at >= b.position && at < b.position + b.size) holder = &b;
    }
    ASSERT_NE(holder, nullptr);
    const std::size_t within = at - holder->position;
    const bool unprotected = within < 8 || (within >= 12 && within < 16);
    if (!unprotected) {
      EXPECT_EQ(verify.status, 1) << "damage at byte " << at << " went unnoticed";
      EXPECT_NE(verify.err.find(fmt::format(" at byte {} ", holder->position)), std::string::npos)
          << "byte " << at << ": " << verify.err;
    }
  }
}

// The byte position named in a --verify problem line.
std::optional<std::uint64_t> reported_byte(const std::string& err) {
  const auto at = err.rfind(" at byte ");
  if (at == std::string::npos) return std::nullopt;
  return std::stoull(err.substr(at + std::string_view(" at byte ").size()));
}

// Any damaged byte of either index, entries or zero padding alike, fails --verify near the
// entry holding it, and no damage trips the dump or the sanity check.
TEST_F(dump_log_test, EveryDamagedIndexByteIsFound) {
  write_good_indexes(/*zero_slots=*/2);
  for (const auto& [path, entry_bytes] :
       {std::pair{index_path_, std::size_t{8}}, std::pair{time_index_path_, std::size_t{12}}}) {
    const bytes good = read_file(path);
    for (std::size_t at = 0; at < good.size(); ++at) {
      bytes damaged = good;
      damaged[at] ^= std::byte{0x5a};
      write_file(path, damaged);
      const auto verify = run_tool({"--verify", log_path_});
      EXPECT_EQ(verify.status, 1) << path << " byte " << at;
      // Order is a relation between neighbours: damage that breaks it may be reported at the
      // next entry (a first entry grown too large) or at the one before (a zero slot between
      // the entries and a damaged padding slot), never further away.
      const auto reported = reported_byte(verify.err);
      ASSERT_TRUE(reported.has_value()) << verify.err;
      const std::size_t entry = at / entry_bytes;
      const std::size_t reported_entry = *reported / entry_bytes;
      EXPECT_EQ(*reported % entry_bytes, 0u) << verify.err;
      EXPECT_LE(reported_entry, entry + 1) << path << " byte " << at << ": " << verify.err;
      EXPECT_GE(reported_entry + 1, entry) << path << " byte " << at << ": " << verify.err;
      const auto dump = run_tool({path});
      EXPECT_EQ(dump.status, 0) << dump.err;
      const auto sanity = run_tool({"--index-sanity-check", path});
      EXPECT_TRUE(sanity.status == 0 || sanity.status == 1);
    }
    write_file(path, good);
  }
}

// A log cut anywhere but at a batch boundary fails --verify at the torn batch.
TEST_F(dump_log_test, EveryTruncationInsideABatchIsFound) {
  const bytes good = image_.content();
  for (std::size_t length = 0; length <= good.size(); ++length) {
    write_file(log_path_, std::span(good).first(length));
    const auto verify = run_tool({"--verify", log_path_});
    std::optional<std::uint64_t> torn_batch;
    for (const auto& b : image_.batches()) {
      if (length > b.position && length < b.position + b.size) torn_batch = b.position;
    }
    if (torn_batch) {
      EXPECT_EQ(verify.status, 1) << "cut at " << length;
      EXPECT_NE(verify.err.find(fmt::format(" at byte {} ", *torn_batch)), std::string::npos)
          << verify.err;
    } else {
      EXPECT_EQ(verify.status, 0) << "cut at " << length << ": " << verify.err;
    }
  }
}

// ---- usage errors: one line, exit 2 --------------------------------------------------------

void expect_usage_error(const tool_output& result, std::string_view words) {
  EXPECT_EQ(result.status, 2);
  EXPECT_EQ(count_newlines(result.err), 1u) << result.err;
  EXPECT_TRUE(result.err.starts_with("sluice-dump-log: ")) << result.err;
  EXPECT_NE(result.err.find(words), std::string::npos) << result.err;
  EXPECT_EQ(result.out, "");
}

TEST_F(dump_log_test, UsageErrorsExitWithTwo) {
  expect_usage_error(run_tool({}), "no files");
  expect_usage_error(run_tool({"--verify"}), "no files");
  expect_usage_error(run_tool({"--bogus", log_path_}), "unknown option '--bogus'");
  expect_usage_error(run_tool({"--files"}), "--files needs");
  expect_usage_error(run_tool({"--files", log_path_ + ",,x"}), "empty file name");
  const std::string missing = dir_.file(segment_name(9, ".log"));
  // A missing file is found before anything is printed for the good one.
  expect_usage_error(run_tool({log_path_, missing}), missing + ": no such file");
  const std::string other = dir_.file("notes.txt");
  write_file(other, bytes_of("hi"));
  expect_usage_error(run_tool({other}), "not a segment file");
  const std::string unnamed = dir_.file("copy.index");
  write_file(unnamed, offset_index_bytes(0, {{1, 0}}));
  expect_usage_error(run_tool({unnamed}), "base offset");
  expect_usage_error(run_tool({dir_.path + "/.log"}), "no such file");
}

TEST_F(dump_log_test, FilesOptionAndHelp) {
  write_good_indexes();
  const auto result = run_tool({"--files=" + log_path_ + "," + index_path_});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(lines_starting(result.out, "Dumping "),
            (std::vector<std::string>{"Dumping " + log_path_, "Dumping " + index_path_}));
  const auto help = run_tool({"--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_TRUE(help.out.starts_with("usage: sluice-dump-log")) << help.out;
}

TEST(dump_log, EmptyLogVerifiesAsEmpty) {
  temp_dir dir;
  const std::string path = dir.file(segment_name(0, ".log"));
  write_file(path, {});
  const auto result = run_tool({"--verify", path});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.out,
            fmt::format("verified 0 batches, 0 records, 0 index entries in {}\n", path));
}

}  // namespace
}  // namespace sluice
