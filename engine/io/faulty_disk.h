// A disk that injects faults, for tests: it forwards to a real disk until told to fail.
//
// Failures are delivered like real ones: asynchronously, through the reactor (a NOP SQE
// whose completion reports the injected result), never from inside write() or sync().
// It can also hold syncs back (hold_syncs): a disk whose fdatasync takes as long as the
// test wants, to exercise what waits for durability (acks=-1 produce timeouts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <utility>

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
  // Stop injecting. Does not release held syncs.
  void heal() noexcept;
  // From now on, syncs are parked, not started: their completions do not run until
  // release_syncs(). Injected sync failures apply to syncs as they arrive, before holding.
  void hold_syncs() noexcept;
  // Stops holding and starts every parked sync on the inner disk, in arrival order; their
  // completions then arrive through the reactor as usual.
  void release_syncs() noexcept;
  std::size_t held_syncs() const noexcept { return held_.size(); }

  std::size_t writes() const noexcept { return writes_; }
  std::size_t syncs() const noexcept { return syncs_; }

  void write(int fd, file_pos position, std::span<const iovec> buffers,
             completion* done) noexcept override;
  void sync(int fd, completion* done) noexcept override;
  // Passed through (no failures are injected into deletions).
  void unlink(const char* path, completion* done) noexcept override { inner_.unlink(path, done); }
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
  bool holding_syncs_ = false;
  // Parked syncs, bounded by what the caller has in flight (each waits for its completion).
  std::deque<std::pair<int, completion*>> held_;
  std::deque<std::unique_ptr<injected>> injected_;  // owned until their NOP completes
};

}  // namespace sluice
