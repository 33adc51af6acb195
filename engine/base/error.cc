#include "engine/base/error.h"

#include <cerrno>

#include "engine/base/assert.h"

namespace sluice {

std::string_view errc_name(errc code) noexcept {
  switch (code) {
    case errc::ok: return "ok";
    case errc::corrupt_batch: return "corrupt_batch";
    case errc::invalid_batch: return "invalid_batch";
    case errc::unsupported_magic: return "unsupported_magic";
    case errc::batch_too_large: return "batch_too_large";
    case errc::invalid_timestamp: return "invalid_timestamp";
    case errc::offset_out_of_range: return "offset_out_of_range";
    case errc::no_space: return "no_space";
    case errc::io_error: return "io_error";
    case errc::backpressure: return "backpressure";
    case errc::not_found: return "not_found";
    case errc::invalid_argument: return "invalid_argument";
    case errc::closed: return "closed";
  }
  return "unknown";
}

error error_from_errno(int negative_errno, const char* detail) noexcept {
  SLUICE_ASSERT(negative_errno < 0, "error_from_errno takes a negative errno");
  switch (-negative_errno) {
    case ENOSPC:
    case EDQUOT: return error(errc::no_space, detail, -negative_errno);
    case ENOENT: return error(errc::not_found, detail, -negative_errno);
    case EAGAIN: return error(errc::backpressure, detail, -negative_errno);
    case EINVAL: return error(errc::invalid_argument, detail, -negative_errno);
    default: return error(errc::io_error, detail, -negative_errno);
  }
}

}  // namespace sluice
