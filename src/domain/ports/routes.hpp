// Routes port: which connections (on which gateway node) each online user has.
// Contract: thread-safe, non-blocking for the memory adapter.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "domain/model.hpp"
#include "domain/ports/pusher.hpp"

namespace imd {

class Routes {
 public:
  virtual ~Routes() = default;
  virtual void add(Id user_id, ConnRef conn) = 0;
  virtual void remove(Id user_id, ConnRef conn) = 0;
  virtual std::vector<ConnRef> lookup(Id user_id) = 0;
  // Calls visit(user, conn) for every connection of every user in `users`. Returns false when
  // the lookup failed for some of them (the engine is unreachable): visit may have been called
  // for the others, and "no call" must not be read as "offline" (the caller falls back to a
  // user-addressed push, docs/architecture.md §10). True: every user was looked up.
  [[nodiscard]] virtual bool lookup_many(std::span<const Id> users,
                                         const std::function<void(Id, ConnRef)>& visit) = 0;
};

// Fills `p` with the connections of `users` but `skip`. When the routes cannot be read, `p`
// addresses the users instead (Push::users): every gateway then resolves them against its own
// connections, so a message still goes out live while Redis is away. Returns false then.
inline bool route_or_address(Routes& routes, std::span<const Id> users, ConnRef skip, Push& p) {
  if (routes.lookup_many(users, [&](Id, ConnRef c) {
        if (c != skip) p.targets.push_back(c);
      })) {
    return true;
  }
  p.targets.clear();
  p.users.assign(users.begin(), users.end());
  p.except = skip;
  return false;
}

}  // namespace imd
