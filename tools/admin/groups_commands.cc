// sluice-admin groups: list, describe, reset-offsets, delete.
#include <fmt/format.h>

#include <set>

#include "net/protocol/generated/delete_groups.h"
#include "net/protocol/generated/describe_groups.h"
#include "net/protocol/generated/list_groups.h"
#include "net/protocol/generated/offset_commit.h"
#include "net/protocol/generated/offset_fetch.h"
#include "tools/admin/cluster_view.h"
#include "tools/admin/commands.h"
#include "tools/admin/text_table.h"

namespace sluice::admin {

namespace {

std::string group_subject(std::string_view group) {
  return "group '" + std::string(group) + "'";
}

struct group_description {
  std::string group_id;
  std::string state;
  std::string protocol_type;
  std::string protocol;
  std::vector<group_member> members;
};

// DescribeGroups of one group at its coordinator; nullopt (reported) on failure.
std::optional<group_description> describe_group(admin_session& session, kafka_client* coordinator,
                                                const std::string& group) {
  protocol::DescribeGroupsRequest request;
  request.groups.push_back(group);
  auto answer = session.call<protocol::DescribeGroupsResponse>(
      coordinator, request, group_subject(group) + ": DescribeGroups request");
  if (!answer) return std::nullopt;
  for (const auto& described : answer->message.groups) {
    if (described.group_id != group) continue;
    if (session.report_kafka_error(group_subject(group), described.error_code)) return std::nullopt;
    group_description out;
    out.group_id = group;
    out.state = std::string(described.group_state);
    out.protocol_type = std::string(described.protocol_type);
    out.protocol = std::string(described.protocol_data);
    for (const auto& m : described.members) {
      group_member member;
      member.member_id = std::string(m.member_id);
      if (m.group_instance_id) member.group_instance_id = std::string(*m.group_instance_id);
      member.client_id = std::string(m.client_id);
      member.client_host = std::string(m.client_host);
      if (out.protocol_type == "consumer" || out.protocol_type.empty()) {
        auto assignment = decode_assignment(m.member_assignment);
        if (assignment.ok()) {
          member.assignment = std::move(*assignment);
        } else {
          member.assignment_unreadable = true;
        }
      } else {
        member.assignment_unreadable = !m.member_assignment.empty();
      }
      out.members.push_back(std::move(member));
    }
    return out;
  }
  session.report(group_subject(group) + ": the DescribeGroups answer does not mention it");
  return std::nullopt;
}

// The committed offsets of `group` (all topics when `topic` is null); nullopt (reported)
// on failure. Offsets of -1 (none committed) are left out.
std::optional<std::map<partition_key, std::int64_t>> fetch_committed(
    admin_session& session, kafka_client* coordinator, const std::string& group,
    const std::string* topic, const std::vector<std::int32_t>& partitions) {
  protocol::OffsetFetchRequest request;
  request.group_id = group;                      // v0-7
  auto& wanted = request.groups.emplace_back();  // v8+
  wanted.group_id = group;
  if (topic == nullptr) {
    request.topics = std::nullopt;
    wanted.topics = std::nullopt;
  } else {
    auto& t = request.topics->emplace_back();
    t.name = *topic;
    t.partition_indexes = partitions;
    auto& t8 = wanted.topics->emplace_back();
    t8.name = *topic;
    t8.partition_indexes = partitions;
  }
  auto answer = session.call<protocol::OffsetFetchResponse>(
      coordinator, request, group_subject(group) + ": OffsetFetch request");
  if (!answer) return std::nullopt;
  std::map<partition_key, std::int64_t> out;
  bool failed = false;
  auto take = [&](std::string_view topic_name, std::int32_t partition, std::int64_t offset,
                  std::int16_t code) {
    if (session.report_kafka_error(group_subject(group) + " topic '" + std::string(topic_name) +
                                       "' partition " + std::to_string(partition),
                                   code)) {
      failed = true;
      return;
    }
    if (offset >= 0) out[{std::string(topic_name), partition}] = offset;
  };
  const auto& message = answer->message;
  if (!message.groups.empty()) {
    for (const auto& g : message.groups) {
      if (session.report_kafka_error(group_subject(group), g.error_code)) return std::nullopt;
      for (const auto& t : g.topics) {
        for (const auto& p : t.partitions) {
          take(t.name, p.partition_index, p.committed_offset, p.error_code);
        }
      }
    }
  } else {
    if (session.report_kafka_error(group_subject(group), message.error_code)) return std::nullopt;
    for (const auto& t : message.topics) {
      for (const auto& p : t.partitions) {
        take(t.name, p.partition_index, p.committed_offset, p.error_code);
      }
    }
  }
  if (failed) return std::nullopt;
  return out;
}

std::string assignment_text(const group_member& member) {
  if (member.assignment_unreadable) return "(not the consumer protocol)";
  std::vector<std::string> parts;
  for (const auto& tp : member.assignment) {
    parts.push_back(tp.topic + ":" + fmt::format("{}", fmt::join(tp.partitions, ",")));
  }
  return parts.empty() ? "-" : fmt::format("{}", fmt::join(parts, " "));
}

std::string optional_text(const std::optional<std::int64_t>& value) {
  return value ? std::to_string(*value) : "-";
}

void write_optional(json_writer& json, std::string_view key, const std::optional<std::int64_t>& v) {
  json.key(key);
  if (v) {
    json.value(*v);
  } else {
    json.null();
  }
}

}  // namespace

int groups_list(admin_session& session) {
  auto cluster = fetch_cluster(session, nullptr);
  if (!cluster) return session.exit_code();
  // Every broker coordinates some groups: ask each.
  std::map<std::string, std::pair<std::string, std::string>> groups;  // id -> state, type
  for (const auto& [id, address] : cluster->brokers) {
    kafka_client* client = session.broker_at(address.host, address.port);
    if (client == nullptr) continue;
    protocol::ListGroupsRequest request;
    const std::string where = address_text(address.host, address.port);
    auto answer = session.call<protocol::ListGroupsResponse>(client, request,
                                                             "ListGroups request to " + where);
    if (!answer) continue;
    if (session.report_kafka_error("broker " + where, answer->message.error_code)) continue;
    for (const auto& g : answer->message.groups) {
      groups[std::string(g.group_id)] = {g.group_state.empty() ? "" : std::string(g.group_state),
                                         std::string(g.protocol_type)};
    }
  }
  if (session.command().json) {
    json_writer json;
    json.begin_object();
    json.key("groups");
    json.begin_array();
    for (const auto& [id, facts] : groups) {
      json.begin_object();
      json.field("group", id);
      json.key("state");
      if (facts.first.empty()) {
        json.null();
      } else {
        json.value(facts.first);
      }
      json.field("protocol_type", facts.second);
      json.end_object();
    }
    json.end_array();
    json.end_object();
    session.out() << json.text() << '\n';
  } else {
    text_table table({"GROUP", "STATE", "PROTOCOL-TYPE"});
    for (const auto& [id, facts] : groups) {
      table.add(
          {id, facts.first.empty() ? "-" : facts.first, facts.second.empty() ? "-" : facts.second});
    }
    session.out() << table.render();
  }
  return session.exit_code();
}

int groups_describe(admin_session& session) {
  struct described {
    group_description group;
    std::vector<partition_offsets> offsets;
  };
  std::vector<described> results;
  for (const auto& group : session.command().names) {
    kafka_client* coordinator = session.coordinator(group);
    if (coordinator == nullptr) continue;
    auto description = describe_group(session, coordinator, group);
    if (!description) continue;
    auto committed = fetch_committed(session, coordinator, group, nullptr, {});
    if (!committed) continue;
    if (description->state == "Dead" && description->members.empty() && committed->empty()) {
      session.report(group_subject(group) + ": GROUP_ID_NOT_FOUND: the group does not exist");
      continue;
    }
    // The log end offsets of every partition the group commits to or is assigned.
    std::set<std::string> topic_names;
    std::vector<partition_key> partitions;
    for (const auto& [key, offset] : *committed) partitions.push_back(key);
    for (const auto& member : description->members) {
      for (const auto& tp : member.assignment) {
        for (std::int32_t p : tp.partitions) partitions.push_back({tp.topic, p});
      }
    }
    for (const auto& key : partitions) topic_names.insert(key.first);
    std::map<partition_key, std::int64_t> log_end;
    if (!topic_names.empty()) {
      const std::vector<std::string> names(topic_names.begin(), topic_names.end());
      if (auto cluster = fetch_cluster(session, &names)) {
        // A partition whose topic is gone shows no log end offset (and no lag).
        log_end = list_offsets(session, *cluster, partitions, -1, false);
      }
    }
    auto offsets = group_partition_offsets(description->members, *committed, log_end);
    results.push_back({std::move(*description), std::move(offsets)});
  }

  if (session.command().json) {
    json_writer json;
    json.begin_object();
    json.key("groups");
    json.begin_array();
    for (const auto& [group, offsets] : results) {
      json.begin_object();
      json.field("group", group.group_id);
      json.field("state", group.state);
      json.field("protocol_type", group.protocol_type);
      json.field("protocol", group.protocol);
      json.key("members");
      json.begin_array();
      for (const auto& member : group.members) {
        json.begin_object();
        json.field("member_id", member.member_id);
        json.key("group_instance_id");
        if (member.group_instance_id) {
          json.value(*member.group_instance_id);
        } else {
          json.null();
        }
        json.field("client_id", member.client_id);
        json.field("host", member.client_host);
        json.key("assignment");
        if (member.assignment_unreadable) {
          json.null();
        } else {
          json.begin_array();
          for (const auto& tp : member.assignment) {
            json.begin_object();
            json.field("topic", tp.topic);
            json.key("partitions");
            json.begin_array();
            for (std::int32_t p : tp.partitions) json.value(static_cast<std::int64_t>(p));
            json.end_array();
            json.end_object();
          }
          json.end_array();
        }
        json.end_object();
      }
      json.end_array();
      json.key("offsets");
      json.begin_array();
      for (const auto& row : offsets) {
        json.begin_object();
        json.field("topic", row.topic);
        json.field("partition", static_cast<std::int64_t>(row.partition));
        write_optional(json, "committed_offset", row.committed_offset);
        write_optional(json, "log_end_offset", row.log_end_offset);
        write_optional(json, "lag", row.lag);
        json.key("member_id");
        if (row.member_id) {
          json.value(*row.member_id);
        } else {
          json.null();
        }
        json.end_object();
      }
      json.end_array();
      json.end_object();
    }
    json.end_array();
    json.end_object();
    session.out() << json.text() << '\n';
    return session.exit_code();
  }

  bool first = true;
  for (const auto& [group, offsets] : results) {
    if (!first) session.out() << '\n';
    first = false;
    text_table summary({"GROUP", "STATE", "PROTOCOL-TYPE", "PROTOCOL", "MEMBERS"});
    summary.add(
        {group.group_id, group.state, group.protocol_type.empty() ? "-" : group.protocol_type,
         group.protocol.empty() ? "-" : group.protocol, std::to_string(group.members.size())});
    session.out() << summary.render();
    if (!group.members.empty()) {
      text_table members({"MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"});
      for (const auto& member : group.members) {
        members.add(
            {member.member_id, member.client_id, member.client_host, assignment_text(member)});
      }
      session.out() << '\n' << members.render();
    }
    if (!offsets.empty()) {
      text_table table(
          {"TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID"});
      for (const auto& row : offsets) {
        table.add({row.topic, std::to_string(row.partition), optional_text(row.committed_offset),
                   optional_text(row.log_end_offset), optional_text(row.lag),
                   row.member_id.value_or("-")});
      }
      session.out() << '\n' << table.render();
    }
  }
  return session.exit_code();
}

int groups_reset_offsets(admin_session& session) {
  const admin_command& command = session.command();
  const std::string& group = command.names.at(0);
  kafka_client* coordinator = session.coordinator(group);
  if (coordinator == nullptr) return session.exit_code();
  auto description = describe_group(session, coordinator, group);
  if (!description) return session.exit_code();
  // As kafka-consumer-groups: offsets move only while no consumer could overwrite them.
  if (description->state != "Empty" && description->state != "Dead") {
    session.report(fmt::format(
        "{}: NON_EMPTY_GROUP: offsets can only be reset while the group is empty, but it is {} "
        "with {} member(s); stop its consumers first",
        group_subject(group), description->state, description->members.size()));
    return session.exit_code();
  }
  const std::vector<std::string> topics = {command.topic};
  auto cluster = fetch_cluster(session, &topics);
  if (!cluster) return session.exit_code();
  const topic_view* topic = cluster->find(command.topic);
  if (topic == nullptr || session.report_kafka_error("topic '" + command.topic + "'",
                                                     topic == nullptr ? 3 : topic->error_code)) {
    return session.exit_code();
  }
  std::vector<partition_key> partitions;
  for (const auto& p : topic->partitions) {
    if (!command.partition || *command.partition == p.partition) {
      partitions.push_back({command.topic, p.partition});
    }
  }
  if (partitions.empty()) {
    session.report(fmt::format("topic '{}' partition {}: UNKNOWN_TOPIC_OR_PARTITION", command.topic,
                               command.partition.value_or(-1)));
    return session.exit_code();
  }
  std::vector<std::int32_t> indexes;
  for (const auto& key : partitions) indexes.push_back(key.second);
  auto previous = fetch_committed(session, coordinator, group, &command.topic, indexes);
  if (!previous) return session.exit_code();

  std::map<partition_key, std::int64_t> targets;
  switch (command.target) {
    case reset_target::earliest:
      targets = list_offsets(session, *cluster, partitions, -2, true);
      break;
    case reset_target::latest:
      targets = list_offsets(session, *cluster, partitions, -1, true);
      break;
    case reset_target::timestamp: {
      targets = list_offsets(session, *cluster, partitions, command.target_value, true);
      // No record at or after the time: the end of the log, as Kafka's tool does.
      const auto latest = list_offsets(session, *cluster, partitions, -1, true);
      for (auto& [key, offset] : targets) {
        if (offset < 0 && latest.count(key) != 0) offset = latest.at(key);
      }
      break;
    }
    case reset_target::offset: {
      const auto earliest = list_offsets(session, *cluster, partitions, -2, true);
      const auto latest = list_offsets(session, *cluster, partitions, -1, true);
      for (const auto& key : partitions) {
        if (earliest.count(key) != 0 && latest.count(key) != 0) {
          targets[key] = clamp_reset_offset(command.target_value, earliest.at(key), latest.at(key));
        }
      }
      break;
    }
  }
  if (session.failed()) return session.exit_code();

  if (!command.dry_run) {
    protocol::OffsetCommitRequest request;
    request.group_id = group;
    request.generation_id_or_member_epoch = -1;  // not a member: an admin commit
    request.member_id = "";
    auto& t = request.topics.emplace_back();
    t.name = command.topic;
    for (const auto& [key, offset] : targets) {
      auto& p = t.partitions.emplace_back();
      p.partition_index = key.second;
      p.committed_offset = offset;
      p.committed_metadata = "";
    }
    auto answer = session.call<protocol::OffsetCommitResponse>(
        coordinator, request, group_subject(group) + ": OffsetCommit request");
    if (!answer) return session.exit_code();
    for (const auto& rt : answer->message.topics) {
      for (const auto& rp : rt.partitions) {
        session.report_kafka_error(group_subject(group) + " topic '" + std::string(rt.name) +
                                       "' partition " + std::to_string(rp.partition_index),
                                   rp.error_code);
      }
    }
    if (session.failed()) return session.exit_code();
  }

  if (command.json) {
    json_writer json;
    json.begin_object();
    json.field("group", group);
    json.field("topic", command.topic);
    json.field("dry_run", command.dry_run);
    json.key("offsets");
    json.begin_array();
    for (const auto& [key, offset] : targets) {
      json.begin_object();
      json.field("partition", static_cast<std::int64_t>(key.second));
      auto before = previous->find(key);
      write_optional(json, "previous_offset",
                     before == previous->end() ? std::nullopt : std::optional(before->second));
      json.field("new_offset", offset);
      json.end_object();
    }
    json.end_array();
    json.end_object();
    session.out() << json.text() << '\n';
  } else {
    text_table table({"GROUP", "TOPIC", "PARTITION", "PREVIOUS-OFFSET", "NEW-OFFSET"});
    for (const auto& [key, offset] : targets) {
      auto before = previous->find(key);
      table.add({group, key.first, std::to_string(key.second),
                 before == previous->end() ? "-" : std::to_string(before->second),
                 std::to_string(offset)});
    }
    session.out() << table.render();
    if (command.dry_run) session.out() << "(dry run: nothing was committed)\n";
  }
  return session.exit_code();
}

int groups_delete(admin_session& session) {
  std::vector<std::string> deleted;
  for (const auto& group : session.command().names) {
    kafka_client* coordinator = session.coordinator(group);
    if (coordinator == nullptr) continue;
    protocol::DeleteGroupsRequest request;
    request.groups_names.push_back(group);
    auto answer = session.call<protocol::DeleteGroupsResponse>(
        coordinator, request, group_subject(group) + ": DeleteGroups request");
    if (!answer) continue;
    for (const auto& result : answer->message.results) {
      if (!session.report_kafka_error(group_subject(result.group_id), result.error_code)) {
        deleted.push_back(std::string(result.group_id));
      }
    }
  }
  if (session.command().json) {
    json_writer json;
    json.begin_object();
    json.key("deleted");
    json.begin_array();
    for (const auto& group : deleted) json.value(group);
    json.end_array();
    json.end_object();
    session.out() << json.text() << '\n';
  } else {
    for (const auto& group : deleted) session.out() << "Deleted group " << group << ".\n";
  }
  return session.exit_code();
}

}  // namespace sluice::admin
