#include "broker/api/group_api.h"

namespace sluice {

std::string client_host(const request_context& ctx) {
  const std::string_view peer = ctx.peer();
  auto colon = peer.rfind(':');
  std::string host(colon == std::string_view::npos ? peer : peer.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return "/" + host;
}

}  // namespace sluice
