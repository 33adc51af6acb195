// Shared pieces of the storage tests: a temporary directory, a reactor with a real and a
// fault-injecting disk, and batches built with batch_builder.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "engine/io/disk.h"
#include "engine/io/faulty_disk.h"
#include "engine/io/file.h"
#include "engine/reactor/reactor.h"
#include "engine/storage/partition_log.h"
#include "engine/storage/record_batch.h"

namespace sluice::test {

class temp_dir {
 public:
  temp_dir() {
    std::string pattern = "/tmp/sluice-test-XXXXXX";
    char* made = ::mkdtemp(pattern.data());
    SLUICE_ASSERT(made != nullptr, "mkdtemp failed");
    path_ = made;
  }
  ~temp_dir() { (void)remove_tree(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::span<const std::byte> as_bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// A batch owned by the test: stays alive while the log writes it.
struct owned_batch {
  std::vector<std::byte> bytes;
  std::span<std::byte> span() { return bytes; }
};

// Builds a batch of `count` records whose values say where they come from, so a read can
// check it got exactly the right records back.
inline owned_batch make_batch(int count, const std::string& tag, std::int64_t timestamp = 1000,
                              std::size_t value_bytes = 16,
                              compression_codec codec = compression_codec::none) {
  batch_builder builder(codec);
  std::vector<std::string> keys, values;
  keys.reserve(count);
  values.reserve(count);
  for (int i = 0; i < count; ++i) {
    keys.push_back(tag + "-k" + std::to_string(i));
    std::string value = tag + "-v" + std::to_string(i) + ":";
    value.resize(std::max(value.size(), value_bytes), 'x');
    values.push_back(value);
  }
  for (int i = 0; i < count; ++i) {
    batch_builder::record r;
    r.key = as_bytes(keys[i]);
    r.value = as_bytes(values[i]);
    r.timestamp = timestamp_ms(timestamp + i);
    builder.add(r);
  }
  auto finished = builder.finish();
  return owned_batch{std::vector<std::byte>(finished.begin(), finished.end())};
}

// Listener that records what the log reported.
struct recording_listener : log_listener {
  offset written{0};
  offset flushed{0};
  std::vector<std::pair<offset, errc>> failures;
  void on_written(offset w) noexcept override { written = w; }
  void on_flushed(offset f) noexcept override { flushed = f; }
  void on_append_failed(offset from, const error& e) noexcept override {
    failures.emplace_back(from, e.code());
  }
};

class storage_test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = reactor::create(reactor_config{256});
    ASSERT_TRUE(r.ok()) << r.failure().detail();
    reactor_ = std::move(*r);
    disk_ = std::make_unique<uring_disk>(*reactor_);
    faulty_ = std::make_unique<faulty_disk>(*disk_);
  }
  void TearDown() override {
    // Drain I/O before the logs and disks go away.
    reactor_->run_until([&] { return reactor_->in_flight() == 0; });
  }

  // Runs the reactor until `log` has nothing queued or in flight.
  void drain(partition_log& log) {
    ASSERT_TRUE(reactor_->run_until([&] { return log.idle(); })) << "log did not drain";
  }

  log_config small_config() {
    log_config c;
    c.segment_bytes = 64 * 1024;
    c.index_bytes_max = 4096;
    c.index_interval_bytes = 1024;
    c.retention_ms.reset();
    return c;
  }

  temp_dir dir_;
  std::unique_ptr<reactor> reactor_;
  std::unique_ptr<uring_disk> disk_;
  std::unique_ptr<faulty_disk> faulty_;
};

// Every batch in `bytes`, checked for CRC, as (base offset, records) pairs.
inline std::vector<batch_header> batches_in(std::span<const std::byte> bytes) {
  std::vector<batch_header> out;
  while (!bytes.empty()) {
    auto h = validate_batch(
        bytes.subspan(0, std::min(bytes.size(), decode_batch_header(bytes)->total_bytes())),
        batch_limits{std::size_t{1} << 30}, timestamp_ms(0));
    EXPECT_TRUE(h.ok()) << "a read returned a batch that does not validate: "
                        << (h.ok() ? "" : h.failure().detail());
    if (!h.ok()) break;
    out.push_back(*h);
    bytes = bytes.subspan(h->total_bytes());
  }
  return out;
}

}  // namespace sluice::test
