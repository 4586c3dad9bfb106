// Presence port: what each user's devices report (active or idle, an explicit "away"), the
// status folded from them and the user's live routes, and who watches whom
// (docs/protocol.md, "Presence").
//
// Folding: offline when the user has no live route; else away when they set away or every
// live connection reported idle; else online. Connections without a reported state count as
// active. The adapter remembers the last status fold() returned per user, so that of the calls
// racing on several gateways, one change is reported once.
//
// Subscriptions: a connection (ConnRef) watches a set of users; subscribers(user) lists the
// connections that watch them, wherever they are. A connection that is gone may stay listed
// until its entries expire (a push to it is dropped by its gateway).
//
// Contract: thread-safe, blocking (the Redis adapter is remote): call off the I/O threads.
// Errors: unavailable when the backing engine fails.
#pragma once

#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "domain/model.hpp"

namespace imd {

enum class PresenceStatus : std::uint8_t { offline, online, away };

inline std::string_view presence_name(PresenceStatus s) {
  switch (s) {
    case PresenceStatus::online:
      return "online";
    case PresenceStatus::away:
      return "away";
    case PresenceStatus::offline:
      break;
  }
  return "offline";
}

// The result of a fold: the status now, and whether it differs from the last one reported.
struct PresenceFold {
  PresenceStatus status = PresenceStatus::offline;
  bool changed = false;
};

class PresenceStore {
 public:
  virtual ~PresenceStore() = default;
  // The connection's device reported idle (true) or active (false).
  virtual Result<void> set_idle(Id user, ConnRef conn, bool idle) = 0;
  // The connection closed: its reported state goes (its route is removed by the caller).
  virtual Result<void> forget(Id user, ConnRef conn) = 0;
  // The user set away (true) or cleared it (false), for all their devices.
  virtual Result<void> set_away(Id user, bool away) = 0;
  // Folds the user's status and records it as the last reported when it changed. With
  // allow_offline false, an offline fold is returned but not recorded (a disconnect's grace:
  // fold again later with allow_offline true).
  virtual Result<PresenceFold> fold(Id user, bool allow_offline) = 0;
  // The folded status of each user, in order (read only).
  virtual Result<std::vector<PresenceStatus>> statuses(std::span<const Id> users) = 0;
  // `conn` starts watching `add` and stops watching `remove`.
  virtual Result<void> subscribe(ConnRef conn, std::span<const Id> add,
                                 std::span<const Id> remove) = 0;
  // The connections watching `user`.
  virtual Result<std::vector<ConnRef>> subscribers(Id user) = 0;
};

}  // namespace imd
