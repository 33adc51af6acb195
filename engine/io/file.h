// Synchronous file-system helpers for the rare operations off the append path: opening,
// sizing, mapping and deleting segment files, and writing checkpoint files atomically.
//
// These block. They run at start-up, during recovery, on a segment roll and during
// retention -- events measured in seconds or minutes apart, not per request. The data
// path (writes, syncs) goes through io_uring (engine/io/disk.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/base/result.h"

namespace sluice {

// An owned file descriptor, closed on destruction.
class file_handle {
 public:
  file_handle() noexcept = default;
  explicit file_handle(int fd) noexcept : fd_(fd) {}
  file_handle(file_handle&& other) noexcept : fd_(other.release()) {}
  file_handle& operator=(file_handle&& other) noexcept;
  file_handle(const file_handle&) = delete;
  file_handle& operator=(const file_handle&) = delete;
  ~file_handle() { reset(); }

  int get() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset() noexcept;

 private:
  int fd_ = -1;
};

// A read-only shared mapping of the first `size` bytes of a file. Readers hold it through
// a shared_ptr, so a segment deleted by retention stays readable until the last reader
// (a fetch being sent, say) lets go.
class mapped_file {
 public:
  // Maps `length` bytes of `fd` (which may be longer than the file: pages past the end of
  // file must not be touched until the file grows over them).
  static result<std::shared_ptr<mapped_file>> map(int fd, std::size_t length);
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file();

  const std::byte* data() const noexcept { return data_; }
  std::size_t length() const noexcept { return length_; }

 private:
  mapped_file(const std::byte* data, std::size_t length) noexcept : data_(data), length_(length) {}
  const std::byte* data_;
  std::size_t length_;
};

result<file_handle> open_file(const std::string& path, int flags, int mode = 0644);
result<std::uint64_t> file_size(int fd);
result<void> truncate_file(int fd, std::uint64_t size);
result<void> sync_file(int fd);
// fsync of a directory, so that files created or removed in it survive a power loss.
result<void> sync_directory(const std::string& path);
result<void> remove_file(const std::string& path);
result<void> rename_file(const std::string& from, const std::string& to);
result<void> make_directory(const std::string& path);
bool path_exists(const std::string& path) noexcept;
// The names (not paths) of the entries of a directory, without "." and "..".
result<std::vector<std::string>> list_directory(const std::string& path);
// Reads a whole small file (a checkpoint, a marker).
result<std::string> read_small_file(const std::string& path, std::size_t bytes_max);
// Writes `path` so that a crash leaves either the old or the new content, never a mix:
// write to path.tmp, fsync, rename over path, fsync the directory.
result<void> write_file_atomically(const std::string& path, std::span<const std::byte> bytes);
// Removes a directory and everything in it.
result<void> remove_tree(const std::string& path);

}  // namespace sluice
