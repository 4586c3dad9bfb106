#include "routes/memory_routes.hpp"

#include <algorithm>
#include <mutex>

namespace imd {

void MemoryRoutes::add(Id user_id, ConnRef conn) {
  Shard& s = shard(user_id);
  std::unique_lock lock(s.mu);
  s.users[user_id].push_back(conn);
}

void MemoryRoutes::remove(Id user_id, ConnRef conn) {
  Shard& s = shard(user_id);
  std::unique_lock lock(s.mu);
  auto it = s.users.find(user_id);
  if (it == s.users.end()) return;
  auto& v = it->second;
  v.erase(std::remove(v.begin(), v.end(), conn), v.end());
  if (v.empty()) s.users.erase(it);
}

std::vector<ConnRef> MemoryRoutes::lookup(Id user_id) {
  Shard& s = shard(user_id);
  std::shared_lock lock(s.mu);
  auto it = s.users.find(user_id);
  return it == s.users.end() ? std::vector<ConnRef>{} : it->second;
}

bool MemoryRoutes::lookup_many(std::span<const Id> users,
                               const std::function<void(Id, ConnRef)>& visit) {
  for (Id u : users) {
    Shard& s = shard(u);
    std::shared_lock lock(s.mu);
    auto it = s.users.find(u);
    if (it == s.users.end()) continue;
    for (ConnRef c : it->second) visit(u, c);
  }
  return true;
}

}  // namespace imd
