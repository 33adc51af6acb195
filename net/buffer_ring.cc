#include "net/buffer_ring.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "engine/base/assert.h"
#include "engine/base/log.h"

namespace sluice {
namespace {

constexpr unsigned buffer_count_max = 32768;
// A buffer's length travels in a 32-bit field of the ring entry; keep well below it.
constexpr std::size_t buffer_bytes_max = 16 * 1024 * 1024;

void* map_anonymous(std::size_t bytes) noexcept {
  void* memory = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return memory == MAP_FAILED ? nullptr : memory;
}

}  // namespace

result<std::unique_ptr<buffer_ring>> buffer_ring::create(reactor& ring,
                                                         const buffer_ring_config& config) {
  const unsigned count = config.buffer_count;
  if (count == 0 || count > buffer_count_max || (count & (count - 1)) != 0) {
    return error(errc::invalid_argument, "buffer ring count must be a power of two up to 32768");
  }
  if (config.buffer_bytes == 0 || config.buffer_bytes > buffer_bytes_max) {
    return error(errc::invalid_argument, "buffer ring buffer size must be 1 byte to 16 MiB");
  }
  std::unique_ptr<buffer_ring> made(new (std::nothrow) buffer_ring(ring, config));
  if (!made) return error(errc::io_error, "out of memory creating the buffer ring", ENOMEM);
  made->delivered_.reset(new (std::nothrow) bool[count]());
  if (!made->delivered_)
    return error(errc::io_error, "out of memory creating the buffer ring", ENOMEM);

  // The ring shared with the kernel must be page aligned: mmap gives that.
  made->ring_mapping_bytes_ = count * sizeof(io_uring_buf);
  made->ring_ = static_cast<io_uring_buf_ring*>(map_anonymous(made->ring_mapping_bytes_));
  made->memory_bytes_ = count * config.buffer_bytes;
  made->memory_ = static_cast<std::byte*>(map_anonymous(made->memory_bytes_));
  if (made->ring_ == nullptr || made->memory_ == nullptr) {
    return error(errc::io_error, "could not map memory for the receive buffer ring", ENOMEM);
  }

  io_uring_buf_reg registration;
  std::memset(&registration, 0, sizeof(registration));
  registration.ring_addr = reinterpret_cast<std::uint64_t>(made->ring_);
  registration.ring_entries = count;
  registration.bgid = config.group_id;
  const int rc = io_uring_register_buf_ring(ring.ring(), &registration, 0);
  if (rc < 0) {
    SLUICE_LOG(error, "net", "registering the receive buffer ring failed: {} (needs Linux 5.19+)",
               std::strerror(-rc));
    return error_from_errno(rc, "io_uring refused the provided-buffer ring (needs Linux 5.19+)");
  }
  made->registered_ = true;

  io_uring_buf_ring_init(made->ring_);
  const int mask = io_uring_buf_ring_mask(count);
  for (unsigned id = 0; id < count; ++id) {
    io_uring_buf_ring_add(made->ring_, made->memory_ + id * config.buffer_bytes,
                          static_cast<unsigned>(config.buffer_bytes),
                          static_cast<unsigned short>(id), mask, static_cast<int>(id));
  }
  io_uring_buf_ring_advance(made->ring_, static_cast<int>(count));
  return made;
}

buffer_ring::~buffer_ring() {
  if (registered_) {
    // Fails only if the group is unknown, which would be a bug in create().
    const int rc = io_uring_unregister_buf_ring(reactor_.ring(), config_.group_id);
    SLUICE_ASSERT(rc == 0, "unregistering the receive buffer ring failed");
  }
  if (ring_ != nullptr) ::munmap(ring_, ring_mapping_bytes_);
  if (memory_ != nullptr) ::munmap(memory_, memory_bytes_);
}

std::span<const std::byte> buffer_ring::bytes(std::uint16_t id, std::size_t length) const noexcept {
  SLUICE_ASSERT(id < config_.buffer_count, "buffer id out of range");
  SLUICE_ASSERT(length <= config_.buffer_bytes, "received more than a buffer holds");
  return {memory_ + id * config_.buffer_bytes, length};
}

void buffer_ring::note_delivered(std::uint16_t id) noexcept {
  SLUICE_ASSERT(id < config_.buffer_count, "buffer id out of range");
  SLUICE_ASSERT(!delivered_[id], "the kernel delivered a buffer that was never recycled");
  delivered_[id] = true;
  ++held_;
}

void buffer_ring::recycle(std::uint16_t id) noexcept {
  SLUICE_ASSERT(id < config_.buffer_count, "buffer id out of range");
  SLUICE_ASSERT(delivered_[id], "recycling a buffer that is not held");
  delivered_[id] = false;
  --held_;
  io_uring_buf_ring_add(ring_, memory_ + id * config_.buffer_bytes,
                        static_cast<unsigned>(config_.buffer_bytes), id,
                        io_uring_buf_ring_mask(config_.buffer_count), 0);
  io_uring_buf_ring_advance(ring_, 1);
}

}  // namespace sluice
