// Access tokens: HS256 JWTs (cpp-jwt) carrying the user id in `sub`, with `iat`/`exp` from
// the injected clock. Only HS256 is accepted on verification (never `alg: none`).
// Thread-safe (immutable after construction).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "domain/model.hpp"
#include "domain/ports/clock.hpp"

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
};

}  // namespace imd
