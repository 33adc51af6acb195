// A disk that injects faults, for tests: it forwards to a real disk until told to fail.
//
// Failures are delivered like real ones: asynchronously, through the reactor (a NOP SQE
// whose completion reports the injected result), never from inside write() or sync().
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>

#include "engine/io/disk.h"

namespace sluice {

class faulty_disk final : public disk {
 public:
  // Defined out of line: the queue of `injected` needs that type complete.
  explicit faulty_disk(disk& inner) noexcept;
  ~faulty_disk() override;

  // The next `count` writes fail with `negative_errno` and write nothing.
  void fail_writes(int negative_errno, std::size_t count = 1) noexcept;
  // The next `count` syncs fail with `negative_errno`.
  void fail_syncs(int negative_errno, std::size_t count = 1) noexcept;
  // The next write writes only its first `bytes` bytes (at least 1 if asked to write
  // any) and reports that short count, as a real short write would.
  void short_write_next(std::size_t bytes) noexcept;
  // Stop injecting.
  void heal() noexcept;

  std::size_t writes() const noexcept { return writes_; }
  std::size_t syncs() const noexcept { return syncs_; }

  void write(int fd, file_pos position, std::span<const iovec> buffers,
             completion* done) noexcept override;
  void sync(int fd, completion* done) noexcept override;
  sluice::reactor& reactor() noexcept override { return inner_.reactor(); }

 private:
  struct injected;  // a NOP completion carrying the injected result
  void deliver(completion* done, int res) noexcept;

  disk& inner_;
  std::size_t writes_ = 0;
  std::size_t syncs_ = 0;
  int write_errno_ = 0;
  std::size_t write_failures_left_ = 0;
  int sync_errno_ = 0;
  std::size_t sync_failures_left_ = 0;
  std::optional<std::size_t> short_write_bytes_;
  std::deque<std::unique_ptr<injected>> injected_;  // owned until their NOP completes
};

}  // namespace sluice
