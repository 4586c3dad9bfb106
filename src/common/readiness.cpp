#include "common/readiness.hpp"

#include <chrono>

namespace imd {

Readiness::Readiness(Clock& clock, Millis deadline_ms, Millis cache_ms)
    : clock_(clock), deadline_ms_(deadline_ms), cache_ms_(cache_ms) {}

void Readiness::add(std::string part, Check check) {
  checks_.push_back({std::move(part), std::move(check)});
}

void Readiness::set_draining() {
  draining_.store(true, std::memory_order_relaxed);
}

Readiness::Report Readiness::check() {
  if (draining()) return Report{false, {{"draining", "the process is shutting down"}}};
  std::lock_guard lock(mu_);
  const Millis now = clock_.now_ms();
  if (cached_ && now - cached_at_ < cache_ms_) return last_;
  Report r;
  for (const auto& c : checks_) {
    const Millis start = clock_.now_ms();
    auto result = c.check();
    const Millis took = clock_.now_ms() - start;
    if (!result) {
      r.failing.push_back({c.part, result.error().message});
    } else if (took > deadline_ms_) {
      r.failing.push_back({c.part, "answered in " + std::to_string(took) + " ms (deadline " +
                                       std::to_string(deadline_ms_) + " ms)"});
    }
  }
  r.ready = r.failing.empty();
  last_ = r;
  cached_ = true;
  cached_at_ = clock_.now_ms();
  return r;
}

std::vector<std::string> Readiness::parts() const {
  std::vector<std::string> out;
  out.reserve(checks_.size());
  for (const auto& c : checks_) out.push_back(c.part);
  return out;
}

Millis SteadyClock::now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace imd
