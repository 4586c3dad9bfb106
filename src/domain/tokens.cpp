#include "domain/tokens.hpp"

#include <algorithm>
#include <array>
#include <optional>

#include <sodium.h>
#include <jwt/jwt.hpp>

#include "common/json.hpp"

namespace imd {

TokenIssuer::TokenIssuer(Clock& clock, std::string secret, std::int64_t access_ttl_s)
    : clock_(clock), secret_(std::move(secret)), ttl_s_(access_ttl_s) {}

std::string TokenIssuer::issue(Id user_id, Id session_id) const {
  using namespace jwt::params;
  const std::int64_t now_ms = clock_.now_ms();
  const std::int64_t now_s = now_ms / 1000;
  jwt::jwt_object obj{algorithm("HS256"), secret(secret_),
                      payload({{"sub", std::to_string(user_id)}, {"typ", "access"}})};
  if (session_id != 0) obj.add_claim("sid", std::to_string(session_id));
  // iat_ms: revoke_before_now() refuses the tokens of the millisecond before, not the second.
  obj.add_claim("iat", now_s).add_claim("exp", now_s + ttl_s_).add_claim("iat_ms", now_ms);
  return obj.signature();
}

Result<Id> TokenIssuer::verify(std::string_view token) const {
  auto c = claims(token);
  if (!c) return c.error();
  return c->user;
}

bool TokenIssuer::revoked(const Verified& v) const {
  if (v.session != 0 && ended_sessions_.contains(v.session)) return true;
  auto it = revoked_before_ms_.find(v.user);
  return it != revoked_before_ms_.end() && v.iat_ms < it->second;
}

namespace {
// The claim "sid" of a token: 0 when absent (a token from before sessions); nullopt when it is
// not a session id.
std::optional<Id> session_claim(const jwt::jwt_payload& p) {
  if (!p.has_claim("sid")) return Id{0};
  auto sid = json::parse_uint(p.get_claim_value<std::string>("sid"));
  if (!sid) return std::nullopt;
  return *sid;
}
}  // namespace

void TokenIssuer::bound(std::unordered_map<Id, std::int64_t>& revocations,
                        std::int64_t now_ms) const {
  if (revocations.size() < kMaxRemembered) return;
  // A revocation older than a token's lifetime refuses nothing that has not expired anyway.
  std::erase_if(revocations, [&](const auto& kv) { return kv.second + ttl_s_ * 1000 < now_ms; });
}

bool TokenIssuer::end_session(Id session, std::int64_t ended_ms) {
  const std::int64_t now_ms = clock_.now_ms();
  std::lock_guard lock(mu_);
  bound(ended_sessions_, now_ms);
  return ended_sessions_.emplace(session, ended_ms).second;
}

void TokenIssuer::revoke_before(Id user, std::int64_t before_ms) {
  const std::int64_t now_ms = clock_.now_ms();
  std::lock_guard lock(mu_);
  bound(revoked_before_ms_, now_ms);
  auto& at = revoked_before_ms_[user];
  at = std::max(at, before_ms);
}

void TokenIssuer::set_deactivated(Id user, bool deactivated) {
  std::lock_guard lock(mu_);
  if (deactivated) {
    deactivated_.insert(user);
  } else {
    deactivated_.erase(user);
  }
}

Result<AccessClaims> TokenIssuer::claims(std::string_view token) const {
  using namespace jwt::params;
  auto fail = [](const char* why) { return make_error(Errc::unauthenticated, why); };
  if (token.empty() || token.size() > 4096) return fail("missing or oversized token");
  {
    std::lock_guard lock(mu_);
    auto it = verified_.find(std::string(token));
    if (it != verified_.end()) {
      if (clock_.now_ms() / 1000 >= it->second.exp_s) return fail("token expired");
      if (deactivated_.contains(it->second.user)) return fail("account deactivated");
      if (revoked(it->second)) return fail("session ended");
      return AccessClaims{it->second.user, it->second.exp_s, it->second.iat_ms, it->second.session};
    }
  }
  try {
    std::error_code ec;
    // cpp-jwt checks the algorithm against the list and the signature; `exp` is checked
    // below against the injected clock as well.
    auto obj = jwt::decode(jwt::string_view(token.data(), token.size()), algorithms({"HS256"}), ec,
                           secret(secret_), jwt::params::verify(true), leeway(0));
    if (ec) return fail("invalid token");
    const auto& p = obj.payload();
    if (!p.has_claim("exp") || !p.has_claim("sub") || !p.has_claim("iat") ||
        !p.has_claim_with_value("typ", "access")) {
      return fail("invalid token claims");
    }
    auto exp = p.get_claim_value<std::int64_t>("exp");
    if (clock_.now_ms() / 1000 >= exp) return fail("token expired");
    auto sub = p.get_claim_value<std::string>("sub");
    auto id = json::parse_uint(sub);
    if (!id || *id == 0) return fail("invalid token subject");
    const std::int64_t iat_ms = p.has_claim("iat_ms")
                                    ? p.get_claim_value<std::int64_t>("iat_ms")
                                    : p.get_claim_value<std::int64_t>("iat") * 1000;
    auto sid = session_claim(p);
    if (!sid) return fail("invalid token session");
    const Verified v{*id, exp, iat_ms, *sid};
    std::lock_guard lock(mu_);
    if (deactivated_.contains(v.user)) return fail("account deactivated");
    if (revoked(v)) return fail("session ended");
    if (verified_.size() >= kMaxRemembered) verified_.clear();  // bounded; refills as used
    verified_.emplace(std::string(token), v);
    return AccessClaims{v.user, v.exp_s, v.iat_ms, v.session};
  } catch (const std::exception&) {
    return fail("invalid token");
  }
}

std::string TokenIssuer::issue_ws_ticket(const AccessClaims& access) const {
  using namespace jwt::params;
  const std::int64_t now_s = clock_.now_ms() / 1000;
  std::array<unsigned char, 16> jti{};
  randombytes_buf(jti.data(), jti.size());
  static const char* hex = "0123456789abcdef";
  std::string id;
  for (unsigned char b : jti) {
    id += hex[b >> 4];
    id += hex[b & 15];
  }
  jwt::jwt_object obj{algorithm("HS256"), secret(secret_),
                      payload({{"sub", std::to_string(access.user)}, {"typ", "ws"}, {"jti", id}})};
  if (access.session != 0) obj.add_claim("sid", std::to_string(access.session));
  obj.add_claim("exp", std::min(now_s + kWsTicketTtlS, access.exp_s))
      .add_claim("tok_exp", access.exp_s)
      .add_claim("iat_ms", access.iat_ms);
  return obj.signature();
}

Result<AccessClaims> TokenIssuer::redeem_ws_ticket(std::string_view ticket) const {
  using namespace jwt::params;
  auto fail = [](const char* why) { return make_error(Errc::unauthenticated, why); };
  if (ticket.empty() || ticket.size() > 4096) return fail("missing or oversized ticket");
  try {
    std::error_code ec;
    auto obj = jwt::decode(jwt::string_view(ticket.data(), ticket.size()), algorithms({"HS256"}),
                           ec, secret(secret_), jwt::params::verify(true), leeway(0));
    if (ec) return fail("invalid ticket");
    const auto& p = obj.payload();
    if (!p.has_claim("exp") || !p.has_claim("sub") || !p.has_claim("jti") ||
        !p.has_claim("tok_exp") || !p.has_claim("iat_ms") || !p.has_claim_with_value("typ", "ws")) {
      return fail("invalid ticket claims");
    }
    const std::int64_t now_s = clock_.now_ms() / 1000;
    const auto exp = p.get_claim_value<std::int64_t>("exp");
    if (now_s >= exp) return fail("ticket expired");
    auto id = json::parse_uint(p.get_claim_value<std::string>("sub"));
    if (!id || *id == 0) return fail("invalid ticket subject");
    auto sid = session_claim(p);
    if (!sid) return fail("invalid ticket session");
    const Verified v{*id, p.get_claim_value<std::int64_t>("tok_exp"),
                     p.get_claim_value<std::int64_t>("iat_ms"), *sid};
    std::lock_guard lock(mu_);
    if (deactivated_.contains(v.user)) return fail("account deactivated");
    if (revoked(v)) return fail("session ended");
    if (used_tickets_.size() >= kMaxRemembered) {
      std::erase_if(used_tickets_, [&](const auto& kv) { return kv.second <= now_s; });
      if (used_tickets_.size() >= kMaxRemembered) return fail("too many tickets: try again");
    }
    if (!used_tickets_.emplace(p.get_claim_value<std::string>("jti"), exp).second) {
      return fail("ticket already used");
    }
    return AccessClaims{v.user, v.exp_s, v.iat_ms, v.session};
  } catch (const std::exception&) {
    return fail("invalid ticket");
  }
}

}  // namespace imd
