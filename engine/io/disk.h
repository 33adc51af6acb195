// The narrow interface through which storage does its asynchronous file I/O.
//
// Production code uses uring_disk (io_uring through the reactor). Tests swap in
// faulty_disk (engine/io/faulty_disk.h) to inject ENOSPC, EIO and short writes without a
// real full disk. Only the data path is here -- writes and syncs, the operations on the
// append path -- and the unlink of deleted segments, which can take tens of milliseconds.
// Opening, sizing, renaming and the other deletions happen rarely (segment roll,
// recovery) and go through engine/io/file.h.
//
// Contract for every operation: exactly one call of done->complete(res, 0) later, from
// the reactor's run_once(), never from inside the call that started it. `res` is the
// number of bytes written (which may be fewer than asked: the caller resubmits the rest)
// or 0 for a sync, or a negative errno.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>

#include "engine/base/types.h"
#include "engine/reactor/reactor.h"

namespace sluice {

class disk {
 public:
  virtual ~disk() = default;
  // Writes the buffers, in order, at `position` of `fd`. The iovec array and the bytes it
  // points to must stay valid until `done` completes.
  virtual void write(int fd, file_pos position, std::span<const iovec> buffers,
                     completion* done) noexcept = 0;
  // fdatasync(fd).
  virtual void sync(int fd, completion* done) noexcept = 0;
  // unlink(path). `path` must stay valid until `done` completes. Deleting a large file
  // frees its blocks and page cache, tens of milliseconds for a segment: off the reactor
  // thread, as retention deletes segments while the partition serves.
  virtual void unlink(const char* path, completion* done) noexcept = 0;
  // The reactor that drives the completions.
  virtual sluice::reactor& reactor() noexcept = 0;
};

class uring_disk final : public disk {
 public:
  explicit uring_disk(sluice::reactor& r) noexcept : reactor_(r) {}
  void write(int fd, file_pos position, std::span<const iovec> buffers,
             completion* done) noexcept override;
  void sync(int fd, completion* done) noexcept override;
  void unlink(const char* path, completion* done) noexcept override;
  sluice::reactor& reactor() noexcept override { return reactor_; }

 private:
  sluice::reactor& reactor_;
};

}  // namespace sluice
