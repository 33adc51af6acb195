// Always-on assertions for programmer errors.
//
// An operating error (bad client bytes, a full disk, a corrupt file) is returned as a
// value and survived. A programmer error -- a broken invariant that no input should be
// able to cause -- trips SLUICE_ASSERT, which is compiled into every build type: it
// prints the condition, the place and a message, then aborts so a core dump shows the
// state that broke it.
#pragma once

namespace sluice::detail {
[[noreturn]] void assertion_failed(const char* condition, const char* file, int line,
                                   const char* message) noexcept;
}  // namespace sluice::detail

#define SLUICE_ASSERT(condition, message)                                            \
  do {                                                                               \
    if (!(condition)) [[unlikely]] {                                                 \
      ::sluice::detail::assertion_failed(#condition, __FILE__, __LINE__, (message)); \
    }                                                                                \
  } while (false)

// Marks a place the control flow can never reach.
#define SLUICE_UNREACHABLE(message) \
  ::sluice::detail::assertion_failed("unreachable", __FILE__, __LINE__, (message))
