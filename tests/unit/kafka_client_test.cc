// kafka_client (net/client/) against the real `sluice` binary -- version negotiation,
// Metadata, CreateTopics, 10,000 pipelined produce requests -- and against a scripted
// fake broker on a plain socket for what a healthy broker never does: close the
// connection with requests outstanding, answer with a frame over the limit, answer late
// or not at all, answer with the wrong correlation id, or know an older ApiVersions.
#include "net/client/kafka_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "broker/api/api_table.h"
#include "net/protocol/error_codes.h"
#include "net/protocol/generated/messages.h"
#include "tests/support/storage_fixture.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using protocol::api_key;
using test::temp_dir;

std::unique_ptr<reactor> make_reactor() {
  auto made = reactor::create(reactor_config{});
  SLUICE_ASSERT(made.ok(), "io_uring is needed for these tests");
  return std::move(*made);
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  SLUICE_ASSERT(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0, "bind");
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// ---- the real broker ----------------------------------------------------------------------

// One `sluice` process on a free port and a fresh data directory, stopped with SIGTERM.
class sluice_process {
 public:
  sluice_process() : port_(free_port()) {
    log_path_ = dir_.path() + "/sluice.log";
    const std::string data = dir_.path() + "/data";
    const std::string listen = "127.0.0.1:" + std::to_string(port_);
    pid_ = ::fork();
    SLUICE_ASSERT(pid_ >= 0, "fork failed");
    if (pid_ == 0) {
      std::FILE* log = std::fopen(log_path_.c_str(), "w");
      if (log != nullptr) ::dup2(::fileno(log), STDERR_FILENO);
      ::execl(SLUICE_BINARY, SLUICE_BINARY, "--listen", listen.c_str(), "--data-dir", data.c_str(),
              "--auto-create-topics", "false", nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 400 && !ready_; ++i) {
      ready_ = log().find("listening on") != std::string::npos;
      if (!ready_) std::this_thread::sleep_for(50ms);
    }
  }
  ~sluice_process() { stop(); }

  bool ready() const { return ready_; }
  std::uint16_t port() const { return port_; }
  std::string log() const {
    std::ifstream in(log_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  int stop() {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
  }

 private:
  temp_dir dir_;
  std::uint16_t port_;
  std::string log_path_;
  pid_t pid_ = -1;
  bool ready_ = false;
  int exit_code_ = -1;
};

class KafkaClientBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(broker_.ready()) << broker_.log();
    ring_ = make_reactor();
    client_ = std::make_unique<kafka_client>(*ring_, config());
    auto connected = client_->connect_sync("127.0.0.1", broker_.port());
    ASSERT_TRUE(connected.ok()) << connected.failure().detail();
    ASSERT_TRUE(client_->ready());
  }
  void TearDown() override {
    client_.reset();
    EXPECT_EQ(broker_.stop(), 0) << broker_.log();
  }
  virtual kafka_client_config config() { return kafka_client_config{}; }

  void create_topic(const std::string& name, std::int32_t partitions) {
    protocol::CreateTopicsRequest request;
    auto& topic = request.topics.emplace_back();
    topic.name = name;
    topic.num_partitions = partitions;
    topic.replication_factor = 1;
    auto created = client_->call_sync<protocol::CreateTopicsResponse>(request);
    ASSERT_TRUE(created.ok()) << created.failure().detail();
    ASSERT_EQ(created->message.topics.size(), 1u);
    ASSERT_EQ(created->message.topics[0].error_code, 0);
  }

  sluice_process broker_;
  std::unique_ptr<reactor> ring_;
  std::unique_ptr<kafka_client> client_;
};

TEST_F(KafkaClientBrokerTest, NegotiatesTheHighestVersionBothSidesSupport) {
  // The broker's own table is what its ApiVersions lists.
  for (const api_handler& row : api_handlers) {
    const auto range = client_->broker_versions(row.key);
    ASSERT_TRUE(range.has_value()) << static_cast<int>(row.key);
    EXPECT_EQ(range->first, row.min_version);
    EXPECT_EQ(range->second, row.max_version);
    auto newest = client_->version_for(row.key, 0, 100);
    ASSERT_TRUE(newest.ok());
    EXPECT_EQ(*newest, row.max_version);
    if (row.max_version > row.min_version) {
      auto capped = client_->version_for(row.key, 0, row.max_version - 1);
      ASSERT_TRUE(capped.ok());
      EXPECT_EQ(*capped, row.max_version - 1);
    }
  }
  // Produce starts at v3 on Sluice: nothing in common with a v0-v2 client.
  auto old_produce = client_->version_for(api_key::produce, 0, 2);
  ASSERT_FALSE(old_produce.ok());
  EXPECT_TRUE(client_error::is_unsupported(old_produce.failure()));
  // DeleteRecords (21) is not served.
  auto missing = client_->version_for(static_cast<api_key>(21), 0, 2);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(client_error::is_unsupported(missing.failure()));
  EXPECT_FALSE(client_->broker_versions(static_cast<api_key>(21)).has_value());
}

TEST_F(KafkaClientBrokerTest, MetadataNamesThisBroker) {
  protocol::MetadataRequest request;
  request.topics = std::nullopt;  // every topic
  auto metadata = client_->call_sync<protocol::MetadataResponse>(request);
  ASSERT_TRUE(metadata.ok()) << metadata.failure().detail();
  ASSERT_EQ(metadata->message.brokers.size(), 1u);
  EXPECT_EQ(metadata->message.brokers[0].port, broker_.port());
  // A fresh broker holds no topic of ours (an internal one, __consumer_offsets, may exist).
  for (const auto& topic : metadata->message.topics) {
    EXPECT_TRUE(topic.is_internal) << topic.name.value_or("(null)");
  }
}

TEST_F(KafkaClientBrokerTest, CreateTopicsThenMetadataShowsThePartitions) {
  create_topic("orders", 3);
  protocol::MetadataRequest request;
  auto& wanted = request.topics->emplace_back();
  wanted.name = "orders";
  auto metadata = client_->call_sync<protocol::MetadataResponse>(request);
  ASSERT_TRUE(metadata.ok()) << metadata.failure().detail();
  ASSERT_EQ(metadata->message.topics.size(), 1u);
  EXPECT_EQ(metadata->message.topics[0].error_code, 0);
  EXPECT_EQ(metadata->message.topics[0].partitions.size(), 3u);

  protocol::CreateTopicsRequest again;
  auto& topic = again.topics.emplace_back();
  topic.name = "orders";
  topic.num_partitions = 1;
  topic.replication_factor = 1;
  auto created = client_->call_sync<protocol::CreateTopicsResponse>(again);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->message.topics.at(0).error_code,
            static_cast<std::int16_t>(protocol::error_code::topic_already_exists));
}

TEST_F(KafkaClientBrokerTest, TenThousandPipelinedProducesAreAnsweredInOrder) {
  create_topic("load", 1);
  constexpr std::uint64_t requests = 10000;
  // One prebuilt body, borrowed by every request: the load tool's way.
  const test::owned_batch batch = test::make_batch(1, "load");
  protocol::ProduceRequest produce;
  produce.transactional_id = std::nullopt;
  produce.acks = 1;
  produce.timeout_ms = 30000;
  auto& topic = produce.topic_data.emplace_back();
  topic.name = "load";
  auto& partition = topic.partition_data.emplace_back();
  partition.index = 0;
  partition.records = protocol::bytes_view(batch.bytes);
  auto version = client_->version_for(api_key::produce, 3, 11);
  ASSERT_TRUE(version.ok());
  protocol::writer out;
  produce.encode(out, *version);
  ASSERT_TRUE(out.ok());
  const std::vector<std::byte> body(out.bytes().begin(), out.bytes().end());

  struct progress {
    std::int16_t version;
    std::uint64_t answered = 0;
    std::uint64_t out_of_order = 0;
    std::uint64_t failed = 0;
    std::int32_t last_correlation_id = 0;
  } state{*version};
  std::uint64_t sent = 0;
  std::size_t in_flight_peak = 0;
  bool saw_backpressure = false;
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (state.answered < requests && std::chrono::steady_clock::now() < until) {
    while (sent < requests && client_->can_send()) {
      // Captures two words: std::function keeps them inline.
      auto queued = client_->send(api_key::produce, *version, body,
                                  [s = &state, index = sent](result<response_view> response) {
                                    if (!response.ok()) {
                                      ++s->failed;
                                      return;
                                    }
                                    protocol::reader in(response->body);
                                    protocol::ProduceResponse answer;
                                    answer.decode(in, s->version);
                                    const auto& p =
                                        answer.responses.at(0).partition_responses.at(0);
                                    // The index-th request is the index-th answer, at the index-th
                                    // offset.
                                    if (!in.ok() || p.error_code != 0 || index != s->answered ||
                                        p.base_offset != static_cast<std::int64_t>(index) ||
                                        response->correlation_id <= s->last_correlation_id) {
                                      ++s->out_of_order;
                                    }
                                    s->last_correlation_id = response->correlation_id;
                                    ++s->answered;
                                  });
      ASSERT_TRUE(queued.ok()) << queued.failure().detail();
      ++sent;
    }
    in_flight_peak = std::max(in_flight_peak, client_->in_flight());
    if (sent < requests && !client_->can_send()) {
      saw_backpressure = true;
      auto refused = client_->send(api_key::produce, *version, body, [](result<response_view>) {});
      ASSERT_FALSE(refused.ok());
      EXPECT_TRUE(client_error::is_backpressure(refused.failure()));
    }
    ring_->run_once(10ms);
  }
  EXPECT_EQ(state.answered, requests);
  EXPECT_EQ(state.failed, 0u);
  EXPECT_EQ(state.out_of_order, 0u);
  EXPECT_EQ(in_flight_peak, 64u);
  EXPECT_TRUE(saw_backpressure);
  EXPECT_EQ(client_->in_flight(), 0u);

  // The log holds exactly what was produced.
  protocol::ListOffsetsRequest list;
  list.replica_id = -1;
  auto& t = list.topics.emplace_back();
  t.name = "load";
  auto& p = t.partitions.emplace_back();
  p.partition_index = 0;
  p.timestamp = -1;  // latest
  auto offsets = client_->call_sync<protocol::ListOffsetsResponse>(list);
  ASSERT_TRUE(offsets.ok()) << offsets.failure().detail();
  EXPECT_EQ(offsets->message.topics.at(0).partitions.at(0).offset,
            static_cast<std::int64_t>(requests));
}

// ---- a scripted fake broker ----------------------------------------------------------------

struct request_frame {
  std::int16_t key = -1;
  std::int16_t version = -1;
  std::int32_t correlation_id = 0;
  std::vector<std::byte> bytes;  // the whole frame, header included
};

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

bool read_request(int fd, request_frame& out) {
  std::uint32_t size_be = 0;
  if (!read_exactly(fd, &size_be, 4)) return false;
  out.bytes.resize(ntohl(size_be));
  if (!read_exactly(fd, out.bytes.data(), out.bytes.size())) return false;
  protocol::reader in(out.bytes);
  out.key = in.read_int16();
  out.version = in.read_int16();
  out.correlation_id = in.read_int32();
  return in.ok();
}

void write_all(int fd, const std::vector<std::byte>& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t put = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (put <= 0) return;
    done += static_cast<std::size_t>(put);
  }
}

// A response frame: size, correlation id, (tagged fields when flexible), body.
void write_response(int fd, std::int32_t correlation_id, const std::vector<std::byte>& body,
                    bool flexible_header = false) {
  protocol::writer out;
  const auto mark = out.begin_size_prefix();
  out.write_int32(correlation_id);
  if (flexible_header) out.write_uvarint(0);
  out.write_raw(body);
  out.end_size_prefix(mark);
  write_all(fd, out.take());
}

struct api_range {
  api_key key;
  std::int16_t min_version;
  std::int16_t max_version;
};

std::vector<std::byte> api_versions_body(std::int16_t version, std::int16_t error_code,
                                         const std::vector<api_range>& ranges) {
  protocol::ApiVersionsResponse response;
  response.error_code = error_code;
  for (const auto& range : ranges) {
    auto& row = response.api_keys.emplace_back();
    row.api_key = static_cast<std::int16_t>(range.key);
    row.min_version = range.min_version;
    row.max_version = range.max_version;
  }
  protocol::writer out;
  response.encode(out, version);
  return out.take();
}

const std::vector<api_range> fake_ranges = {
    {api_key::produce, 3, 7},
    {api_key::metadata, 0, 5},
    {api_key::api_versions, 0, 4},
};

// Listens on a loopback port; one connection, served by `script` on its own thread.
class fake_broker {
 public:
  using script = std::function<void(int fd)>;
  explicit fake_broker(script run) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    SLUICE_ASSERT(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0,
                  "bind");
    SLUICE_ASSERT(::listen(listen_fd_, 4) == 0, "listen");
    socklen_t length = sizeof address;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this, run = std::move(run)] {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      connection_fd_ = fd;
      run(fd);
      finished_ = true;
    });
  }
  // Ends a script still waiting for the client: its reads return 0.
  ~fake_broker() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    if (connection_fd_ >= 0) ::shutdown(connection_fd_, SHUT_RDWR);
    thread_.join();
    if (connection_fd_ >= 0) ::close(connection_fd_);
    ::close(listen_fd_);
  }
  std::uint16_t port() const { return port_; }
  bool finished() const { return finished_; }

 private:
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> connection_fd_{-1};
  std::thread thread_;
  std::atomic<bool> finished_{false};
};

// Answers the client's ApiVersions with `ranges`; false if the first request was not one.
bool answer_api_versions(int fd, const std::vector<api_range>& ranges = fake_ranges) {
  request_frame request;
  if (!read_request(fd, request) || request.key != 18) return false;
  write_response(fd, request.correlation_id, api_versions_body(request.version, 0, ranges));
  return true;
}

// A Metadata v0-v5 request's answer: an empty cluster.
std::vector<std::byte> empty_metadata(std::int16_t version) {
  protocol::MetadataResponse response;
  protocol::writer out;
  response.encode(out, version);
  return out.take();
}

class KafkaClientFakeBrokerTest : public ::testing::Test {
 protected:
  void connect(std::uint16_t port, kafka_client_config config = {}) {
    ring_ = make_reactor();
    client_ = std::make_unique<kafka_client>(*ring_, config);
    auto connected = client_->connect_sync("127.0.0.1", port);
    ASSERT_TRUE(connected.ok()) << connected.failure().detail();
  }
  // Sends `count` Metadata requests; outcomes land in outcomes_ in callback order as
  // (index, error-or-ok).
  void send_metadata(int count, std::chrono::milliseconds timeout = 0ms) {
    auto version = client_->version_for(api_key::metadata, 0, 12);
    ASSERT_TRUE(version.ok());
    protocol::MetadataRequest request;
    protocol::writer out;
    request.encode(out, *version);
    body_ = out.take();
    for (int i = 0; i < count; ++i) {
      auto queued = client_->send(
          api_key::metadata, *version, body_,
          [this, i](result<response_view> r) {
            outcomes_.emplace_back(i, r.ok() ? std::optional<error>() : r.failure());
          },
          timeout);
      ASSERT_TRUE(queued.ok()) << queued.failure().detail();
    }
  }
  bool wait_outcomes(std::size_t count, std::chrono::milliseconds limit = 10s) {
    return ring_->run_until([&] { return outcomes_.size() >= count; }, limit);
  }

  std::unique_ptr<reactor> ring_;
  std::unique_ptr<kafka_client> client_;
  std::vector<std::byte> body_;
  std::vector<std::pair<int, std::optional<error>>> outcomes_;
};

TEST_F(KafkaClientFakeBrokerTest, VersionsComeFromTheBrokersAnswer) {
  fake_broker broker([](int fd) {
    answer_api_versions(fd);
    request_frame ignored;
    read_request(fd, ignored);  // until the client goes
  });
  connect(broker.port());
  EXPECT_EQ(*client_->version_for(api_key::metadata, 0, 12), 5);
  EXPECT_EQ(*client_->version_for(api_key::metadata, 1, 3), 3);
  EXPECT_EQ(*client_->version_for(api_key::produce, 0, 11), 7);
  auto none = client_->version_for(api_key::fetch, 4, 17);
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(client_error::is_unsupported(none.failure()));
  auto disjoint = client_->version_for(api_key::metadata, 6, 12);
  ASSERT_FALSE(disjoint.ok());
  EXPECT_TRUE(client_error::is_unsupported(disjoint.failure()));
  // A typed call of an API the broker lacks fails without sending anything.
  std::optional<error> failure;
  client_->call<protocol::FetchResponse>(protocol::FetchRequest{},
                                         [&](result<protocol::FetchResponse> r) {
                                           if (!r.ok()) failure = r.failure();
                                         });
  ASSERT_TRUE(failure.has_value());
  EXPECT_TRUE(client_error::is_unsupported(*failure));
  EXPECT_EQ(client_->in_flight(), 0u);
}

TEST_F(KafkaClientFakeBrokerTest, AnOlderBrokerIsAskedAgainAtItsApiVersionsVersion) {
  std::vector<std::int16_t> asked;
  fake_broker broker([&asked](int fd) {
    request_frame request;
    if (!read_request(fd, request)) return;
    asked.push_back(request.version);
    // KIP-511: UNSUPPORTED_VERSION, at v0, with the versions this broker knows.
    write_response(fd, request.correlation_id,
                   api_versions_body(0, 35, {{api_key::api_versions, 0, 2}}));
    if (!read_request(fd, request)) return;
    asked.push_back(request.version);
    write_response(fd, request.correlation_id,
                   api_versions_body(request.version, 0,
                                     {{api_key::api_versions, 0, 2}, {api_key::metadata, 0, 4}}));
    read_request(fd, request);
  });
  connect(broker.port());
  EXPECT_EQ(*client_->version_for(api_key::metadata, 0, 12), 4);
  client_.reset();
  ring_->run_until([&] { return broker.finished(); }, 5s);
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[0], protocol::ApiVersionsRequest::max_version);
  EXPECT_EQ(asked[1], 2);
}

TEST_F(KafkaClientFakeBrokerTest, ABrokerClosingFailsEveryOutstandingRequest) {
  constexpr int outstanding = 10;
  fake_broker broker([](int fd) {
    answer_api_versions(fd);
    request_frame request;
    for (int i = 0; i < outstanding; ++i) read_request(fd, request);
    // Reads every request, answers none, hangs up.
    ::shutdown(fd, SHUT_RDWR);
  });
  connect(broker.port());
  send_metadata(outstanding);
  ASSERT_TRUE(wait_outcomes(outstanding));
  ASSERT_EQ(outcomes_.size(), static_cast<std::size_t>(outstanding));
  for (int i = 0; i < outstanding; ++i) {
    EXPECT_EQ(outcomes_[i].first, i);
    ASSERT_TRUE(outcomes_[i].second.has_value());
    EXPECT_TRUE(client_error::is_closed(*outcomes_[i].second)) << outcomes_[i].second->detail();
  }
  EXPECT_FALSE(client_->ready());
  EXPECT_EQ(client_->in_flight(), 0u);
  auto late = client_->send(api_key::metadata, 0, body_, [](result<response_view>) {});
  ASSERT_FALSE(late.ok());
  EXPECT_TRUE(client_error::is_closed(late.failure()));
}

TEST_F(KafkaClientFakeBrokerTest, AResponseOverTheLimitFailsOnlyItsRequest) {
  fake_broker broker([](int fd) {
    answer_api_versions(fd);
    request_frame first, second;
    if (!read_request(fd, first) || !read_request(fd, second)) return;
    // 100 kB for the first, far over the client's 1 kB limit; then a proper answer.
    write_response(fd, first.correlation_id, std::vector<std::byte>(100 * 1024, std::byte{7}));
    write_response(fd, second.correlation_id, empty_metadata(second.version));
    read_request(fd, first);
  });
  kafka_client_config config;
  config.response_bytes_max = 1024;
  connect(broker.port(), config);
  send_metadata(2);
  ASSERT_TRUE(wait_outcomes(2));
  ASSERT_TRUE(outcomes_[0].second.has_value());
  EXPECT_TRUE(client_error::is_frame_too_large(*outcomes_[0].second))
      << outcomes_[0].second->detail();
  EXPECT_FALSE(outcomes_[1].second.has_value()) << outcomes_[1].second->detail();
  EXPECT_TRUE(client_->ready());
}

TEST_F(KafkaClientFakeBrokerTest, ResponsesLargerThanTheReceiveBufferArriveWhole) {
  // Three answers of 300 kB, 5 bytes and 1 MB against a 4 kB starting buffer: the buffer
  // grows, frames straddle receives, and each body arrives byte for byte.
  const std::vector<std::size_t> sizes = {300 * 1024, 5, 1024 * 1024};
  auto pattern = [](std::size_t size, std::size_t seed) {
    std::vector<std::byte> body(size);
    for (std::size_t i = 0; i < size; ++i) body[i] = static_cast<std::byte>((i * 31 + seed) & 0xff);
    return body;
  };
  fake_broker broker([&](int fd) {
    answer_api_versions(fd);
    std::vector<request_frame> requests(sizes.size());
    for (auto& request : requests) {
      if (!read_request(fd, request)) return;
    }
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      write_response(fd, requests[i].correlation_id, pattern(sizes[i], i));
    }
    read_request(fd, requests[0]);
  });
  kafka_client_config config;
  config.receive_buffer_bytes = 4096;
  config.response_bytes_max = 2 * 1024 * 1024;
  connect(broker.port(), config);
  std::vector<std::byte> body;
  std::vector<bool> intact;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    auto queued = client_->send(api_key::metadata, 0, body, [&, i](result<response_view> r) {
      intact.push_back(r.ok() && std::ranges::equal(r->body, pattern(sizes[i], i)));
    });
    ASSERT_TRUE(queued.ok());
  }
  ASSERT_TRUE(ring_->run_until([&] { return intact.size() == sizes.size(); }, 10s));
  EXPECT_EQ(intact, std::vector<bool>(sizes.size(), true));
}

TEST_F(KafkaClientFakeBrokerTest, ATimeoutFiresAndTheLateAnswerIsDropped) {
  std::atomic<bool> release{false};
  fake_broker broker([&release](int fd) {
    answer_api_versions(fd);
    request_frame slow, next;
    if (!read_request(fd, slow) || !read_request(fd, next)) return;
    // Holds both answers until the test has seen the first time out.
    for (int i = 0; i < 1000 && !release; ++i) std::this_thread::sleep_for(5ms);
    write_response(fd, slow.correlation_id, empty_metadata(slow.version));
    write_response(fd, next.correlation_id, empty_metadata(next.version));
    read_request(fd, slow);
  });
  connect(broker.port());
  const auto start = std::chrono::steady_clock::now();
  send_metadata(1, 200ms);
  send_metadata(1, 20s);
  ASSERT_TRUE(wait_outcomes(1));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 200ms);
  EXPECT_LT(waited, 5s);
  ASSERT_TRUE(outcomes_[0].second.has_value());
  EXPECT_TRUE(client_error::is_timeout(*outcomes_[0].second)) << outcomes_[0].second->detail();
  // The timed-out request still holds its place until the broker's late answer.
  EXPECT_EQ(client_->in_flight(), 2u);
  release = true;
  ASSERT_TRUE(wait_outcomes(2));
  EXPECT_FALSE(outcomes_[1].second.has_value());
  ASSERT_TRUE(ring_->run_until([&] { return client_->in_flight() == 0; }, 5s));
  EXPECT_EQ(outcomes_.size(), 2u);  // the late answer reached nobody
  EXPECT_TRUE(client_->ready());
}

TEST_F(KafkaClientFakeBrokerTest, TypedCallsDecodeAndReportUndecodableBodies) {
  std::vector<std::int16_t> versions;
  fake_broker broker([&versions](int fd) {
    answer_api_versions(fd);
    request_frame good, bad;
    if (!read_request(fd, good) || !read_request(fd, bad)) return;
    versions = {good.version, bad.version};
    protocol::MetadataResponse response;
    response.brokers.emplace_back().node_id = 42;
    protocol::writer out;
    response.encode(out, good.version);
    write_response(fd, good.correlation_id, out.take());
    write_response(fd, bad.correlation_id, {std::byte{1}, std::byte{2}, std::byte{3}});
    read_request(fd, good);
  });
  connect(broker.port());
  std::vector<result<std::int32_t>> outcomes;
  for (int i = 0; i < 2; ++i) {
    client_->call<protocol::MetadataResponse>(protocol::MetadataRequest{},
                                              [&](const result<protocol::MetadataResponse>& r) {
                                                if (r.ok()) {
                                                  outcomes.emplace_back(r->brokers.at(0).node_id);
                                                } else {
                                                  outcomes.emplace_back(r.failure());
                                                }
                                              });
  }
  ASSERT_TRUE(ring_->run_until([&] { return outcomes.size() == 2; }, 10s));
  ASSERT_TRUE(outcomes[0].ok()) << outcomes[0].failure().detail();
  EXPECT_EQ(*outcomes[0], 42);
  ASSERT_FALSE(outcomes[1].ok());
  EXPECT_TRUE(client_error::is_bad_response(outcomes[1].failure()));
  EXPECT_TRUE(client_->ready());  // a body that does not decode spoils only its request
  EXPECT_EQ(versions, (std::vector<std::int16_t>{5, 5}));  // fake_ranges' Metadata maximum
}

TEST_F(KafkaClientFakeBrokerTest, AMismatchedCorrelationIdClosesTheConnection) {
  fake_broker broker([](int fd) {
    answer_api_versions(fd);
    request_frame request;
    if (!read_request(fd, request)) return;
    write_response(fd, request.correlation_id + 1000, empty_metadata(request.version));
    read_request(fd, request);
  });
  connect(broker.port());
  send_metadata(2);
  ASSERT_TRUE(wait_outcomes(2));
  for (const auto& [index, failure] : outcomes_) {
    ASSERT_TRUE(failure.has_value());
    EXPECT_TRUE(client_error::is_bad_response(*failure)) << failure->detail();
  }
  EXPECT_FALSE(client_->ready());
}

TEST_F(KafkaClientFakeBrokerTest, DestroyingTheClientAnswersEveryRequest) {
  fake_broker broker([](int fd) {
    answer_api_versions(fd);
    request_frame request;
    while (read_request(fd, request)) {
    }
  });
  connect(broker.port());
  send_metadata(5);
  client_.reset();
  ASSERT_EQ(outcomes_.size(), 5u);
  for (const auto& [index, failure] : outcomes_) {
    ASSERT_TRUE(failure.has_value());
    EXPECT_TRUE(client_error::is_closed(*failure));
  }
}

TEST_F(KafkaClientFakeBrokerTest, ConnectingToANonListeningPortFails) {
  const std::uint16_t port = free_port();
  ring_ = make_reactor();
  client_ = std::make_unique<kafka_client>(*ring_, kafka_client_config{});
  auto connected = client_->connect_sync("127.0.0.1", port);
  ASSERT_FALSE(connected.ok());
  EXPECT_TRUE(client_error::is_closed(connected.failure()));
  EXPECT_EQ(connected.failure().os_errno(), ECONNREFUSED);
  auto unresolved = kafka_client(*ring_, kafka_client_config{})
                        .connect("no-such-host.invalid", 9092, [](result<void>) {});
  EXPECT_FALSE(unresolved.ok());
}

TEST_F(KafkaClientFakeBrokerTest, ABrokerThatNeverAnswersApiVersionsTimesOutTheConnect) {
  fake_broker broker([](int fd) {
    request_frame request;
    read_request(fd, request);
    read_request(fd, request);  // until the client gives up
  });
  ring_ = make_reactor();
  kafka_client_config config;
  config.connect_timeout = 200ms;
  client_ = std::make_unique<kafka_client>(*ring_, config);
  const auto start = std::chrono::steady_clock::now();
  auto connected = client_->connect_sync("127.0.0.1", broker.port());
  ASSERT_FALSE(connected.ok());
  EXPECT_TRUE(client_error::is_timeout(connected.failure())) << connected.failure().detail();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
}

}  // namespace
}  // namespace sluice
