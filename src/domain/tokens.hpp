// Access tokens: HS256 JWTs (cpp-jwt) carrying the user id in `sub`, with `iat`/`exp` from
// the injected clock. Only HS256 is accepted on verification (never `alg: none`).
// Tokens that verified are remembered (token -> user, expiry; bounded) so that a client's
// every request does not pay for base64, JSON and HMAC again; expiry is still checked on
// every call. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "domain/model.hpp"

namespace imd {

// What a valid access token says.
struct AccessClaims {
  Id user = 0;
  std::int64_t exp_s = 0;  // Unix seconds
};

class TokenIssuer {
 public:
  TokenIssuer(Clock& clock, std::string secret, std::int64_t access_ttl_s);
  std::string issue(Id user_id) const;
  // unauthenticated for anything but a well-formed, correctly signed, unexpired token that
  // was issued after the last revoke_before() of its user.
  Result<Id> verify(std::string_view token) const;
  Result<AccessClaims> claims(std::string_view token) const;
  std::int64_t access_ttl_s() const { return ttl_s_; }
  // Refuses the user's tokens issued before this millisecond (their sessions ended: password
  // change, logout everywhere, deactivation). In memory; AccountWatch applies the store's
  // account states so that every process of a cluster does the same. Bounded: a revocation
  // is forgotten once every token it refuses has expired. Never lowers an earlier one.
  void revoke_before(Id user, std::int64_t before_ms);
  void revoke_before_now(Id user) { revoke_before(user, clock_.now_ms()); }
  // A deactivated user's tokens are all refused ("account deactivated") until reactivated.
  void set_deactivated(Id user, bool deactivated);

 private:
  Clock& clock_;
  std::string secret_;
  std::int64_t ttl_s_;

  struct Verified {
    Id user;
    std::int64_t exp_s;
    std::int64_t iat_ms;
  };
  bool revoked(const Verified& v) const;  // mu_ held
  static constexpr std::size_t kMaxRemembered = 100000;
  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, Verified> verified_;
  std::unordered_map<Id, std::int64_t> revoked_before_ms_;  // user -> first valid iat_ms
  std::unordered_set<Id> deactivated_;
};

}  // namespace imd
