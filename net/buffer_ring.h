// A provided-buffer ring (IOU_PBUF_RING): receive buffers the kernel picks from itself.
//
// With one buffer per connection, 10,000 idle connections would pin 10,000 buffers.
// With a provided-buffer ring the kernel takes a buffer from a shared pool only when data
// arrives, and the completion names the buffer it filled (IORING_CQE_F_BUFFER, id in the
// upper 16 bits of the flags). Memory for receives is then count x size for the whole
// reactor, whatever the number of connections.
//
// Buffers go back to the kernel through recycle(). Sluice recycles a buffer as soon as
// the completion that delivered it has been processed (frames are handed to the handler
// or copied out before that), so buffers are never held across reactor iterations and
// the pool only runs dry when one batch of completions fills all of it; then a receive
// ends with -ENOBUFS and is re-armed (see connection.h).
//
// Owned by the server (one ring per reactor); touched only by the reactor's thread.
// Lifecycle: create() registers the ring with the kernel; the destructor unregisters it
// and frees the memory, and may run only when no receive selecting from this group is in
// the ring.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "engine/base/result.h"
#include "engine/reactor/reactor.h"

namespace sluice {

struct buffer_ring_config {
  // A power of two, at most 32768 (the kernel's limit for a buffer ring).
  unsigned buffer_count = 256;
  std::size_t buffer_bytes = 16 * 1024;
  // The buffer group id receives name with sqe->buf_group. Unique per ring.
  std::uint16_t group_id = 0;
};

class buffer_ring {
 public:
  // Allocates the buffers and registers the ring. Fails with invalid_argument for a bad
  // configuration and io_error when the kernel refuses (older than 5.19, memlock limit).
  static result<std::unique_ptr<buffer_ring>> create(reactor& ring,
                                                     const buffer_ring_config& config);

  buffer_ring(const buffer_ring&) = delete;
  buffer_ring& operator=(const buffer_ring&) = delete;
  ~buffer_ring();

  std::uint16_t group_id() const noexcept { return config_.group_id; }
  std::size_t buffer_bytes() const noexcept { return config_.buffer_bytes; }
  unsigned buffer_count() const noexcept { return config_.buffer_count; }

  // The first `length` bytes of buffer `id`, as a completion reported them.
  std::span<const std::byte> bytes(std::uint16_t id, std::size_t length) const noexcept;

  // Gives buffer `id` back to the kernel. Every buffer a completion delivered must be
  // recycled exactly once.
  void recycle(std::uint16_t id) noexcept;

  // Buffers currently delivered and not yet recycled (0 between completions).
  unsigned held() const noexcept { return held_; }
  // Marks buffer `id` as delivered by a completion (for held() and a double-recycle check).
  void note_delivered(std::uint16_t id) noexcept;

 private:
  buffer_ring(reactor& ring, const buffer_ring_config& config) noexcept
      : reactor_(ring), config_(config) {}

  reactor& reactor_;
  buffer_ring_config config_;
  io_uring_buf_ring* ring_ = nullptr;  // shared with the kernel
  std::size_t ring_mapping_bytes_ = 0;
  std::byte* memory_ = nullptr;  // buffer_count x buffer_bytes
  std::size_t memory_bytes_ = 0;
  bool registered_ = false;
  unsigned held_ = 0;
  std::unique_ptr<bool[]> delivered_;  // per buffer: in user space right now
};

}  // namespace sluice
