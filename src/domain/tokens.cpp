#include "domain/tokens.hpp"

#include <jwt/jwt.hpp>

#include "common/json.hpp"

namespace imd {

TokenIssuer::TokenIssuer(Clock& clock, std::string secret, std::int64_t access_ttl_s)
    : clock_(clock), secret_(std::move(secret)), ttl_s_(access_ttl_s) {}

std::string TokenIssuer::issue(Id user_id) const {
  using namespace jwt::params;
  std::int64_t now_s = clock_.now_ms() / 1000;
  jwt::jwt_object obj{algorithm("HS256"), secret(secret_),
                      payload({{"sub", std::to_string(user_id)}, {"typ", "access"}})};
  obj.add_claim("iat", now_s).add_claim("exp", now_s + ttl_s_);
  return obj.signature();
}

Result<Id> TokenIssuer::verify(std::string_view token) const {
  using namespace jwt::params;
  auto fail = [](const char* why) { return make_error(Errc::unauthenticated, why); };
  if (token.empty() || token.size() > 4096) return fail("missing or oversized token");
  {
    std::lock_guard lock(mu_);
    auto it = verified_.find(std::string(token));
    if (it != verified_.end()) {
      if (clock_.now_ms() / 1000 >= it->second.exp_s) return fail("token expired");
      return it->second.user;
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
    if (!p.has_claim("exp") || !p.has_claim("sub") || !p.has_claim_with_value("typ", "access")) {
      return fail("invalid token claims");
    }
    auto exp = p.get_claim_value<std::int64_t>("exp");
    if (clock_.now_ms() / 1000 >= exp) return fail("token expired");
    auto sub = p.get_claim_value<std::string>("sub");
    auto id = json::parse_uint(sub);
    if (!id || *id == 0) return fail("invalid token subject");
    std::lock_guard lock(mu_);
    if (verified_.size() >= kMaxRemembered) verified_.clear();  // bounded; refills as used
    verified_.emplace(std::string(token), Verified{*id, exp});
    return *id;
  } catch (const std::exception&) {
    return fail("invalid token");
  }
}

}  // namespace imd
