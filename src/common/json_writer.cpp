#include "common/json_writer.hpp"

#include <bit>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace imd::json {

namespace {

constexpr std::uint64_t kOnes = 0x0101010101010101ull;
constexpr std::uint64_t kHigh = 0x8080808080808080ull;

// True when one of the 8 bytes of `w` is a control character, '"' or '\\'. Each test is the
// exact "has a byte below n" / "has a zero byte" bit trick (exact for the question "is there
// one"; bytes >= 0x80, i.e. UTF-8 sequences, never match).
constexpr bool word_needs_escape(std::uint64_t w) {
  const std::uint64_t control = (w - kOnes * 0x20) & ~w & kHigh;
  const std::uint64_t q = w ^ (kOnes * '"');
  const std::uint64_t b = w ^ (kOnes * '\\');
  return (control | ((q - kOnes) & ~q & kHigh) | ((b - kOnes) & ~b & kHigh)) != 0;
}

constexpr bool byte_needs_escape(unsigned char c) {
  return c < 0x20 || c == '"' || c == '\\';
}

#if defined(__SSE2__)
// Bit k set when byte k of the 16 at p needs an escape.
unsigned escape_mask16(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i below_space = _mm_set1_epi8(0x1f);
  const __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(v, below_space), below_space);
  const __m128i special =
      _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(control, special)));
}
#endif

// The length of the longest prefix of `s` that is written as it is: 16 bytes at a time where
// SSE2 is there (every x86-64; a string's last piece is the overlapping last 16 bytes), else
// 8 at a time; short strings byte by byte.
std::size_t clean_prefix(std::string_view s) {
  std::size_t i = 0;
#if defined(__SSE2__)
  if (s.size() >= 16) {
    for (; i + 16 <= s.size(); i += 16) {
      if (unsigned mask = escape_mask16(s.data() + i)) return i + std::countr_zero(mask);
    }
    if (i == s.size()) return i;
    // The bytes before i are clean, so the first set bit is at i or later.
    const std::size_t last = s.size() - 16;
    const unsigned mask = escape_mask16(s.data() + last);
    return mask ? last + std::countr_zero(mask) : s.size();
  }
#endif
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (word_needs_escape(w)) break;
  }
  while (i < s.size() && !byte_needs_escape(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

}  // namespace

char* put::string(char* p, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  *p++ = '"';
  std::size_t i = 0;
  for (;;) {
    const std::size_t run = clean_prefix(s.substr(i));
    p = text(p, s.substr(i, run));
    i += run;
    if (i == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i++]);
    *p++ = '\\';
    switch (c) {
      case '"':
        *p++ = '"';
        break;
      case '\\':
        *p++ = '\\';
        break;
      case '\b':
        *p++ = 'b';
        break;
      case '\f':
        *p++ = 'f';
        break;
      case '\n':
        *p++ = 'n';
        break;
      case '\r':
        *p++ = 'r';
        break;
      case '\t':
        *p++ = 't';
        break;
      default:
        p = text(p, "u00");
        *p++ = kHex[c >> 4];
        *p++ = kHex[c & 15];
    }
  }
  *p++ = '"';
  return p;
}

void append_string(std::string& out, std::string_view s) {
  const std::size_t at = out.size();
  if (clean_prefix(s) == s.size()) {  // the common case: nothing to escape
    out.resize(at + s.size() + 2);
    char* p = out.data() + at;
    *p = '"';
    std::memcpy(p + 1, s.data(), s.size());
    p[s.size() + 1] = '"';
    return;
  }
  out.resize(at + put::string_bound(s.size()));
  char* end = put::string(out.data() + at, s);
  out.resize(static_cast<std::size_t>(end - out.data()));
}

}  // namespace imd::json
