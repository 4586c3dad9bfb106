#include "api/file_http.hpp"

#include <algorithm>
#include <optional>

#include "common/json.hpp"
#include "domain/file_type.hpp"

namespace imd::api {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Streams [offset, offset + length) of a blob.
class BlobBody final : public wire::BodySource {
 public:
  BlobBody(std::unique_ptr<BlobReader> reader, std::uint64_t offset, std::uint64_t length)
      : reader_(std::move(reader)), at_(offset), left_(length) {}
  std::uint64_t size() const override { return size_; }
  Result<std::size_t> read(std::span<char> out) override {
    if (left_ == 0) return std::size_t{0};
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), left_));
    auto n = reader_->read(at_, out.first(want));
    if (!n) return n.error();
    at_ += *n;
    left_ -= *n;
    return n;
  }

 private:
  std::unique_ptr<BlobReader> reader_;
  std::uint64_t at_;
  std::uint64_t left_;
  const std::uint64_t size_ = left_;
};

}  // namespace

RangeAsked parse_range(std::string_view header, std::uint64_t size) {
  header = trim(header);
  constexpr std::string_view kUnit = "bytes=";
  if (header.substr(0, kUnit.size()) != kUnit) return {};
  std::string_view spec = trim(header.substr(kUnit.size()));
  if (spec.find(',') != std::string_view::npos) return {};
  const auto dash = spec.find('-');
  if (dash == std::string_view::npos) return {};
  const std::string_view a = trim(spec.substr(0, dash));
  const std::string_view b = trim(spec.substr(dash + 1));
  RangeAsked r;
  r.kind = RangeAsked::partial;
  if (a.empty()) {
    // The last n bytes.
    auto n = json::parse_uint(b);
    if (!n) return {};
    if (*n == 0 || size == 0) return {RangeAsked::unsatisfiable};
    r.first = size - std::min(*n, size);
    r.last = size - 1;
    return r;
  }
  auto first = json::parse_uint(a);
  if (!first) return {};
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (!b.empty()) {
    auto l = json::parse_uint(b);
    if (!l || *l < *first) return {};
    last = std::min(*l, last);
  }
  if (*first >= size) return {RangeAsked::unsatisfiable};
  r.first = *first;
  r.last = last;
  return r;
}

std::string content_disposition(bool inline_display, std::string_view name) {
  std::string fallback;
  for (unsigned char c : name) {
    fallback.push_back(c >= 0x20 && c < 0x7F && c != '"' && c != '\\' && c != '%' ? char(c) : '_');
  }
  std::string encoded;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : name) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '-' || c == '_' || c == '~';
    if (plain) {
      encoded.push_back(static_cast<char>(c));
    } else {
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 15];
    }
  }
  return std::string(inline_display ? "inline" : "attachment") + "; filename=\"" + fallback +
         "\"; filename*=UTF-8''" + encoded;
}

bool etag_matches(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    const auto comma = header.find(',');
    std::string_view tag = trim(header.substr(0, comma));
    if (tag == "*") return true;
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);  // weak comparison (RFC 9110 §13.1.2)
    if (tag == etag) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

wire::HttpResponse file_response(const FileMeta& meta, std::unique_ptr<BlobReader> reader,
                                 const wire::HttpRequest& req) {
  wire::HttpResponse r;
  const std::string etag = "\"" + meta.sha256 + "\"";
  const bool inline_display = is_inline_image(meta.type);
  // Every answer, 304 and 416 included, carries the validators and the caching rules: private
  // (per-user access) and revalidated each time (access may end).
  r.headers = {{"ETag", etag},
               {"Cache-Control", "private, no-cache"},
               {"X-Content-Type-Options", "nosniff"},
               {"Content-Security-Policy", "default-src 'none'; sandbox"},
               {"Cross-Origin-Resource-Policy", "same-origin"},
               {"Accept-Ranges", "bytes"},
               {"Content-Disposition", content_disposition(inline_display, meta.name)}};
  if (!req.if_none_match.empty() && etag_matches(req.if_none_match, etag)) {
    r.status = 304;
    r.content_type.clear();
    return r;
  }
  const std::uint64_t size = reader->size();
  r.content_type = meta.type == "text/plain" ? "text/plain; charset=utf-8" : meta.type;
  RangeAsked range = req.range.empty() ? RangeAsked{} : parse_range(req.range, size);
  if (range.kind == RangeAsked::unsatisfiable) {
    r.status = 416;
    r.content_type.clear();
    r.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
    return r;
  }
  std::uint64_t first = 0;
  std::uint64_t length = size;
  if (range.kind == RangeAsked::partial) {
    r.status = 206;
    first = range.first;
    length = range.last - range.first + 1;
    r.headers.emplace_back("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                std::to_string(range.last) + "/" +
                                                std::to_string(size));
  }
  r.stream = std::make_shared<BlobBody>(std::move(reader), first, length);
  return r;
}

}  // namespace imd::api
