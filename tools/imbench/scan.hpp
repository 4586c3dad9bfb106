// Field scanning on server frames without a JSON parse. imd's frames are compact
// boost::json output: keys are quoted, no whitespace, ids are strings without escapes and
// seq/count values are plain numbers. A body cannot fake a key: inside a JSON string every
// quote is escaped, so the pattern `"key":` only matches real keys. Values with escapes are
// not supported (imbench's own bodies never contain any).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace imbench::scan {

// The position just after `"key":` (pattern given with quotes and colon), or npos.
inline std::size_t after_key(std::string_view frame, std::string_view pattern,
                             std::size_t from = 0) {
  if (from >= frame.size()) return std::string_view::npos;
  const void* p =
      ::memmem(frame.data() + from, frame.size() - from, pattern.data(), pattern.size());
  if (!p) return std::string_view::npos;
  return static_cast<std::size_t>(static_cast<const char*>(p) - frame.data()) + pattern.size();
}

// The string value of a key, e.g. str(frame, "\"conversation\":"); empty if absent.
inline std::string_view str(std::string_view frame, std::string_view pattern,
                            std::size_t from = 0) {
  std::size_t i = after_key(frame, pattern, from);
  if (i == std::string_view::npos || i >= frame.size() || frame[i] != '"') return {};
  ++i;
  const void* q = std::memchr(frame.data() + i, '"', frame.size() - i);
  if (!q) return {};
  return frame.substr(i, static_cast<std::size_t>(static_cast<const char*>(q) - frame.data()) - i);
}

// Parses leading decimal digits of s; false if there are none.
inline bool parse_u64(std::string_view s, std::uint64_t& out, std::size_t* used = nullptr) {
  std::uint64_t v = 0;
  std::size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9')
    v = v * 10 + static_cast<unsigned>(s[i++] - '0');
  if (used) *used = i;
  out = v;
  return i > 0;
}

// The unsigned number value of a key, e.g. num(frame, "\"seq\":", v).
inline bool num(std::string_view frame, std::string_view pattern, std::uint64_t& out,
                std::size_t from = 0) {
  std::size_t i = after_key(frame, pattern, from);
  if (i == std::string_view::npos) return false;
  return parse_u64(frame.substr(i), out);
}

// Reads keys in the order the server writes them, each search starting where the previous
// key's value began (imd writes a message's keys in a fixed order: id, conversation, seq,
// from, type, body, ...), and from the start again if a key is not found further on: a frame
// is scanned about once instead of once per key.
class Cursor {
 public:
  explicit Cursor(std::string_view frame) : frame_(frame) {}
  std::string_view str(std::string_view pattern) {
    auto v = scan::str(frame_, pattern, pos_);
    if (v.empty() && pos_ > 0) v = scan::str(frame_, pattern);
    if (!v.empty()) pos_ = static_cast<std::size_t>(v.data() - frame_.data());
    return v;
  }
  bool num(std::string_view pattern, std::uint64_t& out) {
    std::size_t i = after_key(frame_, pattern, pos_);
    if (i == std::string_view::npos && pos_ > 0) i = after_key(frame_, pattern);
    if (i == std::string_view::npos) return false;
    pos_ = i;
    return parse_u64(frame_.substr(i), out);
  }

 private:
  std::string_view frame_;
  std::size_t pos_ = 0;
};

// The op of a frame ("msg", "sent", ...). imd puts `op` first except on `msg`, where it is
// last: try the start, then search.
inline std::string_view op(std::string_view frame) {
  constexpr std::string_view kMsgTail = ",\"op\":\"msg\"}";
  if (frame.size() > kMsgTail.size() && frame.substr(frame.size() - kMsgTail.size()) == kMsgTail) {
    return "msg";
  }
  constexpr std::string_view kHead = "{\"op\":\"";
  if (frame.substr(0, kHead.size()) == kHead) {
    std::size_t end = frame.find('"', kHead.size());
    if (end == std::string_view::npos) return {};
    return frame.substr(kHead.size(), end - kHead.size());
  }
  return str(frame, "\"op\":");
}

// Calls fn(frame) for each frame of a `batch` frame ({"op":"batch","frames":[{...},...]}),
// in order; returns the count. imd's frames are flat objects, so frames are split where
// `},{"` occurs: inside a JSON string every quote is escaped, so that sequence cannot be part
// of a value. Frames with nested objects are not supported.
template <class Fn>
std::size_t each_in_batch(std::string_view batch, Fn&& fn) {
  std::size_t pos = after_key(batch, "\"frames\":[");
  if (pos == std::string_view::npos || batch.size() < pos + 2 ||
      batch.substr(batch.size() - 2) != "]}") {
    return 0;
  }
  const std::size_t end = batch.size() - 2;  // just past the last frame's '}'
  std::size_t n = 0;
  while (pos < end && batch[pos] == '{') {
    const void* hit = ::memmem(batch.data() + pos, end - pos, "},{\"", 4);
    std::size_t stop =
        hit ? static_cast<std::size_t>(static_cast<const char*>(hit) - batch.data()) + 1 : end;
    fn(batch.substr(pos, stop - pos));
    ++n;
    pos = stop + 1;  // past the comma
  }
  return n;
}

}  // namespace imbench::scan
