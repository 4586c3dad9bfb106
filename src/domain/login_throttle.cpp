#include "domain/login_throttle.hpp"

#include <algorithm>

#include "common/log.hpp"

namespace imd {

LoginThrottle::LoginThrottle(LoginThrottlePolicy policy, LoginCounters* shared)
    : p_(policy), shared_(shared) {}

std::string LoginThrottle::pair_key(std::string_view account, std::string_view source) {
  std::string k;
  k.reserve(account.size() + source.size() + 1);
  k.append(account).push_back('\n');
  k.append(source);
  return k;
}

Millis LoginThrottle::delay_after(const Counter& c, int free, Millis now) const {
  if (c.failures <= free || now - c.last_ms >= p_.forget_after_ms) return 0;
  const int extra = std::min(c.failures - free - 1, 30);
  const Millis delay = std::min(p_.max_delay_ms, p_.base_delay_ms << extra);
  const Millis until = c.last_ms + delay;
  return until > now ? until - now : 0;
}

bool LoginThrottle::is_known(std::string_view account, std::string_view source, Millis now) const {
  auto it = known_.find(std::string(account));
  if (it == known_.end()) return false;
  return std::any_of(it->second.sources.begin(), it->second.sources.end(), [&](const auto& s) {
    return s.first == source && now - s.second < p_.known_for_ms;
  });
}

Millis LoginThrottle::wait_for(const LoginCounts& c, Millis now) const {
  Millis wait = delay_after(c.pair, p_.free_per_source, now);
  if (!c.known) wait = std::max(wait, delay_after(c.account, p_.free_per_account, now));
  return wait;
}

Millis LoginThrottle::wait_ms(std::string_view account, std::string_view source, Millis now) {
  if (shared_) {
    auto c = shared_->read(account, source, now);
    if (c) return wait_for(*c, now);
    LOG_WARN("login brakes: the shared counters failed (" << c.error().message
                                                          << "); this process's own count");
  }
  return wait_for(local_counts(account, source, now), now);
}

void LoginThrottle::failed(std::string_view account, std::string_view source, Millis now) {
  local_failed(account, source, now);
  if (!shared_) return;
  if (auto r = shared_->failed(account, source, now); !r) {
    LOG_WARN("login brakes: a failure not shared: " << r.error().message);
  }
}

void LoginThrottle::succeeded(std::string_view account, std::string_view source, Millis now) {
  local_succeeded(account, source, now);
  if (!shared_) return;
  if (auto r = shared_->succeeded(account, source, now); !r) {
    LOG_WARN("login brakes: a success not shared: " << r.error().message);
  }
}

LoginCounts LoginThrottle::local_counts(std::string_view account, std::string_view source,
                                        Millis now) {
  std::lock_guard lock(mu_);
  LoginCounts c;
  if (auto it = by_pair_.find(pair_key(account, source)); it != by_pair_.end()) {
    c.pair = it->second;
  }
  if (auto it = by_account_.find(std::string(account)); it != by_account_.end()) {
    c.account = it->second;
  }
  c.known = is_known(account, source, now);
  return c;
}

void LoginThrottle::local_failed(std::string_view account, std::string_view source, Millis now) {
  std::lock_guard lock(mu_);
  bound(now);
  for (auto* c : {&by_pair_[pair_key(account, source)], &by_account_[std::string(account)]}) {
    if (now - c->last_ms >= p_.forget_after_ms) c->failures = 0;
    ++c->failures;
    c->last_ms = now;
  }
}

void LoginThrottle::local_succeeded(std::string_view account, std::string_view source, Millis now) {
  std::lock_guard lock(mu_);
  by_pair_.erase(pair_key(account, source));
  auto& known = known_[std::string(account)].sources;
  std::erase_if(known, [&](const auto& s) { return s.first == source; });
  known.emplace_back(std::string(source), now);
  if (known.size() > p_.known_sources_per_account) known.erase(known.begin());
  if (known_.size() > p_.max_entries) {
    known_.clear();  // a flood of distinct accounts: forget which devices were known
    known_[std::string(account)].sources.emplace_back(std::string(source), now);
  }
}

// Called with mu_ held, before a counter is added.
void LoginThrottle::bound(Millis now) {
  for (auto* map : {&by_pair_, &by_account_}) {
    if (map->size() < p_.max_entries) continue;
    std::erase_if(*map,
                  [&](const auto& kv) { return now - kv.second.last_ms >= p_.forget_after_ms; });
    if (map->size() < p_.max_entries) continue;
    // Still full: a flood of distinct names. Forget the counters that hold no delay.
    const int free = map == &by_pair_ ? p_.free_per_source : p_.free_per_account;
    std::erase_if(*map, [&](const auto& kv) { return delay_after(kv.second, free, now) == 0; });
    if (map->size() >= p_.max_entries) map->clear();
  }
}

}  // namespace imd
