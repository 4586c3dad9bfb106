// Token buckets. TokenBucket is one bucket (not thread-safe: owned by one connection);
// KeyedRateLimiter keeps one bucket per key (client IP), thread-safe and bounded: when it
// holds `max_keys` buckets it forgets the ones that have refilled (they carry no state).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace imd {

class TokenBucket {
 public:
  TokenBucket(double rate_per_s, double burst) : rate_(rate_per_s), burst_(burst), tokens_(burst) {}
  // Takes one token at time `now_ms`; false when the bucket is empty.
  bool take(std::int64_t now_ms) {
    refill(now_ms);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }
  bool full(std::int64_t now_ms) {
    refill(now_ms);
    return tokens_ >= burst_;
  }

 private:
  void refill(std::int64_t now_ms) {
    if (last_ms_ != 0 && now_ms > last_ms_) {
      tokens_ = std::min(burst_, tokens_ + static_cast<double>(now_ms - last_ms_) * rate_ / 1000.0);
    }
    if (now_ms > last_ms_) last_ms_ = now_ms;
  }
  double rate_;
  double burst_;
  double tokens_;
  std::int64_t last_ms_ = 0;
};

class KeyedRateLimiter {
 public:
  KeyedRateLimiter(double rate_per_s, double burst, std::size_t max_keys = 100000)
      : rate_(rate_per_s), burst_(burst), max_keys_(max_keys) {}

  bool allow(const std::string& key, std::int64_t now_ms) {
    std::lock_guard lock(mu_);
    if (buckets_.size() >= max_keys_ && !buckets_.count(key)) {
      for (auto it = buckets_.begin(); it != buckets_.end();) {
        it = it->second.full(now_ms) ? buckets_.erase(it) : std::next(it);
      }
      if (buckets_.size() >= max_keys_) return false;  // under a flood of distinct keys
    }
    auto it = buckets_.try_emplace(key, rate_, burst_).first;
    return it->second.take(now_ms);
  }

 private:
  double rate_;
  double burst_;
  std::size_t max_keys_;
  std::mutex mu_;
  std::unordered_map<std::string, TokenBucket> buckets_;
};

}  // namespace imd
