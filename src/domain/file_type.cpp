#include "domain/file_type.hpp"

#include <algorithm>

namespace imd {

namespace {

bool starts(std::span<const char> h, std::string_view magic, std::size_t at = 0) {
  return h.size() >= at + magic.size() && std::string_view(h.data() + at, magic.size()) == magic;
}

std::uint32_t be16(std::span<const char> h, std::size_t at) {
  auto b = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(h[i]));
  };
  return b(at) << 8 | b(at + 1);
}
std::uint32_t le16(std::span<const char> h, std::size_t at) {
  auto b = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(h[i]));
  };
  return b(at) | b(at + 1) << 8;
}
std::uint32_t be32(std::span<const char> h, std::size_t at) {
  return be16(h, at) << 16 | be16(h, at + 2);
}
std::uint32_t le24(std::span<const char> h, std::size_t at) {
  return le16(h, at) | static_cast<std::uint32_t>(static_cast<unsigned char>(h[at + 2])) << 16;
}

// The length of the UTF-8 sequence at s[i], or 0 when it is not a valid one (overlongs,
// surrogates and code points past U+10FFFF are invalid). `cp` receives the code point.
std::size_t utf8_at(std::string_view s, std::size_t i, char32_t& cp) {
  auto u = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = u(i);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  std::size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
  if (n == 0 || c > 0xF4 || i + n > s.size()) return 0;
  cp = c & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) {
    if ((u(i + k) & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (u(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

bool looks_like_text(std::span<const char> h) {
  if (h.empty()) return false;
  std::string_view s(h.data(), h.size());
  std::size_t i = 0;
  while (i < s.size()) {
    char32_t cp = 0;
    std::size_t n = utf8_at(s, i, cp);
    if (n == 0) {
      // A sequence cut by the end of the sniffed head is still text.
      return s.size() == kSniffBytes && s.size() - i < 4;
    }
    if (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r' && cp != '\f') return false;
    if (cp == 0x7F) return false;
    i += n;
  }
  return true;
}

// Characters a file name never keeps: C0/C1 controls, bidi overrides and isolates, zero-width
// and other invisible format characters, line/paragraph separators, BOM.
bool unsafe_in_name(char32_t cp) {
  if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) return true;
  if (cp == 0xAD || cp == 0x061C || cp == 0x180E || cp == 0xFEFF) return true;
  if (cp >= 0x200B && cp <= 0x200F) return true;
  if (cp >= 0x2028 && cp <= 0x202E) return true;
  if (cp >= 0x2060 && cp <= 0x206F) return true;
  if (cp >= 0xFFF9 && cp <= 0xFFFB) return true;
  return false;
}

}  // namespace

std::string sniff_type(std::span<const char> h) {
  if (starts(h, "\x89PNG\r\n\x1a\n")) return "image/png";
  if (starts(h, "\xFF\xD8\xFF")) return "image/jpeg";
  if (starts(h, "GIF87a") || starts(h, "GIF89a")) return "image/gif";
  if (starts(h, "RIFF") && starts(h, "WEBP", 8)) return "image/webp";
  if (starts(h, "%PDF-")) return "application/pdf";
  if (starts(h, "PK\x03\x04") || starts(h, "PK\x05\x06")) return "application/zip";
  if (looks_like_text(h)) return "text/plain";
  return "application/octet-stream";
}

ImageSize image_size(std::string_view type, std::span<const char> h) {
  if (type == "image/png") {
    if (h.size() >= 24 && starts(h, "IHDR", 12)) return {be32(h, 16), be32(h, 20)};
  } else if (type == "image/gif") {
    if (h.size() >= 10) return {le16(h, 6), le16(h, 8)};
  } else if (type == "image/webp") {
    if (starts(h, "VP8 ", 12) && h.size() >= 30) {
      return {le16(h, 26) & 0x3FFF, le16(h, 28) & 0x3FFF};
    }
    if (starts(h, "VP8L", 12) && h.size() >= 25) {
      const std::uint32_t b = le16(h, 21) | le16(h, 23) << 16;
      return {(b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1};
    }
    if (starts(h, "VP8X", 12) && h.size() >= 30) return {le24(h, 24) + 1, le24(h, 27) + 1};
  } else if (type == "image/jpeg") {
    // Walk the segments to the first frame header (SOF0..SOF15 but DHT, JPG and DAC).
    std::size_t i = 2;
    while (i + 4 <= h.size()) {
      if (static_cast<unsigned char>(h[i]) != 0xFF) break;
      const unsigned char marker = static_cast<unsigned char>(h[i + 1]);
      if (marker == 0xFF) {
        ++i;
        continue;
      }
      if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
        i += 2;
        continue;
      }
      const std::size_t len = be16(h, i + 2);
      if (len < 2) break;
      if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
        if (i + 9 > h.size()) break;
        return {be16(h, i + 7), be16(h, i + 5)};
      }
      if (marker == 0xDA || marker == 0xD9) break;
      i += 2 + len;
    }
  }
  return {};
}

bool is_inline_image(std::string_view type) {
  return type == "image/png" || type == "image/jpeg" || type == "image/gif" || type == "image/webp";
}

std::string sanitize_file_name(std::string_view name) {
  // The last component of either kind of path.
  if (auto slash = name.find_last_of("/\\"); slash != std::string_view::npos) {
    name = name.substr(slash + 1);
  }
  std::string out;
  std::size_t i = 0;
  while (i < name.size()) {
    char32_t cp = 0;
    std::size_t n = utf8_at(name, i, cp);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD for a byte that is not UTF-8
      ++i;
      continue;
    }
    if (!unsafe_in_name(cp) && cp != '"' && cp != '\\' && cp != '/' && cp != ':' && cp != '*' &&
        cp != '?' && cp != '<' && cp != '>' && cp != '|') {
      out.append(name.substr(i, n));
    }
    i += n;
  }
  // No hidden files, no "." or "..", no surrounding spaces.
  const auto first = out.find_first_not_of(". ");
  out.erase(0, first == std::string::npos ? out.size() : first);
  while (!out.empty() && (out.back() == ' ' || out.back() == '.')) out.pop_back();
  if (out.size() > kMaxFileNameBytes) {
    std::string ext;
    if (auto dot = out.rfind('.'); dot != std::string::npos && out.size() - dot <= 16) {
      ext = out.substr(dot);
    }
    std::size_t keep = kMaxFileNameBytes - ext.size();
    // Back to a character boundary.
    while (keep > 0 && (static_cast<unsigned char>(out[keep]) & 0xC0) == 0x80) --keep;
    out = out.substr(0, keep) + ext;
  }
  if (out.empty()) return "file";
  return out;
}

}  // namespace imd
