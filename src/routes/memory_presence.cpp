#include "routes/memory_presence.hpp"

#include <algorithm>

namespace imd {

Result<void> MemoryPresence::set_idle(Id user, ConnRef conn, bool idle) {
  std::lock_guard lock(mu_);
  auto& idle_set = users_[user].idle;
  if (idle) {
    idle_set.insert(conn);
  } else {
    idle_set.erase(conn);
  }
  return {};
}

Result<void> MemoryPresence::forget(Id user, ConnRef conn) {
  std::lock_guard lock(mu_);
  if (auto it = users_.find(user); it != users_.end()) it->second.idle.erase(conn);
  return {};
}

Result<void> MemoryPresence::set_away(Id user, bool away) {
  std::lock_guard lock(mu_);
  users_[user].away = away;
  return {};
}

PresenceStatus MemoryPresence::status_of(Id user, const std::vector<ConnRef>& live) const {
  if (live.empty()) return PresenceStatus::offline;
  auto it = users_.find(user);
  if (it == users_.end()) return PresenceStatus::online;
  if (it->second.away) return PresenceStatus::away;
  const bool all_idle =
      std::all_of(live.begin(), live.end(), [&](ConnRef c) { return it->second.idle.contains(c); });
  return all_idle ? PresenceStatus::away : PresenceStatus::online;
}

Result<PresenceFold> MemoryPresence::fold(Id user, bool allow_offline) {
  // The routes' own lock is taken first, outside ours (MemoryRoutes never calls back).
  auto live = routes_.lookup(user);
  std::lock_guard lock(mu_);
  PresenceFold f{status_of(user, live), false};
  auto it = users_.find(user);
  const PresenceStatus last = it == users_.end() ? PresenceStatus::offline : it->second.last;
  if (f.status == last) return f;
  if (f.status == PresenceStatus::offline && !allow_offline) return f;
  f.changed = true;
  if (f.status == PresenceStatus::offline && it != users_.end() && !it->second.away &&
      it->second.idle.empty()) {
    users_.erase(it);  // nothing left to remember: offline is the default
  } else {
    users_[user].last = f.status;
  }
  return f;
}

Result<std::vector<PresenceStatus>> MemoryPresence::statuses(std::span<const Id> users) {
  std::vector<std::vector<ConnRef>> live;
  live.reserve(users.size());
  for (Id u : users) live.push_back(routes_.lookup(u));
  std::lock_guard lock(mu_);
  std::vector<PresenceStatus> out;
  out.reserve(users.size());
  for (std::size_t i = 0; i < users.size(); ++i) out.push_back(status_of(users[i], live[i]));
  return out;
}

Result<void> MemoryPresence::subscribe(ConnRef conn, std::span<const Id> add,
                                       std::span<const Id> remove) {
  std::lock_guard lock(mu_);
  for (Id u : remove) {
    auto it = watchers_.find(u);
    if (it == watchers_.end()) continue;
    it->second.erase(conn);
    if (it->second.empty()) watchers_.erase(it);
  }
  for (Id u : add) watchers_[u].insert(conn);
  return {};
}

Result<std::vector<ConnRef>> MemoryPresence::subscribers(Id user) {
  std::lock_guard lock(mu_);
  auto it = watchers_.find(user);
  if (it == watchers_.end()) return std::vector<ConnRef>{};
  return std::vector<ConnRef>(it->second.begin(), it->second.end());
}

}  // namespace imd
