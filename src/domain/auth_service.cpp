#include "domain/auth_service.hpp"

#include <algorithm>
#include <vector>

#include "common/log.hpp"

namespace imd {
namespace {
bool is_blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t'; });
}
}  // namespace

Result<void> check_name(std::string_view field, std::string_view value) {
  if (value.empty() || is_blank(value) || value.size() > kMaxNameBytes) {
    return make_error(Errc::invalid_argument, std::string(field) + " must be 1.." +
                                                  std::to_string(kMaxNameBytes) +
                                                  " bytes and not blank");
  }
  for (std::size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    const auto next = i + 1 < value.size() ? static_cast<unsigned char>(value[i + 1]) : 0;
    const auto third = i + 2 < value.size() ? static_cast<unsigned char>(value[i + 2]) : 0;
    // C0 and DEL; C1 (U+0080..U+009F: C2 80..C2 9F); the bidi embeddings and overrides
    // U+202A..U+202E (E2 80 AA..AE) and isolates U+2066..U+2069 (E2 81 A6..A9), which let a
    // name display as something else ("gpj.exe" shown reversed) in every client.
    const bool control = c < 0x20 || c == 0x7F || (c == 0xC2 && next >= 0x80 && next <= 0x9F);
    const bool bidi = c == 0xE2 && ((next == 0x80 && third >= 0xAA && third <= 0xAE) ||
                                    (next == 0x81 && third >= 0xA6 && third <= 0xA9));
    if (control) {
      return make_error(Errc::invalid_argument,
                        std::string(field) + " must not contain control characters");
    }
    if (bidi) {
      return make_error(Errc::invalid_argument,
                        std::string(field) + " must not contain bidirectional overrides");
    }
  }
  return {};
}

Result<void> check_avatar(std::string_view value) {
  if (value.size() > kMaxAvatarBytes) {
    return make_error(Errc::invalid_argument,
                      "avatar must be at most " + std::to_string(kMaxAvatarBytes) + " bytes");
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7F) {
      return make_error(Errc::invalid_argument, "avatar must not contain control characters");
    }
  }
  return {};
}

std::string sanitize_user_agent(std::string_view value) {
  std::string out(value.substr(0, kMaxUserAgentBytes));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7E) c = '?';  // char may be signed: bytes >= 0x80 are negative
  }
  return out;
}

Result<std::string> normalize_phone(std::string_view value) {
  std::string_view digits = value;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  if (digits.size() < 5 || digits.size() > kMaxPhoneBytes - 1 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return make_error(Errc::invalid_argument, "phone must be 5..19 digits, optionally after '+'");
  }
  // A country code never starts with 0: a leading 0 is a national trunk prefix, which names
  // different numbers in different countries.
  if (digits.front() == '0') {
    return make_error(Errc::invalid_argument,
                      "phone must be in international form: country code first, no leading 0");
  }
  return "+" + std::string(digits);
}

AuthService::AuthService(Store& store, IdGenerator& ids, Clock& clock, const PasswordHasher& hasher,
                         TokenIssuer& tokens, UserCache& users, std::int64_t refresh_ttl_s,
                         std::int64_t refresh_reuse_s, LoginCounters* shared_login_counters)
    : store_(store),
      ids_(ids),
      clock_(clock),
      hasher_(hasher),
      tokens_(tokens),
      users_(users),
      refresh_ttl_s_(refresh_ttl_s),
      refresh_reuse_s_(refresh_reuse_s),
      throttle_(LoginThrottlePolicy{}, shared_login_counters),
      watch_(
          store, tokens, clock,
          [this](Id user) {
            if (sessions_ended_) sessions_ended_(user);
          },
          [this](Id user, Id session) {
            if (session_ended_) session_ended_(user, session);
          }) {}

Result<User> AuthService::register_user(const std::string& name, const std::string& phone,
                                        const std::string& password) {
  IMD_TRY(check_name("name", name));
  auto e164 = normalize_phone(phone);
  if (!e164) return e164.error();
  IMD_TRY(check_password(password, name, *e164));
  // An account from before normalization may hold the number in its usual old form (E.164
  // without the '+'): the number is taken, as if it were stored normalized.
  if (auto old = store_.user_by_phone(std::string_view(*e164).substr(1)); old) {
    return make_error(Errc::conflict, "phone already registered");
  } else if (old.error().code != Errc::not_found) {
    return old.error();
  }
  auto id = ids_.next();
  if (!id) return id.error();
  auto hash = hasher_.hash(password);
  if (!hash) return hash.error();
  User u{*id, name, "", *e164, clock_.now_ms()};
  IMD_TRY(store_.create_user(u, *hash));
  return u;
}

namespace {
// The stored phones an input may name, most likely first, without repeats: its E.164 form,
// then the forms of accounts from before normalization, which were stored as typed: the input
// itself and E.164 without the '+' (how those were usually typed).
std::vector<std::string> stored_forms(const std::string& typed, const Result<std::string>& e164) {
  std::vector<std::string> out;
  auto add = [&](std::string form) {
    if (std::find(out.begin(), out.end(), form) == out.end()) out.push_back(std::move(form));
  };
  if (e164) add(*e164);
  add(typed);
  if (e164) add(e164->substr(1));
  return out;
}

Error throttled(Millis wait_ms) {
  auto e = make_error(Errc::too_many_requests, "too many failed logins: wait before trying again");
  e.retry_after_s = (wait_ms + 999) / 1000;
  return e;
}
}  // namespace

Result<Session> AuthService::login(const std::string& phone, const std::string& password,
                                   std::string_view source, std::string_view user_agent) {
  auto fail = [] { return make_error(Errc::unauthenticated, "wrong phone or password"); };
  if (password.size() > kMaxPasswordBytes) return fail();
  // The account's phone as registered: normalized, or, for an account from before
  // normalization, as it was typed then (stored_forms). Two old accounts may hold forms of one
  // number (registered before normalization made them one): the password picks between them,
  // the normalized one first; registration no longer adds such pairs.
  auto e164 = normalize_phone(phone);
  const std::string account = e164 ? *e164 : phone;
  if (Millis wait = throttle_.wait_ms(account, source, clock_.now_ms()); wait > 0) {
    return throttled(wait);
  }
  bool found = false;
  for (const std::string& form : stored_forms(phone, e164)) {
    auto creds = store_.user_by_phone(form);
    if (!creds) {
      if (creds.error().code != Errc::not_found) return creds.error();
      continue;
    }
    found = true;
    if (!hasher_.verify(creds->password_hash, password)) continue;
    throttle_.succeeded(account, source, clock_.now_ms());
    IMD_TRY(check_active(creds->user.id));
    return open_session(creds->user, source, user_agent);
  }
  if (!found) hasher_.verify_dummy(password);
  throttle_.failed(account, source, clock_.now_ms());
  return fail();
}

Result<void> AuthService::check_active(Id user_id) {
  auto state = store_.account_state(user_id);
  if (!state) return state.error().code == Errc::not_found ? Result<void>{} : state.error();
  if (state->deactivated) return make_error(Errc::forbidden, "account deactivated");
  return {};
}

Result<std::uint64_t> AuthService::logout_everywhere(Id user_id) {
  auto revoked = store_.revoke_refresh_tokens_of(user_id);
  if (!revoked) return revoked;
  IMD_TRY(end_sessions(user_id));
  return revoked;
}

Result<void> AuthService::end_sessions(Id user_id, std::optional<bool> deactivated) {
  // Refused here at once, even if the store fails; stored for the other processes (and this
  // one after a restart), which apply it within auth.account_poll_ms.
  tokens_.revoke_before_now(user_id);
  if (deactivated && *deactivated) tokens_.set_deactivated(user_id, true);
  const Millis now = clock_.now_ms();
  auto state = store_.set_account_state(user_id, now, deactivated, now);
  if (!state && state.error().code == Errc::conflict) {  // another process wrote it first
    state = store_.set_account_state(user_id, now, deactivated, now);
  }
  if (!state) {
    if (sessions_ended_) sessions_ended_(user_id);
    return state.error();
  }
  watch_.apply(*state);
  // The session list follows (the state above is what refuses their tokens).
  IMD_TRY(store_.end_sessions_of(user_id, now));
  return {};
}

void AuthService::session_ended(Id user_id, Id session_id, Millis at) {
  watch_.apply(EndedSession{.id = session_id, .user_id = user_id, .ended_at = at});
}

Result<std::vector<LoginSession>> AuthService::sessions(Id user_id) {
  return store_.sessions_of(user_id, clock_.now_ms(), kMaxSessionsPerUser);
}

Result<void> AuthService::end_session(Id user_id, Id session_id) {
  const Millis now = clock_.now_ms();
  IMD_TRY(store_.end_session(user_id, session_id, now));
  session_ended(user_id, session_id, now);
  LOG_INFO("user " << user_id << " ended session " << session_id);
  return {};
}

Result<void> AuthService::set_deactivated(Id user_id, bool deactivated) {
  IMD_TRY(store_.user_by_id(user_id));
  if (deactivated) {
    IMD_TRY(store_.revoke_refresh_tokens_of(user_id));
    IMD_TRY(end_sessions(user_id, true));
    LOG_INFO("user " << user_id << " deactivated");
    return {};
  }
  const Millis now = clock_.now_ms();
  auto state = store_.set_account_state(user_id, 0, false, now);
  if (!state) return state.error();
  watch_.apply(*state);
  LOG_INFO("user " << user_id << " reactivated");
  return {};
}

Result<void> AuthService::reset_password(Id user_id, const std::string& new_password) {
  auto creds = store_.credentials_by_id(user_id);
  if (!creds) return creds.error();
  IMD_TRY(check_password(new_password, creds->user.name, creds->user.phone));
  auto hash = hasher_.hash(new_password);
  if (!hash) return hash.error();
  IMD_TRY(store_.set_password_hash(user_id, *hash));
  IMD_TRY(store_.revoke_refresh_tokens_of(user_id));
  IMD_TRY(end_sessions(user_id));
  LOG_INFO("user " << user_id << "'s password was reset; every session ended");
  return {};
}

Result<Session> AuthService::change_password(Id user_id, const std::string& old_password,
                                             const std::string& new_password,
                                             std::string_view source, std::string_view user_agent) {
  // Counted with the logins of the account, by phone: a stolen access token does not give
  // an attacker unthrottled guesses at the password.
  auto creds = store_.credentials_by_id(user_id);
  if (!creds) return creds.error();
  const std::string& account = creds->user.phone;
  if (Millis wait = throttle_.wait_ms(account, source, clock_.now_ms()); wait > 0) {
    return throttled(wait);
  }
  if (old_password.size() > kMaxPasswordBytes ||
      !hasher_.verify(creds->password_hash, old_password)) {
    throttle_.failed(account, source, clock_.now_ms());
    return make_error(Errc::forbidden, "old_password is wrong");
  }
  IMD_TRY(check_password(new_password, creds->user.name, creds->user.phone));
  if (new_password == old_password) {
    return make_error(Errc::invalid_argument, "new_password must differ from old_password");
  }
  auto hash = hasher_.hash(new_password);
  if (!hash) return hash.error();
  IMD_TRY(store_.set_password_hash(user_id, *hash));
  auto revoked = store_.revoke_refresh_tokens_of(user_id);
  if (!revoked) return revoked.error();
  IMD_TRY(end_sessions(user_id));
  LOG_INFO("user " << user_id << " changed their password; " << *revoked
                   << " other sessions ended");
  return open_session(creds->user, source, user_agent);
}

Result<Session> AuthService::open_session(const User& user, std::string_view source,
                                          std::string_view user_agent, Id session_id) {
  const Millis now = clock_.now_ms();
  const Millis expires_at = now + refresh_ttl_s_ * 1000;
  if (session_id == 0) {
    auto id = ids_.next();
    if (!id) return id.error();
    const LoginSession login{.id = *id,
                             .user_id = user.id,
                             .created_at = now,
                             .last_used_at = now,
                             .expires_at = expires_at,
                             .user_agent = sanitize_user_agent(user_agent),
                             .ip = std::string(source.substr(0, kMaxIpBytes))};
    auto beyond = store_.create_session(login, kMaxSessionsPerUser);
    if (!beyond) return beyond.error();
    for (Id old : *beyond) session_ended(user.id, old, now);
    session_id = *id;
  }
  Session s;
  s.user = user;
  s.session_id = session_id;
  s.access_token = tokens_.issue(user.id, session_id);
  s.expires_in_s = tokens_.access_ttl_s();
  s.refresh_token = random_token(32);
  RefreshToken rt{sha256_hex(s.refresh_token), user.id, expires_at, session_id};
  IMD_TRY(store_.save_refresh_token(rt));
  // Warm-up: the user's memberships are read by their next calls. Best effort: a failure
  // leaves the first of those calls to load them.
  if (auto w = users_.warm(user.id); !w) {
    LOG_DEBUG("warming the caches of user " << user.id << " failed: " << w.error().message);
  }
  return s;
}

Result<Session> AuthService::refresh(const std::string& refresh_token, std::string_view source,
                                     std::string_view user_agent) {
  if (refresh_token.empty() || refresh_token.size() > 256) {
    return make_error(Errc::unauthenticated, "invalid refresh token");
  }
  // A used token works for refresh_reuse_s more: when the answer is lost (the server died after
  // the commit, the network dropped), the client's retry gets a session instead of a logout.
  // Store errors are passed on as they are (503): the client retries within that window.
  const Millis now = clock_.now_ms();
  auto taken =
      store_.take_refresh_token(sha256_hex(refresh_token), now, now + refresh_reuse_s_ * 1000);
  if (!taken) {
    if (taken.error().code == Errc::not_found) {
      return make_error(Errc::unauthenticated, "refresh token is unknown, used or expired");
    }
    return taken.error();
  }
  auto user = store_.user_by_id(taken->user_id);
  if (!user) {
    if (user.error().code == Errc::not_found) {
      return make_error(Errc::unauthenticated, "user no longer exists");
    }
    return user.error();
  }
  if (auto active = check_active(user->id); !active) {
    if (active.error().code == Errc::forbidden) {
      return make_error(Errc::unauthenticated, "account deactivated");
    }
    return active.error();
  }
  if (taken->session_id != 0) {
    auto touched = store_.touch_session(taken->session_id, now, now + refresh_ttl_s_ * 1000,
                                        source.substr(0, kMaxIpBytes));
    if (!touched) {
      if (touched.error().code == Errc::not_found) {
        return make_error(Errc::unauthenticated, "session ended");
      }
      return touched.error();
    }
  }
  // A token from before sessions opens one.
  return open_session(*user, source, user_agent, taken->session_id);
}

Result<void> AuthService::logout(const std::string& refresh_token) {
  if (refresh_token.empty() || refresh_token.size() > 256) {
    return make_error(Errc::invalid_argument, "refresh_token is required");
  }
  // Logging out twice, or with an unknown token, ends in the same state: no error, and no
  // answer that tells whether a token exists.
  auto r = store_.revoke_refresh_token(sha256_hex(refresh_token));
  if (!r) return r.error().code == Errc::not_found ? Result<void>{} : r.error();
  if (r->session_id == 0) return {};
  auto ended = end_session(r->user_id, r->session_id);
  if (!ended && ended.error().code == Errc::not_found) return {};  // ended already
  return ended;
}

Result<Id> AuthService::authenticate(std::string_view access_token) const {
  return tokens_.verify(access_token);
}

Result<AccessClaims> AuthService::authenticate_claims(std::string_view access_token) const {
  return tokens_.claims(access_token);
}

Result<std::string> AuthService::ws_ticket(std::string_view access_token) const {
  auto claims = tokens_.claims(access_token);
  if (!claims) return claims.error();
  return tokens_.issue_ws_ticket(*claims);
}

Result<AccessClaims> AuthService::redeem_ws_ticket(std::string_view ticket) const {
  return tokens_.redeem_ws_ticket(ticket);
}

Result<User> AuthService::me(Id user_id) {
  return store_.user_by_id(user_id);
}

Result<User> AuthService::update_me(Id user_id, const ProfileUpdate& update) {
  if (update.name) IMD_TRY(check_name("name", *update.name));
  if (update.avatar) IMD_TRY(check_avatar(*update.avatar));
  if (!update.name && !update.avatar) return store_.user_by_id(user_id);
  return store_.update_user(user_id, update.name, update.avatar);
}

Result<User> AuthService::get_user(Id caller, Id user_id) {
  auto u = store_.user_by_id(user_id);
  if (u && caller != user_id) u->phone.clear();
  return u;
}

Result<std::vector<User>> AuthService::find_users(Id caller, const std::string& name) {
  IMD_TRY(check_name("name", name));
  auto users = store_.users_by_name(name, 20);
  if (users) {
    for (auto& u : *users)
      if (u.id != caller) u.phone.clear();
  }
  return users;
}

}  // namespace imd
