#include "cache/memory_cursor_cache.hpp"

#include <algorithm>

namespace imd {

std::uint64_t MemoryCursorCache::get(Id user_id, const ConvKey& conv) {
  std::lock_guard lock(mu_);
  auto it = cursors_.find(MemberKey{user_id, conv});
  return it == cursors_.end() ? 0 : it->second;
}

std::vector<std::uint64_t> MemoryCursorCache::get_many(Id user_id, std::span<const ConvKey> convs) {
  std::vector<std::uint64_t> out;
  out.reserve(convs.size());
  std::lock_guard lock(mu_);
  for (const ConvKey& c : convs) {
    auto it = cursors_.find(MemberKey{user_id, c});
    out.push_back(it == cursors_.end() ? 0 : it->second);
  }
  return out;
}

void MemoryCursorCache::put(std::span<const DeliveryUpdate> stored) {
  std::lock_guard lock(mu_);
  for (const DeliveryUpdate& u : stored) {
    if (cursors_.size() >= capacity_ && !cursors_.count(MemberKey{u.user, u.conv}))
      cursors_.clear();
    auto& c = cursors_[MemberKey{u.user, u.conv}];
    c = std::max(c, u.seq);
  }
}

}  // namespace imd
