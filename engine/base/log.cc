#include "engine/base/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

namespace sluice {
namespace {

std::atomic<log_level> global_level{log_level::info};

}  // namespace

std::optional<log_level> parse_log_level(std::string_view text) noexcept {
  for (auto level : {log_level::trace, log_level::debug, log_level::info, log_level::warn,
                     log_level::error, log_level::off}) {
    if (text == log_level_name(level)) return level;
  }
  return std::nullopt;
}

std::string_view log_level_name(log_level level) noexcept {
  switch (level) {
    case log_level::trace: return "trace";
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
    case log_level::off: return "off";
  }
  return "unknown";
}

void set_log_level(log_level level) noexcept {
  global_level.store(level, std::memory_order_relaxed);
}

log_level current_log_level() noexcept {
  return global_level.load(std::memory_order_relaxed);
}

namespace detail {

void log_vwrite(log_level level, std::string_view component, fmt::string_view format,
                fmt::format_args args) noexcept {
  // A fixed buffer bounds the line; an over-long message is cut, never allocated for.
  constexpr std::size_t line_bytes_max = 4096;
  char line[line_bytes_max];
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char* end = line + line_bytes_max - 1;  // keep room for the newline
  try {
    auto out = fmt::format_to_n(
        line, line_bytes_max - 1,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {:<5} {}: ", utc.tm_year + 1900, utc.tm_mon + 1,
        utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(ms % 1000),
        log_level_name(level), component);
    char* cursor = line + std::min<std::size_t>(out.size, line_bytes_max - 1);
    auto body = fmt::vformat_to_n(cursor, static_cast<std::size_t>(end - cursor), format, args);
    cursor += std::min<std::size_t>(body.size, static_cast<std::size_t>(end - cursor));
    *cursor++ = '\n';
    ssize_t ignored = ::write(STDERR_FILENO, line, static_cast<std::size_t>(cursor - line));
    (void)ignored;
  } catch (...) {
    // A format error is a programmer error, but a logger must never take the process down.
    static constexpr char fallback[] = "sluice: log line could not be formatted\n";
    ssize_t ignored = ::write(STDERR_FILENO, fallback, sizeof(fallback) - 1);
    (void)ignored;
  }
}

}  // namespace detail
}  // namespace sluice
