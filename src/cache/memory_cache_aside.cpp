#include "cache/memory_cache_aside.hpp"

#include <chrono>

#include "common/metrics.hpp"

namespace imd {
namespace {

// imd_cache_requests_total{result}: every instance counts into the same two series.
void count_hit() {
  static auto& hits = metrics::imd().cache_requests.at("hit");
  hits.inc();
}
void count_miss() {
  static auto& misses = metrics::imd().cache_requests.at("miss");
  misses.inc();
}

}  // namespace

template <class V>
MemoryCacheAside<V>::MemoryCacheAside(Loader load, std::size_t capacity)
    : load_(std::move(load)), capacity_(capacity) {}

template <class V>
typename MemoryCacheAside<V>::Value MemoryCacheAside<V>::peek(Id id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || !it->second.value) return nullptr;
  ++hits_;
  count_hit();
  return it->second.value;
}

template <class V>
Result<typename MemoryCacheAside<V>::Value> MemoryCacheAside<V>::get(Id id) {
  std::unique_lock lock(mu_);
  for (;;) {
    auto it = entries_.find(id);
    if (it != entries_.end() && it->second.value) {
      ++hits_;
      count_hit();
      return it->second.value;
    }
    if (it != entries_.end() && it->second.loading) {
      // Another thread loads this key: wait for it rather than query the store again.
      if (!loaded_.wait_for(lock, std::chrono::seconds(5), [&] {
            auto e = entries_.find(id);
            return e == entries_.end() || !e->second.loading;
          })) {
        return make_error(Errc::unavailable, "cache load timed out");
      }
      continue;
    }
    break;
  }
  ++misses_;
  count_miss();
  if (entries_.size() >= capacity_) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (!it->second.loading) {
        entries_.erase(it);
        break;
      }
    }
  }
  Entry& e = entries_[id];
  e.loading = true;
  std::uint64_t generation = e.generation;
  lock.unlock();

  auto loaded = load_(id);

  lock.lock();
  Entry& after = entries_[id];
  after.loading = false;
  loaded_.notify_all();
  if (!loaded) return loaded.error();
  auto value = std::make_shared<const V>(std::move(*loaded));
  // Cache only if no change happened while loading; return it either way (it was current when
  // read).
  if (after.generation == generation) after.value = value;
  return Value(value);
}

template <class V>
void MemoryCacheAside<V>::invalidate(Id id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  it->second.value.reset();
  ++it->second.generation;
  if (!it->second.loading) entries_.erase(it);
}

template <class V>
std::uint64_t MemoryCacheAside<V>::hits() const {
  std::lock_guard lock(mu_);
  return hits_;
}

template <class V>
std::uint64_t MemoryCacheAside<V>::misses() const {
  std::lock_guard lock(mu_);
  return misses_;
}

template class MemoryCacheAside<std::vector<Id>>;
template class MemoryCacheAside<Memberships>;

}  // namespace imd
