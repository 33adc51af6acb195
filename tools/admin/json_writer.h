// json_writer: builds one JSON document, for sluice-admin's --json output.
//
// A small streaming writer: objects, arrays, keys and scalar values are appended in
// order and commas are placed by the writer. Strings are escaped as RFC 8259 requires
// (quote, backslash and control characters), and bytes that are not well-formed UTF-8
// -- a group or client id is whatever a client sent -- become U+FFFD, so the output is
// always valid JSON whatever the broker returned. Nesting mistakes (a value where a key
// is due, closing what is not open) are programmer errors and assert.
//
// Owned by one command; not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::admin {

class json_writer {
 public:
  void begin_object();
  void end_object();
  void begin_array();
  void end_array();
  // The key of the next value inside an object.
  void key(std::string_view name);

  void value(std::string_view text);
  void value(const char* text) { value(std::string_view(text)); }
  void value(std::int64_t number);
  void value(bool flag);
  void null();

  // key() then value(), the common case.
  template <typename T>
  void field(std::string_view name, const T& v) {
    key(name);
    value(v);
  }

  // The document; complete once every object and array is closed.
  const std::string& text() const noexcept { return out_; }
  bool complete() const noexcept { return scopes_.empty() && !out_.empty(); }

  // Appends `text` to `out` as a JSON string literal, quotes included.
  static void append_string(std::string& out, std::string_view text);

 private:
  struct scope {
    bool object;
    bool empty = true;
    bool key_pending = false;
  };
  void before_value();

  std::string out_;
  std::vector<scope> scopes_;
};

}  // namespace sluice::admin
