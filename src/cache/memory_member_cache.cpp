#include "cache/memory_member_cache.hpp"

#include <algorithm>
#include <chrono>

namespace imd {

MemoryMemberCache::MemoryMemberCache(Loader load, std::size_t capacity)
    : load_(std::move(load)), capacity_(capacity) {}

Result<MemberList> MemoryMemberCache::members(Id channel_id) {
  std::unique_lock lock(mu_);
  for (;;) {
    auto it = entries_.find(channel_id);
    if (it != entries_.end() && it->second.list) {
      ++hits_;
      return it->second.list;
    }
    if (it != entries_.end() && it->second.loading) {
      // Another thread loads this key: wait for it rather than query the store again.
      if (!loaded_.wait_for(lock, std::chrono::seconds(5), [&] {
            auto e = entries_.find(channel_id);
            return e == entries_.end() || !e->second.loading;
          })) {
        return make_error(Errc::unavailable, "member list load timed out");
      }
      continue;
    }
    break;
  }
  ++misses_;
  if (entries_.size() >= capacity_) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (!it->second.loading) {
        entries_.erase(it);
        break;
      }
    }
  }
  Entry& e = entries_[channel_id];
  e.loading = true;
  std::uint64_t generation = e.generation;
  lock.unlock();

  auto loaded = load_(channel_id);

  lock.lock();
  Entry& after = entries_[channel_id];
  after.loading = false;
  loaded_.notify_all();
  if (!loaded) return loaded.error();
  std::vector<Id> ids = std::move(*loaded);
  std::sort(ids.begin(), ids.end());
  auto list = std::make_shared<const std::vector<Id>>(std::move(ids));
  // Cache only if no membership change happened while loading; return it either way (it
  // was current when read).
  if (after.generation == generation) after.list = list;
  return MemberList(list);
}

void MemoryMemberCache::invalidate(Id channel_id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(channel_id);
  if (it == entries_.end()) return;
  it->second.list.reset();
  ++it->second.generation;
  if (!it->second.loading) entries_.erase(it);
}

std::uint64_t MemoryMemberCache::hits() const {
  std::lock_guard lock(mu_);
  return hits_;
}

std::uint64_t MemoryMemberCache::misses() const {
  std::lock_guard lock(mu_);
  return misses_;
}

}  // namespace imd
