// cpu_time: processor seconds (user + system) of this process and of another one (the
// broker, by pid), to set the CPU a load cost beside the bytes it moved.
#pragma once

#include <optional>

namespace sluice::bench {

// This process, all threads (getrusage RUSAGE_SELF).
double self_cpu_seconds() noexcept;
// Process `pid`: utime + stime from /proc/PID/stat; nullopt when it cannot be read.
std::optional<double> process_cpu_seconds(int pid) noexcept;
// Resident memory of process `pid` in bytes, from /proc/PID/status: all of it (VmRSS),
// and the anonymous part (RssAnon) -- the rest is mostly file pages mapped, which for a
// broker that maps its segments is page cache, not memory of its own.
struct resident_memory {
  long long rss_bytes = 0;
  long long anonymous_bytes = 0;
};
std::optional<resident_memory> process_resident_memory(int pid) noexcept;

}  // namespace sluice::bench
