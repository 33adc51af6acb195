#include "engine/io/disk.h"

#include <fcntl.h>

#include <climits>

#include "engine/base/assert.h"

namespace sluice {

void uring_disk::write(int fd, file_pos position, std::span<const iovec> buffers,
                       completion* done) noexcept {
  SLUICE_ASSERT(fd >= 0, "uring_disk::write on a closed file");
  // The kernel rejects more than IOV_MAX vectors with EINVAL; a caller that builds such
  // an array has a bug, not an operating error.
  SLUICE_ASSERT(buffers.size() <= IOV_MAX, "uring_disk::write given more than IOV_MAX iovecs");
  io_uring_sqe* sqe = reactor_.prepare(done);
  io_uring_prep_writev(sqe, fd, buffers.data(), static_cast<unsigned>(buffers.size()),
                       position.value());
}

void uring_disk::sync(int fd, completion* done) noexcept {
  SLUICE_ASSERT(fd >= 0, "uring_disk::sync on a closed file");
  io_uring_sqe* sqe = reactor_.prepare(done);
  // Data and the metadata needed to read it back (the size), not timestamps: what
  // fdatasync(2) promises, and all a log needs to survive a crash.
  io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
}

void uring_disk::unlink(const char* path, completion* done) noexcept {
  io_uring_prep_unlinkat(reactor_.prepare(done), AT_FDCWD, path, 0);
}

}  // namespace sluice
