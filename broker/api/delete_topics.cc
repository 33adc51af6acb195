// DeleteTopics v0-v6 (key 20): by name, and from v6 by name or topic id. The topic
// leaves the registry at once; its logs are removed as soon as they are idle
// (topic_registry.h).
#include "net/protocol/generated/delete_topics.h"

#include <set>

#include "broker/api/api_table.h"
#include "broker/groups/offsets_log.h"
#include "broker/kafka_uuid.h"
#include "engine/base/log.h"

namespace sluice {
namespace {

using protocol::error_code;
using Response = protocol::DeleteTopicsResponse;

}  // namespace

handler_status handle_delete_topics(request_context& ctx, protocol::reader& body) {
  protocol::DeleteTopicsRequest request;
  request.decode(body, ctx.version());
  if (!body.ok()) return handler_status::malformed;
  response_slot slot = ctx.reserve();
  if (!slot) return handler_status::done;

  struct wanted {
    std::optional<std::string_view> name;
    protocol::uuid id;
  };
  std::vector<wanted> targets;
  if (ctx.version() >= 6) {
    for (const auto& t : request.topics) targets.push_back({t.name, t.topic_id});
  } else {
    for (auto name : request.topic_names) targets.push_back({name, {}});
  }

  Response response;
  std::vector<std::string> names;  // stable storage for names found by id
  names.reserve(targets.size());
  response.responses.reserve(targets.size());
  for (const auto& target : targets) {
    auto& out = response.responses.emplace_back();
    out.name = target.name;
    out.topic_id = target.id;
    const topic_info* topic = nullptr;
    if (target.name.has_value()) {
      topic = ctx.broker.topics().find(*target.name);
      if (topic == nullptr) {
        out.error_code = static_cast<std::int16_t>(error_code::unknown_topic_or_partition);
        continue;
      }
    } else {
      topic = is_zero(target.id) ? nullptr : ctx.broker.topics().find(target.id);
      if (topic == nullptr) {
        out.error_code = static_cast<std::int16_t>(error_code::unknown_topic_id);
        continue;
      }
    }
    names.push_back(topic->name);
    out.name = names.back();
    out.topic_id = topic->id;
    if (offsets_log::is_internal(topic->name)) {
      // The committed offsets of every group live there.
      out.error_code = static_cast<std::int16_t>(error_code::invalid_topic_exception);
      out.error_message = "the internal topic __consumer_offsets cannot be deleted";
      continue;
    }
    if (auto removed = ctx.broker.delete_topic(names.back()); !removed) {
      out.error_code = static_cast<std::int16_t>(protocol::to_error_code(removed.code()));
      out.error_message = removed.failure().detail();
      continue;
    }
    SLUICE_LOG(info, "kafka", "{}: DeleteTopics deleted {}", ctx.peer(), names.back());
  }
  respond(slot, ctx.address, response);
  return handler_status::done;
}

}  // namespace sluice
