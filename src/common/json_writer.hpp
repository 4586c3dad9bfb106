// A JSON text writer for the hot paths (pushed message frames, history pages): it appends to
// one std::string, with no intermediate DOM and no allocation beyond the string's growth.
// Strings are escaped as boost::json::serialize escapes them (", \, control characters; valid
// UTF-8 passes through), so the text is byte-for-byte what the DOM path would produce for the
// same members in the same order. Callers pass valid UTF-8 (every stored text is validated on
// input). Not thread-safe; cheap to construct.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace imd::json {

// Appends `s` as a JSON string literal (with quotes).
void append_string(std::string& out, std::string_view s);

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  Writer& begin_object() {
    separate();
    out_.push_back('{');
    first_ = true;
    return *this;
  }
  Writer& end_object() {
    out_.push_back('}');
    first_ = false;
    return *this;
  }
  Writer& begin_array() {
    separate();
    out_.push_back('[');
    first_ = true;
    return *this;
  }
  Writer& end_array() {
    out_.push_back(']');
    first_ = false;
    return *this;
  }
  // A member name; the next value call writes its value.
  Writer& key(std::string_view k) {
    separate();
    append_string(out_, k);
    out_.push_back(':');
    first_ = true;  // the value follows without a comma
    return *this;
  }
  Writer& string(std::string_view s) {
    separate();
    append_string(out_, s);
    return *this;
  }
  Writer& uint(std::uint64_t v) {
    separate();
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, end);
    return *this;
  }
  Writer& sint(std::int64_t v) {
    separate();
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, end);
    return *this;
  }
  // An id as a decimal string (ids are strings on the wire: JavaScript numbers hold 53 bits).
  Writer& id(std::uint64_t v) {
    separate();
    char buf[24];
    buf[0] = '"';
    auto [end, ec] = std::to_chars(buf + 1, buf + sizeof buf - 1, v);
    *end++ = '"';
    out_.append(buf, end);
    return *this;
  }
  // Already serialized JSON (an object or array built elsewhere).
  Writer& raw(std::string_view json) {
    separate();
    out_.append(json);
    return *this;
  }

 private:
  void separate() {
    if (!first_) out_.push_back(',');
    first_ = false;
  }

  std::string& out_;
  bool first_ = true;
};

}  // namespace imd::json
