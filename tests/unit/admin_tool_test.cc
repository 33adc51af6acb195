// sluice-admin (tools/admin/) in-process: its JSON writer and tables, its command line,
// the consumer-protocol assignment decoding and lag arithmetic, and the groups commands
// end to end against a fake broker that decodes their requests with the generated
// structs and answers with canned responses -- so they are checked before the broker
// serves the group APIs itself.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "net/protocol/api_keys.h"
#include "net/protocol/generated/messages.h"
#include "tools/admin/admin_options.h"
#include "tools/admin/commands.h"
#include "tools/admin/group_offsets.h"
#include "tools/admin/json_writer.h"
#include "tools/admin/text_table.h"

namespace sluice::admin {
namespace {

using protocol::api_key;

// ---- json_writer -----------------------------------------------------------------------

std::string json_quoted(std::string_view text) {
  std::string out;
  json_writer::append_string(out, text);
  return out;
}

TEST(JsonWriter, EscapesWhatRfc8259Requires) {
  EXPECT_EQ(json_quoted("plain"), "\"plain\"");
  EXPECT_EQ(json_quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json_quoted("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
  EXPECT_EQ(json_quoted(std::string("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
  EXPECT_EQ(json_quoted(std::string("nul\0here", 8)), "\"nul\\u0000here\"");
  // The solidus and DEL need no escape.
  EXPECT_EQ(json_quoted("a/b\x7f"), "\"a/b\x7f\"");
}

TEST(JsonWriter, KeepsUtf8AndReplacesWhatIsNot) {
  EXPECT_EQ(json_quoted("caf\xc3\xa9 \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
  EXPECT_EQ(json_quoted("\xff"), "\"\\ufffd\"");
  EXPECT_EQ(json_quoted("\xc0\x80"), "\"\\ufffd\\ufffd\"");             // overlong NUL
  EXPECT_EQ(json_quoted("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // a UTF-16 surrogate
  EXPECT_EQ(json_quoted("\xe2\x82"), "\"\\ufffd\\ufffd\"");             // truncated
}

TEST(JsonWriter, PlacesCommasAndNests) {
  json_writer json;
  json.begin_object();
  json.field("name", "t");
  json.field("count", std::int64_t{-3});
  json.field("ok", true);
  json.key("none");
  json.null();
  json.key("list");
  json.begin_array();
  json.value(std::int64_t{1});
  json.begin_object();
  json.end_object();
  json.begin_array();
  json.end_array();
  json.end_array();
  json.end_object();
  EXPECT_TRUE(json.complete());
  EXPECT_EQ(json.text(), R"({"name":"t","count":-3,"ok":true,"none":null,"list":[1,{},[]]})");
}

TEST(TextTable, AlignsColumnsWithoutTrailingBlanks) {
  text_table table({"TOPIC", "P"});
  table.add({"a", "10"});
  table.add({"longer-name", "2"});
  EXPECT_EQ(table.render(),
            "TOPIC        P\n"
            "a            10\n"
            "longer-name  2\n");
}

// ---- the command line -------------------------------------------------------------------

admin_parse_outcome parse(std::vector<std::string> words) {
  std::vector<const char*> argv = {"sluice-admin"};
  for (const auto& w : words) argv.push_back(w.c_str());
  return parse_admin_command(static_cast<int>(argv.size()), argv.data());
}

std::string usage_error_of(std::vector<std::string> words) {
  auto outcome = parse(std::move(words));
  auto* failure = std::get_if<admin_usage_error>(&outcome);
  return failure == nullptr ? "" : failure->message;
}

TEST(AdminOptions, ParsesACommandWithItsFlags) {
  auto outcome = parse({"--bootstrap", "broker:9093", "topics", "create", "orders", "--partitions",
                        "3", "--config", "retention.ms=1000", "cleanup.policy=delete", "--json"});
  ASSERT_TRUE(std::holds_alternative<admin_command>(outcome));
  const auto& command = std::get<admin_command>(outcome);
  EXPECT_EQ(command.bootstrap_host, "broker");
  EXPECT_EQ(command.bootstrap_port, 9093);
  EXPECT_EQ(command.name(), "topics create");
  EXPECT_EQ(command.names, std::vector<std::string>{"orders"});
  EXPECT_EQ(command.partitions, 3);
  ASSERT_EQ(command.configs.size(), 2u);
  EXPECT_EQ(command.configs[1].first, "cleanup.policy");
  EXPECT_EQ(command.configs[1].second, "delete");
  EXPECT_TRUE(command.json);

  auto reset = parse({"groups", "reset-offsets", "g", "--topic", "t", "--to-offset", "42",
                      "--partition", "1", "--dry-run"});
  ASSERT_TRUE(std::holds_alternative<admin_command>(reset));
  const auto& r = std::get<admin_command>(reset);
  EXPECT_EQ(r.target, reset_target::offset);
  EXPECT_EQ(r.target_value, 42);
  EXPECT_EQ(r.partition, 1);
  EXPECT_TRUE(r.dry_run);
  EXPECT_EQ(r.bootstrap_host, "localhost");
  EXPECT_EQ(r.bootstrap_port, 9092);
}

TEST(AdminOptions, UsageErrorsNameWhatIsWrong) {
  EXPECT_NE(usage_error_of({"--frobnicate"}).find("frobnicate"), std::string::npos);
  EXPECT_NE(usage_error_of({}).find("no command"), std::string::npos);
  EXPECT_NE(usage_error_of({"topics", "shred"}).find("topics shred"), std::string::npos);
  EXPECT_NE(usage_error_of({"topics", "list", "--partitions", "3"}).find("--partitions"),
            std::string::npos);
  EXPECT_NE(usage_error_of({"topics", "describe"}).find("at least one TOPIC"), std::string::npos);
  EXPECT_NE(usage_error_of({"topics", "create", "a", "b"}).find("exactly one"), std::string::npos);
  EXPECT_NE(usage_error_of({"topics", "create", "a", "--config", "novalue"}).find("KEY=VALUE"),
            std::string::npos);
  EXPECT_NE(usage_error_of({"topics", "alter-config", "a"}).find("--set"), std::string::npos);
  EXPECT_NE(usage_error_of({"--bootstrap", "nohost", "topics", "list"}).find("--bootstrap"),
            std::string::npos);
  EXPECT_NE(usage_error_of({"groups", "reset-offsets", "g", "--topic", "t"}).find("exactly one of"),
            std::string::npos);
  EXPECT_NE(usage_error_of(
                {"groups", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"})
                .find("exactly one of"),
            std::string::npos);
  EXPECT_NE(usage_error_of({"groups", "reset-offsets", "g", "--to-latest"}).find("--topic"),
            std::string::npos);
}

TEST(AdminOptions, BootstrapAddresses) {
  EXPECT_EQ(parse_bootstrap("[::1]:9092"), std::make_pair(std::string("::1"), std::uint16_t{9092}));
  EXPECT_FALSE(parse_bootstrap("::1:9092").has_value());
  EXPECT_FALSE(parse_bootstrap("host:").has_value());
  EXPECT_FALSE(parse_bootstrap("host:70000").has_value());
}

// ---- assignments and lag ------------------------------------------------------------------

std::vector<std::byte> encode_assignment(std::int16_t version,
                                         const std::vector<topic_partitions>& partitions,
                                         std::int16_t written_version) {
  protocol::ConsumerProtocolAssignment assignment;
  for (const auto& tp : partitions) {
    auto& entry = assignment.assigned_partitions.emplace_back();
    entry.topic = tp.topic;
    entry.partitions = tp.partitions;
  }
  protocol::writer out;
  out.write_int16(written_version);
  assignment.encode(out, version);
  return out.take();
}

TEST(GroupOffsets, AssignmentsDecodeAtEveryVersion) {
  const std::vector<topic_partitions> expected = {{"orders", {0, 2}}, {"clicks", {5}}};
  for (std::int16_t v = 0; v <= protocol::ConsumerProtocolAssignment::max_version; ++v) {
    auto bytes = encode_assignment(v, expected, v);
    auto decoded = decode_assignment(bytes);
    ASSERT_TRUE(decoded.ok()) << v;
    EXPECT_EQ(*decoded, expected) << v;
  }
  // A newer version than we know is read with our newest format (fields are appended).
  auto newer = encode_assignment(protocol::ConsumerProtocolAssignment::max_version, expected, 9);
  auto decoded = decode_assignment(newer);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, expected);
  // Empty: nothing assigned yet. Garbage: an error.
  EXPECT_TRUE(decode_assignment({}).ok());
  EXPECT_TRUE(decode_assignment({})->empty());
  const std::vector<std::byte> junk = {std::byte{0}, std::byte{0}, std::byte{0x7f}, std::byte{1}};
  EXPECT_FALSE(decode_assignment(junk).ok());
}

TEST(GroupOffsets, LagIsEndMinusCommittedAndOwnersComeFromAssignments) {
  std::vector<group_member> members(2);
  members[0].member_id = "m1";
  members[0].assignment = {{"t", {0, 1}}};
  members[1].member_id = "m2";
  members[1].assignment = {{"t", {2}}};
  const std::map<partition_key, std::int64_t> committed = {
      {{"t", 0}, 5}, {{"t", 1}, 7}, {{"old", 0}, 3}};
  const std::map<partition_key, std::int64_t> log_end = {
      {{"t", 0}, 10}, {{"t", 1}, 7}, {{"t", 2}, 4}};
  auto rows = group_partition_offsets(members, committed, log_end);
  ASSERT_EQ(rows.size(), 4u);  // old/0 and t/0..2, sorted
  EXPECT_EQ(rows[0].topic, "old");
  EXPECT_EQ(rows[0].committed_offset, 3);
  EXPECT_FALSE(rows[0].log_end_offset.has_value());
  EXPECT_FALSE(rows[0].lag.has_value());
  EXPECT_FALSE(rows[0].member_id.has_value());
  EXPECT_EQ(rows[1].lag, 5);
  EXPECT_EQ(rows[1].member_id, "m1");
  EXPECT_EQ(rows[2].lag, 0);
  EXPECT_EQ(rows[3].partition, 2);
  EXPECT_FALSE(rows[3].committed_offset.has_value());
  EXPECT_EQ(rows[3].log_end_offset, 4);
  EXPECT_FALSE(rows[3].lag.has_value());
  EXPECT_EQ(rows[3].member_id, "m2");
  EXPECT_EQ(clamp_reset_offset(100, 2, 10), 10);
  EXPECT_EQ(clamp_reset_offset(0, 2, 10), 2);
  EXPECT_EQ(clamp_reset_offset(6, 2, 10), 6);
}

// ---- the groups commands against canned answers ----------------------------------------------

bool read_exactly(int fd, void* into, std::size_t count) {
  auto* at = static_cast<char*>(into);
  while (count > 0) {
    const ssize_t got = ::recv(fd, at, count, 0);
    if (got <= 0) return false;
    at += got;
    count -= static_cast<std::size_t>(got);
  }
  return true;
}

// One broker on a loopback port that is its own group coordinator, with topic "t" (three
// partitions) and group "G" (one member, "m1", assigned t/0 and t/1). It decodes every
// request with the generated structs and answers from these facts:
//   partition  log start  log end  committed   earliest-at-timestamp
//   t/0        2          10       5           3
//   t/1        0          7        7           3
//   t/2        0          4        -           3
class canned_broker {
 public:
  // `versions_max` caps the versions advertised per API key (older brokers).
  explicit canned_broker(std::string state, std::map<std::int16_t, std::int16_t> versions_max = {})
      : state_(std::move(state)), versions_max_(std::move(versions_max)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    SLUICE_ASSERT(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0,
                  "bind");
    SLUICE_ASSERT(::listen(listen_fd_, 8) == 0, "listen");
    socklen_t length = sizeof address;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~canned_broker() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    {
      std::lock_guard lock(mutex_);
      for (int fd : connections_) ::shutdown(fd, SHUT_RDWR);
    }
    thread_.join();
    ::close(listen_fd_);
  }
  std::uint16_t port() const { return port_; }
  std::string bootstrap() const { return "127.0.0.1:" + std::to_string(port_); }

  // What the tool sent, for the test to check.
  std::vector<std::pair<std::int32_t, std::int64_t>> committed_by_tool() {
    std::lock_guard lock(mutex_);
    return commits_;
  }
  std::vector<std::int16_t> versions_used(api_key key) {
    std::lock_guard lock(mutex_);
    return versions_[static_cast<std::int16_t>(key)];
  }
  std::vector<std::string> problems() {
    std::lock_guard lock(mutex_);
    return problems_;
  }

 private:
  // Connections one after another (the tool opens one per broker address, here one).
  void serve() {
    while (!stopping_) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      {
        std::lock_guard lock(mutex_);
        connections_.push_back(fd);
      }
      std::vector<std::byte> frame;
      while (read_frame(fd, frame)) answer(fd, frame);
      ::close(fd);
    }
  }

  static bool read_frame(int fd, std::vector<std::byte>& frame) {
    std::uint32_t size_be = 0;
    if (!read_exactly(fd, &size_be, 4)) return false;
    frame.resize(ntohl(size_be));
    return read_exactly(fd, frame.data(), frame.size());
  }

  void problem(std::string what) {
    std::lock_guard lock(mutex_);
    problems_.push_back(std::move(what));
  }

  template <typename Response>
  void reply(int fd, std::int32_t correlation_id, std::int16_t version, const Response& body) {
    protocol::writer out;
    const auto mark = out.begin_size_prefix();
    out.write_int32(correlation_id);
    if (*protocol::response_header_version(Response::api_key, version) == 1) out.write_uvarint(0);
    body.encode(out, version);
    out.end_size_prefix(mark);
    const auto bytes = out.take();
    (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }

  void answer(int fd, const std::vector<std::byte>& frame) {
    protocol::reader in(frame);
    const std::int16_t key = in.read_int16();
    const std::int16_t version = in.read_int16();
    in = protocol::reader(frame);
    const auto header_version = protocol::request_header_version(key, version);
    if (!header_version) return problem("unknown api key " + std::to_string(key));
    protocol::RequestHeader header;
    header.decode(in, *header_version);
    {
      std::lock_guard lock(mutex_);
      versions_[key].push_back(version);
    }
    const std::int32_t id = header.correlation_id;
    auto decode = [&](auto& request) {
      request.decode(in, version);
      if (!in.ok() || in.remaining() != 0) {
        problem("request of api " + std::to_string(key) + " v" + std::to_string(version) +
                " does not decode");
      }
    };
    switch (static_cast<api_key>(key)) {
      case api_key::api_versions: {
        protocol::ApiVersionsRequest request;
        decode(request);
        protocol::ApiVersionsResponse response;
        for (const auto& row : protocol::supported_versions) {
          auto& entry = response.api_keys.emplace_back();
          entry.api_key = static_cast<std::int16_t>(row.key);
          entry.min_version = row.min_version;
          entry.max_version = row.max_version;
          if (auto cap = versions_max_.find(entry.api_key); cap != versions_max_.end()) {
            entry.max_version = cap->second;
          }
        }
        return reply(fd, id, version, response);
      }
      case api_key::metadata: {
        protocol::MetadataRequest request;
        decode(request);
        if (request.allow_auto_topic_creation) problem("Metadata asks to create topics");
        protocol::MetadataResponse response;
        auto& broker = response.brokers.emplace_back();
        broker.node_id = 0;
        broker.host = "127.0.0.1";
        broker.port = port_;
        std::vector<std::string_view> names;
        if (!request.topics) {
          names.push_back("t");
        } else {
          for (const auto& t : *request.topics) names.push_back(t.name.value_or(""));
        }
        for (std::string_view name : names) {
          auto& topic = response.topics.emplace_back();
          topic.name = name;
          if (name != "t") {
            topic.error_code = 3;
            continue;
          }
          for (std::int32_t p = 0; p < 3; ++p) {
            auto& partition = topic.partitions.emplace_back();
            partition.partition_index = p;
            partition.leader_id = 0;
            partition.replica_nodes = {0};
            partition.isr_nodes = {0};
          }
        }
        return reply(fd, id, version, response);
      }
      case api_key::find_coordinator: {
        protocol::FindCoordinatorRequest request;
        decode(request);
        protocol::FindCoordinatorResponse response;
        response.host = "127.0.0.1";
        response.port = port_;
        for (auto group : request.coordinator_keys) {
          auto& c = response.coordinators.emplace_back();
          c.key = group;
          c.host = "127.0.0.1";
          c.port = port_;
        }
        if (version >= 4 && request.coordinator_keys.size() != 1) problem("FindCoordinator keys");
        if (version < 4 && request.key.empty()) problem("FindCoordinator without a key");
        return reply(fd, id, version, response);
      }
      case api_key::describe_groups: {
        protocol::DescribeGroupsRequest request;
        decode(request);
        protocol::DescribeGroupsResponse response;
        for (auto name : request.groups) {
          auto& group = response.groups.emplace_back();
          group.group_id = name;
          if (name != "G") {
            group.group_state = "Dead";
            continue;
          }
          group.group_state = state_;
          group.protocol_type = "consumer";
          group.protocol_data = "range";
          if (state_ == "Empty") continue;
          auto& member = group.members.emplace_back();
          member.member_id = "m1";
          member.client_id = "client-1";
          member.client_host = "/10.0.0.1";
          member.member_assignment = assignment_;
        }
        return reply(fd, id, version, response);
      }
      case api_key::offset_fetch: {
        protocol::OffsetFetchRequest request;
        decode(request);
        const std::vector<std::pair<std::int32_t, std::int64_t>> committed = {{0, 5}, {1, 7}};
        protocol::OffsetFetchResponse response;
        if (version >= 8) {
          for (const auto& g : request.groups) {
            auto& group = response.groups.emplace_back();
            group.group_id = g.group_id;
            if (g.group_id != "G") continue;
            auto& topic = group.topics.emplace_back();
            topic.name = "t";
            for (auto [p, offset] : committed) {
              auto& partition = topic.partitions.emplace_back();
              partition.partition_index = p;
              partition.committed_offset = offset;
            }
          }
        } else if (request.group_id == "G") {
          auto& topic = response.topics.emplace_back();
          topic.name = "t";
          for (auto [p, offset] : committed) {
            auto& partition = topic.partitions.emplace_back();
            partition.partition_index = p;
            partition.committed_offset = offset;
          }
        }
        return reply(fd, id, version, response);
      }
      case api_key::list_offsets: {
        protocol::ListOffsetsRequest request;
        decode(request);
        const std::int64_t start[] = {2, 0, 0};
        const std::int64_t end[] = {10, 7, 4};
        protocol::ListOffsetsResponse response;
        for (const auto& t : request.topics) {
          auto& topic = response.topics.emplace_back();
          topic.name = t.name;
          for (const auto& p : t.partitions) {
            auto& partition = topic.partitions.emplace_back();
            partition.partition_index = p.partition_index;
            if (t.name != "t" || p.partition_index < 0 || p.partition_index > 2) {
              partition.error_code = 3;
              continue;
            }
            const auto i = static_cast<std::size_t>(p.partition_index);
            partition.offset = p.timestamp == -1 ? end[i] : p.timestamp == -2 ? start[i] : 3;
          }
        }
        return reply(fd, id, version, response);
      }
      case api_key::offset_commit: {
        protocol::OffsetCommitRequest request;
        decode(request);
        if (request.group_id != "G" || request.generation_id_or_member_epoch != -1 ||
            !request.member_id.empty()) {
          problem("OffsetCommit is not an admin commit to G");
        }
        protocol::OffsetCommitResponse response;
        for (const auto& t : request.topics) {
          auto& topic = response.topics.emplace_back();
          topic.name = t.name;
          for (const auto& p : t.partitions) {
            topic.partitions.emplace_back().partition_index = p.partition_index;
            std::lock_guard lock(mutex_);
            commits_.emplace_back(p.partition_index, p.committed_offset);
          }
        }
        return reply(fd, id, version, response);
      }
      case api_key::delete_groups: {
        protocol::DeleteGroupsRequest request;
        decode(request);
        protocol::DeleteGroupsResponse response;
        for (auto name : request.groups_names) {
          auto& result = response.results.emplace_back();
          result.group_id = name;
          result.error_code = name == "G" ? 0 : 69;  // GROUP_ID_NOT_FOUND
        }
        return reply(fd, id, version, response);
      }
      case api_key::list_groups: {
        protocol::ListGroupsRequest request;
        decode(request);
        protocol::ListGroupsResponse response;
        auto& group = response.groups.emplace_back();
        group.group_id = "G";
        group.protocol_type = "consumer";
        group.group_state = state_;
        return reply(fd, id, version, response);
      }
      default: problem("unexpected api key " + std::to_string(key));
    }
  }

  std::vector<std::byte> make_assignment() {
    protocol::ConsumerProtocolAssignment assignment;
    auto& entry = assignment.assigned_partitions.emplace_back();
    entry.topic = "t";
    entry.partitions = {0, 1};
    protocol::writer out;
    out.write_int16(3);
    assignment.encode(out, 3);
    return out.take();
  }

  const std::string state_;
  const std::map<std::int16_t, std::int16_t> versions_max_;
  const std::vector<std::byte> assignment_ = make_assignment();
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::vector<int> connections_;
  std::vector<std::pair<std::int32_t, std::int64_t>> commits_;
  std::map<std::int16_t, std::vector<std::int16_t>> versions_;
  std::vector<std::string> problems_;
  std::thread thread_;
};

struct run_result {
  int exit_code;
  std::string out;
  std::string err;
};

run_result run(const canned_broker& broker, std::vector<std::string> words) {
  std::vector<std::string> all = {"sluice-admin", "--bootstrap", broker.bootstrap()};
  all.insert(all.end(), words.begin(), words.end());
  std::vector<const char*> argv;
  for (const auto& w : all) argv.push_back(w.c_str());
  std::ostringstream out, err;
  const int code = run_admin(static_cast<int>(argv.size()), argv.data(), out, err);
  return {code, out.str(), err.str()};
}

// The offsets expected from the table above: t/0 lags 10 - 5, t/1 7 - 7; t/2 has neither
// a commit nor an owner, so no row.
constexpr const char* expected_offsets =
    R"("offsets":[{"topic":"t","partition":0,"committed_offset":5,"log_end_offset":10,"lag":5,"member_id":"m1"},)"
    R"({"topic":"t","partition":1,"committed_offset":7,"log_end_offset":7,"lag":0,"member_id":"m1"}])";

TEST(AdminGroups, DescribeShowsMembersAssignmentsAndLag) {
  canned_broker broker("Stable");
  auto r = run(broker, {"groups", "describe", "G", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(
      r.out.find(R"("group":"G","state":"Stable","protocol_type":"consumer","protocol":"range")"),
      std::string::npos)
      << r.out;
  EXPECT_NE(
      r.out.find(
          R"({"member_id":"m1","group_instance_id":null,"client_id":"client-1","host":"/10.0.0.1","assignment":[{"topic":"t","partitions":[0,1]}]})"),
      std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(expected_offsets), std::string::npos) << r.out;
  EXPECT_TRUE(broker.problems().empty()) << broker.problems().front();
  // The newest versions were used (the v8+ group-array form of OffsetFetch).
  EXPECT_EQ(broker.versions_used(api_key::offset_fetch).back(),
            protocol::find_api(static_cast<std::int16_t>(api_key::offset_fetch))->max_version);

  auto table = run(broker, {"groups", "describe", "G"});
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("t      0          5               10              5    m1"),
            std::string::npos)
      << table.out;
}

TEST(AdminGroups, OlderBrokersGetTheOlderRequestForms) {
  // OffsetFetch v7 (one group, top-level topics), FindCoordinator v3 (one key).
  canned_broker broker("Stable", {{9, 7}, {10, 3}});
  auto r = run(broker, {"groups", "describe", "G", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(expected_offsets), std::string::npos) << r.out;
  EXPECT_EQ(broker.versions_used(api_key::offset_fetch).back(), 7);
  EXPECT_EQ(broker.versions_used(api_key::find_coordinator).back(), 3);
  EXPECT_TRUE(broker.problems().empty()) << broker.problems().front();
}

TEST(AdminGroups, AnUnknownGroupIsAOneLineFailure) {
  canned_broker broker("Stable");
  auto r = run(broker, {"groups", "describe", "nobody"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "sluice-admin: group 'nobody': GROUP_ID_NOT_FOUND: the group does not exist\n");
}

TEST(AdminGroups, ResetRefusesAGroupWithMembers) {
  canned_broker broker("Stable");
  auto r = run(broker, {"groups", "reset-offsets", "G", "--topic", "t", "--to-earliest"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("group 'G': NON_EMPTY_GROUP"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Stable"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  EXPECT_TRUE(broker.committed_by_tool().empty());
}

TEST(AdminGroups, ResetCommitsTheTargetOffsets) {
  canned_broker broker("Empty");
  using commits = std::vector<std::pair<std::int32_t, std::int64_t>>;
  auto dry = run(broker, {"groups", "reset-offsets", "G", "--topic", "t", "--to-earliest",
                          "--dry-run", "--json"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find(
                R"("dry_run":true,"offsets":[{"partition":0,"previous_offset":5,"new_offset":2},)"
                R"({"partition":1,"previous_offset":7,"new_offset":0},)"
                R"({"partition":2,"previous_offset":null,"new_offset":0}])"),
            std::string::npos)
      << dry.out;
  EXPECT_TRUE(broker.committed_by_tool().empty());

  auto earliest = run(broker, {"groups", "reset-offsets", "G", "--topic", "t", "--to-earliest"});
  EXPECT_EQ(earliest.exit_code, 0) << earliest.err;
  EXPECT_EQ(broker.committed_by_tool(), (commits{{0, 2}, {1, 0}, {2, 0}}));

  // --to-offset is kept within [log start, log end]: 6 -> 6, 6 -> 6, 6 -> 4.
  auto offset = run(broker, {"groups", "reset-offsets", "G", "--topic", "t", "--to-offset", "6"});
  EXPECT_EQ(offset.exit_code, 0) << offset.err;
  auto latest = run(
      broker, {"groups", "reset-offsets", "G", "--topic", "t", "--partition", "1", "--to-latest"});
  EXPECT_EQ(latest.exit_code, 0) << latest.err;
  auto at_time = run(broker, {"groups", "reset-offsets", "G", "--topic", "t", "--partition", "2",
                              "--to-timestamp", "1000"});
  EXPECT_EQ(at_time.exit_code, 0) << at_time.err;
  EXPECT_EQ(broker.committed_by_tool(),
            (commits{{0, 2}, {1, 0}, {2, 0}, {0, 6}, {1, 6}, {2, 4}, {1, 7}, {2, 3}}));

  auto unknown = run(broker, {"groups", "reset-offsets", "G", "--topic", "gone", "--to-latest"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.err, "sluice-admin: topic 'gone': UNKNOWN_TOPIC_OR_PARTITION\n");
  EXPECT_TRUE(broker.problems().empty()) << broker.problems().front();
}

TEST(AdminGroups, ListAndDelete) {
  canned_broker broker("Empty");
  auto list = run(broker, {"groups", "list", "--json"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out, R"({"groups":[{"group":"G","state":"Empty","protocol_type":"consumer"}]})"
                      "\n");
  auto deleted = run(broker, {"groups", "delete", "G", "other"});
  EXPECT_EQ(deleted.exit_code, 1);
  EXPECT_EQ(deleted.out, "Deleted group G.\n");
  EXPECT_EQ(deleted.err, "sluice-admin: group 'other': GROUP_ID_NOT_FOUND\n");
  EXPECT_TRUE(broker.problems().empty()) << broker.problems().front();
}

}  // namespace
}  // namespace sluice::admin
