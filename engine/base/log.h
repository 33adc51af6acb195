// The process-wide, level-based logger.
//
// One line per event: `2026-11-25T08:36:19.123Z warn  storage: <message>`. Lines are
// formatted into a stack buffer and written to stderr with a single write(2), so lines
// from different threads never interleave. Logging is for rare events (start-up, errors,
// rolls), never per record, so the write is acceptable even on a reactor thread.
//
// Use:  SLUICE_LOG(warn, "storage", "segment {} is torn at byte {}", path, pos);
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice {

enum class log_level : std::uint8_t { trace, debug, info, warn, error, off };

// Parses "trace", "debug", "info", "warn", "error" or "off".
std::optional<log_level> parse_log_level(std::string_view text) noexcept;
std::string_view log_level_name(log_level level) noexcept;

void set_log_level(log_level level) noexcept;
log_level current_log_level() noexcept;

inline bool log_enabled(log_level level) noexcept {
  return level >= current_log_level();
}

namespace detail {
void log_vwrite(log_level level, std::string_view component, fmt::string_view format,
                fmt::format_args args) noexcept;
}

template <typename... Args>
void log_write(log_level level, std::string_view component, fmt::format_string<Args...> format,
               Args&&... args) noexcept {
  detail::log_vwrite(level, component, format, fmt::make_format_args(args...));
}

}  // namespace sluice

#define SLUICE_LOG(level, component, ...)                                        \
  do {                                                                           \
    if (::sluice::log_enabled(::sluice::log_level::level)) {                     \
      ::sluice::log_write(::sluice::log_level::level, (component), __VA_ARGS__); \
    }                                                                            \
  } while (false)
