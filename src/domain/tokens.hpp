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

#include "common/clock.hpp"
#include "common/error.hpp"
#include "domain/model.hpp"

namespace imd {

class TokenIssuer {
 public:
  TokenIssuer(Clock& clock, std::string secret, std::int64_t access_ttl_s);
  std::string issue(Id user_id) const;
  // unauthenticated for anything but a well-formed, correctly signed, unexpired token.
  Result<Id> verify(std::string_view token) const;
  std::int64_t access_ttl_s() const { return ttl_s_; }

 private:
  Clock& clock_;
  std::string secret_;
  std::int64_t ttl_s_;

  struct Verified {
    Id user;
    std::int64_t exp_s;
  };
  static constexpr std::size_t kMaxRemembered = 100000;
  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, Verified> verified_;
};

}  // namespace imd
