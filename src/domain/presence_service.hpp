// Presence (docs/protocol.md, "Presence"): online/away/offline per user, folded over all their
// devices, told only to the connections that subscribed to the user (bounded fan-out: a change
// costs one frame per watcher, not one per member of the user's spaces).
//
// The gateway calls connected()/disconnected() around each connection's route, set_idle() and
// set_away() for the client's reports, and settle() once the grace of a last disconnect passed
// (the timer is the gateway's: this class has no clock or threads). subscribe() replaces a
// connection's watch list by the users its viewer may see (a shared space or a DM).
//
// Thread-safe; every call blocks on the PresenceStore and the Store: run it on the blocking pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "domain/ports/presence.hpp"
#include "domain/ports/pusher.hpp"
#include "domain/ports/store.hpp"

namespace imd {

// At most this many users in one presence_sub or one GET /api/v1/presence.
inline constexpr std::size_t kMaxPresenceSubs = 500;
// A connection's watch list is checked again at most this often while presence frames arrive
// (and at once after a removal): how long a watch may outlive a lost shared space.
inline constexpr std::int64_t kPresenceRecheckMs = 60'000;

using PresenceList = std::vector<std::pair<Id, PresenceStatus>>;

class PresenceService {
 public:
  PresenceService(PresenceStore& presence, Store& store, Pusher& pusher)
      : presence_(presence), store_(store), pusher_(pusher) {}

  // A connection's route was added: the user may turn online.
  void connected(Id user, ConnRef conn);
  // A connection's route was removed. Returns true when the user has no live connection left:
  // call settle() after the grace (they are not told offline before).
  bool disconnected(Id user, ConnRef conn);
  // The grace passed: offline unless a connection came back meanwhile.
  void settle(Id user);
  // The connection's device is idle (true) or active again.
  Result<void> set_idle(Id user, ConnRef conn, bool idle);
  // The user sets away, or clears it (all devices).
  Result<void> set_away(Id user, bool away);

  // Replaces what `conn` watches: `watching` (what it watched, kept by the caller) becomes the
  // users of `users` that `viewer` may see; returns their statuses now. invalid_argument over
  // kMaxPresenceSubs.
  Result<PresenceList> subscribe(Id viewer, ConnRef conn, std::vector<Id>& watching,
                                 std::vector<Id> users);
  // Drops from `watching` the users `viewer` may no longer see (they share no space or DM any
  // more: a removal, a ban, a leave). Returns how many were dropped.
  Result<std::size_t> recheck(Id viewer, ConnRef conn, std::vector<Id>& watching);
  // The connection closed: it watches nobody any more.
  void unsubscribe(ConnRef conn, std::vector<Id>& watching);
  // The statuses of the users of `users` that `viewer` may see (GET /api/v1/presence).
  Result<PresenceList> statuses(Id viewer, std::vector<Id> users);

 private:
  // Pushes the change to the user's watchers when the fold reported one.
  void publish(Id user, const Result<PresenceFold>& fold);
  // Sorted, without duplicates, only those `viewer` may see.
  Result<std::vector<Id>> visible(Id viewer, std::vector<Id> users);
  Result<PresenceList> with_statuses(const std::vector<Id>& users);
  // Makes `conn` watch `seen` (sorted) instead of `watching`, in the PresenceStore and in
  // `watching`; returns how many it no longer watches.
  Result<std::size_t> replace(ConnRef conn, std::vector<Id>& watching, std::vector<Id> seen);

  PresenceStore& presence_;
  Store& store_;
  Pusher& pusher_;
};

}  // namespace imd
