// Access tokens: HS256 JWTs (cpp-jwt) carrying the user id in `sub` and the login session in
// `sid` (absent from tokens issued before sessions: they are only refused per user), with
// `iat`/`exp` from the injected clock. Only HS256 is accepted on verification (never `alg: none`).
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
  std::int64_t exp_s = 0;   // Unix seconds
  std::int64_t iat_ms = 0;  // when the session's token was issued (revocations compare it)
  Id session = 0;           // the login session (0: a token from before sessions)
};

class TokenIssuer {
 public:
  TokenIssuer(Clock& clock, std::string secret, std::int64_t access_ttl_s);
  // session_id 0: no `sid` claim, a token like those from before sessions (tests use it).
  std::string issue(Id user_id, Id session_id = 0) const;
  // unauthenticated for anything but a well-formed, correctly signed, unexpired token that
  // was issued after the last revoke_before() of its user, of a session not ended.
  Result<Id> verify(std::string_view token) const;
  Result<AccessClaims> claims(std::string_view token) const;
  std::int64_t access_ttl_s() const { return ttl_s_; }

  // A WebSocket ticket: what a browser puts in the /ws URL instead of its access token (URLs
  // end up in logs). Signed like an access token but typ "ws", valid kWsTicketTtlS and once
  // (per process: a replay on another process of a cluster within those seconds is not
  // caught), carrying the access token's user, session, expiry and issue time, so that the
  // connection ends when that token would and revocations of it cover the ticket too.
  static constexpr std::int64_t kWsTicketTtlS = 30;
  std::string issue_ws_ticket(const AccessClaims& access) const;
  // The claims of the access token the ticket was made from; unauthenticated for a bad,
  // expired, used or revoked ticket (and for an access token).
  Result<AccessClaims> redeem_ws_ticket(std::string_view ticket) const;
  // Refuses the user's tokens issued before this millisecond (their sessions ended: password
  // change, logout everywhere, deactivation). In memory; AccountWatch applies the store's
  // account states so that every process of a cluster does the same. Bounded: a revocation
  // is forgotten once every token it refuses has expired. Never lowers an earlier one.
  void revoke_before(Id user, std::int64_t before_ms);
  void revoke_before_now(Id user) { revoke_before(user, clock_.now_ms()); }
  // Refuses the tokens of the session, which ended at `ended_ms` (as revoke_before, applied
  // everywhere by AccountWatch). Forgotten once every token it refuses has expired. False
  // when it was known already.
  bool end_session(Id session, std::int64_t ended_ms);
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
    Id session;
  };
  bool revoked(const Verified& v) const;  // mu_ held
  // Keeps a revocation map (id -> ms) within kMaxRemembered; mu_ held.
  void bound(std::unordered_map<Id, std::int64_t>& revocations, std::int64_t now_ms) const;
  static constexpr std::size_t kMaxRemembered = 100000;
  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, Verified> verified_;
  std::unordered_map<Id, std::int64_t> revoked_before_ms_;  // user -> first valid iat_ms
  std::unordered_map<Id, std::int64_t> ended_sessions_;     // session -> ended at (ms)
  std::unordered_set<Id> deactivated_;
  mutable std::unordered_map<std::string, std::int64_t> used_tickets_;  // jti -> exp_s
};

}  // namespace imd
