// The REST API under /api/v1: a routing table of (method, path pattern) -> handler.
// Handlers parse and validate input, authenticate (Bearer JWT), call one service and map
// the result; they hold no state of their own. handle() blocks (services call the Store):
// the HTTP transport runs it on the blocking pool. Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "common/config.hpp"
#include "common/metrics_text.hpp"
#include "common/rate_limiter.hpp"
#include "common/readiness.hpp"
#include "domain/admin_service.hpp"
#include "domain/auth_service.hpp"
#include "domain/file_service.hpp"
#include "domain/messaging_service.hpp"
#include "domain/presence_service.hpp"
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
  // The /api/v1/admin/... routes; null: they answer 404 (no administration).
  AdminService* admin = nullptr;
  // GET /readyz answers from this; null: always ready (nothing to check).
  Readiness* readiness = nullptr;
  // Uploads and downloads (/api/v1/files); null: those routes answer 404.
  FileService* files = nullptr;
  // GET /api/v1/search; null: answered 503 (search disabled).
  SearchService* search = nullptr;
  // GET /api/v1/presence; null: answered 404.
  PresenceService* presence = nullptr;
  // What /readyz reports as this process's version (rolling upgrades, canaries).
  std::string version;
};

// An upload accepted by RestApi::begin_upload: the transport feeds it the body as it arrives
// (on the blocking pool, one call at a time) and sends what finish() returns.
class Upload {
 public:
  virtual ~Upload() = default;
  virtual Result<void> write(std::span<const char> bytes) = 0;
  virtual HttpResponse finish() = 0;
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
  // Whether the request is an upload (POST /api/v1/files, PUT /api/v1/users/me/avatar,
  // /api/v1/spaces/{id}/avatar, /api/v1/channels/{id}/avatar), whose body the transport streams to
  // begin_upload()'s Upload instead of reading it whole.
  static bool is_upload(std::string_view method, std::string_view path);
  // Checks an upload's headers (req has no body): authentication, the per-IP rate, the declared
  // length (`content_length`) against the file limit and the user's quota. An error response
  // when refused: the transport sends it without reading the body. Blocking.
  std::variant<std::unique_ptr<Upload>, HttpResponse> begin_upload(
      const HttpRequest& req, std::optional<std::uint64_t> content_length);

  struct Ctx;
  using Handler = HttpResponse (RestApi::*)(Ctx&);

 private:
  struct Route {
    std::string method;
    // "{id}" matches a positive decimal id, "{key}" a file id (32 lowercase hex digits),
    // "{code}" an invitation code (base64url, 1..64)
    std::vector<std::string> segments;
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
  HttpResponse sessions_list(Ctx&);
  HttpResponse sessions_end(Ctx&);
  HttpResponse password_change(Ctx&);
  HttpResponse users_me(Ctx&);
  HttpResponse users_update_me(Ctx&);
  HttpResponse users_get(Ctx&);
  HttpResponse users_find(Ctx&);
  HttpResponse ws_ticket(Ctx&);
  HttpResponse ws_route(Ctx&);
  HttpResponse admin_users(Ctx&);
  HttpResponse admin_deactivate(Ctx&);
  HttpResponse admin_reactivate(Ctx&);
  HttpResponse admin_reset_password(Ctx&);
  HttpResponse admin_spaces(Ctx&);
  HttpResponse admin_remove_member(Ctx&);
  HttpResponse admin_delete_message(Ctx&);
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
  HttpResponse channels_update(Ctx&);
  HttpResponse channels_delete(Ctx&);
  HttpResponse channel_members_remove(Ctx&);
  HttpResponse channels_join(Ctx&);
  HttpResponse channels_leave(Ctx&);
  HttpResponse channels_members(Ctx&);
  HttpResponse channels_messages(Ctx&);
  HttpResponse message_get(Ctx&);
  HttpResponse dms_messages(Ctx&);
  HttpResponse conversations(Ctx&);
  HttpResponse files_get(Ctx&);
  HttpResponse avatar_of_user(Ctx&);
  HttpResponse avatar_of_space(Ctx&);
  HttpResponse avatar_of_channel(Ctx&);
  HttpResponse avatar_response(AvatarOf kind, Id owner, const HttpRequest& req);
  // begin_upload of PUT .../avatar: the caller may change the owner's avatar, the length.
  std::variant<std::unique_ptr<Upload>, HttpResponse> begin_avatar(
      const HttpRequest& req, std::optional<std::uint64_t> content_length);
  HttpResponse invites_create(Ctx&);
  HttpResponse invites_list(Ctx&);
  HttpResponse invites_revoke(Ctx&);
  HttpResponse invites_preview(Ctx&);
  HttpResponse invites_accept(Ctx&);
  HttpResponse members_add(Ctx&);
  HttpResponse members_remove(Ctx&);
  HttpResponse members_update(Ctx&);
  HttpResponse spaces_transfer(Ctx&);
  HttpResponse bans_create(Ctx&);
  HttpResponse bans_delete(Ctx&);
  HttpResponse bans_list(Ctx&);
  HttpResponse channel_members_add(Ctx&);
  HttpResponse blocks_create(Ctx&);
  HttpResponse blocks_delete(Ctx&);
  HttpResponse blocks_list(Ctx&);
  HttpResponse search(Ctx&);
  HttpResponse presence(Ctx&);

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
