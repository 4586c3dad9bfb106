// Brute-force brakes for logins, per account, that do not let an attacker lock the owner out.
//
// Two counters of failed logins, both forgotten an hour after their last failure:
// - per (account, source address): past `free_per_source` failures, that pair waits
//   base_delay * 2^(extra failures) (at most max_delay) before its next attempt;
// - per account, over every source: past `free_per_account` failures (many addresses guessing
//   one account), every source waits the same way, except the addresses this account logged
//   in from before (known devices), which only their own pair counter slows.
// A success clears its pair and makes the source known. A throttled attempt is refused before
// the password is hashed, so it costs the server nothing. Accounts that do not exist are
// counted the same way (no enumeration by throttling behaviour).
// The counters live in this process's memory (bounded: past max_entries the entries with no
// delay running are forgotten first) and, when a shared LoginCounters is given (Redis in a
// cluster: redis/redis_login_counters.hpp), there too: then every process reads the shared
// ones, so guesses spread over the processes count as one; when the shared store fails, each
// process falls back to its own counts until it answers again.
// Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/types.hpp"
#include "domain/ports/login_counters.hpp"

namespace imd {

struct LoginThrottlePolicy {
  int free_per_source = 5;
  int free_per_account = 20;
  Millis base_delay_ms = 1000;
  Millis max_delay_ms = 15 * 60 * 1000;
  Millis forget_after_ms = 60 * 60 * 1000;
  std::size_t max_entries = 100000;
  std::size_t known_sources_per_account = 8;
  Millis known_for_ms = 30LL * 24 * 3600 * 1000;

  // What shared counters must keep (domain/ports/login_counters.hpp).
  LoginCounterLimits counter_limits() const {
    return {forget_after_ms, known_for_ms, known_sources_per_account};
  }
};

class LoginThrottle {
 public:
  // `shared`, when given, outlives this.
  explicit LoginThrottle(LoginThrottlePolicy policy = {}, LoginCounters* shared = nullptr);

  // 0 when `source` may try `account` now, else how many milliseconds it must wait.
  Millis wait_ms(std::string_view account, std::string_view source, Millis now);
  void failed(std::string_view account, std::string_view source, Millis now);
  void succeeded(std::string_view account, std::string_view source, Millis now);

 private:
  using Counter = LoginCount;
  struct Known {
    std::vector<std::pair<std::string, Millis>> sources;  // newest last
  };

  Millis delay_after(const Counter& c, int free, Millis now) const;
  Millis wait_for(const LoginCounts& c, Millis now) const;
  LoginCounts local_counts(std::string_view account, std::string_view source, Millis now);
  void local_failed(std::string_view account, std::string_view source, Millis now);
  void local_succeeded(std::string_view account, std::string_view source, Millis now);
  bool is_known(std::string_view account, std::string_view source, Millis now) const;
  void bound(Millis now);
  static std::string pair_key(std::string_view account, std::string_view source);

  const LoginThrottlePolicy p_;
  LoginCounters* const shared_;
  std::mutex mu_;
  std::unordered_map<std::string, Counter> by_pair_;
  std::unordered_map<std::string, Counter> by_account_;
  std::unordered_map<std::string, Known> known_;
};

}  // namespace imd
