#include "broker/topic_registry.h"

#include <charconv>
#include <sstream>

#include "broker/kafka_uuid.h"
#include "engine/base/log.h"
#include "engine/io/file.h"
#include "engine/storage/checkpoint.h"

namespace sluice {
namespace {

constexpr std::string_view file_header = "sluice-topics 1";
constexpr std::size_t file_bytes_max = 64 * 1024 * 1024;
constexpr std::size_t topics_max = 100000;

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    std::size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

std::optional<std::int32_t> parse_partitions(std::string_view text) {
  std::int32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (value < 1 || value > topic_registry::partitions_per_topic_max) return std::nullopt;
  return value;
}

const error corrupt_file(errc::corrupt_batch, "the topics file is malformed");

}  // namespace

// ---- topic_table, topic_catalog ----------------------------------------------------------

const topic_info* topic_table::find(std::string_view name) const noexcept {
  auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : it->second.get();
}

const topic_info* topic_table::find(const protocol::uuid& id) const noexcept {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

std::shared_ptr<const topic_table> topic_catalog::newer_than(std::uint64_t& version) const {
  if (version_.load(std::memory_order_acquire) == version) return nullptr;
  std::lock_guard lock(mutex_);
  version = version_.load(std::memory_order_relaxed);
  return table_;
}

void topic_catalog::publish(std::shared_ptr<const topic_table> table) {
  std::lock_guard lock(mutex_);
  table_ = std::move(table);
  version_.fetch_add(1, std::memory_order_release);
}

// ---- local_log_set --------------------------------------------------------------------------

void local_log_set::for_each(const std::function<void(const topic_partition&)>& visit) {
  logs_.for_each([&](const topic_partition& tp, partition_log&) { visit(tp); });
}

bool local_log_set::exists(const topic_partition& tp) {
  return logs_.get(tp) != nullptr;
}

result<void> local_log_set::create(const topic_partition& tp, const log_config& config) {
  auto created = logs_.create(tp, config);
  if (!created) return created.failure();
  return {};
}

void local_log_set::set_config(const topic_partition& tp, const log_config& config) {
  if (partition_log* log = logs_.get(tp)) log->set_config(config);
}

log_set::removal local_log_set::remove_if_idle(
    const topic_partition& tp, const std::function<void(const topic_partition&)>& before_remove) {
  partition_log* log = logs_.get(tp);
  if (log == nullptr) return removal::absent;
  if (!log->idle()) return removal::busy;
  before_remove(tp);
  if (auto removed = logs_.remove(tp); !removed) {
    SLUICE_LOG(error, "broker", "cannot remove the files of {}: {}; remove {}/{} by hand",
               tp.dir_name(), removed.failure().detail(), logs_.config().data_dir, tp.dir_name());
  }
  return removal::removed;
}

// ---- topic_registry -------------------------------------------------------------------------

result<std::unique_ptr<topic_registry>> topic_registry::open(const std::string& data_dir,
                                                             log_manager& logs,
                                                             const log_config& defaults) {
  return open(data_dir, std::make_unique<local_log_set>(logs), defaults);
}

result<std::unique_ptr<topic_registry>> topic_registry::open(const std::string& data_dir,
                                                             std::unique_ptr<log_set> logs,
                                                             const log_config& defaults,
                                                             topic_catalog* publish_to) {
  std::unique_ptr<topic_registry> registry(new topic_registry(data_dir, std::move(logs), defaults));
  if (publish_to != nullptr) registry->catalog_ = publish_to;
  SLUICE_TRY(registry->load());
  registry->publish();
  return registry;
}

void topic_registry::publish() {
  auto table = std::make_shared<topic_table>();
  for (const auto& [name, topic] : topics_) {
    auto copy = std::make_shared<const topic_info>(*topic);
    table->by_id_[copy->id] = copy.get();
    table->topics_.emplace(name, std::move(copy));
  }
  for (const auto& [name, partitions] : deleting_) table->deleting_.insert(name);
  catalog_->publish(std::move(table));
}

result<void> topic_registry::load() {
  const std::string path = data_dir_ + "/" + file_name;
  bool changed = false;
  if (path_exists(path)) {
    auto text = read_small_file(path, file_bytes_max);
    if (!text) return text.failure();
    std::istringstream lines(*text);
    std::string line;
    if (!std::getline(lines, line) || line != file_header) {
      SLUICE_LOG(error, "broker", "{}: first line is not '{}'; fix or move the file away", path,
                 file_header);
      return corrupt_file;
    }
    std::size_t line_number = 1;
    while (std::getline(lines, line)) {
      ++line_number;
      if (line.empty()) continue;
      auto words = split_words(line);
      auto fail = [&] {
        SLUICE_LOG(error, "broker", "{}:{}: malformed line '{}'; fix or move the file away", path,
                   line_number, line);
        return corrupt_file;
      };
      if (words.size() == 3 && words[0] == "deleting") {
        auto partitions = parse_partitions(words[2]);
        if (!is_legal_topic_name(words[1]) || !partitions) return fail();
        deleting_[std::string(words[1])] = *partitions;
        continue;
      }
      if (words.size() < 4 || words[0] != "topic" || topics_.size() >= topics_max) return fail();
      topic_info topic;
      topic.name = std::string(words[1]);
      auto id = uuid_from_kafka_string(words[2]);
      auto partitions = parse_partitions(words[3]);
      if (!is_legal_topic_name(topic.name) || !id || is_zero(*id) || !partitions ||
          find(topic.name) != nullptr || find(*id) != nullptr) {
        return fail();
      }
      topic.id = *id;
      topic.partitions = *partitions;
      for (std::size_t i = 4; i < words.size(); ++i) {
        auto eq = words[i].find('=');
        if (eq == std::string_view::npos || eq == 0) return fail();
        topic.overrides.emplace(std::string(words[i].substr(0, eq)),
                                std::string(words[i].substr(eq + 1)));
      }
      auto resolved = resolve_topic_config(defaults_, topic.overrides);
      if (auto* problem = std::get_if<std::string>(&resolved)) {
        SLUICE_LOG(error, "broker", "{}:{}: topic {}: {}; fix or move the file away", path,
                   line_number, topic.name, *problem);
        return corrupt_file;
      }
      topic.log = std::get<log_config>(resolved);
      insert(std::move(topic));
    }
  }

  // Partition directories no topic claims: adopt them (a crash between creating the logs
  // and writing the file, or data written by a storage-only build).
  std::map<std::string, std::int32_t> orphans;
  logs_->for_each([&](const topic_partition& tp) {
    if (deleting_.count(tp.topic) != 0) return;
    const topic_info* known = find(tp.topic);
    if (known != nullptr && tp.partition < known->partitions) return;
    auto& count = orphans[tp.topic];
    count = std::max(count, tp.partition + 1);
  });
  for (const auto& [name, count] : orphans) {
    if (count > partitions_per_topic_max) continue;
    if (auto it = topics_.find(name); it != topics_.end()) {
      SLUICE_LOG(warn, "broker",
                 "topic {}: partition directories up to {} exist; growing it to "
                 "{} partitions",
                 name, count - 1, count);
      it->second->partitions = count;
    } else {
      topic_info topic;
      topic.name = name;
      topic.id = random_uuid();
      topic.partitions = count;
      topic.log = defaults_;
      SLUICE_LOG(warn, "broker",
                 "adopting partition directories of topic {} ({} partitions) "
                 "that the topics file did not list; it gets the new topic id {}",
                 name, count, uuid_to_kafka_string(topic.id));
      insert(std::move(topic));
    }
    changed = true;
  }

  // Each registered partition: apply the topic's config, create a missing log.
  for (auto& [name, topic] : topics_) {
    for (std::int32_t p = 0; p < topic->partitions; ++p) {
      topic_partition tp{name, p};
      if (logs_->exists(tp)) {
        logs_->set_config(tp, topic->log);
        continue;
      }
      SLUICE_LOG(warn, "broker",
                 "partition {} is registered but has no directory; creating it "
                 "empty",
                 tp.dir_name());
      SLUICE_TRY(logs_->create(tp, topic->log));
    }
  }
  if (changed || !deleting_.empty()) SLUICE_TRY(persist());
  return {};
}

topic_info* topic_registry::insert(topic_info topic) {
  auto owned = std::make_unique<topic_info>(std::move(topic));
  topic_info* raw = owned.get();
  by_id_[raw->id] = raw;
  topics_[raw->name] = std::move(owned);
  return raw;
}

result<void> topic_registry::persist() {
  std::string text(file_header);
  text += '\n';
  for (const auto& [name, topic] : topics_) {
    text += "topic " + name + " " + uuid_to_kafka_string(topic->id) + " " +
            std::to_string(topic->partitions);
    for (const auto& [key, value] : topic->overrides) text += " " + key + "=" + value;
    text += '\n';
  }
  for (const auto& [name, partitions] : deleting_) {
    text += "deleting " + name + " " + std::to_string(partitions) + "\n";
  }
  auto written = write_file_atomically(
      data_dir_ + "/" + file_name,
      std::span(reinterpret_cast<const std::byte*>(text.data()), text.size()));
  publish();
  if (!written) {
    SLUICE_LOG(error, "broker", "cannot write {}/{}: {}; topic changes are not persisted",
               data_dir_, file_name, written.failure().detail());
  }
  return written;
}

const topic_info* topic_registry::find(std::string_view name) const noexcept {
  auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : it->second.get();
}

const topic_info* topic_registry::find(const protocol::uuid& id) const noexcept {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

bool topic_registry::being_deleted(std::string_view name) const noexcept {
  return deleting_.find(name) != deleting_.end();
}

topic_registry::create_error topic_registry::check_create(std::string_view name,
                                                          std::int32_t partitions,
                                                          const topic_config_overrides& overrides,
                                                          std::string& problem) const {
  if (!is_legal_topic_name(name)) return create_error::invalid_name;
  if (find(name) != nullptr || being_deleted(name)) return create_error::exists;
  if (partitions < 1 || partitions > partitions_per_topic_max) {
    return create_error::invalid_partitions;
  }
  auto resolved = resolve_topic_config(defaults_, overrides);
  if (auto* reason = std::get_if<std::string>(&resolved)) {
    problem = *reason;
    return create_error::invalid_config;
  }
  return create_error::none;
}

result<const topic_info*> topic_registry::create(std::string_view name, std::int32_t partitions,
                                                 const topic_config_overrides& overrides) {
  std::string ignored;
  SLUICE_ASSERT(check_create(name, partitions, overrides, ignored) == create_error::none,
                "topic_registry::create without a passing check_create");
  if (topics_.size() >= topics_max) return error(errc::backpressure, "too many topics");
  topic_info topic;
  topic.name = std::string(name);
  topic.id = random_uuid();
  while (find(topic.id) != nullptr) topic.id = random_uuid();  // 2^-122: runs once
  topic.partitions = partitions;
  topic.overrides = overrides;
  topic.log = std::get<log_config>(resolve_topic_config(defaults_, overrides));
  // Logs first, then the file: a crash in between leaves directories that the next
  // start adopts, never a registered topic without logs.
  if (auto created = logs_->create_range(topic.name, 0, partitions, topic.log); !created) {
    SLUICE_LOG(error, "broker", "cannot create the partitions of topic {}: {}", topic.name,
               created.failure().detail());
    for (std::int32_t undo = 0; undo < partitions; ++undo) {
      // Just created: idle, unless a write already reached it (then the next start
      // adopts the directory).
      (void)logs_->remove_if_idle(topic_partition{topic.name, undo}, [](const topic_partition&) {});
    }
    return created.failure();
  }
  topic_info* inserted = insert(std::move(topic));
  SLUICE_TRY(persist());
  SLUICE_LOG(info, "broker", "created topic {} with {} partitions, topic id {}", inserted->name,
             inserted->partitions, uuid_to_kafka_string(inserted->id));
  return inserted;
}

result<void> topic_registry::add_partitions(std::string_view name, std::int32_t total) {
  auto it = topics_.find(name);
  if (it == topics_.end()) return error(errc::not_found, "no such topic");
  topic_info& topic = *it->second;
  SLUICE_ASSERT(total > topic.partitions, "add_partitions must grow the topic");
  if (total > partitions_per_topic_max) return error(errc::invalid_argument, "too many partitions");
  if (auto created = logs_->create_range(topic.name, topic.partitions, total, topic.log);
      !created) {
    for (std::int32_t undo = topic.partitions; undo < total; ++undo) {
      (void)logs_->remove_if_idle(topic_partition{topic.name, undo}, [](const topic_partition&) {});
    }
    return created.failure();
  }
  topic.partitions = total;
  return persist();
}

result<void> topic_registry::set_overrides(std::string_view name,
                                           const topic_config_overrides& overrides) {
  auto it = topics_.find(name);
  if (it == topics_.end()) return error(errc::not_found, "no such topic");
  topic_info& topic = *it->second;
  auto resolved = resolve_topic_config(defaults_, overrides);
  if (std::holds_alternative<std::string>(resolved)) {
    return error(errc::invalid_argument, "invalid topic config (see resolve_topic_config)");
  }
  // The file first: a change that cannot be persisted must not take effect, or it would
  // silently vanish at the next restart.
  topic_config_overrides previous = std::move(topic.overrides);
  topic.overrides = overrides;
  if (auto written = persist(); !written) {
    topic.overrides = std::move(previous);
    return written;
  }
  topic.log = std::get<log_config>(resolved);
  for (std::int32_t p = 0; p < topic.partitions; ++p) {
    logs_->set_config(topic_partition{topic.name, p}, topic.log);
  }
  publish();
  SLUICE_LOG(info, "broker", "topic {}: config overrides now {}", topic.name, overrides.size());
  return {};
}

result<void> topic_registry::remove_topic(std::string_view name) {
  auto it = topics_.find(name);
  if (it == topics_.end()) return error(errc::not_found, "no such topic");
  deleting_[it->second->name] = it->second->partitions;
  by_id_.erase(it->second->id);
  topics_.erase(it);
  SLUICE_LOG(info, "broker", "deleting topic {}", name);
  return persist();
}

std::size_t topic_registry::remove_idle_logs(
    const std::function<void(const topic_partition&)>& before_remove) {
  if (deleting_.empty()) return 0;
  std::size_t remaining = 0;
  bool finished_any = false;
  for (auto it = deleting_.begin(); it != deleting_.end();) {
    std::int32_t left = 0;
    for (std::int32_t p = 0; p < it->second; ++p) {
      topic_partition tp{it->first, p};
      if (logs_->remove_if_idle(tp, before_remove) == log_set::removal::busy) ++left;
    }
    if (left == 0) {
      it = deleting_.erase(it);
      finished_any = true;
    } else {
      remaining += static_cast<std::size_t>(left);
      ++it;
    }
  }
  if (finished_any) (void)persist();
  return remaining;
}

}  // namespace sluice
