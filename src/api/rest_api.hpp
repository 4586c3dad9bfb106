// The REST API under /api/v1: a routing table of (method, path pattern) -> handler.
// Handlers parse and validate input, authenticate (Bearer JWT), call one service and map
// the result; they hold no state of their own. handle() blocks (services call the Store):
// the HTTP transport runs it on the blocking pool. Thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/metrics_text.hpp"
#include "common/rate_limiter.hpp"
#include "common/readiness.hpp"
#include "domain/auth_service.hpp"
#include "domain/messaging_service.hpp"
#include "domain/search_service.hpp"
#include "domain/space_service.hpp"
#include "wire/http.hpp"

namespace imd::api {

using wire::HttpRequest;
using wire::HttpResponse;

struct Services {
  AuthService& auth;
  SpaceService& spaces;
  MessagingService& messaging;
  Clock& clock;
  // GET /metrics writes what this returns (Prometheus text); null: process metrics only.
  const MetricsSource* metrics = nullptr;
  // GET /readyz answers from this; null: always ready (nothing to check).
  Readiness* readiness = nullptr;
  // GET /api/v1/search; null: answered 503 (search disabled).
  SearchService* search = nullptr;
};

class RestApi {
 public:
  RestApi(Services services, const LimitsConfig& limits);
  HttpResponse handle(const HttpRequest& req);
  // handle() for the requests it can answer without blocking, on the caller's thread: a
  // history page (GET .../messages) whose token, access check and rows are all in memory.
  // nullopt for everything else, which then goes to handle() (on the blocking pool); the
  // response, when there is one, is the one handle() would give.
  std::optional<HttpResponse> try_handle(const HttpRequest& req);
  // Whether the request goes to a route that hashes a password (register, login, password
  // change): the transport runs those on their own bounded pool, so that a login flood never
  // holds the threads every other request needs.
  bool hashes_password(std::string_view method, std::string_view path) const;

  struct Ctx;
  using Handler = HttpResponse (RestApi::*)(Ctx&);

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{id}" matches a positive decimal id
    Handler handler;
    bool authenticated;
    bool auth_limited;  // counts against the per-IP auth rate (register/login/refresh)
    std::string path;   // as written in the table
    bool hashing;       // hashes a password (hashes_password())
  };

  HttpResponse health(Ctx&);
  HttpResponse ready(Ctx&);
  HttpResponse metrics(Ctx&);
  HttpResponse auth_register(Ctx&);
  HttpResponse auth_login(Ctx&);
  HttpResponse auth_refresh(Ctx&);
  HttpResponse auth_logout(Ctx&);
  HttpResponse sessions_end_all(Ctx&);
  HttpResponse password_change(Ctx&);
  HttpResponse users_me(Ctx&);
  HttpResponse users_update_me(Ctx&);
  HttpResponse users_get(Ctx&);
  HttpResponse users_find(Ctx&);
  HttpResponse spaces_create(Ctx&);
  HttpResponse spaces_list(Ctx&);
  HttpResponse spaces_get(Ctx&);
  HttpResponse spaces_update(Ctx&);
  HttpResponse spaces_join(Ctx&);
  HttpResponse spaces_leave(Ctx&);
  HttpResponse spaces_members(Ctx&);
  HttpResponse channels_create(Ctx&);
  HttpResponse channels_list(Ctx&);
  HttpResponse channels_get(Ctx&);
  HttpResponse channels_join(Ctx&);
  HttpResponse channels_leave(Ctx&);
  HttpResponse channels_members(Ctx&);
  HttpResponse channels_messages(Ctx&);
  HttpResponse dms_messages(Ctx&);
  HttpResponse conversations(Ctx&);
  HttpResponse search(Ctx&);

  HttpResponse history(Ctx& ctx, const ConvKey& conv);
  static Result<HistoryQuery> history_query(const Ctx& ctx);
  static HttpResponse history_page(const std::vector<Message>& msgs, Id viewer);

  Services s_;
  LimitsConfig limits_;
  std::vector<Route> routes_;
  KeyedRateLimiter per_ip_;
  KeyedRateLimiter auth_per_ip_;
};

}  // namespace imd::api
