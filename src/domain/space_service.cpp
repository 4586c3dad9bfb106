#include "domain/space_service.hpp"

#include <algorithm>
#include <span>
#include <utility>

#include "common/metrics.hpp"
#include "domain/auth_service.hpp"
#include "domain/password.hpp"

namespace imd {
namespace {
Error not_member(const char* what) {
  return make_error(Errc::forbidden, std::string("not a member of this ") + what);
}

// What a non-member learns of a space or channel: the same as of a missing one.
Error no_space() {
  return make_error(Errc::not_found, "space not found");
}
Error no_channel() {
  return make_error(Errc::not_found, "channel not found");
}

int rank(SpaceRole r) {
  return static_cast<int>(r);
}

Id key_of(const Member& m) {
  return m.user_id;
}
template <class T>
Id key_of(const T& item) {
  return item.id;
}

// A full page has a next one (maybe empty): it starts after this page's last key.
template <class T>
Result<Page<T>> to_page(Result<std::vector<T>> r, std::uint32_t limit) {
  if (!r) return r.error();
  Page<T> page;
  page.items = std::move(*r);
  if (page.items.size() == limit) page.next_after = key_of(page.items.back());
  return page;
}

// forbidden when `what` of `id` already has `quota` rows.
Result<void> within_quota(Store& store, Store::Counted what, Id id, std::uint64_t quota,
                          const char* rule) {
  auto n = store.count(what, id);
  if (!n) return n.error();
  if (*n >= quota) {
    static constexpr const char* kLabel[] = {"spaces_per_user", "channels_per_space",
                                             "members_per_space"};
    metrics::imd().quota_refused.at(kLabel[static_cast<int>(what)]).inc();
    return make_error(Errc::forbidden,
                      std::string("quota reached: ") + rule + " (" + std::to_string(quota) + ")");
  }
  return {};
}
}  // namespace

SpaceService::SpaceService(Store& store, MemberCache& cache, UserCache& users, IdGenerator& ids,
                           Clock& clock, SpaceQuotas quotas, SpaceEvents events)
    : store_(store),
      cache_(cache),
      users_(users),
      ids_(ids),
      clock_(clock),
      quotas_(quotas),
      events_(events) {}

Result<bool> SpaceService::in_space(Id user, Id space_id) {
  auto m = users_.memberships(user);
  if (!m) return m.error();
  return std::binary_search((*m)->spaces.begin(), (*m)->spaces.end(), space_id);
}

Result<bool> SpaceService::in_channel(Id user, Id channel_id) {
  auto m = users_.memberships(user);
  if (!m) return m.error();
  return std::binary_search((*m)->channels.begin(), (*m)->channels.end(), channel_id);
}

// A non-member gets not_found before anything is read: a private space's existence is not
// theirs to learn.
Result<Space> SpaceService::space_for_member(Id user, Id space_id) {
  IMD_TRY(check_space_member(user, space_id));
  return store_.space_by_id(space_id);
}

Result<void> SpaceService::check_space_member(Id user, Id space_id) {
  auto member = in_space(user, space_id);
  if (!member) return member.error();
  if (!*member) return no_space();
  return {};
}

Result<SpaceRole> SpaceService::role_of(Id user, Id space_id) {
  auto role = store_.space_role(space_id, user);
  if (!role && role.error().code == Errc::not_found) return no_space();
  return role;
}

Result<SpaceRole> SpaceService::require_role(Id user, Id space_id, SpaceRole least,
                                             const char* action) {
  auto role = role_of(user, space_id);
  if (!role) return role;
  if (rank(*role) < rank(least)) {
    return make_error(Errc::forbidden,
                      std::string(least == SpaceRole::owner ? "only the owner may "
                                                            : "only admins and the owner may ") +
                          action);
  }
  return role;
}

Result<void> SpaceService::may_moderate(Id space_id, SpaceRole by_role, Id target) {
  auto target_role = store_.space_role(space_id, target);
  if (!target_role) {
    if (target_role.error().code == Errc::not_found) return {};  // not a member: nothing above
    return target_role.error();
  }
  if (*target_role == SpaceRole::owner) {
    return make_error(Errc::forbidden, "the owner cannot be removed or banned");
  }
  if (rank(*target_role) >= rank(by_role)) {
    return make_error(Errc::forbidden, "only the owner may remove or ban an admin");
  }
  return {};
}

Result<void> SpaceService::within_members_quota(Id space_id) {
  return within_quota(store_, Store::Counted::members_in_space, space_id, quotas_.members_per_space,
                      "a space has at most limits.members_per_space members");
}

Result<std::vector<Id>> SpaceService::channels_of(Id space_id) {
  std::vector<Id> channels;
  for (Id after = 0;;) {
    auto page = store_.channels_of_space(space_id, after, kMaxPageSize * 10);
    if (!page) return page.error();
    for (const auto& c : *page) channels.push_back(c.id);
    if (page->size() < kMaxPageSize * 10) break;
    after = page->back().id;
  }
  return channels;
}

void SpaceService::after_removal(Id space_id, Id target, const std::vector<Id>& channels,
                                 const char* reason) {
  for (Id c : channels) cache_.invalidate(c);
  users_.invalidate(target);
  if (reason == nullptr) return;
  tell_removed(std::span(&target, 1), RemovedEvent{space_id, reason});
}

void SpaceService::tell_removed(std::span<const Id> users, RemovedEvent event) {
  if (events_.routes == nullptr || events_.pusher == nullptr) return;
  // Best effort, like every push: a device that misses it finds the space or channel gone on
  // its next request (404) and the channels gone from its next sync.
  Push p;
  route_or_address(*events_.routes, users, ConnRef{}, p);
  if (p.targets.empty() && p.users.empty()) return;
  p.event = std::make_shared<const Event>(std::move(event));
  std::vector<Push> pushes;
  pushes.push_back(std::move(p));
  events_.pusher->push(std::move(pushes));
}

Result<Space> SpaceService::create_space(Id user, const std::string& name,
                                         const std::string& avatar) {
  IMD_TRY(check_name("name", name));
  IMD_TRY(check_avatar(avatar));
  IMD_TRY(within_quota(store_, Store::Counted::spaces_owned_by, user, quotas_.spaces_per_user,
                       "a user owns at most limits.spaces_per_user spaces"));
  auto id = ids_.next();
  if (!id) return id.error();
  Space s{*id, name, avatar, user, clock_.now_ms()};
  IMD_TRY(store_.create_space(s));
  users_.invalidate(user);
  return s;
}

Result<Space> SpaceService::get_space(Id user, Id space_id) {
  return space_for_member(user, space_id);
}

Result<Page<Space>> SpaceService::my_spaces(Id user, Id after, std::uint32_t limit) {
  limit = std::clamp<std::uint32_t>(limit, 1, kMaxPageSize);
  return to_page(store_.spaces_of_user(user, after, limit), limit);
}

Result<Space> SpaceService::update_space(Id user, Id space_id,
                                         const std::optional<std::string>& name,
                                         const std::optional<std::string>& avatar) {
  if (name) IMD_TRY(check_name("name", *name));
  if (avatar) IMD_TRY(check_avatar(*avatar));
  IMD_TRY(require_role(user, space_id, SpaceRole::admin, "change a space"));
  if (!name && !avatar) return store_.space_by_id(space_id);
  return store_.update_space(space_id, name, avatar);
}

Result<Space> SpaceService::set_discoverable(Id user, Id space_id, bool discoverable) {
  IMD_TRY(require_role(user, space_id, SpaceRole::owner, "make a space discoverable"));
  return store_.set_space_discoverable(space_id, discoverable);
}

Result<Page<Space>> SpaceService::discoverable_spaces(Id after, std::uint32_t limit) {
  limit = std::clamp<std::uint32_t>(limit, 1, kMaxPageSize);
  return to_page(store_.discoverable_spaces(after, limit), limit);
}

Result<Space> SpaceService::join_space(Id user, Id space_id) {
  auto member = in_space(user, space_id);
  if (!member) return member.error();
  // Joining twice changes nothing, and counts against nothing.
  if (*member) return store_.space_by_id(space_id);
  auto space = store_.space_by_id(space_id);
  if (!space) return space;
  if (!space->discoverable) return no_space();  // private: by invitation only
  auto admitted = admit(space_id, user);
  if (!admitted) return admitted.error();
  if (!*admitted) return make_error(Errc::forbidden, "you are banned from this space");
  return space;
}

Result<bool> SpaceService::admit(Id space_id, Id user) {
  IMD_TRY(within_members_quota(space_id));
  auto joined = store_.join_unless_banned(space_id, user, clock_.now_ms());
  if (!joined) return joined.error();
  if (*joined == InviteOutcome::banned) return false;
  users_.invalidate(user);
  return true;
}

Result<void> SpaceService::leave_space(Id user, Id space_id) {
  auto space = space_for_member(user, space_id);
  if (!space) return space.error();
  if (space->owner_id == user) {
    return make_error(Errc::conflict,
                      "the owner cannot leave their space: transfer the ownership first");
  }
  IMD_TRY(take_out(space_id, user, nullptr));
  return {};
}

Result<bool> SpaceService::take_out(Id space_id, Id target, const char* reason) {
  // Every channel of the space: their member caches are invalidated after the write.
  auto channels = channels_of(space_id);
  if (!channels) return channels.error();
  auto removed = store_.remove_space_member(space_id, target);
  if (!removed) return removed.error();
  if (reason != nullptr && !*removed) {
    return make_error(Errc::not_found, "not a member of this space");
  }
  after_removal(space_id, target, *channels, reason);
  return *removed;
}

Result<Invite> SpaceService::create_invite(Id user, Id space_id,
                                           std::optional<std::uint32_t> max_uses,
                                           std::optional<std::int64_t> expires_in_s) {
  const std::uint32_t uses = max_uses.value_or(kInviteDefaultUses);
  const std::int64_t ttl = expires_in_s.value_or(kInviteDefaultTtlS);
  if (uses < 1 || uses > kInviteMaxUses) {
    return make_error(Errc::invalid_argument,
                      "max_uses must be 1.." + std::to_string(kInviteMaxUses));
  }
  if (ttl < 60 || ttl > kInviteMaxTtlS) {
    return make_error(Errc::invalid_argument,
                      "expires_in_s must be 60.." + std::to_string(kInviteMaxTtlS));
  }
  IMD_TRY(require_role(user, space_id, SpaceRole::admin, "invite"));
  const Millis now = clock_.now_ms();
  auto live = store_.invites_of_space(space_id, now, quotas_.invites_per_space);
  if (!live) return live.error();
  if (live->size() >= quotas_.invites_per_space) {
    return make_error(Errc::forbidden, "quota reached: a space has at most " +
                                           std::to_string(quotas_.invites_per_space) +
                                           " usable invitations; revoke one first");
  }
  Invite inv{.code = random_token(16),  // 128 bits, base64url: 22 characters
             .space_id = space_id,
             .created_by = user,
             .created_at = now,
             .expires_at = now + ttl * 1000,
             .max_uses = uses,
             .uses = 0};
  IMD_TRY(store_.create_invite(inv));
  return inv;
}

Result<std::vector<Invite>> SpaceService::invites(Id user, Id space_id) {
  IMD_TRY(require_role(user, space_id, SpaceRole::admin, "list invitations"));
  return store_.invites_of_space(space_id, clock_.now_ms(), quotas_.invites_per_space);
}

Result<void> SpaceService::revoke_invite(Id user, Id space_id, const std::string& code) {
  IMD_TRY(require_role(user, space_id, SpaceRole::admin, "revoke invitations"));
  auto revoked = store_.revoke_invite(space_id, code);
  if (!revoked) return revoked.error();
  if (!*revoked) return make_error(Errc::not_found, "invitation not found");
  return {};
}

Result<InvitePreview> SpaceService::preview_invite(const std::string& code) {
  auto inv = store_.usable_invite(code, clock_.now_ms());
  if (!inv) return inv.error();
  auto space = store_.space_by_id(inv->space_id);
  if (!space) return space.error();
  auto n = store_.count(Store::Counted::members_in_space, inv->space_id);
  if (!n) return n.error();
  return InvitePreview{std::move(*space), *n, inv->expires_at};
}

Result<Space> SpaceService::accept_invite(Id user, const std::string& code) {
  auto inv = store_.usable_invite(code, clock_.now_ms());
  if (!inv) return inv.error();
  auto member = in_space(user, inv->space_id);
  if (!member) return member.error();
  if (!*member) IMD_TRY(within_members_quota(inv->space_id));
  // One retry: a concurrent join of the same user rolls the first attempt back (conflict).
  auto accepted = store_.accept_invite(code, user, clock_.now_ms());
  if (!accepted && accepted.error().code == Errc::conflict) {
    accepted = store_.accept_invite(code, user, clock_.now_ms());
  }
  if (!accepted) return accepted.error();
  if (accepted->outcome == InviteOutcome::banned) {
    return make_error(Errc::forbidden, "you are banned from this space");
  }
  if (accepted->outcome == InviteOutcome::joined) users_.invalidate(user);
  return store_.space_by_id(accepted->space_id);
}

Result<void> SpaceService::add_member(Id user, Id space_id, Id target) {
  IMD_TRY(require_role(user, space_id, SpaceRole::admin, "add members"));
  auto known = store_.user_by_id(target);
  if (!known) return known.error();
  auto admitted = admit(space_id, target);
  if (!admitted) return admitted.error();
  if (!*admitted) {
    return make_error(Errc::conflict, "this user is banned from the space: unban them first");
  }
  return {};
}

Result<void> SpaceService::remove_member(Id user, Id space_id, Id target) {
  if (target == user) return leave_space(user, space_id);
  auto role = require_role(user, space_id, SpaceRole::admin, "remove members");
  if (!role) return role.error();
  IMD_TRY(may_moderate(space_id, *role, target));
  IMD_TRY(take_out(space_id, target, "removed"));
  return {};
}

Result<Page<Space>> SpaceService::all_spaces(Id after, std::uint32_t limit) {
  limit = std::clamp<std::uint32_t>(limit, 1, kMaxPageSize);
  return to_page(store_.all_spaces(after, limit), limit);
}

Result<void> SpaceService::remove_member_by_server_admin(Id space_id, Id target) {
  auto space = store_.space_by_id(space_id);
  if (!space) return space.error();
  if (space->owner_id == target) {
    return make_error(Errc::invalid_argument,
                      "the owner cannot be removed: transfer the ownership first");
  }
  IMD_TRY(take_out(space_id, target, "removed"));
  return {};
}

Result<void> SpaceService::ban(Id user, Id space_id, Id target) {
  if (target == user) return make_error(Errc::invalid_argument, "you cannot ban yourself");
  auto role = require_role(user, space_id, SpaceRole::admin, "ban members");
  if (!role) return role.error();
  IMD_TRY(may_moderate(space_id, *role, target));
  auto known = store_.user_by_id(target);
  if (!known) return known.error();
  auto channels = channels_of(space_id);
  if (!channels) return channels.error();
  auto was_member = store_.ban_space_member(space_id, target, user, clock_.now_ms());
  if (!was_member) return was_member.error();
  after_removal(space_id, target, *channels, *was_member ? "banned" : nullptr);
  return {};
}

Result<void> SpaceService::unban(Id user, Id space_id, Id target) {
  IMD_TRY(require_role(user, space_id, SpaceRole::admin, "unban members"));
  auto unbanned = store_.unban_space_member(space_id, target);
  if (!unbanned) return unbanned.error();
  if (!*unbanned) return make_error(Errc::not_found, "not banned from this space");
  return {};
}

Result<MemberPage> SpaceService::bans(Id user, Id space_id, Id after, std::uint32_t limit) {
  limit = std::clamp<std::uint32_t>(limit, 1, kMaxPageSize);
  IMD_TRY(require_role(user, space_id, SpaceRole::admin, "list bans"));
  return to_page(store_.space_bans(space_id, after, limit), limit);
}

Result<Space> SpaceService::set_role(Id user, Id space_id, Id target, SpaceRole role) {
  if (role == SpaceRole::owner) return transfer(user, space_id, target);
  IMD_TRY(require_role(user, space_id, SpaceRole::owner, "change roles"));
  if (target == user) {
    return make_error(Errc::conflict, "the owner's role changes by transferring the ownership");
  }
  auto set = store_.set_space_role(space_id, target, role);
  if (!set) return set.error();
  if (!*set) return make_error(Errc::not_found, "not a member of this space");
  return store_.space_by_id(space_id);
}

Result<Space> SpaceService::transfer(Id user, Id space_id, Id new_owner) {
  IMD_TRY(require_role(user, space_id, SpaceRole::owner, "transfer the ownership"));
  if (new_owner == user) return store_.space_by_id(space_id);
  auto space = store_.transfer_space(space_id, user, new_owner);
  if (!space && space.error().code == Errc::forbidden) {
    return make_error(Errc::not_found, "not a member of this space");
  }
  return space;
}

Result<MemberPage> SpaceService::space_members(Id user, Id space_id, Id after,
                                               std::uint32_t limit) {
  limit = std::clamp<std::uint32_t>(limit, 1, kMaxPageSize);
  IMD_TRY(check_space_member(user, space_id));
  return to_page(store_.space_members(space_id, after, limit), limit);
}

Result<Channel> SpaceService::create_channel(Id user, Id space_id, const std::string& name,
                                             const std::string& avatar, bool is_private) {
  IMD_TRY(check_name("name", name));
  IMD_TRY(check_avatar(avatar));
  IMD_TRY(check_space_member(user, space_id));
  IMD_TRY(within_quota(store_, Store::Counted::channels_in_space, space_id,
                       quotas_.channels_per_space,
                       "a space has at most limits.channels_per_space channels"));
  auto id = ids_.next();
  if (!id) return id.error();
  Channel c;
  c.id = *id;
  c.space_id = space_id;
  c.name = name;
  c.avatar = avatar;
  c.owner_id = user;
  c.created_at = clock_.now_ms();
  c.is_private = is_private;
  IMD_TRY(store_.create_channel(c));
  cache_.invalidate(c.id);
  users_.invalidate(user);
  return c;
}

Result<Page<Channel>> SpaceService::space_channels(Id user, Id space_id, Id after,
                                                   std::uint32_t limit) {
  limit = std::clamp<std::uint32_t>(limit, 1, kMaxPageSize);
  IMD_TRY(check_space_member(user, space_id));
  return to_page(store_.visible_channels_of_space(space_id, user, after, limit), limit);
}

// The channel as `user` may see it: a member of its space sees a public channel, a member of
// a private one sees it; to anyone else it does not exist.
Result<Channel> SpaceService::channel_for_space_member(Id user, Id channel_id) {
  auto channel = store_.channel_by_id(channel_id);
  if (!channel) return channel;
  auto member =
      channel->is_private ? in_channel(user, channel_id) : in_space(user, channel->space_id);
  if (!member) return member.error();
  if (!*member) return no_channel();
  return channel;
}

Result<Channel> SpaceService::get_channel(Id user, Id channel_id) {
  return channel_for_space_member(user, channel_id);
}

Result<Channel> SpaceService::update_channel(Id user, Id channel_id,
                                             const std::optional<std::string>& name,
                                             const std::optional<std::string>& avatar) {
  if (name) IMD_TRY(check_name("name", *name));
  if (avatar) IMD_TRY(check_avatar(*avatar));
  auto channel = channel_for_space_member(user, channel_id);
  if (!channel) return channel;
  if (channel->owner_id != user) {
    IMD_TRY(require_role(user, channel->space_id, SpaceRole::admin,
                         "change a channel they did not create"));
  }
  if (!name && !avatar) return channel;
  return store_.update_channel(channel_id, name, avatar);
}

// A private channel is visible to its members only, so joining it is a no-op for them and
// not_found for everyone else.
Result<Channel> SpaceService::join_channel(Id user, Id channel_id) {
  auto channel = channel_for_space_member(user, channel_id);
  if (!channel) return channel;
  if (channel->is_private) return channel;
  auto added = store_.add_channel_member(channel_id, user, clock_.now_ms());
  if (!added) return added.error();
  cache_.invalidate(channel_id);
  users_.invalidate(user);
  return channel;
}

Result<void> SpaceService::leave_channel(Id user, Id channel_id) {
  auto removed = store_.remove_channel_member(channel_id, user);
  if (!removed) return removed.error();
  if (!*removed) {
    auto channel = channel_for_space_member(user, channel_id);  // not_found unless visible
    if (!channel) return channel.error();
    return not_member("channel");
  }
  cache_.invalidate(channel_id);
  users_.invalidate(user);
  return {};
}

Result<MemberPage> SpaceService::channel_members(Id user, Id channel_id, Id after,
                                                 std::uint32_t limit) {
  limit = std::clamp<std::uint32_t>(limit, 1, kMaxPageSize);
  auto member = in_channel(user, channel_id);
  if (!member) return member.error();
  if (!*member) {
    // not_found unless the caller sees the channel (a space member, public channel).
    auto channel = channel_for_space_member(user, channel_id);
    if (!channel) return channel.error();
    return not_member("channel");
  }
  return to_page(store_.channel_members(channel_id, after, limit), limit);
}

Result<Channel> SpaceService::add_channel_member(Id user, Id space_id, Id channel_id, Id target) {
  auto channel = channel_for_space_member(user, channel_id);
  if (!channel) return channel;
  if (channel->space_id != space_id) return no_channel();
  auto member = in_channel(user, channel_id);
  if (!member) return member.error();
  if (!*member) return not_member("channel");
  auto added = store_.add_channel_member(channel_id, target, clock_.now_ms());
  if (!added) {
    // The target is not in the space (forbidden) or does not exist: the same answer.
    if (added.error().code == Errc::forbidden || added.error().code == Errc::not_found) {
      return make_error(Errc::not_found, "no such member of this space");
    }
    return added.error();
  }
  cache_.invalidate(channel_id);
  users_.invalidate(target);
  return channel;
}

Result<std::pair<Channel, SpaceRole>> SpaceService::channel_for_moderator(Id user, Id channel_id,
                                                                          bool creator_may,
                                                                          const char* action) {
  auto channel = channel_for_space_member(user, channel_id);
  if (!channel) return channel.error();
  auto role = role_of(user, channel->space_id);
  if (!role) return role.error();
  if (rank(*role) < rank(SpaceRole::admin) && !(creator_may && channel->owner_id == user)) {
    return make_error(Errc::forbidden,
                      std::string(creator_may ? "only its creator, admins and the owner may "
                                              : "only admins and the owner may ") +
                          action);
  }
  return std::pair{std::move(*channel), *role};
}

Result<Channel> SpaceService::set_channel_settings(Id user, Id channel_id,
                                                   std::optional<bool> archived,
                                                   std::optional<bool> history_from_join) {
  auto found = channel_for_moderator(user, channel_id, true, "change a channel's settings");
  if (!found) return found.error();
  if (!archived && !history_from_join) return std::move(found->first);
  return store_.set_channel_settings(channel_id, archived, history_from_join);
}

Result<void> SpaceService::delete_channel(Id user, Id channel_id) {
  auto found = channel_for_moderator(user, channel_id, false, "delete a channel");
  if (!found) return found.error();
  auto deleted = store_.delete_channel(channel_id);
  if (!deleted) return deleted.error();
  cache_.invalidate(channel_id);
  for (Id member : deleted->members) users_.invalidate(member);
  tell_removed(deleted->members, RemovedEvent{deleted->channel.space_id, "deleted", channel_id});
  // The files shared here go once no other message shares them (Attachments::released).
  if (attachments_ != nullptr) {
    for (const Message& m : deleted->file_messages) attachments_->released(m);
  }
  return {};
}

Result<void> SpaceService::remove_channel_member(Id user, Id channel_id, Id target) {
  if (target == user) return leave_channel(user, channel_id);
  auto found = channel_for_moderator(user, channel_id, false, "remove members from a channel");
  if (!found) return found.error();
  IMD_TRY(may_moderate(found->first.space_id, found->second, target));
  auto removed = store_.remove_channel_member(channel_id, target);
  if (!removed) return removed.error();
  if (!*removed) return make_error(Errc::not_found, "not a member of this channel");
  cache_.invalidate(channel_id);
  users_.invalidate(target);
  tell_removed(std::span(&target, 1), RemovedEvent{found->first.space_id, "removed", channel_id});
  return {};
}

}  // namespace imd
