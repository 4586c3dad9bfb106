#include "redis/redis_member_cache.hpp"

namespace imd {

namespace {

using Ids = std::vector<Id>;

redis::CacheAside<Ids>::Codec member_codec() {
  return {
      .encode = [](const Ids& ids, std::string& out) { redis::append_ids(out, ids); },
      .decode = [](std::string_view in) -> std::optional<Ids> {
        Ids ids;
        if (in.size() % 8 != 0 || !redis::read_ids(in, in.size() / 8, ids)) return std::nullopt;
        return ids;
      },
      .empty = [](const Ids& ids) { return ids.empty(); },
      .normalize = [](Ids& ids) { redis::sort_unique(ids); },
  };
}

}  // namespace

RedisMemberCache::RedisMemberCache(std::shared_ptr<redis::RedisClient> client, Loader load,
                                   RedisMemberCacheOptions options)
    : cache_(std::move(client), std::move(options),
             {.tag = "ch",
              .value = ":m",
              .lock = ":lock",
              .version = ":v",
              .not_found = "no such channel"},
             std::move(load), member_codec()) {}

}  // namespace imd
