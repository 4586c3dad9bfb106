// Transport-neutral HTTP request/response, so that REST handlers compile without Beast, and
// the one mapping of the error model to HTTP: every error answer of the process, the
// WebSocket upgrade's included, is built by error_response().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace imd::wire {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as received
  std::string authorization;
  std::string content_type;
  std::string body;
  std::string remote_ip;
  std::string range;          // the Range header (downloads)
  std::string if_none_match;  // the If-None-Match header (downloads)
  std::string user_agent;     // the User-Agent header (kept with a login session)
};

// A response body produced piece by piece (a file download) rather than held in `body`: the
// transport sends `size()` bytes as Content-Length, then calls read() on the blocking pool
// until it has them all. An error or a short read ends the connection.
class BodySource {
 public:
  virtual ~BodySource() = default;
  virtual std::uint64_t size() const = 0;
  // The next bytes, up to out.size(); 0 only at the end.
  virtual Result<std::size_t> read(std::span<char> out) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<BodySource> stream;  // set: the body comes from here, `body` is unused
};

int http_status(Errc e);
// The message a client may read. Engine text (an adapter's error that starts with "sqlite:",
// "mysql:", "redis:", "nats:" or "etcd:": SQL, table and server names) and every internal
// error are replaced by a generic message with a reference; the original goes to the log
// under that reference, for the operator.
std::string public_message(const Error& e);
// {"error":{"code":"<errc name>","message":"..."}}
std::string error_body(const Error& e);
// The status, the body and the headers an error needs: WWW-Authenticate on 401 (RFC 6750),
// Retry-After on 429 and 503 (Error::retry_after_s, at least a second).
HttpResponse error_response(const Error& e);

}  // namespace imd::wire
