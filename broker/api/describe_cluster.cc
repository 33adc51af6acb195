// DescribeCluster v0-v1 (key 60): this broker as the whole cluster and its controller.
// Authorized operations are not supported (no authorizer): always INT32_MIN, Kafka's
// "not provided". v1 asks for an endpoint type; this broker serves broker endpoints only
// and answers a request for another type as Kafka's brokers do.
#include "net/protocol/generated/describe_cluster.h"

#include <limits>
#include <string>

#include "broker/api/api_table.h"

namespace sluice {
namespace {

using protocol::error_code;

// Kafka's EndpointType ids.
constexpr std::int8_t endpoint_brokers = 1;
constexpr std::int8_t endpoint_controllers = 2;
// Kafka's error codes from v1 on; beyond net/protocol/error_codes.h's list.
constexpr std::int16_t mismatched_endpoint_type = 114;
constexpr std::int16_t unsupported_endpoint_type = 115;

}  // namespace

handler_status handle_describe_cluster(request_context& ctx, protocol::reader& body) {
  protocol::DescribeClusterRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  const broker_identity& self = ctx.broker.identity();
  protocol::DescribeClusterResponse response;
  response.endpoint_type = endpoint_brokers;
  response.cluster_authorized_operations = std::numeric_limits<std::int32_t>::min();
  std::string message;
  const bool v0 = ctx.version() == 0;
  if (request.endpoint_type != endpoint_brokers) {
    // v0 has no endpoint type (it reads as brokers); v1 names it.
    const bool known = request.endpoint_type == endpoint_controllers;
    response.error_code = v0 ? static_cast<std::int16_t>(error_code::invalid_request)
                             : (known ? mismatched_endpoint_type : unsupported_endpoint_type);
    message = known ? "the request was sent to an endpoint of type BROKER, but it asked for "
                      "type CONTROLLER"
                    : "unsupported endpoint type " + std::to_string(request.endpoint_type);
    response.error_message = message;
  } else {
    response.cluster_id = self.cluster_id;
    response.controller_id = self.node_id;
    response.brokers.push_back(
        {self.node_id, self.advertised_host, self.advertised_port, std::nullopt});
  }
  respond(slot, ctx.address, response);
  return handler_status::done;
}

}  // namespace sluice
