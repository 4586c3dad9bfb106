// In-process Routes adapter (standalone mode): user -> live connections, sharded maps
// behind shared mutexes so that fan-out lookups from the consumer rarely contend with
// connects and disconnects. Thread-safe, non-blocking.
#pragma once

#include <array>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "domain/ports/routes.hpp"

namespace imd {

class MemoryRoutes final : public Routes {
 public:
  void add(Id user_id, ConnRef conn) override;
  void remove(Id user_id, ConnRef conn) override;
  std::vector<ConnRef> lookup(Id user_id) override;
  // Always true: the table is in memory.
  bool lookup_many(std::span<const Id> users,
                   const std::function<void(Id, ConnRef)>& visit) override;

 private:
  static constexpr std::size_t kShards = 16;
  struct Shard {
    std::shared_mutex mu;
    std::unordered_map<Id, std::vector<ConnRef>> users;
  };
  Shard& shard(Id user) { return shards_[(user ^ (user >> 17)) % kShards]; }
  std::array<Shard, kShards> shards_;
};

}  // namespace imd
