#include "net/static_files.hpp"

#include <fstream>
#include <sstream>

#include <boost/url/parse.hpp>

namespace imd::net {

std::string_view content_type_for(std::string_view path) {
  static const std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json"},
      {".webmanifest", "application/manifest+json"}};
  for (auto [ext, type] : kTypes) {
    if (path.size() >= ext.size() && path.substr(path.size() - ext.size()) == ext) return type;
  }
  return "application/octet-stream";
}

// Maps a URL path to a file under `root`, or nullopt for anything that could leave it.
std::optional<std::string> static_path(const std::string& root, std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return std::nullopt;
  std::string path;
  for (auto seg : url->segments()) {
    std::string s(seg);
    if (s.empty() || s == "." || s == ".." || s.find('/') != std::string::npos ||
        s.find('\\') != std::string::npos || s.find('\0') != std::string::npos) {
      if (s.empty()) continue;
      return std::nullopt;
    }
    path += "/" + s;
  }
  if (path.empty()) path = "/index.html";
  return root + path;
}

namespace {

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

}  // namespace

wire::HttpResponse serve_static(const std::string& root, const std::string& target) {
  wire::HttpResponse r;
  auto not_found = [&] {
    r.status = 404;
    r.body = wire::error_body(make_error(Errc::not_found, "no such page"));
    return r;
  };
  if (root.empty()) return not_found();
  auto path = static_path(root, target);
  if (!path) return not_found();
  std::string body;
  bool spa_fallback = false;
  if (!read_file(*path, body)) {
    // SPA fallback: client-side routes (no file extension) get index.html.
    auto slash = path->rfind('/');
    if (path->find('.', slash) != std::string::npos) return not_found();
    if (!read_file(root + "/index.html", body)) return not_found();
    spa_fallback = true;
  }
  r.content_type = spa_fallback ? "text/html; charset=utf-8" : std::string(content_type_for(*path));
  r.body = std::move(body);
  bool hashed = target.rfind("/assets/", 0) == 0;
  r.headers.emplace_back("Cache-Control",
                         hashed ? "public, max-age=31536000, immutable" : "no-cache");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  // The client loads only its own files and talks only to this origin (REST and /ws): an
  // injected script or a framing page gets nothing. Inline style attributes stay allowed (the
  // components set some); inline scripts do not.
  r.headers.emplace_back("Content-Security-Policy", std::string(kContentSecurityPolicy));
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Cross-Origin-Opener-Policy", "same-origin");
  return r;
}

}  // namespace imd::net
