// Port for the counters behind the login brakes (domain/login_throttle.hpp) when they are
// shared by every process of a cluster: failed logins per (account, source address) and per
// account, each forgotten `forget_after_ms` after its last failure, and the sources an account
// logged in from (its known devices, at most `known_per_account`, each for `known_for_ms`).
// LoginThrottle keeps the policy (free attempts, delays); this port only counts.
//
// Contract: thread-safe, blocking; bounded by expiry (every entry has a deadline). An error
// (the shared store is down) makes LoginThrottle fall back to its own process's counters,
// which it keeps beside these; nothing here ever refuses a login by itself.
#pragma once

#include <string_view>

#include "common/error.hpp"
#include "common/types.hpp"

namespace imd {

struct LoginCount {
  int failures = 0;
  Millis last_ms = 0;  // the last failure
};

struct LoginCounts {
  LoginCount pair;     // this (account, source)
  LoginCount account;  // this account, every source
  bool known = false;  // `source` logged in to this account within known_for_ms
};

struct LoginCounterLimits {
  Millis forget_after_ms = 0;
  Millis known_for_ms = 0;
  std::size_t known_per_account = 0;
};

class LoginCounters {
 public:
  virtual ~LoginCounters() = default;
  virtual Result<LoginCounts> read(std::string_view account, std::string_view source,
                                   Millis now) = 0;
  // One more failure for the pair and the account, at `now`.
  virtual Result<void> failed(std::string_view account, std::string_view source, Millis now) = 0;
  // Clears the pair's failures; `source` becomes (again) the account's newest known source.
  virtual Result<void> succeeded(std::string_view account, std::string_view source, Millis now) = 0;
};

}  // namespace imd
