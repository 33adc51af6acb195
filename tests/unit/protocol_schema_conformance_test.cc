// Checks our protocol schema (net/protocol/schema/, as the generator read it) against
// Kafka's own message definitions (the JSON files in clients/src/main/resources/common/
// message of Apache Kafka), when a copy of them is present at KAFKA_MESSAGE_DIR.
//
// Our schema is a transcription of those files; this test proves the transcription: the
// same messages, valid and flexible versions, and for every field, in order and at every
// nesting depth, the same name, type, versions, nullable versions, tag, tagged versions,
// default value and flexible override. The JSON files are read here only: the build never
// depends on them.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "net/protocol/generated/schema_facts.h"

#ifndef KAFKA_MESSAGE_DIR
#define KAFKA_MESSAGE_DIR ""
#endif

namespace {

// ---------------------------------------------------------------------------------------
// A small JSON reader: enough for Kafka's message files (which carry // comments).

struct json {
  enum class kind { null, boolean, number, string, array, object };
  kind type = kind::null;
  bool boolean = false;
  std::string text;  // A string's value, or a number's spelling.
  std::vector<json> items;
  std::vector<std::pair<std::string, json>> members;

  const json* find(const std::string& key) const {
    for (const auto& [name, value] : members) {
      if (name == key) return &value;
    }
    return nullptr;
  }
};

class json_parser {
 public:
  explicit json_parser(std::string text) : text_(strip_comments(std::move(text))) {}

  std::optional<json> parse() {
    json value;
    if (!parse_value(value, 0)) return std::nullopt;
    skip_space();
    if (position_ != text_.size()) return std::nullopt;
    return value;
  }

 private:
  static std::string strip_comments(std::string text) {
    std::string out;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (in_string) {
        out.push_back(c);
        if (c == '\\' && i + 1 < text.size()) {
          out.push_back(text[++i]);
        } else if (c == '"') {
          in_string = false;
        }
      } else if (c == '"') {
        in_string = true;
        out.push_back(c);
      } else if (c == '/' && i + 1 < text.size() && text[i + 1] == '/') {
        while (i < text.size() && text[i] != '\n') ++i;
        out.push_back('\n');
      } else {
        out.push_back(c);
      }
    }
    return out;
  }

  void skip_space() {
    while (position_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[position_]))) {
      ++position_;
    }
  }

  bool consume(char expected) {
    skip_space();
    if (position_ < text_.size() && text_[position_] == expected) {
      ++position_;
      return true;
    }
    return false;
  }

  bool parse_string(std::string& out) {
    if (!consume('"')) return false;
    while (position_ < text_.size()) {
      const char c = text_[position_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (position_ >= text_.size()) return false;
        const char escaped = text_[position_++];
        switch (escaped) {
          case 'n': out.push_back('\n'); break;
          case 't': out.push_back('\t'); break;
          case 'u':
            position_ += 4;
            out.push_back('?');
            break;  // Not in names or types.
          default: out.push_back(escaped); break;
        }
      } else {
        out.push_back(c);
      }
    }
    return false;
  }

  bool parse_value(json& value, int depth) {
    if (depth > 64) return false;
    skip_space();
    if (position_ >= text_.size()) return false;
    const char c = text_[position_];
    if (c == '{') {
      ++position_;
      value.type = json::kind::object;
      if (consume('}')) return true;
      do {
        std::string key;
        json member;
        if (!parse_string(key) || !consume(':') || !parse_value(member, depth + 1)) return false;
        value.members.emplace_back(std::move(key), std::move(member));
      } while (consume(','));
      return consume('}');
    }
    if (c == '[') {
      ++position_;
      value.type = json::kind::array;
      if (consume(']')) return true;
      do {
        json item;
        if (!parse_value(item, depth + 1)) return false;
        value.items.push_back(std::move(item));
      } while (consume(','));
      return consume(']');
    }
    if (c == '"') {
      value.type = json::kind::string;
      return parse_string(value.text);
    }
    for (const char* word : {"true", "false", "null"}) {
      const std::string_view literal(word);
      if (text_.compare(position_, literal.size(), literal) == 0) {
        position_ += literal.size();
        value.type = literal == "null" ? json::kind::null : json::kind::boolean;
        value.boolean = literal == "true";
        value.text = literal;
        return true;
      }
    }
    const std::size_t start = position_;
    while (position_ < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[position_])) || text_[position_] == '-' ||
            text_[position_] == '+' || text_[position_] == '.')) {
      ++position_;
    }
    if (position_ == start) return false;
    value.type = json::kind::number;
    value.text = text_.substr(start, position_ - start);
    return true;
  }

  std::string text_;
  std::size_t position_ = 0;
};

// ---------------------------------------------------------------------------------------
// Normalisation: both sides spell the same facts in slightly different ways.

// "3+", "0-7", "5", "none" or absent, as an inclusive pair; "none" is {-1, -1}.
std::pair<int, int> version_range(const std::string& text) {
  if (text.empty() || text == "none") return {-1, -1};
  if (text.back() == '+') return {std::stoi(text.substr(0, text.size() - 1)), 32767};
  const auto dash = text.find('-');
  if (dash != std::string::npos) {
    return {std::stoi(text.substr(0, dash)), std::stoi(text.substr(dash + 1))};
  }
  return {std::stoi(text), std::stoi(text)};
}

std::string string_member(const json& object, const std::string& key) {
  const json* value = object.find(key);
  if (value == nullptr) return "";
  return value->text;
}

bool is_integer_type(const std::string& type) {
  return type == "int8" || type == "int16" || type == "int32" || type == "int64" ||
         type == "uint16" || type == "uint32" || type == "varint" || type == "varlong";
}

// A default value in a canonical spelling: integers in decimal (Kafka writes some in
// hexadecimal), quotes removed, and an absent default replaced by the type's implicit one.
std::string canonical_default(const std::string& type, std::optional<std::string> text) {
  if (text && text->size() >= 2 && text->front() == '"' && text->back() == '"') {
    text = text->substr(1, text->size() - 2);
  }
  if (!text) {
    if (is_integer_type(type)) return "0";
    if (type == "bool") return "false";
    return "";
  }
  if (is_integer_type(type) && !text->empty()) {
    return std::to_string(std::stoll(*text, nullptr, 0));
  }
  return *text;
}

struct field_row {
  int depth;
  std::string name;
  std::string type;
  std::pair<int, int> versions;
  std::pair<int, int> nullable_versions;
  int tag;
  std::pair<int, int> tagged_versions;
  std::string default_value;
  bool never_flexible;

  bool operator==(const field_row&) const = default;
};

std::ostream& operator<<(std::ostream& out, const field_row& row) {
  return out << "{depth " << row.depth << ", " << row.name << " " << row.type << ", versions "
             << row.versions.first << ".." << row.versions.second << ", nullable "
             << row.nullable_versions.first << ".." << row.nullable_versions.second << ", tag "
             << row.tag << " in " << row.tagged_versions.first << ".." << row.tagged_versions.second
             << ", default '" << row.default_value << "'"
             << (row.never_flexible ? ", never flexible" : "") << "}";
}

void flatten_json_fields(const json& fields, int depth, std::vector<field_row>& out) {
  for (const json& field : fields.items) {
    field_row row;
    row.depth = depth;
    row.name = string_member(field, "name");
    row.type = string_member(field, "type");
    row.versions = version_range(string_member(field, "versions"));
    row.nullable_versions = version_range(string_member(field, "nullableVersions"));
    const json* tag = field.find("tag");
    row.tag = tag == nullptr ? -1 : std::stoi(tag->text);
    row.tagged_versions = version_range(string_member(field, "taggedVersions"));
    const json* default_value = field.find("default");
    row.default_value = canonical_default(
        row.type, default_value ? std::optional<std::string>(default_value->text) : std::nullopt);
    row.never_flexible = string_member(field, "flexibleVersions") == "none";
    out.push_back(std::move(row));
    if (const json* nested = field.find("fields")) flatten_json_fields(*nested, depth + 1, out);
  }
}

std::vector<field_row> our_fields(const std::string& message) {
  std::vector<field_row> out;
  for (const auto& fact : sluice::protocol::schema_facts::fields) {
    if (message != fact.message) continue;
    field_row row;
    row.depth = fact.depth;
    row.name = fact.name;
    row.type = fact.type;
    row.versions = version_range(fact.versions);
    row.nullable_versions = version_range(fact.nullable_versions);
    row.tag = fact.tag;
    row.tagged_versions = version_range(fact.tagged_versions);
    row.default_value = canonical_default(
        row.type,
        fact.default_value ? std::optional<std::string>(fact.default_value) : std::nullopt);
    row.never_flexible = fact.never_flexible;
    out.push_back(std::move(row));
  }
  return out;
}

std::optional<json> load_message(const std::filesystem::path& path) {
  std::ifstream file(path);
  if (!file) return std::nullopt;
  std::stringstream content;
  content << file.rdbuf();
  return json_parser(content.str()).parse();
}

// Messages of net/protocol/schema/group_records.schema: the records of the internal
// __consumer_offsets topic, defined in Kafka's group coordinator rather than among the
// client messages, so they have no file in KAFKA_MESSAGE_DIR. Only these may lack one;
// any other message without a JSON file fails the test.
constexpr std::string_view internal_record_messages[] = {
    "OffsetCommitKey",
    "OffsetCommitValue",
    "GroupMetadataKey",
    "GroupMetadataValue",
};

bool is_internal_record(std::string_view name) {
  for (std::string_view internal : internal_record_messages) {
    if (internal == name) return true;
  }
  return false;
}

class ProtocolSchemaConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = KAFKA_MESSAGE_DIR;
    if (directory_.empty() || !std::filesystem::is_directory(directory_)) {
      GTEST_SKIP() << "Kafka's message definitions are not at '" << KAFKA_MESSAGE_DIR << "'";
    }
  }
  std::filesystem::path directory_;
};

TEST_F(ProtocolSchemaConformance, EveryMessageMatchesKafkasDefinition) {
  int compared = 0;
  int internal = 0;
  for (const auto& message : sluice::protocol::schema_facts::messages) {
    SCOPED_TRACE(message.name);
    if (is_internal_record(message.name)) {
      EXPECT_STREQ(message.kind, "data");
      EXPECT_FALSE(std::filesystem::exists(directory_ / (std::string(message.name) + ".json")))
          << "a definition of an internal record appeared: compare it instead";
      ++internal;
      continue;
    }
    auto definition = load_message(directory_ / (std::string(message.name) + ".json"));
    ASSERT_TRUE(definition.has_value()) << "missing or unreadable JSON for " << message.name;
    EXPECT_EQ(string_member(*definition, "name"), message.name);
    EXPECT_EQ(string_member(*definition, "type"), message.kind);
    const json* api_key = definition->find("apiKey");
    EXPECT_EQ(api_key == nullptr ? -1 : std::stoi(api_key->text), message.api_key);
    EXPECT_EQ(version_range(string_member(*definition, "validVersions")),
              version_range(message.valid_versions));
    EXPECT_EQ(version_range(string_member(*definition, "flexibleVersions")),
              version_range(message.flexible_versions));

    std::vector<field_row> theirs;
    if (const json* fields = definition->find("fields")) flatten_json_fields(*fields, 0, theirs);
    const std::vector<field_row> ours = our_fields(message.name);
    ASSERT_EQ(ours.size(), theirs.size()) << "different number of fields";
    for (std::size_t i = 0; i < ours.size(); ++i) {
      EXPECT_EQ(ours[i], theirs[i]) << "field " << i;
    }
    ++compared;
  }
  // The 23 APIs, request and response each, the two headers and the two consumer
  // protocol messages; every internal record message was seen, so the list above names
  // no message that does not exist.
  EXPECT_EQ(compared, 2 * 23 + 2 + 2);
  EXPECT_EQ(internal, static_cast<int>(std::size(internal_record_messages)));
}

// The comparison itself must be able to fail: a deliberately wrong row is told apart.
TEST_F(ProtocolSchemaConformance, ComparisonDetectsADifference) {
  auto definition = load_message(directory_ / "ApiVersionsResponse.json");
  ASSERT_TRUE(definition.has_value());
  std::vector<field_row> theirs;
  flatten_json_fields(*definition->find("fields"), 0, theirs);
  std::vector<field_row> ours = our_fields("ApiVersionsResponse");
  ASSERT_EQ(ours, theirs);
  ours.back().tag += 1;
  EXPECT_NE(ours, theirs);
}

}  // namespace
