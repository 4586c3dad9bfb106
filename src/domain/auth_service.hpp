// Accounts and sessions: register, log in (a login session, LoginSession: access JWT + rotating
// refresh token; brute force slowed per account, login_throttle.hpp), refresh (rotation: the
// old refresh token ends after a short retry window), list the user's sessions, log out (one
// session, by its refresh token or by its id, or all), change the password,
// deactivate/reactivate and reset a password (for AdminService), authenticate an access
// token, and the user's own profile. Ended sessions and deactivations are stored and applied
// through AccountWatch (every process of a cluster polls them: sync_accounts()). A new session
// (login, refresh) warms the user's memberships in the user cache. Thread-safe; blocking (Store,
// Argon2id): run on the pool.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/clock.hpp"
#include "common/id_generator.hpp"
#include "domain/account_watch.hpp"
#include "domain/login_throttle.hpp"
#include "domain/password.hpp"
#include "domain/password_policy.hpp"
#include "domain/ports/store.hpp"
#include "domain/ports/user_cache.hpp"
#include "domain/tokens.hpp"

namespace imd {

struct Session {
  std::string access_token;
  std::string refresh_token;
  std::int64_t expires_in_s = 0;
  User user;
  Id session_id = 0;
};

struct ProfileUpdate {
  std::optional<std::string> name;
  std::optional<std::string> avatar;
};

// Field limits, shared by the REST layer's messages and the checks here.
inline constexpr std::size_t kMaxNameBytes = 64;
inline constexpr std::size_t kMaxAvatarBytes = 512;
inline constexpr std::size_t kMaxPhoneBytes = 20;
// What a session keeps of the client's User-Agent, and of its address.
inline constexpr std::size_t kMaxUserAgentBytes = 256;
inline constexpr std::size_t kMaxIpBytes = 64;
// A user's live sessions: a login beyond this ends the least recently used.
inline constexpr std::uint32_t kMaxSessionsPerUser = 32;

class AuthService {
 public:
  // `shared_login_counters`: the login brakes' counters shared by a cluster's processes
  // (login_throttle.hpp); nullptr: this process counts alone.
  AuthService(Store& store, IdGenerator& ids, Clock& clock, const PasswordHasher& hasher,
              TokenIssuer& tokens, UserCache& users, std::int64_t refresh_ttl_s,
              std::int64_t refresh_reuse_s, LoginCounters* shared_login_counters = nullptr);

  Result<User> register_user(const std::string& name, const std::string& phone,
                             const std::string& password);
  // `source`: the client's address, for the per-account brakes (login_throttle.hpp); a
  // throttled attempt is too_many_requests with retry_after_s, before any hashing. It and
  // `user_agent` (sanitize_user_agent) are stored with the new session.
  Result<Session> login(const std::string& phone, const std::string& password,
                        std::string_view source, std::string_view user_agent = {});
  // Rotates the refresh token within its session (whose last use and address it updates); a
  // token from before sessions opens one. unauthenticated once the session ended.
  Result<Session> refresh(const std::string& refresh_token, std::string_view source = {},
                          std::string_view user_agent = {});
  // Ends the session of the refresh token.
  Result<void> logout(const std::string& refresh_token);
  // The user's live sessions, most recently used first (at most kMaxSessionsPerUser).
  Result<std::vector<LoginSession>> sessions(Id user_id);
  // Ends one session of the user: its refresh tokens are revoked, its access tokens and
  // tickets refused (here at once, on a cluster's other processes within
  // auth.account_poll_ms) and its WebSockets closed (on_session_ended). not_found when it is
  // not a live session of the user.
  Result<void> end_session(Id user_id, Id session_id);
  // Ends every session of the user: every refresh token is revoked, the access tokens issued
  // until now are refused (by this process at once, by a cluster's others when they expire),
  // and the user's WebSockets are closed (on_sessions_ended). Returns how many refresh tokens
  // were live.
  Result<std::uint64_t> logout_everywhere(Id user_id);
  // Checks the old password (throttled like a login), sets the new one (the policy applies),
  // ends every session, and opens a new one for the caller.
  Result<Session> change_password(Id user_id, const std::string& old_password,
                                  const std::string& new_password, std::string_view source,
                                  std::string_view user_agent = {});
  Result<Id> authenticate(std::string_view access_token) const;
  // The user and the expiry (a WebSocket ends when its token does, unless renewed in-band).
  Result<AccessClaims> authenticate_claims(std::string_view access_token) const;
  // A one-time WebSocket ticket for the session of `access_token` (TokenIssuer says what it
  // is), and the claims of the session a ticket was made from (once).
  Result<std::string> ws_ticket(std::string_view access_token) const;
  Result<AccessClaims> redeem_ws_ticket(std::string_view ticket) const;
  // Called with the user whose sessions ended (password change, logout everywhere,
  // deactivation; on this process or, through sync_accounts(), on another), after the refresh
  // tokens were revoked and the access tokens refused: the composition root closes the user's
  // WebSockets. Set once, before serving.
  void on_sessions_ended(std::function<void(Id user)> fn) { sessions_ended_ = std::move(fn); }
  // Called with one ended session (end_session, the per-user cap; here or on another process):
  // the composition root closes that session's WebSockets. Set once, before serving.
  void on_session_ended(std::function<void(Id user, Id session)> fn) {
    session_ended_ = std::move(fn);
  }
  // Applies the account states other processes stored since the last call (AccountWatch).
  // The composition root calls it once before serving and then every auth.account_poll_ms.
  Result<void> sync_accounts() { return watch_.poll(); }

  // Deactivation ends every session and refuses logins until reactivated; the user's data
  // stays. Reactivation lets them log in again (their old sessions stay ended).
  Result<void> set_deactivated(Id user_id, bool deactivated);
  // Sets a new password (the policy applies) and ends every session of the user.
  Result<void> reset_password(Id user_id, const std::string& new_password);

  Result<User> me(Id user_id);
  Result<User> update_me(Id user_id, const ProfileUpdate& update);
  // Public fields only: the phone is cleared unless the caller is the user.
  Result<User> get_user(Id caller, Id user_id);
  Result<std::vector<User>> find_users(Id caller, const std::string& name);

 private:
  // A new login session (session_id 0), or the next tokens of session_id.
  Result<Session> open_session(const User& user, std::string_view source,
                               std::string_view user_agent, Id session_id = 0);
  // Refuses the session's tokens here and closes its WebSockets (the others poll the store).
  void session_ended(Id user_id, Id session_id, Millis at);
  // Stores and applies the end of the user's sessions (and a deactivation, when given).
  Result<void> end_sessions(Id user_id, std::optional<bool> deactivated = std::nullopt);
  Result<void> check_active(Id user_id);

  Store& store_;
  IdGenerator& ids_;
  Clock& clock_;
  const PasswordHasher& hasher_;
  TokenIssuer& tokens_;
  std::function<void(Id)> sessions_ended_;
  std::function<void(Id, Id)> session_ended_;
  UserCache& users_;
  std::int64_t refresh_ttl_s_;
  std::int64_t refresh_reuse_s_;
  LoginThrottle throttle_;
  AccountWatch watch_;
};

// Shared field checks; invalid_argument naming the field.
Result<void> check_name(std::string_view field, std::string_view value);
Result<void> check_avatar(std::string_view value);
// The phone in the one form it is stored in: '+' and 5..19 digits, the country code first
// ("15551234567" and "+15551234567" are one number); invalid_argument otherwise.
Result<std::string> normalize_phone(std::string_view value);
// What a session keeps of a User-Agent: printable ASCII (anything else becomes '?'), at most
// kMaxUserAgentBytes.
std::string sanitize_user_agent(std::string_view value);

}  // namespace imd
