#include "domain/search_text.hpp"

#include <algorithm>

#include "common/json.hpp"

namespace imd {

namespace {

bool is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

unsigned char fold(unsigned char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c - 'A' + 'a') : c;
}

bool is_continuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// Byte offset of the start of the code point containing `i` (or `i` itself at a boundary).
std::size_t back_to_boundary(std::string_view s, std::size_t i) {
  while (i > 0 && i < s.size() && is_continuation(static_cast<unsigned char>(s[i]))) --i;
  return i;
}

// Moves `n` code points from `i` (forward, or backward when `forward` is false).
std::size_t step_chars(std::string_view s, std::size_t i, std::size_t n, bool forward) {
  for (; n > 0; --n) {
    if (forward) {
      if (i >= s.size()) break;
      ++i;
      while (i < s.size() && is_continuation(static_cast<unsigned char>(s[i]))) ++i;
    } else {
      if (i == 0) break;
      --i;
      while (i > 0 && is_continuation(static_cast<unsigned char>(s[i]))) --i;
    }
  }
  return i;
}

// UTF-16 code units of valid UTF-8 text.
std::size_t utf16_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) {
    if (is_continuation(c)) continue;
    n += c >= 0xF0 ? 2 : 1;  // four-byte sequences are surrogate pairs
  }
  return n;
}

std::size_t find_folded(std::string_view hay, std::string_view needle, std::size_t from) {
  if (needle.empty() || needle.size() > hay.size()) return std::string_view::npos;
  for (std::size_t i = from; i + needle.size() <= hay.size(); ++i) {
    std::size_t k = 0;
    while (k < needle.size() && fold(static_cast<unsigned char>(hay[i + k])) ==
                                    fold(static_cast<unsigned char>(needle[k]))) {
      ++k;
    }
    if (k == needle.size()) return i;
  }
  return std::string_view::npos;
}

}  // namespace

Result<std::vector<std::string>> parse_search_terms(std::string_view q,
                                                    const SearchLimits& limits) {
  auto bad = [](std::string m) { return make_error(Errc::invalid_argument, std::move(m)); };
  if (!json::valid_utf8(q)) return bad("q must be valid UTF-8");
  if (json::utf8_length(q) > limits.max_query_chars) {
    return bad("q is longer than " + std::to_string(limits.max_query_chars) + " characters");
  }
  std::vector<std::string> terms;
  std::size_t i = 0;
  while (i < q.size()) {
    const auto c = static_cast<unsigned char>(q[i]);
    if (is_space(c)) {
      ++i;
      continue;
    }
    std::string term;
    if (c == '"') {
      const std::size_t close = q.find('"', i + 1);
      if (close == std::string_view::npos) return bad("q has an unbalanced '\"'");
      term = std::string(q.substr(i + 1, close - i - 1));
      i = close + 1;
    } else {
      std::size_t j = i;
      while (j < q.size() && !is_space(static_cast<unsigned char>(q[j])) && q[j] != '"') ++j;
      term = std::string(q.substr(i, j - i));
      i = j;
    }
    for (unsigned char t : term) {
      if (t < 0x20 || t == 0x7F) return bad("q must not contain control characters");
    }
    // A phrase of spaces only means nothing.
    if (std::all_of(term.begin(), term.end(), [](char t) { return t == ' '; })) continue;
    if (terms.size() == limits.max_terms) {
      return bad("q has more than " + std::to_string(limits.max_terms) + " terms");
    }
    terms.push_back(std::move(term));
  }
  for (unsigned char c : q) {
    if (c < 0x20 && !is_space(c)) return bad("q must not contain control characters");
  }
  if (terms.empty()) return bad("q must contain a word to search for");
  return terms;
}

Snippet make_snippet(std::string_view body, const std::vector<std::string>& terms,
                     std::size_t max_chars) {
  // Every occurrence of every term, as byte ranges, merged where they overlap.
  std::vector<std::pair<std::size_t, std::size_t>> hits;
  for (const auto& t : terms) {
    for (std::size_t at = find_folded(body, t, 0); at != std::string_view::npos;
         at = find_folded(body, t, at + t.size())) {
      hits.emplace_back(at, at + t.size());
    }
  }
  std::sort(hits.begin(), hits.end());
  std::vector<std::pair<std::size_t, std::size_t>> merged;
  for (const auto& h : hits) {
    if (!merged.empty() && h.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, h.second);
    } else {
      merged.push_back(h);
    }
  }

  // The window: a quarter of it before the first match, the rest after.
  const std::size_t first = merged.empty() ? 0 : merged.front().first;
  std::size_t begin = step_chars(body, back_to_boundary(body, first), max_chars / 4, false);
  std::size_t end = step_chars(body, begin, max_chars, true);
  if (end == body.size()) begin = step_chars(body, end, max_chars, false);

  Snippet s;
  constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026, one UTF-16 unit
  if (begin > 0) s.text += kEllipsis;
  const std::size_t base16 = begin > 0 ? 1 : 0;
  s.text += body.substr(begin, end - begin);
  if (end < body.size()) s.text += kEllipsis;
  for (const auto& [a, b] : merged) {
    if (b <= begin || a >= end) continue;
    const std::size_t from = std::max(a, begin), to = std::min(b, end);
    s.marks.emplace_back(base16 + utf16_length(body.substr(begin, from - begin)),
                         utf16_length(body.substr(from, to - from)));
  }
  return s;
}

}  // namespace imd
