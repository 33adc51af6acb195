#include "tools/admin/cluster_view.h"

#include <algorithm>

#include "net/protocol/error_codes.h"
#include "net/protocol/generated/list_offsets.h"
#include "net/protocol/generated/metadata.h"

namespace sluice::admin {

const topic_view* cluster_view::find(const std::string& name) const {
  for (const auto& topic : topics) {
    if (topic.name == name) return &topic;
  }
  return nullptr;
}

std::optional<cluster_view> fetch_cluster(admin_session& session,
                                          const std::vector<std::string>* topics) {
  protocol::MetadataRequest request;
  if (topics == nullptr) {
    request.topics = std::nullopt;
  } else {
    for (const auto& name : *topics) request.topics->emplace_back().name = name;
  }
  request.allow_auto_topic_creation = false;
  auto answer =
      session.call<protocol::MetadataResponse>(session.bootstrap(), request, "Metadata request");
  if (!answer) return std::nullopt;
  cluster_view view;
  for (const auto& broker : answer->message.brokers) {
    if (broker.port <= 0 || broker.port > 65535) continue;
    view.brokers[broker.node_id] = {std::string(broker.host),
                                    static_cast<std::uint16_t>(broker.port)};
  }
  for (const auto& topic : answer->message.topics) {
    topic_view t;
    t.name = std::string(topic.name.value_or(""));
    t.id = topic.topic_id;
    t.internal = topic.is_internal;
    t.error_code = topic.error_code;
    for (const auto& p : topic.partitions) {
      t.partitions.push_back({p.partition_index, p.error_code, p.leader_id, p.leader_epoch,
                              p.replica_nodes, p.isr_nodes, p.offline_replicas});
    }
    std::sort(t.partitions.begin(), t.partitions.end(),
              [](const auto& a, const auto& b) { return a.partition < b.partition; });
    view.topics.push_back(std::move(t));
  }
  if (topics == nullptr) {
    std::sort(view.topics.begin(), view.topics.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
  }
  return view;
}

std::map<partition_key, std::int64_t> list_offsets(admin_session& session,
                                                   const cluster_view& cluster,
                                                   const std::vector<partition_key>& partitions,
                                                   std::int64_t timestamp, bool report_errors) {
  // Partitions by the leader that must be asked.
  std::map<std::int32_t, std::map<std::string, std::vector<std::int32_t>>> by_leader;
  for (const auto& [topic, partition] : partitions) {
    const topic_view* t = cluster.find(topic);
    const partition_view* found = nullptr;
    if (t != nullptr) {
      for (const auto& p : t->partitions) {
        if (p.partition == partition) found = &p;
      }
    }
    if (found == nullptr || found->leader < 0 || cluster.brokers.count(found->leader) == 0) {
      if (report_errors) {
        session.report("topic '" + topic + "' partition " + std::to_string(partition) +
                       ": UNKNOWN_TOPIC_OR_PARTITION: no leader known for it");
      }
      continue;
    }
    by_leader[found->leader][topic].push_back(partition);
  }
  std::map<partition_key, std::int64_t> out;
  for (const auto& [leader, topics] : by_leader) {
    const broker_address& address = cluster.brokers.at(leader);
    protocol::ListOffsetsRequest request;
    request.replica_id = -1;
    request.isolation_level = 0;  // read_uncommitted: the log end offset
    request.timeout_ms = static_cast<std::int32_t>(session.command().timeout.count());
    for (const auto& [topic, indexes] : topics) {
      auto& t = request.topics.emplace_back();
      t.name = topic;
      for (std::int32_t index : indexes) {
        auto& p = t.partitions.emplace_back();
        p.partition_index = index;
        p.timestamp = timestamp;
      }
    }
    auto answer = session.call<protocol::ListOffsetsResponse>(
        session.broker_at(address.host, address.port), request,
        "ListOffsets request to " + address_text(address.host, address.port));
    if (!answer) continue;
    for (const auto& t : answer->message.topics) {
      for (const auto& p : t.partitions) {
        const std::string topic(t.name);
        if (p.error_code != 0) {
          if (report_errors) {
            session.report_kafka_error(
                "topic '" + topic + "' partition " + std::to_string(p.partition_index),
                p.error_code);
          }
          continue;
        }
        out[{topic, p.partition_index}] = p.offset;
      }
    }
  }
  return out;
}

std::string topic_id_text(const protocol::uuid& id) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t bits = 0;
  int held = 0;
  for (std::uint8_t byte : id.bytes) {
    bits = (bits << 8) | byte;
    held += 8;
    while (held >= 6) {
      held -= 6;
      out.push_back(alphabet[(bits >> held) & 0x3f]);
    }
  }
  if (held > 0) out.push_back(alphabet[(bits << (6 - held)) & 0x3f]);
  return out;
}

const char* config_source_name(std::int8_t source) {
  switch (source) {
    case 1: return "DYNAMIC_TOPIC_CONFIG";
    case 2: return "DYNAMIC_BROKER_CONFIG";
    case 3: return "DYNAMIC_DEFAULT_BROKER_CONFIG";
    case 4: return "STATIC_BROKER_CONFIG";
    case 5: return "DEFAULT_CONFIG";
    case 6: return "DYNAMIC_BROKER_LOGGER_CONFIG";
    case 7: return "CLIENT_METRICS_CONFIG";
    case 8: return "GROUP_CONFIG";
    default: return "UNKNOWN";
  }
}

}  // namespace sluice::admin
