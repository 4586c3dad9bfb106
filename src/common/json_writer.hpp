// A JSON text writer for the hot paths (pushed message frames, history pages): it appends to
// one std::string, with no intermediate DOM and no allocation beyond the string's growth.
// Strings are escaped as boost::json::serialize escapes them (", \, control characters; valid
// UTF-8 passes through), so the text is byte-for-byte what the DOM path would produce for the
// same members in the same order. Callers pass valid UTF-8 (every stored text is validated on
// input). Not thread-safe; cheap to construct.
//
// json::put holds the same conversions for a caller that composes a whole value in a buffer
// it sized itself (each function writes at `p` and returns the end; the *_bound constants say
// how much room it needs) and hands the text to Writer::raw: one append per value instead of
// one per member, for the objects written thousands of times a second (messages).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace imd::json {

namespace put {

inline constexpr std::size_t kUintBound = 20;  // digits of UINT64_MAX
inline constexpr std::size_t kSintBound = 20;  // '-' and the 19 digits of INT64_MIN
inline constexpr std::size_t kIdBound = 22;    // quotes and 20 digits
// The most a string of n bytes takes as a literal: quotes, each byte as \u00XX at worst.
constexpr std::size_t string_bound(std::size_t n) {
  return 6 * n + 2;
}

inline char* text(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

inline char* uint(char* p, std::uint64_t v) {
  static constexpr char kPairs[] =
      "0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243"
      "4445464748495051525354555657585960616263646566676869707172737475767778798081828384858687"
      "888990919293949596979899";
  static constexpr auto kPow10 = [] {
    std::array<std::uint64_t, 20> pow{1};
    for (std::size_t i = 1; i < pow.size(); ++i) pow[i] = pow[i - 1] * 10;
    return pow;
  }();
  // Digits: floor(log10(v)) + 1, from the bit width (1233/4096 ~ log10(2)), corrected once.
  std::size_t len = static_cast<std::size_t>(std::bit_width(v | 1) * 1233) >> 12;
  len += len < 20 && v >= kPow10[len];
  len += len == 0;  // v == 0
  char* end = p + len;
  char* q = end;
  while (v >= 100) {
    const auto pair = static_cast<std::size_t>(v % 100) * 2;
    v /= 100;
    q -= 2;
    q[0] = kPairs[pair];
    q[1] = kPairs[pair + 1];
  }
  if (v >= 10) {
    q[-2] = kPairs[v * 2];
    q[-1] = kPairs[v * 2 + 1];
  } else {
    q[-1] = static_cast<char>('0' + v);
  }
  return end;
}

inline char* sint(char* p, std::int64_t v) {
  if (v >= 0) return uint(p, static_cast<std::uint64_t>(v));
  *p = '-';
  return uint(p + 1, 0 - static_cast<std::uint64_t>(v));
}

// An id as a decimal string (ids are strings on the wire: JavaScript numbers hold 53 bits).
inline char* id(char* p, std::uint64_t v) {
  *p = '"';
  p = uint(p + 1, v);
  *p = '"';
  return p + 1;
}

// `s` as a JSON string literal (with quotes); needs string_bound(s.size()) bytes.
char* string(char* p, std::string_view s);

}  // namespace put

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
    char buf[put::kUintBound];
    return raw({buf, put::uint(buf, v)});
  }
  Writer& sint(std::int64_t v) {
    char buf[put::kSintBound];
    return raw({buf, put::sint(buf, v)});
  }
  // An id as a decimal string (ids are strings on the wire: JavaScript numbers hold 53 bits).
  Writer& id(std::uint64_t v) {
    char buf[put::kIdBound];
    return raw({buf, put::id(buf, v)});
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
