#include "cache/memory_user_cache.hpp"

#include <algorithm>

namespace imd {

MemoryUserCache::MemoryUserCache(Loader load, std::size_t capacity)
    : cache_(
          [load = std::move(load)](Id user) {
            auto m = load(user);
            if (m) {
              std::sort(m->spaces.begin(), m->spaces.end());
              std::sort(m->channels.begin(), m->channels.end());
            }
            return m;
          },
          capacity) {}

}  // namespace imd
