#include "engine/io/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace sluice {
namespace {

error last_errno(const char* detail) noexcept {
  return error_from_errno(-errno, detail);
}

std::string parent_directory(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

file_handle& file_handle::operator=(file_handle&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = other.release();
  }
  return *this;
}

void file_handle::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

result<std::shared_ptr<mapped_file>> mapped_file::map(int fd, std::size_t length) {
  SLUICE_ASSERT(length > 0, "mapping zero bytes");
  void* data = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) return last_errno("mmap of a segment failed");
  return std::shared_ptr<mapped_file>(new mapped_file(static_cast<const std::byte*>(data), length));
}

mapped_file::~mapped_file() {
  ::munmap(const_cast<std::byte*>(data_), length_);
}

result<file_handle> open_file(const std::string& path, int flags, int mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return last_errno("open failed");
  return file_handle(fd);
}

result<std::uint64_t> file_size(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return last_errno("fstat failed");
  return static_cast<std::uint64_t>(st.st_size);
}

result<void> truncate_file(int fd, std::uint64_t size) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return last_errno("ftruncate failed");
  return {};
}

result<void> sync_file(int fd) {
  if (::fdatasync(fd) != 0) return last_errno("fdatasync failed");
  return {};
}

result<void> sync_directory(const std::string& path) {
  auto dir = open_file(path, O_RDONLY | O_DIRECTORY);
  if (!dir) return dir.failure();
  if (::fsync(dir->get()) != 0) return last_errno("fsync of a directory failed");
  return {};
}

result<void> remove_file(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return last_errno("unlink failed");
  return {};
}

result<void> rename_file(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return last_errno("rename failed");
  return {};
}

result<void> make_directory(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return error_from_errno(-ec.value(), "creating a directory failed");
  return {};
}

bool path_exists(const std::string& path) noexcept {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

result<std::vector<std::string>> list_directory(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return last_errno("opening a directory failed");
  std::vector<std::string> names;
  errno = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (std::strcmp(entry->d_name, ".") == 0 || std::strcmp(entry->d_name, "..") == 0) continue;
    names.emplace_back(entry->d_name);
  }
  int read_errno = errno;
  ::closedir(dir);
  if (read_errno != 0) return error_from_errno(-read_errno, "reading a directory failed");
  return names;
}

result<std::string> read_small_file(const std::string& path, std::size_t bytes_max) {
  auto file = open_file(path, O_RDONLY);
  if (!file) return file.failure();
  std::string content;
  char buffer[4096];
  while (true) {
    ssize_t n = ::read(file->get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_errno("read failed");
    }
    if (n == 0) break;
    if (content.size() + static_cast<std::size_t>(n) > bytes_max) {
      return error(errc::invalid_argument, "file is larger than expected");
    }
    content.append(buffer, static_cast<std::size_t>(n));
  }
  return content;
}

result<void> write_file_atomically(const std::string& path, std::span<const std::byte> bytes) {
  std::string temporary = path + ".tmp";
  {
    auto file = open_file(temporary, O_WRONLY | O_CREAT | O_TRUNC);
    if (!file) return file.failure();
    std::size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(file->get(), bytes.data() + done, bytes.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return last_errno("writing a checkpoint failed");
      }
      done += static_cast<std::size_t>(n);
    }
    SLUICE_TRY(sync_file(file->get()));
  }
  SLUICE_TRY(rename_file(temporary, path));
  return sync_directory(parent_directory(path));
}

result<void> remove_tree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return error_from_errno(-ec.value(), "removing a directory tree failed");
  return {};
}

}  // namespace sluice
