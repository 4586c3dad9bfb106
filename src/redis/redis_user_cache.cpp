#include "redis/redis_user_cache.hpp"

namespace imd {

namespace {

redis::CacheAside<Memberships>::Codec memberships_codec() {
  return {
      .encode =
          [](const Memberships& m, std::string& out) {
            const Id spaces = m.spaces.size();
            redis::append_ids(out, std::span<const Id>(&spaces, 1));
            redis::append_ids(out, m.spaces);
            redis::append_ids(out, m.channels);
          },
      .decode = [](std::string_view in) -> std::optional<Memberships> {
        std::vector<Id> count;
        Memberships m;
        if (in.size() % 8 != 0 || !redis::read_ids(in, 1, count) ||
            !redis::read_ids(in, count[0], m.spaces) ||
            !redis::read_ids(in, in.size() / 8, m.channels)) {
          return std::nullopt;
        }
        return m;
      },
      .empty = [](const Memberships& m) { return m.spaces.empty() && m.channels.empty(); },
      .normalize =
          [](Memberships& m) {
            redis::sort_unique(m.spaces);
            redis::sort_unique(m.channels);
          },
  };
}

}  // namespace

RedisUserCache::RedisUserCache(std::shared_ptr<redis::RedisClient> client, Loader load,
                               RedisUserCacheOptions options)
    : cache_(std::move(client), std::move(options),
             {.tag = "u",
              .value = ":sc",
              .lock = ":sc:lock",
              .version = ":sc:v",
              .not_found = "no such user"},
             std::move(load), memberships_codec()) {}

}  // namespace imd
