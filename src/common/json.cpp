#include "common/json.hpp"

#include <charconv>

#include <boost/json/parse.hpp>

namespace imd::json {

namespace bj = boost::json;

Result<bj::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  bj::value v = bj::parse(text, ec);
  if (ec) return make_error(Errc::invalid_argument, "malformed JSON: " + ec.message());
  if (!v.is_object()) return make_error(Errc::invalid_argument, "expected a JSON object");
  return std::move(v.as_object());
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned c = *p;
    int n;
    std::uint32_t cp;
    if (c < 0x80) {
      ++p;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    p += n + 1;
  }
  return true;
}

Result<std::optional<std::string>> optional_string(const bj::object& o, std::string_view key,
                                                   std::size_t max_len, std::size_t min_len) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<std::string>{};
  if (!it->value().is_string()) {
    return make_error(Errc::invalid_argument, std::string(key) + " must be a string");
  }
  const auto& s = it->value().get_string();
  if (s.size() > max_len) {
    return make_error(Errc::invalid_argument,
                      std::string(key) + " is longer than " + std::to_string(max_len) + " bytes");
  }
  if (s.size() < min_len) {
    return make_error(Errc::invalid_argument, std::string(key) + " is too short (at least " +
                                                  std::to_string(min_len) + ")");
  }
  // boost::json validates UTF-8 while parsing, but strings may also come from elsewhere.
  if (!valid_utf8(s)) return make_error(Errc::invalid_argument, std::string(key) + " is not UTF-8");
  return std::optional<std::string>{std::string(s)};
}

Result<std::string> required_string(const bj::object& o, std::string_view key, std::size_t max_len,
                                    std::size_t min_len) {
  auto r = optional_string(o, key, max_len, min_len);
  if (!r) return r.error();
  if (!r->has_value()) return make_error(Errc::invalid_argument, std::string(key) + " is required");
  return std::move(**r);
}

std::optional<std::uint64_t> parse_uint(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return v;
}

Result<std::optional<std::uint64_t>> optional_uint(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<std::uint64_t>{};
  const auto& v = it->value();
  if (v.is_uint64()) return std::optional<std::uint64_t>{v.get_uint64()};
  if (v.is_int64() && v.get_int64() >= 0) {
    return std::optional<std::uint64_t>{static_cast<std::uint64_t>(v.get_int64())};
  }
  if (v.is_string()) {
    if (auto n = parse_uint(v.get_string())) return std::optional<std::uint64_t>{*n};
  }
  return make_error(Errc::invalid_argument,
                    std::string(key) + " must be a non-negative integer or a decimal string");
}

Result<std::optional<std::uint64_t>> optional_id(const bj::object& o, std::string_view key) {
  auto r = optional_uint(o, key);
  if (!r) return make_error(Errc::invalid_argument, std::string(key) + " must be an id string");
  if (r->has_value() && **r == 0) {
    return make_error(Errc::invalid_argument, std::string(key) + " must be a valid id");
  }
  return r;
}

Result<std::uint64_t> required_id(const bj::object& o, std::string_view key) {
  auto r = optional_id(o, key);
  if (!r) return r.error();
  if (!r->has_value()) return make_error(Errc::invalid_argument, std::string(key) + " is required");
  return **r;
}

std::string id_str(std::uint64_t id) {
  return std::to_string(id);
}

}  // namespace imd::json
