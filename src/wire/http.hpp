// Transport-neutral HTTP request/response, so that REST handlers compile without Beast, and
// the one mapping of the error model to HTTP: every error answer of the process, the
// WebSocket upgrade's included, is built by error_response().
#pragma once

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
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
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
