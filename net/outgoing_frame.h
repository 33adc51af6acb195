// One frame to send: the 4-byte big-endian size, then the payload, built from owned
// bytes and borrowed spans.
//
// A fetch response is mostly record batches that already sit in a memory-mapped segment.
// Copying them into a response buffer would cost a memcpy per byte served; instead the
// response borrows the span and holds a shared_ptr (to the mapped_file, say) that keeps
// the bytes alive until the frame has been sent. The connection then writes the frame
// with one sendmsg whose iovecs point at the owned header bytes and straight at the
// mapping: no copy in user space (the kernel still copies into the socket buffer; see
// connection.h on why SEND_ZC is not used).
//
// The size prefix is written by the frame itself (seal()), so handlers build only the
// payload. Owned bytes live in one growing buffer and are referenced by offset until the
// frame is sealed, so appending never leaves a dangling pointer.
//
// A value type, moved from the handler into the connection; not thread-safe.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace sluice {

class outgoing_frame {
 public:
  // The largest payload the 4-byte signed size prefix can describe.
  static constexpr std::size_t payload_bytes_max = 0x7fffffff;

  outgoing_frame();
  outgoing_frame(outgoing_frame&&) noexcept = default;
  outgoing_frame& operator=(outgoing_frame&&) noexcept = default;
  outgoing_frame(const outgoing_frame&) = delete;
  outgoing_frame& operator=(const outgoing_frame&) = delete;

  // Copies `bytes` to the end of the payload.
  void append(std::span<const std::byte> bytes);
  // Appends `bytes` without copying. `keep_alive` owns the memory and is released when
  // the frame is destroyed, which the connection does once the bytes are on the wire
  // (or the connection is closed). A null keep_alive means the caller guarantees the
  // bytes outlive the frame (static data).
  void append_borrowed(std::span<const std::byte> bytes, std::shared_ptr<const void> keep_alive);

  std::size_t payload_bytes() const noexcept { return wire_bytes_ - prefix_bytes; }
  // Size prefix plus payload: what goes on the wire.
  std::size_t wire_bytes() const noexcept { return wire_bytes_; }

  // Writes the size prefix. Called by the connection when the frame is queued; no
  // append may follow.
  void seal() noexcept;
  bool sealed() const noexcept { return sealed_; }

  // Describes the wire bytes from `skip` on as iovecs, at most out.size() of them.
  // Returns how many were written. Only for a sealed frame.
  std::size_t fill_iovecs(std::size_t skip, std::span<iovec> out) const noexcept;

 private:
  static constexpr std::size_t prefix_bytes = 4;

  // A run of wire bytes: borrowed (data != nullptr) or owned_[offset, offset + length).
  struct piece {
    const std::byte* data;
    std::size_t offset;
    std::size_t length;
  };

  std::vector<std::byte> owned_;
  std::vector<piece> pieces_;
  std::vector<std::shared_ptr<const void>> keep_alive_;
  std::size_t wire_bytes_ = prefix_bytes;
  bool sealed_ = false;
};

}  // namespace sluice
