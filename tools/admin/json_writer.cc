#include "tools/admin/json_writer.h"

#include <fmt/format.h>

#include "engine/base/assert.h"

namespace sluice::admin {

namespace {

// The length of the well-formed UTF-8 sequence at the start of `text`, or 0 when it is
// not one (overlong forms, surrogates and code points over U+10FFFF are not).
std::size_t utf8_sequence_bytes(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  std::size_t length = 0;
  std::uint32_t code = 0;
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
    code = lead & 0x1f;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    code = lead & 0x0f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    code = lead & 0x07;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xc0) != 0x80) return 0;
    code = (code << 6) | (byte(i) & 0x3f);
  }
  if ((length == 3 && code < 0x800) || (length == 4 && code < 0x10000) || code > 0x10ffff ||
      (code >= 0xd800 && code <= 0xdfff)) {
    return 0;
  }
  return length;
}

}  // namespace

void json_writer::append_string(std::string& out, std::string_view text) {
  out.push_back('"');
  // Each pass consumes at least one byte.
  while (!text.empty()) {
    const char c = text.front();
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          const std::size_t length = utf8_sequence_bytes(text);
          if (length == 0) {
            out += "\\ufffd";
            text.remove_prefix(1);
            continue;
          }
          out.append(text.substr(0, length));
          text.remove_prefix(length);
          continue;
        }
    }
    text.remove_prefix(1);
  }
  out.push_back('"');
}

void json_writer::before_value() {
  if (scopes_.empty()) {
    SLUICE_ASSERT(out_.empty(), "a JSON document holds one value");
    return;
  }
  scope& top = scopes_.back();
  if (top.object) {
    SLUICE_ASSERT(top.key_pending, "a value inside an object needs a key first");
    top.key_pending = false;
    return;
  }
  if (!top.empty) out_.push_back(',');
  top.empty = false;
}

void json_writer::key(std::string_view name) {
  SLUICE_ASSERT(!scopes_.empty() && scopes_.back().object, "a key outside an object");
  scope& top = scopes_.back();
  SLUICE_ASSERT(!top.key_pending, "two keys in a row");
  if (!top.empty) out_.push_back(',');
  top.empty = false;
  top.key_pending = true;
  append_string(out_, name);
  out_.push_back(':');
}

void json_writer::begin_object() {
  before_value();
  out_.push_back('{');
  scopes_.push_back({true});
}

void json_writer::end_object() {
  SLUICE_ASSERT(!scopes_.empty() && scopes_.back().object && !scopes_.back().key_pending,
                "end_object without a matching begin_object");
  scopes_.pop_back();
  out_.push_back('}');
}

void json_writer::begin_array() {
  before_value();
  out_.push_back('[');
  scopes_.push_back({false});
}

void json_writer::end_array() {
  SLUICE_ASSERT(!scopes_.empty() && !scopes_.back().object,
                "end_array without a matching begin_array");
  scopes_.pop_back();
  out_.push_back(']');
}

void json_writer::value(std::string_view text) {
  before_value();
  append_string(out_, text);
}

void json_writer::value(std::int64_t number) {
  before_value();
  out_ += fmt::format("{}", number);
}

void json_writer::value(bool flag) {
  before_value();
  out_ += flag ? "true" : "false";
}

void json_writer::null() {
  before_value();
  out_ += "null";
}

}  // namespace sluice::admin
