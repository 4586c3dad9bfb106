// Transport-neutral HTTP request/response, so that REST handlers compile without Beast.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace imd::api {

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

}  // namespace imd::api
