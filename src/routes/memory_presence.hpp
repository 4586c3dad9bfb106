// In-process PresenceStore adapter (standalone mode, domain/ports/presence.hpp): device states,
// explicit away, the last reported status and the watchers of each user, in maps behind one
// mutex; the live connections come from the Routes it is given (MemoryRoutes). Thread-safe,
// never fails, never blocks beyond the mutex.
#pragma once

#include <mutex>
#include <set>
#include <unordered_map>

#include "domain/ports/presence.hpp"
#include "domain/ports/routes.hpp"

namespace imd {

class MemoryPresence final : public PresenceStore {
 public:
  explicit MemoryPresence(Routes& routes) : routes_(routes) {}

  Result<void> set_idle(Id user, ConnRef conn, bool idle) override;
  Result<void> forget(Id user, ConnRef conn) override;
  Result<void> set_away(Id user, bool away) override;
  Result<PresenceFold> fold(Id user, bool allow_offline) override;
  Result<std::vector<PresenceStatus>> statuses(std::span<const Id> users) override;
  Result<void> subscribe(ConnRef conn, std::span<const Id> add,
                         std::span<const Id> remove) override;
  Result<std::vector<ConnRef>> subscribers(Id user) override;

 private:
  struct UserState {
    std::set<ConnRef> idle;  // connections that reported idle
    bool away = false;
    PresenceStatus last = PresenceStatus::offline;
  };
  // Under mu_.
  PresenceStatus status_of(Id user, const std::vector<ConnRef>& live) const;

  Routes& routes_;
  std::mutex mu_;
  std::unordered_map<Id, UserState> users_;
  std::unordered_map<Id, std::set<ConnRef>> watchers_;
};

}  // namespace imd
