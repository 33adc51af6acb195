#include "engine/base/assert.h"

#include <cstdio>
#include <cstdlib>

namespace sluice::detail {

void assertion_failed(const char* condition, const char* file, int line,
                      const char* message) noexcept {
  // fprintf to stderr is unbuffered; nothing else is safe to rely on while aborting.
  std::fprintf(stderr, "sluice: assertion failed: %s at %s:%d: %s\n", condition, file, line,
               message);
  std::abort();
}

}  // namespace sluice::detail
