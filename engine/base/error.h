// Error values for the engine.
//
// Every operating error the engine can report is one `errc`. The protocol edge maps each
// to exactly one Kafka error code (several may share one, as no_space and io_error share
// KAFKA_STORAGE_ERROR), so the engine stays ignorant of Kafka numbering.
// An `error` pairs the code with a static, human-readable detail: no allocation, cheap to
// return on hot paths, and specific enough for a log line read at 3 a.m.
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice {

enum class errc : std::uint8_t {
  ok = 0,
  // A batch or file region whose bytes are damaged: bad CRC, lengths that do not add up.
  corrupt_batch,
  // A well-framed batch whose content breaks a rule: record count against last offset
  // delta, negative lengths inside records, unsupported attributes.
  invalid_batch,
  // A batch in a message format (magic) the engine does not store.
  unsupported_magic,
  // A batch larger than the configured maximum.
  batch_too_large,
  // A timestamp outside the accepted range.
  invalid_timestamp,
  // An offset outside [log start offset, log end offset].
  offset_out_of_range,
  // The disk is full (ENOSPC, EDQUOT).
  no_space,
  // Any other failure of the disk or the file system (EIO, EROFS, ...).
  io_error,
  // A bounded queue or buffer is full: the caller must wait and retry.
  backpressure,
  // A caller asked for something that does not exist (a partition, a file).
  not_found,
  // An argument or configuration value outside its valid range.
  invalid_argument,
  // The object was closed or failed and accepts no more work.
  closed,
};

// A stable, lower_snake_case name for logs and tools.
std::string_view errc_name(errc code) noexcept;

class error {
 public:
  constexpr error(errc code, const char* detail, int os_errno = 0) noexcept
      : code_(code), os_errno_(os_errno), detail_(detail) {}

  constexpr errc code() const noexcept { return code_; }
  // What went wrong, in words for an operator. Always a string literal.
  constexpr const char* detail() const noexcept { return detail_; }
  // The positive errno behind an I/O error, or 0.
  constexpr int os_errno() const noexcept { return os_errno_; }

  friend constexpr bool operator==(const error& a, errc b) noexcept { return a.code_ == b; }

 private:
  errc code_;
  int os_errno_;
  const char* detail_;
};

// Converts a negative errno from a system call or io_uring completion into an error.
// This is the one place kernel errors become engine errors.
error error_from_errno(int negative_errno, const char* detail) noexcept;

}  // namespace sluice
