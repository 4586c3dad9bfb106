#include "api/rest_api.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include "api/file_http.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "wire/views.hpp"

namespace imd::api {

namespace bj = boost::json;
using wire::channel_json;
using wire::error_response;
using wire::member_json;
using wire::space_json;
using wire::user_json;
using wire::write_conversation;
using wire::write_message;

struct RestApi::Ctx {
  const HttpRequest& req;
  Id user = 0;
  std::vector<Id> params;  // the {id} segments, in order
  std::string code;        // the {code} segment
  std::vector<std::pair<std::string, std::string>> query;
  std::string key;  // the {key} segment
  Id session = 0;   // the caller's login session (0: a token from before sessions)

  Result<bj::object> body() const {
    if (req.body.empty()) return bj::object{};
    return json::parse_object(req.body);
  }
  const std::string* query_value(std::string_view key) const {
    for (const auto& [k, v] : query)
      if (k == key) return &v;
    return nullptr;
  }
  Result<std::optional<std::uint64_t>> query_uint(std::string_view key) const {
    const std::string* v = query_value(key);
    if (!v) return std::optional<std::uint64_t>{};
    auto n = json::parse_uint(*v);
    if (!n) {
      return make_error(Errc::invalid_argument,
                        std::string(key) + " must be a non-negative integer");
    }
    return std::optional<std::uint64_t>{*n};
  }
};

namespace {

// The token of an "Authorization: Bearer <token>" header, or nullopt.
std::optional<std::string_view> bearer_token(std::string_view authorization) {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size() ||
      authorization.substr(0, kBearer.size()) != kBearer) {
    return std::nullopt;
  }
  return authorization.substr(kBearer.size());
}

HttpResponse json_response(int status, const bj::object& o) {
  HttpResponse r;
  r.status = status;
  r.body = bj::serialize(o);
  return r;
}

HttpResponse alive() {
  return json_response(200, {{"status", "ok"}});
}

HttpResponse no_content() {
  HttpResponse r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

template <class T, class F>
HttpResponse respond(const Result<T>& r, int status, F&& view) {
  if (!r) return error_response(r.error());
  return json_response(status, view(*r));
}

bj::object session_json(const Session& s) {
  return {{"access_token", s.access_token},
          {"refresh_token", s.refresh_token},
          {"token_type", "Bearer"},
          {"expires_in", s.expires_in_s},
          {"user", user_json(s.user, true)}};
}

// {"<key>": [...], "next_after": id|null}
template <class T, class View>
bj::object page_json(const char* key, const Page<T>& page, View view) {
  bj::array a;
  for (const auto& item : page.items) a.push_back(view(item));
  bj::object o{{key, std::move(a)}};
  o["next_after"] =
      page.next_after ? bj::value(json::id_str(*page.next_after)) : bj::value(nullptr);
  return o;
}

bj::object member_page_json(const MemberPage& p) {
  return page_json("members", p, member_json);
}

// A PATCH names the fields it changes: a misspelt one is an error, not a silent no-op.
Result<void> only_fields(const bj::object& body, std::initializer_list<std::string_view> known) {
  for (const auto& [k, v] : body) {
    if (std::find(known.begin(), known.end(), std::string_view(k)) == known.end()) {
      return make_error(Errc::invalid_argument, "unknown field '" + std::string(k) + "'");
    }
  }
  return {};
}

// An optional boolean field.
Result<std::optional<bool>> optional_bool(const bj::object& body, std::string_view key) {
  const bj::value* v = body.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<bool>{};
  if (!v->is_bool())
    return make_error(Errc::invalid_argument, std::string(key) + " must be a boolean");
  return std::optional<bool>{v->as_bool()};
}

bj::object invite_json(const Invite& i) {
  return {{"code", i.code},
          {"space_id", json::id_str(i.space_id)},
          {"created_by", json::id_str(i.created_by)},
          {"created_at", i.created_at},
          {"expires_at", i.expires_at},
          {"max_uses", i.max_uses},
          {"uses", i.uses}};
}

Result<SpaceRole> parse_role(std::string_view s) {
  if (s == "member") return SpaceRole::member;
  if (s == "admin") return SpaceRole::admin;
  if (s == "owner") return SpaceRole::owner;
  return make_error(Errc::invalid_argument, "role must be member, admin or owner");
}

// The body's "user_id" (a decimal string or number).
Result<Id> body_user_id(const RestApi::Ctx& ctx) {
  auto body = ctx.body();
  if (!body) return body.error();
  if (auto unknown = only_fields(*body, {"user_id"}); !unknown) return unknown.error();
  auto id = json::required_id(*body, "user_id");
  if (!id) return id.error();
  if (*id == 0) return make_error(Errc::invalid_argument, "user_id must not be 0");
  return *id;
}

HttpResponse done(const Result<void>& r) {
  if (!r) return error_response(r.error());
  return no_content();
}

// An invitation code as the router accepts it: base64url, 1..64 characters (what
// SpaceService::create_invite makes is 22).
bool valid_code(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

// A search's time bound: milliseconds since the epoch, or a UTC date YYYY-MM-DD (its start).
// `day_after`: a date means the end of that day (after=2026-01-31 starts on February 1st).
Result<std::optional<Millis>> time_bound(const std::string* v, std::string_view name,
                                         bool day_after) {
  if (!v) return std::optional<Millis>{};
  if (auto ms = json::parse_uint(*v); ms && *ms <= static_cast<std::uint64_t>(INT64_MAX)) {
    return std::optional<Millis>{static_cast<Millis>(*ms)};
  }
  int y = 0;
  unsigned m = 0, d = 0;
  char tail = 0;
  if (v->size() == 10 && std::sscanf(v->c_str(), "%4d-%2u-%2u%c", &y, &m, &d, &tail) == 3) {
    const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{m},
                                          std::chrono::day{d}};
    if (ymd.ok()) {
      auto day = std::chrono::sys_days{ymd} + std::chrono::days{day_after ? 1 : 0};
      Millis ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(day.time_since_epoch()).count();
      // created_at > after: the day's last millisecond is the bound.
      return std::optional<Millis>{day_after ? ms - 1 : ms};
    }
  }
  return make_error(Errc::invalid_argument,
                    std::string(name) + " must be milliseconds since the epoch or YYYY-MM-DD");
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

RestApi::RestApi(Services services, const LimitsConfig& limits)
    : s_(services),
      limits_(limits),
      per_ip_(static_cast<double>(limits.http_rate_per_s), static_cast<double>(limits.http_burst)),
      auth_per_ip_(static_cast<double>(limits.auth_rate_per_min) / 60.0,
                   static_cast<double>(std::max<std::int64_t>(limits.auth_rate_per_min / 6, 10))) {
  auto add = [this](std::string method, std::string_view path, Handler h, bool authn,
                    bool auth_limited = false, bool hashing = false) {
    routes_.push_back(
        {std::move(method), split_path(path), h, authn, auth_limited, std::string(path), hashing});
  };
  add("GET", "/healthz", &RestApi::health, false);
  add("GET", "/readyz", &RestApi::ready, false);
  add("GET", "/metrics", &RestApi::metrics, false);
  add("POST", "/api/v1/auth/register", &RestApi::auth_register, false, true, true);
  add("POST", "/api/v1/auth/login", &RestApi::auth_login, false, true, true);
  add("POST", "/api/v1/auth/refresh", &RestApi::auth_refresh, false, true);
  add("POST", "/api/v1/auth/logout", &RestApi::auth_logout, false);
  add("GET", "/api/v1/users/me", &RestApi::users_me, true);
  add("PATCH", "/api/v1/users/me", &RestApi::users_update_me, true);
  add("POST", "/api/v1/users/me/password", &RestApi::password_change, true, true, true);
  add("GET", "/api/v1/users/me/sessions", &RestApi::sessions_list, true);
  add("DELETE", "/api/v1/users/me/sessions", &RestApi::sessions_end_all, true);
  add("DELETE", "/api/v1/users/me/sessions/{id}", &RestApi::sessions_end, true);
  add("GET", "/api/v1/users", &RestApi::users_find, true);
  add("GET", "/api/v1/users/{id}", &RestApi::users_get, true);
  add("POST", "/api/v1/spaces", &RestApi::spaces_create, true);
  add("GET", "/api/v1/spaces", &RestApi::spaces_list, true);
  add("GET", "/api/v1/spaces/{id}", &RestApi::spaces_get, true);
  add("PATCH", "/api/v1/spaces/{id}", &RestApi::spaces_update, true);
  add("POST", "/api/v1/spaces/{id}/join", &RestApi::spaces_join, true);
  add("POST", "/api/v1/spaces/{id}/leave", &RestApi::spaces_leave, true);
  add("GET", "/api/v1/spaces/{id}/members", &RestApi::spaces_members, true);
  add("POST", "/api/v1/spaces/{id}/channels", &RestApi::channels_create, true);
  add("GET", "/api/v1/spaces/{id}/channels", &RestApi::channels_list, true);
  add("GET", "/api/v1/channels/{id}", &RestApi::channels_get, true);
  add("PATCH", "/api/v1/channels/{id}", &RestApi::channels_update, true);
  add("DELETE", "/api/v1/channels/{id}", &RestApi::channels_delete, true);
  add("POST", "/api/v1/channels/{id}/join", &RestApi::channels_join, true);
  add("POST", "/api/v1/channels/{id}/leave", &RestApi::channels_leave, true);
  add("GET", "/api/v1/channels/{id}/members", &RestApi::channels_members, true);
  add("DELETE", "/api/v1/channels/{id}/members/{id}", &RestApi::channel_members_remove, true);
  add("GET", "/api/v1/channels/{id}/messages", &RestApi::channels_messages, true);
  add("GET", "/api/v1/messages/{id}", &RestApi::message_get, true);
  add("GET", "/api/v1/dms/{id}/messages", &RestApi::dms_messages, true);
  add("GET", "/api/v1/conversations", &RestApi::conversations, true);
  add("POST", "/api/v1/ws/ticket", &RestApi::ws_ticket, true);
  add("GET", "/api/v1/ws/route", &RestApi::ws_route, false);
  add("GET", "/api/v1/admin/users", &RestApi::admin_users, true);
  add("POST", "/api/v1/admin/users/{id}/deactivate", &RestApi::admin_deactivate, true);
  add("POST", "/api/v1/admin/users/{id}/reactivate", &RestApi::admin_reactivate, true);
  add("POST", "/api/v1/admin/users/{id}/password", &RestApi::admin_reset_password, true, false,
      true);
  add("GET", "/api/v1/admin/spaces", &RestApi::admin_spaces, true);
  add("DELETE", "/api/v1/admin/spaces/{id}/members/{id}", &RestApi::admin_remove_member, true);
  add("DELETE", "/api/v1/admin/messages/{id}", &RestApi::admin_delete_message, true);
  // POST /api/v1/files is an upload: its body is streamed (is_upload, begin_upload).
  add("GET", "/api/v1/files/{key}", &RestApi::files_get, true);
  // PUT .../avatar is an upload too; GET serves it to whoever may see its owner.
  add("GET", "/api/v1/users/{id}/avatar", &RestApi::avatar_of_user, true);
  add("GET", "/api/v1/spaces/{id}/avatar", &RestApi::avatar_of_space, true);
  add("GET", "/api/v1/channels/{id}/avatar", &RestApi::avatar_of_channel, true);
  add("POST", "/api/v1/spaces/{id}/invites", &RestApi::invites_create, true);
  add("GET", "/api/v1/spaces/{id}/invites", &RestApi::invites_list, true);
  add("DELETE", "/api/v1/spaces/{id}/invites/{code}", &RestApi::invites_revoke, true);
  add("GET", "/api/v1/invites/{code}", &RestApi::invites_preview, true);
  add("POST", "/api/v1/invites/{code}/accept", &RestApi::invites_accept, true);
  add("POST", "/api/v1/spaces/{id}/members", &RestApi::members_add, true);
  add("DELETE", "/api/v1/spaces/{id}/members/{id}", &RestApi::members_remove, true);
  add("PATCH", "/api/v1/spaces/{id}/members/{id}", &RestApi::members_update, true);
  add("POST", "/api/v1/spaces/{id}/transfer", &RestApi::spaces_transfer, true);
  add("POST", "/api/v1/spaces/{id}/bans", &RestApi::bans_create, true);
  add("GET", "/api/v1/spaces/{id}/bans", &RestApi::bans_list, true);
  add("DELETE", "/api/v1/spaces/{id}/bans/{id}", &RestApi::bans_delete, true);
  add("POST", "/api/v1/spaces/{id}/channels/{id}/members", &RestApi::channel_members_add, true);
  add("POST", "/api/v1/users/me/blocks", &RestApi::blocks_create, true);
  add("GET", "/api/v1/users/me/blocks", &RestApi::blocks_list, true);
  add("DELETE", "/api/v1/users/me/blocks/{id}", &RestApi::blocks_delete, true);
  add("GET", "/api/v1/search", &RestApi::search, true);
  add("GET", "/api/v1/presence", &RestApi::presence, true);
}

bool RestApi::hashes_password(std::string_view method, std::string_view path) const {
  return std::any_of(routes_.begin(), routes_.end(), [&](const Route& r) {
    return r.hashing && r.method == method && r.path == path;
  });
}

HttpResponse RestApi::handle(const HttpRequest& req) {
  auto url = boost::urls::parse_origin_form(req.target);
  if (!url) return error_response(make_error(Errc::invalid_argument, "malformed request target"));
  std::vector<std::string> segments;
  for (auto seg : url->segments()) segments.emplace_back(seg);

  // HEAD is answered like GET (the transport drops the body).
  const std::string_view method = req.method == "HEAD" ? std::string_view("GET") : req.method;
  const Route* match = nullptr;
  std::string allowed;  // methods of the routes whose path matched, for 405's Allow
  std::vector<Id> params;
  std::string matched_key;
  std::string code;
  for (const auto& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    std::vector<Id> p;
    std::string key;
    bool ok = true;
    for (std::size_t i = 0; i < segments.size() && ok; ++i) {
      if (route.segments[i] == "{key}") {
        key = segments[i];
        ok = !key.empty();
      } else if (route.segments[i] == "{id}") {
        auto id = json::parse_uint(segments[i]);
        ok = id && *id != 0;
        if (ok) p.push_back(*id);
      } else if (route.segments[i] == "{code}") {
        ok = valid_code(segments[i]);
        if (ok) code = segments[i];
      } else {
        ok = route.segments[i] == segments[i];
      }
    }
    if (!ok) continue;
    if (route.method == method) {
      match = &route;
      params = std::move(p);
      matched_key = std::move(key);
      break;
    }
    allowed += (allowed.empty() ? "" : ", ") + route.method;
  }
  if (!match) {
    if (!allowed.empty()) {
      HttpResponse r = error_response(make_error(Errc::invalid_argument, "method not allowed"));
      r.status = 405;
      r.headers.emplace_back("Allow", allowed);
      return r;
    }
    return error_response(make_error(Errc::not_found, "no such endpoint"));
  }

  Millis now = s_.clock.now_ms();
  if (!per_ip_.allow(req.remote_ip, now) ||
      (match->auth_limited && !auth_per_ip_.allow(req.remote_ip, now))) {
    metrics::imd().rate_limited.at(match->auth_limited ? "http_auth" : "http").inc();
    return error_response(make_error(Errc::too_many_requests, "rate limit exceeded"));
  }
  if (req.body.size() > static_cast<std::size_t>(limits_.max_http_body_bytes)) {
    return error_response(make_error(Errc::payload_too_large, "request body too large"));
  }
  if (!req.body.empty() && !boost::algorithm::istarts_with(req.content_type, "application/json")) {
    return error_response(
        make_error(Errc::invalid_argument, "Content-Type must be application/json"));
  }

  Ctx ctx{req, 0, std::move(params), std::move(code), {}, std::move(matched_key)};
  for (auto qp : url->params()) ctx.query.emplace_back(qp.key, qp.value);
  if (match->authenticated) {
    auto token = bearer_token(req.authorization);
    if (!token) return error_response(make_error(Errc::unauthenticated, "missing bearer token"));
    auto claims = s_.auth.authenticate_claims(*token);
    if (!claims) return error_response(claims.error());
    ctx.user = claims->user;
    ctx.session = claims->session;
  }
  return (this->*(match->handler))(ctx);
}

HttpResponse RestApi::health(Ctx&) {
  return alive();
}

// /healthz says the process lives; /readyz whether it can serve (a load balancer takes it out
// of rotation on 503): draining, an engine that does not answer in time, a full send queue,
// each named in the body.
HttpResponse RestApi::ready(Ctx&) {
  if (s_.readiness == nullptr) {
    return json_response(200, {{"status", "ready"}, {"version", s_.version}});
  }
  auto report = s_.readiness->check();
  if (report.ready) return json_response(200, {{"status", "ready"}, {"version", s_.version}});
  bj::array failing;
  for (const auto& f : report.failing) {
    failing.push_back(bj::object{{"part", f.part}, {"error", f.error}});
  }
  auto r = json_response(
      503, {{"status", "not ready"}, {"version", s_.version}, {"failing", std::move(failing)}});
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

// Served without a token, like /healthz, to the scraper (operators keep the port off the
// internet or behind the proxy's allow list; docs/operations.md).
HttpResponse RestApi::metrics(Ctx&) {
  MetricsText m;
  write_process_metrics(m);
  if (s_.metrics != nullptr && *s_.metrics) (*s_.metrics)(m);
  HttpResponse res;
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  res.body = m.take();
  return res;
}

HttpResponse RestApi::auth_register(Ctx& ctx) {
  auto body = ctx.body();
  if (!body) return error_response(body.error());
  auto name = json::required_string(*body, "name", kMaxNameBytes);
  if (!name) return error_response(name.error());
  auto phone = json::required_string(*body, "phone", kMaxPhoneBytes);
  if (!phone) return error_response(phone.error());
  auto password = json::required_string(*body, "password", kMaxPasswordBytes);
  if (!password) return error_response(password.error());
  auto user = s_.auth.register_user(*name, *phone, *password);
  return respond(user, 201, [](const User& u) { return bj::object{{"user", user_json(u, true)}}; });
}

HttpResponse RestApi::auth_login(Ctx& ctx) {
  auto body = ctx.body();
  if (!body) return error_response(body.error());
  auto phone = json::required_string(*body, "phone", kMaxPhoneBytes);
  if (!phone) return error_response(phone.error());
  auto password = json::required_string(*body, "password", kMaxPasswordBytes);
  if (!password) return error_response(password.error());
  return respond(s_.auth.login(*phone, *password, ctx.req.remote_ip, ctx.req.user_agent), 200,
                 session_json);
}

HttpResponse RestApi::auth_refresh(Ctx& ctx) {
  auto body = ctx.body();
  if (!body) return error_response(body.error());
  auto token = json::required_string(*body, "refresh_token", 256);
  if (!token) return error_response(token.error());
  return respond(s_.auth.refresh(*token, ctx.req.remote_ip, ctx.req.user_agent), 200, session_json);
}

HttpResponse RestApi::auth_logout(Ctx& ctx) {
  auto body = ctx.body();
  if (!body) return error_response(body.error());
  auto token = json::required_string(*body, "refresh_token", 256);
  if (!token) return error_response(token.error());
  auto r = s_.auth.logout(*token);
  if (!r) return error_response(r.error());
  return no_content();
}

// A one-time ticket for /ws?ticket=..., so that the access token stays out of URLs.
HttpResponse RestApi::ws_ticket(Ctx& ctx) {
  auto token = bearer_token(ctx.req.authorization);
  if (!token) return error_response(make_error(Errc::unauthenticated, "missing bearer token"));
  return respond(s_.auth.ws_ticket(*token), 201, [](const std::string& t) {
    return bj::object{{"ticket", t}, {"expires_in", TokenIssuer::kWsTicketTtlS}};
  });
}

// Whose WebSocket this is, for a load balancer that routes users (the canary route of
// docs/operations.md): the user of `token` (an access token) or `ticket` (a WebSocket ticket,
// redeemed here: tickets are once per process, so this must not run on a process that also
// serves that /ws), in the body and the X-Imd-User header; "0" when neither names a user (the
// gateway then refuses the upgrade itself). Always 200: routing must not turn into refusing.
HttpResponse RestApi::ws_route(Ctx& ctx) {
  Id user = 0;
  if (const auto* token = ctx.query_value("token")) {
    if (auto u = s_.auth.authenticate(*token)) user = *u;
  } else if (const auto* ticket = ctx.query_value("ticket")) {
    if (auto c = s_.auth.redeem_ws_ticket(*ticket)) user = c->user;
  }
  auto r = json_response(200, {{"user", json::id_str(user)}});
  r.headers.emplace_back("X-Imd-User", std::to_string(user));
  return r;
}

// The caller's live sessions (bounded: kMaxSessionsPerUser), the one of this request marked.
HttpResponse RestApi::sessions_list(Ctx& ctx) {
  return respond(s_.auth.sessions(ctx.user), 200, [&](const std::vector<LoginSession>& all) {
    bj::array a;
    for (const LoginSession& s : all) {
      a.push_back(bj::object{{"id", json::id_str(s.id)},
                             {"created_at", s.created_at},
                             {"last_used_at", s.last_used_at},
                             {"user_agent", s.user_agent},
                             {"ip", s.ip},
                             {"current", s.id == ctx.session}});
    }
    return bj::object{{"sessions", std::move(a)}};
  });
}

// Another user's session, or one that ended, is not found (nothing tells them apart).
HttpResponse RestApi::sessions_end(Ctx& ctx) {
  auto r = s_.auth.end_session(ctx.user, ctx.params[0]);
  if (!r) return error_response(r.error());
  return no_content();
}

HttpResponse RestApi::sessions_end_all(Ctx& ctx) {
  auto r = s_.auth.logout_everywhere(ctx.user);
  if (!r) return error_response(r.error());
  return no_content();
}

HttpResponse RestApi::password_change(Ctx& ctx) {
  auto body = ctx.body();
  if (!body) return error_response(body.error());
  if (auto unknown = only_fields(*body, {"old_password", "new_password"}); !unknown) {
    return error_response(unknown.error());
  }
  auto old_password = json::required_string(*body, "old_password", kMaxPasswordBytes);
  if (!old_password) return error_response(old_password.error());
  auto new_password = json::required_string(*body, "new_password", kMaxPasswordBytes);
  if (!new_password) return error_response(new_password.error());
  return respond(s_.auth.change_password(ctx.user, *old_password, *new_password, ctx.req.remote_ip,
                                         ctx.req.user_agent),
                 200, session_json);
}

HttpResponse RestApi::users_me(Ctx& ctx) {
  auto me = s_.auth.me(ctx.user);
  if (!me) return error_response(me.error());
  bj::object o = user_json(*me, true);
  auto receipts = s_.messaging.read_receipts(ctx.user);
  if (!receipts) return error_response(receipts.error());
  o["read_receipts"] = *receipts;
  if (s_.admin != nullptr) {
    auto admin = s_.admin->is_admin(ctx.user);
    if (!admin) return error_response(admin.error());
    o["admin"] = *admin;
  }
  return json_response(200, o);
}

HttpResponse RestApi::users_update_me(Ctx& ctx) {
  auto body = ctx.body();
  if (!body) return error_response(body.error());
  ProfileUpdate up;
  auto name = json::optional_string(*body, "name", kMaxNameBytes, 1);
  if (!name) return error_response(name.error());
  auto avatar = json::optional_string(*body, "avatar", kMaxAvatarBytes);
  if (!avatar) return error_response(avatar.error());
  if (auto unknown = only_fields(*body, {"name", "avatar", "read_receipts"}); !unknown) {
    return error_response(unknown.error());
  }
  std::optional<bool> receipts;
  if (auto it = body->find("read_receipts"); it != body->end()) {
    if (!it->value().is_bool()) {
      return error_response(make_error(Errc::invalid_argument, "read_receipts must be a boolean"));
    }
    receipts = it->value().get_bool();
  }
  up.name = std::move(*name);
  up.avatar = std::move(*avatar);
  // The profile first: its checks refuse the request before anything changed.
  auto user = s_.auth.update_me(ctx.user, up);
  if (!user) return error_response(user.error());
  if (receipts) {
    if (auto r = s_.messaging.set_read_receipts(ctx.user, *receipts); !r) {
      return error_response(r.error());
    }
  }
  auto now = s_.messaging.read_receipts(ctx.user);
  if (!now) return error_response(now.error());
  bj::object o = user_json(*user, true);
  o["read_receipts"] = *now;
  return json_response(200, o);
}

HttpResponse RestApi::users_get(Ctx& ctx) {
  Id caller = ctx.user;
  return respond(s_.auth.get_user(caller, ctx.params[0]), 200,
                 [caller](const User& u) { return user_json(u, u.id == caller); });
}

namespace {
// `after` and `limit` (1..100, default `default_limit`) of a paged list.
Result<std::pair<Id, std::uint32_t>> paging(const RestApi::Ctx& ctx, std::uint32_t default_limit) {
  auto after = ctx.query_uint("after");
  if (!after) return after.error();
  auto limit = ctx.query_uint("limit");
  if (!limit) return limit.error();
  const auto n = limit->value_or(default_limit);
  if (n < 1 || n > kMaxPageSize) {
    return make_error(Errc::invalid_argument, "limit must be 1..100");
  }
  return std::pair{after->value_or(0), static_cast<std::uint32_t>(n)};
}

}  // namespace

HttpResponse RestApi::users_find(Ctx& ctx) {
  const std::string* name = ctx.query_value("name");
  Id caller = ctx.user;
  if (!name) {
    // The directory: ?q= a name prefix, paged (docs/api.md).
    const std::string* q = ctx.query_value("q");
    if (!q) return error_response(make_error(Errc::invalid_argument, "name or q is required"));
    auto page = paging(ctx, 20);
    if (!page) return error_response(page.error());
    return respond(s_.messaging.directory(caller, *q, page->first, page->second), 200,
                   [](const Page<User>& p) {
                     return page_json("users", p,
                                      [](const User& u) { return user_json(u, false); });
                   });
  }
  return respond(s_.auth.find_users(caller, *name), 200, [caller](const std::vector<User>& us) {
    bj::array a;
    for (const auto& u : us) a.push_back(user_json(u, u.id == caller));
    return bj::object{{"users", std::move(a)}};
  });
}

HttpResponse RestApi::spaces_create(Ctx& ctx) {
  auto body = ctx.body();
  if (!body) return error_response(body.error());
  auto name = json::required_string(*body, "name", kMaxNameBytes);
  if (!name) return error_response(name.error());
  auto avatar = json::optional_string(*body, "avatar", kMaxAvatarBytes);
  if (!avatar) return error_response(avatar.error());
  return respond(s_.spaces.create_space(ctx.user, *name, avatar->value_or("")), 201, space_json);
}

HttpResponse RestApi::spaces_list(Ctx& ctx) {
  auto page = paging(ctx, kMaxPageSize);
  if (!page) return error_response(page.error());
  auto discoverable = ctx.query_uint("discoverable");
  if (!discoverable) return error_response(discoverable.error());
  auto listed = discoverable->value_or(0) != 0
                    ? s_.spaces.discoverable_spaces(page->first, page->second)
                    : s_.spaces.my_spaces(ctx.user, page->first, page->second);
  return respond(listed, 200,
                 [](const Page<Space>& p) { return page_json("spaces", p, space_json); });
}

HttpResponse RestApi::spaces_get(Ctx& ctx) {
  return respond(s_.spaces.get_space(ctx.user, ctx.params[0]), 200, space_json);
}

HttpResponse RestApi::spaces_update(Ctx& ctx) {
  auto body = ctx.body();
  if (!body) return error_response(body.error());
  if (auto unknown = only_fields(*body, {"name", "avatar", "discoverable"}); !unknown) {
    return error_response(unknown.error());
  }
  auto name = json::optional_string(*body, "name", kMaxNameBytes, 1);
  if (!name) return error_response(name.error());
  auto avatar = json::optional_string(*body, "avatar", kMaxAvatarBytes);
  if (!avatar) return error_response(avatar.error());
  auto discoverable = optional_bool(*body, "discoverable");
  if (!discoverable) return error_response(discoverable.error());
  if (*discoverable) {
    // The owner's setting; with a name or avatar too, those are applied after it.
    auto set = s_.spaces.set_discoverable(ctx.user, ctx.params[0], **discoverable);
    if (!set || (!*name && !*avatar)) return respond(set, 200, space_json);
  }
  return respond(s_.spaces.update_space(ctx.user, ctx.params[0], *name, *avatar), 200, space_json);
}

HttpResponse RestApi::spaces_join(Ctx& ctx) {
  return respond(s_.spaces.join_space(ctx.user, ctx.params[0]), 200, space_json);
}

HttpResponse RestApi::spaces_leave(Ctx& ctx) {
  auto r = s_.spaces.leave_space(ctx.user, ctx.params[0]);
  if (!r) return error_response(r.error());
  return no_content();
}

HttpResponse RestApi::spaces_members(Ctx& ctx) {
  auto page = paging(ctx, 50);
  if (!page) return error_response(page.error());
  return respond(s_.spaces.space_members(ctx.user, ctx.params[0], page->first, page->second), 200,
                 member_page_json);
}

HttpResponse RestApi::channels_create(Ctx& ctx) {
  auto body = ctx.body();
  if (!body) return error_response(body.error());
  auto name = json::required_string(*body, "name", kMaxNameBytes);
  if (!name) return error_response(name.error());
  auto avatar = json::optional_string(*body, "avatar", kMaxAvatarBytes);
  if (!avatar) return error_response(avatar.error());
  auto is_private = optional_bool(*body, "private");
  if (!is_private) return error_response(is_private.error());
  return respond(s_.spaces.create_channel(ctx.user, ctx.params[0], *name, avatar->value_or(""),
                                          is_private->value_or(false)),
                 201, channel_json);
}

HttpResponse RestApi::channels_list(Ctx& ctx) {
  auto page = paging(ctx, kMaxPageSize);
  if (!page) return error_response(page.error());
  return respond(s_.spaces.space_channels(ctx.user, ctx.params[0], page->first, page->second), 200,
                 [](const Page<Channel>& p) { return page_json("channels", p, channel_json); });
}

HttpResponse RestApi::channels_get(Ctx& ctx) {
  return respond(s_.spaces.get_channel(ctx.user, ctx.params[0]), 200, channel_json);
}

HttpResponse RestApi::channels_update(Ctx& ctx) {
  auto body = ctx.body();
  if (!body) return error_response(body.error());
  if (auto unknown = only_fields(*body, {"name", "avatar", "archived", "history_from_join"});
      !unknown) {
    return error_response(unknown.error());
  }
  auto name = json::optional_string(*body, "name", kMaxNameBytes, 1);
  if (!name) return error_response(name.error());
  auto avatar = json::optional_string(*body, "avatar", kMaxAvatarBytes);
  if (!avatar) return error_response(avatar.error());
  auto archived = optional_bool(*body, "archived");
  if (!archived) return error_response(archived.error());
  auto from_join = optional_bool(*body, "history_from_join");
  if (!from_join) return error_response(from_join.error());
  if (*archived || *from_join) {
    // The settings first; with a name or avatar too, those are applied after them.
    auto set = s_.spaces.set_channel_settings(ctx.user, ctx.params[0], *archived, *from_join);
    if (!set || (!*name && !*avatar)) return respond(set, 200, channel_json);
  }
  return respond(s_.spaces.update_channel(ctx.user, ctx.params[0], *name, *avatar), 200,
                 channel_json);
}

HttpResponse RestApi::channels_delete(Ctx& ctx) {
  return done(s_.spaces.delete_channel(ctx.user, ctx.params[0]));
}

HttpResponse RestApi::channel_members_remove(Ctx& ctx) {
  return done(s_.spaces.remove_channel_member(ctx.user, ctx.params[0], ctx.params[1]));
}

HttpResponse RestApi::channels_join(Ctx& ctx) {
  return respond(s_.spaces.join_channel(ctx.user, ctx.params[0]), 200, channel_json);
}

HttpResponse RestApi::channels_leave(Ctx& ctx) {
  auto r = s_.spaces.leave_channel(ctx.user, ctx.params[0]);
  if (!r) return error_response(r.error());
  return no_content();
}

HttpResponse RestApi::channels_members(Ctx& ctx) {
  auto page = paging(ctx, 50);
  if (!page) return error_response(page.error());
  return respond(s_.spaces.channel_members(ctx.user, ctx.params[0], page->first, page->second), 200,
                 member_page_json);
}

Result<HistoryQuery> RestApi::history_query(const Ctx& ctx) {
  HistoryQuery q;
  auto before = ctx.query_uint("before_seq");
  if (!before) return before.error();
  auto after = ctx.query_uint("after_seq");
  if (!after) return after.error();
  auto limit = ctx.query_uint("limit");
  if (!limit) return limit.error();
  q.before_seq = *before;
  q.after_seq = *after;
  q.limit = static_cast<std::uint32_t>(std::min<std::uint64_t>(limit->value_or(50), 1000));
  return q;
}

HttpResponse RestApi::history(Ctx& ctx, const ConvKey& conv) {
  auto q = history_query(ctx);
  if (!q) return error_response(q.error());
  auto msgs = s_.messaging.history(ctx.user, conv, *q);
  if (!msgs) return error_response(msgs.error());
  return history_page(*msgs, ctx.user);
}

std::optional<HttpResponse> RestApi::try_handle(const HttpRequest& req) {
  if (req.method != "GET" || !req.body.empty()) return std::nullopt;
  // The liveness probe never waits for a pool thread.
  if (req.target == "/healthz") return alive();
  auto url = boost::urls::parse_origin_form(req.target);
  if (!url) return std::nullopt;
  // /api/v1/channels/{id}/messages or /api/v1/dms/{id}/messages
  auto segs = url->segments();
  if (segs.size() != 5) return std::nullopt;
  auto seg = segs.begin();
  if (*seg++ != "api" || *seg++ != "v1") return std::nullopt;
  const std::string kind = *seg++;
  if (kind != "channels" && kind != "dms") return std::nullopt;
  auto id = json::parse_uint(std::string(*seg++));
  if (!id || *id == 0 || *seg != "messages") return std::nullopt;
  auto token = bearer_token(req.authorization);
  if (!token) return std::nullopt;
  auto user = s_.auth.authenticate(*token);
  if (!user || (kind == "dms" && *id == *user)) return std::nullopt;
  Ctx ctx{req, *user, {*id}, {}, {}, {}};
  for (auto qp : url->params()) ctx.query.emplace_back(qp.key, qp.value);
  auto q = history_query(ctx);
  if (!q) return std::nullopt;
  const ConvKey conv = kind == "channels" ? ConvKey::channel(*id) : ConvKey::dm(*user, *id);
  auto msgs = s_.messaging.try_history(*user, conv, *q);
  if (!msgs) return std::nullopt;
  // Last, so that a request handed to handle() is not counted twice (handle() answers 429).
  if (!per_ip_.allow(req.remote_ip, s_.clock.now_ms())) return std::nullopt;
  return history_page(*msgs, *user);
}

HttpResponse RestApi::history_page(const std::vector<Message>& msgs, Id viewer) {
  // Written straight into the body: history pages are the hottest REST reads.
  HttpResponse r;
  r.status = 200;
  std::size_t size = 32;
  for (const auto& m : msgs) size += m.body.size() + 220;
  r.body.reserve(size);
  json::Writer w(r.body);
  w.begin_object().key("messages").begin_array();
  for (const auto& m : msgs) write_message(w, m, viewer);
  w.end_array().end_object();
  return r;
}

HttpResponse RestApi::channels_messages(Ctx& ctx) {
  return history(ctx, ConvKey::channel(ctx.params[0]));
}

HttpResponse RestApi::message_get(Ctx& ctx) {
  auto m = s_.messaging.message(ctx.user, ctx.params[0]);
  if (!m) return error_response(m.error());
  HttpResponse r;
  r.status = 200;
  json::Writer w(r.body);
  write_message(w, *m, ctx.user);
  return r;
}

HttpResponse RestApi::dms_messages(Ctx& ctx) {
  if (ctx.params[0] == ctx.user) {
    return error_response(make_error(Errc::invalid_argument, "no conversation with yourself"));
  }
  return history(ctx, ConvKey::dm(ctx.user, ctx.params[0]));
}

namespace {
// Where a conversation stands in the list's order (channels by id, then DMs by peer id), for
// the paging cursor: its name as the viewer sees it ("channel:<id>", "dm:<peer id>").
std::optional<std::pair<int, Id>> list_position(std::string_view name) {
  for (const auto& [prefix, rank] :
       {std::pair{std::string_view("channel:"), 0}, std::pair{std::string_view("dm:"), 1}}) {
    if (name.substr(0, prefix.size()) != prefix) continue;
    auto id = json::parse_uint(std::string(name.substr(prefix.size())));
    if (!id || *id == 0) return std::nullopt;
    return std::pair{rank, *id};
  }
  return std::nullopt;
}
std::pair<int, Id> list_position(const ConversationState& c, Id viewer) {
  return c.conv.is_channel() ? std::pair{0, c.conv.channel_id()}
                             : std::pair{1, c.conv.peer_of(viewer)};
}
}  // namespace

// Paged like the other lists (limit 1..100, default 100), by the conversation after which a
// page starts ("after": a conversation name, next_after); the spaces' unread roll-up comes
// with every page.
HttpResponse RestApi::conversations(Ctx& ctx) {
  Id viewer = ctx.user;
  auto limit = ctx.query_uint("limit");
  if (!limit) return error_response(limit.error());
  const auto n = limit->value_or(kMaxPageSize);
  if (n < 1 || n > kMaxPageSize) {
    return error_response(make_error(Errc::invalid_argument, "limit must be 1..100"));
  }
  std::optional<std::pair<int, Id>> after;
  if (const std::string* a = ctx.query_value("after"); a && !a->empty()) {
    after = list_position(*a);
    if (!after) {
      return error_response(make_error(Errc::invalid_argument,
                                       "after must be a conversation: channel:<id> or dm:<id>"));
    }
  }
  auto list = s_.messaging.conversations(viewer);
  if (!list) return error_response(list.error());
  auto first = list->conversations.begin();
  if (after) {
    first = std::find_if(first, list->conversations.end(), [&](const ConversationState& c) {
      return list_position(c, viewer) > *after;
    });
  }
  const auto left = static_cast<std::uint64_t>(list->conversations.end() - first);
  const auto last = first + static_cast<std::ptrdiff_t>(std::min<std::uint64_t>(left, n));
  HttpResponse r;
  r.status = 200;
  json::Writer w(r.body);
  w.begin_object().key("conversations").begin_array();
  for (auto it = first; it != last; ++it) write_conversation(w, *it, viewer);
  w.end_array().key("next_after");
  if (left > n) {
    w.string(wire::conversation_name((last - 1)->conv, viewer));
  } else {
    w.raw("null");
  }
  w.key("spaces").begin_array();
  for (const auto& s : list->spaces) {
    w.begin_object()
        .key("space_id")
        .id(s.space_id)
        .key("unread")
        .uint(s.unread)
        .key("mentions")
        .uint(s.mentions)
        .end_object();
  }
  w.end_array().end_object();
  return r;
}

// --- /api/v1/admin: server administration (AdminService says who may)

HttpResponse RestApi::admin_users(Ctx& ctx) {
  if (s_.admin == nullptr) return error_response(make_error(Errc::not_found, "no such route"));
  const std::string* q = ctx.query_value("q");
  auto page = paging(ctx, 50);
  if (!page) return error_response(page.error());
  return respond(s_.admin->users(ctx.user, q ? *q : std::string(), page->first, page->second), 200,
                 [](const Page<UserStatus>& p) {
                   return page_json("users", p, [](const UserStatus& u) {
                     bj::object o = user_json(u.user, true);
                     o["deactivated"] = u.deactivated;
                     return o;
                   });
                 });
}

HttpResponse RestApi::admin_deactivate(Ctx& ctx) {
  if (s_.admin == nullptr) return error_response(make_error(Errc::not_found, "no such route"));
  auto r = s_.admin->set_deactivated(ctx.user, ctx.params[0], true);
  if (!r) return error_response(r.error());
  return no_content();
}

HttpResponse RestApi::admin_reactivate(Ctx& ctx) {
  if (s_.admin == nullptr) return error_response(make_error(Errc::not_found, "no such route"));
  auto r = s_.admin->set_deactivated(ctx.user, ctx.params[0], false);
  if (!r) return error_response(r.error());
  return no_content();
}

HttpResponse RestApi::admin_spaces(Ctx& ctx) {
  if (s_.admin == nullptr) return error_response(make_error(Errc::not_found, "no such route"));
  auto page = paging(ctx, 50);
  if (!page) return error_response(page.error());
  return respond(s_.admin->spaces(ctx.user, page->first, page->second), 200,
                 [](const Page<Space>& p) { return page_json("spaces", p, space_json); });
}

HttpResponse RestApi::admin_remove_member(Ctx& ctx) {
  if (s_.admin == nullptr) return error_response(make_error(Errc::not_found, "no such route"));
  auto r = s_.admin->remove_from_space(ctx.user, ctx.params[0], ctx.params[1]);
  if (!r) return error_response(r.error());
  return no_content();
}

HttpResponse RestApi::admin_delete_message(Ctx& ctx) {
  if (s_.admin == nullptr) return error_response(make_error(Errc::not_found, "no such route"));
  return done(s_.admin->delete_message(ctx.user, ctx.params[0]));
}

HttpResponse RestApi::admin_reset_password(Ctx& ctx) {
  if (s_.admin == nullptr) return error_response(make_error(Errc::not_found, "no such route"));
  auto body = ctx.body();
  if (!body) return error_response(body.error());
  if (auto unknown = only_fields(*body, {"new_password"}); !unknown) {
    return error_response(unknown.error());
  }
  auto password = json::optional_string(*body, "new_password", kMaxPasswordBytes);
  if (!password) return error_response(password.error());
  return respond(
      s_.admin->reset_password(ctx.user, ctx.params[0], password->value_or(std::string())), 200,
      [](const std::string& p) {
        return bj::object{{"password", p}};
      });
}

namespace {

// An upload after its headers were accepted: the body goes to the FileService's upload.
class FileUploadBody final : public Upload {
 public:
  explicit FileUploadBody(std::unique_ptr<FileUpload> upload) : upload_(std::move(upload)) {}
  Result<void> write(std::span<const char> bytes) override { return upload_->write(bytes); }
  HttpResponse finish() override {
    auto f = upload_->finish();
    if (!f) return error_response(f.error());
    bj::object o{{"id", f->id},
                 {"url", "/api/v1/files/" + f->id},
                 {"size", f->size},
                 {"type", f->type},
                 {"name", f->name},
                 {"sha256", f->sha256},
                 {"created_at", f->created_at}};
    if (f->width != 0 && f->height != 0) {
      o["width"] = f->width;
      o["height"] = f->height;
    }
    if (!f->thumb_type.empty()) o["thumb_url"] = "/api/v1/files/" + f->id + "?thumb=1";
    HttpResponse r = json_response(201, o);
    r.headers.emplace_back("Location", "/api/v1/files/" + f->id);
    return r;
  }

 private:
  std::unique_ptr<FileUpload> upload_;
};

// An avatar upload after its headers were accepted: the square is stored, then the owner's
// `avatar` field becomes its URL (through the service that checked the caller may change it).
class AvatarUploadBody final : public Upload {
 public:
  AvatarUploadBody(std::unique_ptr<AvatarUpload> upload, Services& s, Id caller, AvatarOf kind,
                   Id owner)
      : upload_(std::move(upload)), s_(s), caller_(caller), kind_(kind), owner_(owner) {}
  Result<void> write(std::span<const char> bytes) override { return upload_->write(bytes); }
  HttpResponse finish() override {
    auto url = upload_->finish();
    if (!url) return error_response(url.error());
    switch (kind_) {
      case AvatarOf::user:
        return respond(s_.auth.update_me(caller_, ProfileUpdate{.name = {}, .avatar = *url}), 200,
                       [](const User& u) { return user_json(u, true); });
      case AvatarOf::space:
        return respond(s_.spaces.update_space(caller_, owner_, std::nullopt, *url), 200,
                       space_json);
      case AvatarOf::channel:
        return respond(s_.spaces.update_channel(caller_, owner_, std::nullopt, *url), 200,
                       channel_json);
    }
    return error_response(make_error(Errc::internal, "unknown avatar kind"));
  }

 private:
  std::unique_ptr<AvatarUpload> upload_;
  Services& s_;
  const Id caller_;
  const AvatarOf kind_;
  const Id owner_;
};

struct AvatarTarget {
  AvatarOf kind;
  Id id;  // 0: the caller (users/me)
};

// PUT /api/v1/users/me/avatar, /api/v1/spaces/{id}/avatar, /api/v1/channels/{id}/avatar.
std::optional<AvatarTarget> avatar_target(std::string_view method, std::string_view path) {
  constexpr std::string_view kPrefix = "/api/v1/";
  constexpr std::string_view kSuffix = "/avatar";
  if (method != "PUT" || !path.starts_with(kPrefix) || !path.ends_with(kSuffix)) return {};
  path = path.substr(kPrefix.size(), path.size() - kPrefix.size() - kSuffix.size());
  const auto slash = path.find('/');
  if (slash == std::string_view::npos) return {};
  const std::string_view what = path.substr(0, slash);
  const std::string_view id = path.substr(slash + 1);
  if (what == "users") {
    if (id == "me") return AvatarTarget{AvatarOf::user, 0};
    return {};
  }
  const AvatarOf kind = what == "spaces" ? AvatarOf::space : AvatarOf::channel;
  if (what != "spaces" && what != "channels") return {};
  if (id.empty() || id.size() > 20 || id.find_first_not_of("0123456789") != std::string::npos) {
    return {};
  }
  auto n = json::parse_uint(id);
  if (!n || *n == 0) return {};
  return AvatarTarget{kind, static_cast<Id>(*n)};
}

}  // namespace

bool RestApi::is_upload(std::string_view method, std::string_view path) {
  return (method == "POST" && (path == "/api/v1/files" || path == "/api/v1/files/")) ||
         avatar_target(method, path).has_value();
}

std::variant<std::unique_ptr<Upload>, HttpResponse> RestApi::begin_avatar(
    const HttpRequest& req, std::optional<std::uint64_t> content_length) {
  const std::string_view target = req.target;
  const auto at = avatar_target(req.method, target.substr(0, target.find('?')));
  if (!at) return error_response(make_error(Errc::not_found, "no such endpoint"));
  if (content_length && *content_length > kMaxAvatarUploadBytes) {
    return error_response(make_error(
        Errc::payload_too_large,
        "an avatar may have at most " + std::to_string(kMaxAvatarUploadBytes) + " bytes"));
  }
  auto token = bearer_token(req.authorization);
  if (!token) return error_response(make_error(Errc::unauthenticated, "missing bearer token"));
  auto user = s_.auth.authenticate(*token);
  if (!user) return error_response(user.error());
  // May the caller change it? Asked before any of the body is read (a change of nothing
  // answers exactly what a real change would be refused with).
  Id owner = *user;
  if (at->kind == AvatarOf::space) {
    owner = at->id;
    if (auto may = s_.spaces.update_space(*user, owner, std::nullopt, std::nullopt); !may) {
      return error_response(may.error());
    }
  } else if (at->kind == AvatarOf::channel) {
    owner = at->id;
    if (auto may = s_.spaces.update_channel(*user, owner, std::nullopt, std::nullopt); !may) {
      return error_response(may.error());
    }
  }
  auto upload = s_.files->begin_avatar(at->kind, owner, content_length);
  if (!upload) return error_response(upload.error());
  return std::unique_ptr<Upload>(
      std::make_unique<AvatarUploadBody>(std::move(*upload), s_, *user, at->kind, owner));
}

std::variant<std::unique_ptr<Upload>, HttpResponse> RestApi::begin_upload(
    const HttpRequest& req, std::optional<std::uint64_t> content_length) {
  if (s_.files == nullptr) return error_response(make_error(Errc::not_found, "no such endpoint"));
  if (!per_ip_.allow(req.remote_ip, s_.clock.now_ms())) {
    metrics::imd().rate_limited.at("http").inc();
    return error_response(make_error(Errc::too_many_requests, "rate limit exceeded"));
  }
  if (req.method == "PUT") return begin_avatar(req, content_length);
  // The file limit first: it needs no token, and nothing of the body is read either way.
  if (content_length && *content_length > s_.files->limits().max_bytes) {
    return error_response(make_error(
        Errc::payload_too_large,
        "a file may have at most " + std::to_string(s_.files->limits().max_bytes) + " bytes"));
  }
  auto token = bearer_token(req.authorization);
  if (!token) return error_response(make_error(Errc::unauthenticated, "missing bearer token"));
  auto user = s_.auth.authenticate(*token);
  if (!user) return error_response(user.error());
  std::string name;
  if (auto url = boost::urls::parse_origin_form(req.target)) {
    for (auto qp : url->params()) {
      if (qp.key == "name") name = qp.value;
    }
  }
  if (name.size() > 1024) {
    return error_response(make_error(Errc::invalid_argument, "name is longer than 1024 bytes"));
  }
  auto upload = s_.files->begin_upload(*user, name, content_length);
  if (!upload) return error_response(upload.error());
  return std::unique_ptr<Upload>(std::make_unique<FileUploadBody>(std::move(*upload)));
}

HttpResponse RestApi::avatar_response(AvatarOf kind, Id owner, const HttpRequest& req) {
  if (s_.files == nullptr) return error_response(make_error(Errc::not_found, "no avatar"));
  auto d = s_.files->open_avatar(kind, owner);
  if (!d) return error_response(d.error());
  return file_response(d->meta, std::move(d->reader), req);
}

// Anyone signed in sees a user (GET /api/v1/users/{id}), so their avatar too.
HttpResponse RestApi::avatar_of_user(Ctx& ctx) {
  if (auto u = s_.auth.get_user(ctx.user, ctx.params[0]); !u) return error_response(u.error());
  return avatar_response(AvatarOf::user, ctx.params[0], ctx.req);
}

HttpResponse RestApi::avatar_of_space(Ctx& ctx) {
  if (auto sp = s_.spaces.get_space(ctx.user, ctx.params[0]); !sp) {
    return error_response(sp.error());
  }
  return avatar_response(AvatarOf::space, ctx.params[0], ctx.req);
}

HttpResponse RestApi::avatar_of_channel(Ctx& ctx) {
  if (auto ch = s_.spaces.get_channel(ctx.user, ctx.params[0]); !ch) {
    return error_response(ch.error());
  }
  return avatar_response(AvatarOf::channel, ctx.params[0], ctx.req);
}

HttpResponse RestApi::files_get(Ctx& ctx) {
  if (s_.files == nullptr) return error_response(make_error(Errc::not_found, "no such file"));
  const std::string* thumb = ctx.query_value("thumb");
  auto d = s_.files->open(ctx.user, ctx.key, thumb != nullptr && *thumb == "1");
  if (!d) return error_response(d.error());
  return file_response(d->meta, std::move(d->reader), ctx.req);
}

}  // namespace imd::api

namespace imd::api {

HttpResponse RestApi::invites_create(Ctx& ctx) {
  auto body = ctx.body();
  if (!body) return error_response(body.error());
  if (auto unknown = only_fields(*body, {"max_uses", "expires_in_s"}); !unknown) {
    return error_response(unknown.error());
  }
  auto uses = json::optional_uint(*body, "max_uses");
  if (!uses) return error_response(uses.error());
  auto ttl = json::optional_uint(*body, "expires_in_s");
  if (!ttl) return error_response(ttl.error());
  std::optional<std::uint32_t> max_uses;
  if (*uses) max_uses = static_cast<std::uint32_t>(std::min<std::uint64_t>(**uses, UINT32_MAX));
  std::optional<std::int64_t> expires_in_s;
  if (*ttl) expires_in_s = static_cast<std::int64_t>(std::min<std::uint64_t>(**ttl, INT32_MAX));
  return respond(s_.spaces.create_invite(ctx.user, ctx.params[0], max_uses, expires_in_s), 201,
                 invite_json);
}

HttpResponse RestApi::invites_list(Ctx& ctx) {
  return respond(s_.spaces.invites(ctx.user, ctx.params[0]), 200,
                 [](const std::vector<Invite>& list) {
                   bj::array a;
                   for (const auto& i : list) a.push_back(invite_json(i));
                   return bj::object{{"invites", std::move(a)}};
                 });
}

HttpResponse RestApi::invites_revoke(Ctx& ctx) {
  return done(s_.spaces.revoke_invite(ctx.user, ctx.params[0], ctx.code));
}

HttpResponse RestApi::invites_preview(Ctx& ctx) {
  return respond(s_.spaces.preview_invite(ctx.code), 200, [](const InvitePreview& p) {
    return bj::object{{"space", bj::object{{"id", json::id_str(p.space.id)},
                                           {"name", p.space.name},
                                           {"avatar", p.space.avatar}}},
                      {"members", p.members},
                      {"expires_at", p.expires_at}};
  });
}

HttpResponse RestApi::invites_accept(Ctx& ctx) {
  return respond(s_.spaces.accept_invite(ctx.user, ctx.code), 200, space_json);
}

HttpResponse RestApi::members_add(Ctx& ctx) {
  auto target = body_user_id(ctx);
  if (!target) return error_response(target.error());
  return done(s_.spaces.add_member(ctx.user, ctx.params[0], *target));
}

HttpResponse RestApi::members_remove(Ctx& ctx) {
  return done(s_.spaces.remove_member(ctx.user, ctx.params[0], ctx.params[1]));
}

HttpResponse RestApi::members_update(Ctx& ctx) {
  auto body = ctx.body();
  if (!body) return error_response(body.error());
  if (auto unknown = only_fields(*body, {"role"}); !unknown) return error_response(unknown.error());
  auto role_name = json::required_string(*body, "role", 16);
  if (!role_name) return error_response(role_name.error());
  auto role = parse_role(*role_name);
  if (!role) return error_response(role.error());
  return respond(s_.spaces.set_role(ctx.user, ctx.params[0], ctx.params[1], *role), 200,
                 space_json);
}

HttpResponse RestApi::spaces_transfer(Ctx& ctx) {
  auto target = body_user_id(ctx);
  if (!target) return error_response(target.error());
  return respond(s_.spaces.transfer(ctx.user, ctx.params[0], *target), 200, space_json);
}

HttpResponse RestApi::bans_create(Ctx& ctx) {
  auto target = body_user_id(ctx);
  if (!target) return error_response(target.error());
  return done(s_.spaces.ban(ctx.user, ctx.params[0], *target));
}

HttpResponse RestApi::bans_delete(Ctx& ctx) {
  return done(s_.spaces.unban(ctx.user, ctx.params[0], ctx.params[1]));
}

HttpResponse RestApi::bans_list(Ctx& ctx) {
  auto page = paging(ctx, 50);
  if (!page) return error_response(page.error());
  return respond(s_.spaces.bans(ctx.user, ctx.params[0], page->first, page->second), 200,
                 [](const MemberPage& p) { return page_json("bans", p, member_json); });
}

HttpResponse RestApi::channel_members_add(Ctx& ctx) {
  auto target = body_user_id(ctx);
  if (!target) return error_response(target.error());
  return respond(s_.spaces.add_channel_member(ctx.user, ctx.params[0], ctx.params[1], *target), 200,
                 channel_json);
}

HttpResponse RestApi::blocks_create(Ctx& ctx) {
  auto target = body_user_id(ctx);
  if (!target) return error_response(target.error());
  return done(s_.messaging.block(ctx.user, *target));
}

HttpResponse RestApi::blocks_delete(Ctx& ctx) {
  return done(s_.messaging.unblock(ctx.user, ctx.params[0]));
}

HttpResponse RestApi::blocks_list(Ctx& ctx) {
  auto page = paging(ctx, 50);
  if (!page) return error_response(page.error());
  return respond(
      s_.messaging.blocks(ctx.user, page->first, page->second), 200, [](const Page<Blocked>& p) {
        return page_json("blocks", p, [](const Blocked& b) {
          return bj::object{
              {"user_id", json::id_str(b.user_id)}, {"name", b.name}, {"blocked_at", b.blocked_at}};
        });
      });
}

HttpResponse RestApi::presence(Ctx& ctx) {
  if (!s_.presence) return error_response(make_error(Errc::not_found, "no such route"));
  const std::string* ids = ctx.query_value("ids");
  if (!ids) return error_response(make_error(Errc::invalid_argument, "ids is required"));
  std::vector<Id> users;
  for (std::string_view rest = *ids; !rest.empty();) {
    const auto comma = rest.find(',');
    auto id = json::parse_uint(rest.substr(0, comma));
    if (!id || *id == 0) {
      return error_response(make_error(Errc::invalid_argument, "ids: comma-separated user ids"));
    }
    if (users.size() == kMaxPresenceSubs) {
      return error_response(make_error(Errc::invalid_argument, "ids: at most 500"));
    }
    users.push_back(*id);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return respond(s_.presence->statuses(ctx.user, std::move(users)), 200,
                 [](const PresenceList& list) {
                   return bj::object{{"presence", wire::presence_json(list)}};
                 });
}

HttpResponse RestApi::search(Ctx& ctx) {
  if (!s_.search) {
    return error_response(make_error(Errc::unavailable, "search is disabled on this server"));
  }
  SearchRequest req;
  const std::string* q = ctx.query_value("q");
  if (!q) return error_response(make_error(Errc::invalid_argument, "q is required"));
  req.q = *q;
  if (const std::string* in = ctx.query_value("in")) {
    auto conv = wire::parse_conversation(*in, ctx.user);
    if (!conv) return error_response(conv.error());
    req.in = *conv;
  }
  auto from = ctx.query_uint("from");
  if (!from) return error_response(from.error());
  req.from = from->value_or(0);
  auto cursor = ctx.query_uint("cursor");
  if (!cursor) return error_response(cursor.error());
  req.cursor = cursor->value_or(0);
  auto limit = ctx.query_uint("limit");
  if (!limit) return error_response(limit.error());
  req.limit = static_cast<std::uint32_t>(std::min<std::uint64_t>(limit->value_or(20), 1000));
  auto after = time_bound(ctx.query_value("after"), "after", true);
  if (!after) return error_response(after.error());
  req.after = *after;
  auto before = time_bound(ctx.query_value("before"), "before", false);
  if (!before) return error_response(before.error());
  req.before = *before;

  auto found = s_.search->search(ctx.user, req);
  if (!found) return error_response(found.error());
  HttpResponse r;
  r.status = 200;
  json::Writer w(r.body);
  w.begin_object().key("messages").begin_array();
  for (const SearchHit& h : found->hits) {
    const Message& m = h.msg;
    w.begin_object()
        .key("id")
        .id(m.id)
        .key("conversation")
        .string(wire::conversation_name(m.conv, ctx.user))
        .key("seq")
        .uint(m.seq)
        .key("sender")
        .id(m.from)
        .key("from")
        .id(m.from)
        .key("type")
        .string(m.type)
        .key("body")
        .string(m.body)
        .key("created_at")
        .sint(m.created_at);
    if (m.edited_at != 0) w.key("edited_at").sint(m.edited_at);
    w.key("snippet").string(h.snippet.text).key("marks").begin_array();
    for (const auto& [start, length] : h.snippet.marks) {
      w.begin_array().uint(start).uint(length).end_array();
    }
    w.end_array().end_object();
  }
  w.end_array().key("next_cursor");
  if (found->next_cursor) {
    w.id(*found->next_cursor);
  } else {
    w.raw("null");
  }
  w.key("indexing").raw(found->indexing ? "true" : "false").end_object();
  return r;
}

}  // namespace imd::api
