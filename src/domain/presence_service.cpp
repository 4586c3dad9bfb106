#include "domain/presence_service.hpp"

#include <algorithm>
#include <iterator>
#include <memory>

#include "common/log.hpp"

namespace imd {

void PresenceService::publish(Id user, const Result<PresenceFold>& fold) {
  if (!fold) {
    LOG_WARN("presence of user " << user << ": " << fold.error().message);
    return;
  }
  if (!fold->changed) return;
  auto watchers = presence_.subscribers(user);
  if (!watchers) {
    LOG_WARN("presence watchers of user " << user << ": " << watchers.error().message);
    return;
  }
  if (watchers->empty()) return;
  Push p;
  p.targets = std::move(*watchers);
  p.event = std::make_shared<const Event>(PresenceEvent{user, fold->status});
  std::vector<Push> v;
  v.push_back(std::move(p));
  pusher_.push(std::move(v));
}

void PresenceService::connected(Id user, ConnRef conn) {
  // A connection starts active (a stale idle mark of a reused id must not count).
  if (auto r = presence_.set_idle(user, conn, false); !r) {
    LOG_WARN("presence of user " << user << ": " << r.error().message);
  }
  publish(user, presence_.fold(user, false));
}

bool PresenceService::disconnected(Id user, ConnRef conn) {
  if (auto r = presence_.forget(user, conn); !r) {
    LOG_WARN("presence of user " << user << ": " << r.error().message);
  }
  auto fold = presence_.fold(user, false);
  publish(user, fold);
  return fold && fold->status == PresenceStatus::offline;
}

void PresenceService::settle(Id user) {
  publish(user, presence_.fold(user, true));
}

Result<void> PresenceService::set_idle(Id user, ConnRef conn, bool idle) {
  IMD_TRY(presence_.set_idle(user, conn, idle));
  publish(user, presence_.fold(user, false));
  return {};
}

Result<void> PresenceService::set_away(Id user, bool away) {
  IMD_TRY(presence_.set_away(user, away));
  publish(user, presence_.fold(user, false));
  return {};
}

Result<std::vector<Id>> PresenceService::visible(Id viewer, std::vector<Id> users) {
  if (users.size() > kMaxPresenceSubs) {
    return make_error(Errc::invalid_argument, "at most 500 users");
  }
  std::sort(users.begin(), users.end());
  users.erase(std::unique(users.begin(), users.end()), users.end());
  return store_.visible_users(viewer, users);
}

Result<PresenceList> PresenceService::with_statuses(const std::vector<Id>& users) {
  auto st = presence_.statuses(users);
  if (!st) return st.error();
  PresenceList out;
  out.reserve(users.size());
  for (std::size_t i = 0; i < users.size(); ++i) out.emplace_back(users[i], (*st)[i]);
  return out;
}

Result<PresenceList> PresenceService::statuses(Id viewer, std::vector<Id> users) {
  auto seen = visible(viewer, std::move(users));
  if (!seen) return seen.error();
  return with_statuses(*seen);
}

Result<PresenceList> PresenceService::subscribe(Id viewer, ConnRef conn, std::vector<Id>& watching,
                                                std::vector<Id> users) {
  auto seen = visible(viewer, std::move(users));
  if (!seen) return seen.error();
  IMD_TRY(replace(conn, watching, std::move(*seen)));
  // Read after subscribing: a change in between is in this answer or pushed after it.
  return with_statuses(watching);
}

Result<std::size_t> PresenceService::recheck(Id viewer, ConnRef conn, std::vector<Id>& watching) {
  if (watching.empty()) return std::size_t{0};
  auto seen = visible(viewer, watching);
  if (!seen) return seen.error();
  return replace(conn, watching, std::move(*seen));
}

Result<std::size_t> PresenceService::replace(ConnRef conn, std::vector<Id>& watching,
                                             std::vector<Id> seen) {
  // Both sorted: what to drop, what to add.
  std::vector<Id> drop, add;
  std::set_difference(watching.begin(), watching.end(), seen.begin(), seen.end(),
                      std::back_inserter(drop));
  std::set_difference(seen.begin(), seen.end(), watching.begin(), watching.end(),
                      std::back_inserter(add));
  if (!drop.empty() || !add.empty()) IMD_TRY(presence_.subscribe(conn, add, drop));
  watching = std::move(seen);
  return drop.size();
}

void PresenceService::unsubscribe(ConnRef conn, std::vector<Id>& watching) {
  if (watching.empty()) return;
  if (auto r = presence_.subscribe(conn, {}, watching); !r) {
    LOG_WARN("presence unsubscribe: " << r.error().message);
  }
  watching.clear();
}

}  // namespace imd
