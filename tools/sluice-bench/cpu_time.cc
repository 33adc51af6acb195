#include "tools/sluice-bench/cpu_time.h"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace sluice::bench {

double self_cpu_seconds() noexcept {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

std::optional<double> process_cpu_seconds(int pid) noexcept {
  try {
    std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!std::getline(file, text)) return std::nullopt;
    // The command name (field 2) may hold spaces and parentheses: fields resume after
    // the last ')'. utime and stime are fields 14 and 15, so the 12th and 13th after it.
    const auto close = text.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest(text.substr(close + 1));
    std::string field;
    long long utime = -1;
    long long stime = -1;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stoll(field);
      if (i == 15) stime = std::stoll(field);
    }
    if (utime < 0 || stime < 0) return std::nullopt;
    const long ticks = sysconf(_SC_CLK_TCK);
    return static_cast<double>(utime + stime) / static_cast<double>(ticks > 0 ? ticks : 100);
  } catch (...) {
    return std::nullopt;
  }
}

std::optional<resident_memory> process_resident_memory(int pid) noexcept {
  try {
    std::ifstream file("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    resident_memory memory;
    bool found = false;
    // Bounded by the file: /proc/PID/status has some fifty lines.
    while (std::getline(file, line)) {
      for (auto [name, target] : {std::pair{"VmRSS:", &memory.rss_bytes},
                                  std::pair{"RssAnon:", &memory.anonymous_bytes}}) {
        const std::string_view key(name);
        if (line.rfind(key, 0) != 0) continue;
        std::istringstream fields(line.substr(key.size()));
        long long kib = 0;
        if (fields >> kib) *target = kib * 1024;
        found = true;
      }
    }
    if (found) return memory;
  } catch (...) {
  }
  return std::nullopt;
}

}  // namespace sluice::bench
