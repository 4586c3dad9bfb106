// Cache port for each online user's spaces and channels: the membership checks of every
// space-scoped call and the user's space list (docs/architecture.md §3, "each online user's
// spaces and channels").
//
// Contract: thread-safe, blocking. memberships() returns the user's sorted space and channel
// ids, loading them from the Store (Store::memberships_of_user) on a miss, one load per key
// at a time (no stampede); not_found for a user that does not exist. Every membership change
// of a user (join / leave / create of a space or channel) calls invalidate(user) after the
// Store write, so a list read before the change is never served after it. warm() loads a
// user's memberships ahead of their first request (login, connect); best effort.
#pragma once

#include <memory>

#include "common/error.hpp"
#include "domain/model.hpp"

namespace imd {

using MembershipsPtr = std::shared_ptr<const Memberships>;

class UserCache {
 public:
  virtual ~UserCache() = default;
  virtual Result<MembershipsPtr> memberships(Id user_id) = 0;
  virtual void invalidate(Id user_id) = 0;
  // Errors are the caller's to log or ignore: a cold cache only costs the first request a load.
  virtual Result<void> warm(Id user_id) {
    auto r = memberships(user_id);
    if (!r) return r.error();
    return {};
  }
};

}  // namespace imd
