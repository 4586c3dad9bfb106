// The web client's files (a single-page app built into web/dist): GET/HEAD of a path under
// `root`, with an SPA fallback (a path without a file extension gets index.html), no path
// traversal, content types by extension, and caching headers (hashed files under /assets/
// are immutable). Blocking (file reads): call on the blocking pool.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "wire/http.hpp"

namespace imd::net {

// The web client's Content-Security-Policy (served with every static file).
inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

// The file a URL path names under `root`, or nullopt for anything that could leave it.
std::optional<std::string> static_path(const std::string& root, std::string_view target);
std::string_view content_type_for(std::string_view path);
// 404 when `root` is empty or nothing matches.
wire::HttpResponse serve_static(const std::string& root, const std::string& target);

}  // namespace imd::net
