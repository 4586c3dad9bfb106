// Routes port: which connections (on which gateway node) each online user has.
// Contract: thread-safe, non-blocking for the memory adapter.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "domain/model.hpp"

namespace imd {

class Routes {
 public:
  virtual ~Routes() = default;
  virtual void add(Id user_id, ConnRef conn) = 0;
  virtual void remove(Id user_id, ConnRef conn) = 0;
  virtual std::vector<ConnRef> lookup(Id user_id) = 0;
  // Calls visit(user, conn) for every connection of every user in `users`.
  virtual void lookup_many(std::span<const Id> users,
                           const std::function<void(Id, ConnRef)>& visit) = 0;
};

}  // namespace imd
