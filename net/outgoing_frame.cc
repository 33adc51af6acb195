#include "net/outgoing_frame.h"

#include <utility>

#include "engine/base/assert.h"

namespace sluice {

outgoing_frame::outgoing_frame() {
  owned_.resize(prefix_bytes);
  pieces_.push_back(piece{nullptr, 0, prefix_bytes});
}

void outgoing_frame::append(std::span<const std::byte> bytes) {
  SLUICE_ASSERT(!sealed_, "append to a sealed frame");
  if (bytes.empty()) return;
  const std::size_t offset = owned_.size();
  owned_.insert(owned_.end(), bytes.begin(), bytes.end());
  piece& last = pieces_.back();
  // Consecutive owned appends are contiguous in owned_: one iovec covers them.
  if (last.data == nullptr && last.offset + last.length == offset) {
    last.length += bytes.size();
  } else {
    pieces_.push_back(piece{nullptr, offset, bytes.size()});
  }
  wire_bytes_ += bytes.size();
}

void outgoing_frame::append_borrowed(std::span<const std::byte> bytes,
                                     std::shared_ptr<const void> keep_alive) {
  SLUICE_ASSERT(!sealed_, "append to a sealed frame");
  if (keep_alive) keep_alive_.push_back(std::move(keep_alive));
  if (bytes.empty()) return;
  pieces_.push_back(piece{bytes.data(), 0, bytes.size()});
  wire_bytes_ += bytes.size();
}

void outgoing_frame::seal() noexcept {
  SLUICE_ASSERT(!sealed_, "frame sealed twice");
  const std::size_t payload = payload_bytes();
  SLUICE_ASSERT(payload <= payload_bytes_max, "frame payload does not fit the size prefix");
  const auto size = static_cast<std::uint32_t>(payload);
  owned_[0] = static_cast<std::byte>(size >> 24);
  owned_[1] = static_cast<std::byte>(size >> 16);
  owned_[2] = static_cast<std::byte>(size >> 8);
  owned_[3] = static_cast<std::byte>(size);
  sealed_ = true;
}

std::size_t outgoing_frame::fill_iovecs(std::size_t skip, std::span<iovec> out) const noexcept {
  SLUICE_ASSERT(sealed_, "iovecs of an unsealed frame");
  std::size_t written = 0;
  for (const piece& p : pieces_) {
    if (written == out.size()) break;
    if (skip >= p.length) {
      skip -= p.length;
      continue;
    }
    const std::byte* base = p.data != nullptr ? p.data : owned_.data() + p.offset;
    // iovec wants a non-const pointer; sendmsg only reads through it.
    out[written].iov_base = const_cast<std::byte*>(base + skip);
    out[written].iov_len = p.length - skip;
    ++written;
    skip = 0;
  }
  return written;
}

}  // namespace sluice
