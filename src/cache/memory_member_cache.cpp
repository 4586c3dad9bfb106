#include "cache/memory_member_cache.hpp"

#include <algorithm>

namespace imd {

MemoryMemberCache::MemoryMemberCache(Loader load, std::size_t capacity)
    : cache_(
          [load = std::move(load)](Id channel) {
            auto ids = load(channel);
            if (ids) std::sort(ids->begin(), ids->end());
            return ids;
          },
          capacity) {}

}  // namespace imd
