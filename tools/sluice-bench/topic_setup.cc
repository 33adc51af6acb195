#include "tools/sluice-bench/topic_setup.h"

#include <fmt/format.h>

#include <thread>

#include "net/protocol/error_codes.h"
#include "net/protocol/generated/create_topics.h"
#include "net/protocol/generated/list_offsets.h"
#include "net/protocol/generated/metadata.h"

namespace sluice::bench {

namespace {

using protocol::error_code;

std::string kafka_error_text(std::int16_t code) {
  return std::string(protocol::error_code_name(static_cast<error_code>(code)));
}

// The topic as Metadata sees it: nullopt with `why` set on a failure; a layout with 0
// partitions when the topic does not exist; `ready` when every partition has a leader.
struct metadata_view {
  std::int32_t partitions = 0;
  bool ready = false;
  std::size_t brokers = 0;
};

std::optional<metadata_view> describe(kafka_client& client, const bench_options& options,
                                      std::string& why) {
  protocol::MetadataRequest request;
  request.topics.emplace();
  auto& topic = request.topics->emplace_back();
  topic.name = options.topic;
  request.allow_auto_topic_creation = false;
  auto answer = client.call_sync<protocol::MetadataResponse>(request, options.timeout);
  if (!answer.ok()) {
    why = fmt::format("Metadata: {}", answer.failure().detail());
    return std::nullopt;
  }
  metadata_view view;
  view.brokers = answer->message.brokers.size();
  for (const auto& t : answer->message.topics) {
    if (t.error_code == static_cast<std::int16_t>(error_code::unknown_topic_or_partition)) {
      return view;
    }
    if (t.error_code != 0 &&
        t.error_code != static_cast<std::int16_t>(error_code::leader_not_available)) {
      why = fmt::format("topic {}: {}", options.topic, kafka_error_text(t.error_code));
      return std::nullopt;
    }
    view.partitions = static_cast<std::int32_t>(t.partitions.size());
    view.ready = t.error_code == 0 && !t.partitions.empty();
    for (const auto& p : t.partitions) {
      if (p.error_code != 0 || p.leader_id < 0) view.ready = false;
    }
  }
  return view;
}

}  // namespace

std::optional<topic_layout> prepare_topic(kafka_client& client, const bench_options& options,
                                          bool create, std::string& why) {
  auto view = describe(client, options, why);
  if (!view) return std::nullopt;
  // sluice-bench sends every request to the bootstrap broker.
  if (view->brokers > 1) {
    why = fmt::format("the cluster has {} brokers; sluice-bench talks to one broker only",
                      view->brokers);
    return std::nullopt;
  }
  topic_layout layout;
  if (view->partitions == 0) {
    if (!create) {
      why = fmt::format("topic {}: UNKNOWN_TOPIC_OR_PARTITION", options.topic);
      return std::nullopt;
    }
    auto version = client.version_for(protocol::api_key::create_topics, 0, 7);
    if (!version.ok()) {
      why = fmt::format("CreateTopics: {}", version.failure().detail());
      return std::nullopt;
    }
    protocol::CreateTopicsRequest request;
    request.timeout_ms = static_cast<std::int32_t>(options.timeout.count());
    auto& topic = request.topics.emplace_back();
    topic.name = options.topic;
    topic.num_partitions = options.partitions;
    // -1 (the broker's default) needs v4; before, a single replica.
    topic.replication_factor = static_cast<std::int16_t>(*version >= 4 ? -1 : 1);
    auto answer =
        client.call_sync_at<protocol::CreateTopicsResponse>(*version, request, options.timeout);
    if (!answer.ok()) {
      why = fmt::format("CreateTopics: {}", answer.failure().detail());
      return std::nullopt;
    }
    for (const auto& result : answer->message.topics) {
      // Another run may have created it meanwhile: that is as good.
      if (result.error_code != 0 &&
          result.error_code != static_cast<std::int16_t>(error_code::topic_already_exists)) {
        why = fmt::format("creating topic {}: {}{}{}", options.topic,
                          kafka_error_text(result.error_code),
                          result.error_message && !result.error_message->empty() ? ": " : "",
                          result.error_message.value_or(""));
        return std::nullopt;
      }
    }
    layout.created = true;
  }
  // Wait until every partition has a leader (a new topic's may take a moment).
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  while (true) {
    if (view->ready) break;
    if (std::chrono::steady_clock::now() > deadline) {
      why = fmt::format("topic {}: partitions without a leader after {} ms", options.topic,
                        options.timeout.count());
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    view = describe(client, options, why);
    if (!view) return std::nullopt;
  }
  layout.partitions = view->partitions;
  return layout;
}

std::optional<std::vector<std::int64_t>> list_offsets(kafka_client& client,
                                                      const bench_options& options,
                                                      std::int32_t partitions,
                                                      std::int64_t timestamp, std::string& why) {
  protocol::ListOffsetsRequest request;
  request.replica_id = -1;
  auto& topic = request.topics.emplace_back();
  topic.name = options.topic;
  topic.partitions.resize(static_cast<std::size_t>(partitions));
  for (std::int32_t p = 0; p < partitions; ++p) {
    topic.partitions[static_cast<std::size_t>(p)].partition_index = p;
    topic.partitions[static_cast<std::size_t>(p)].timestamp = timestamp;
  }
  // v1+ answers with one offset (v0 with a list of old-style offsets).
  auto version = client.version_for(protocol::api_key::list_offsets, 1, 10);
  if (!version.ok()) {
    why = fmt::format("ListOffsets: {}", version.failure().detail());
    return std::nullopt;
  }
  auto answer =
      client.call_sync_at<protocol::ListOffsetsResponse>(*version, request, options.timeout);
  if (!answer.ok()) {
    why = fmt::format("ListOffsets: {}", answer.failure().detail());
    return std::nullopt;
  }
  std::vector<std::int64_t> offsets(static_cast<std::size_t>(partitions), -1);
  for (const auto& t : answer->message.topics) {
    for (const auto& p : t.partitions) {
      if (p.error_code != 0) {
        why = fmt::format("ListOffsets {}-{}: {}", options.topic, p.partition_index,
                          kafka_error_text(p.error_code));
        return std::nullopt;
      }
      if (p.partition_index >= 0 && p.partition_index < partitions) {
        offsets[static_cast<std::size_t>(p.partition_index)] = p.offset;
      }
    }
  }
  for (std::int32_t p = 0; p < partitions; ++p) {
    if (offsets[static_cast<std::size_t>(p)] < 0) {
      why = fmt::format("ListOffsets: no offset for {}-{}", options.topic, p);
      return std::nullopt;
    }
  }
  return offsets;
}

}  // namespace sluice::bench
