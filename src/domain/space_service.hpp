// Spaces (workspaces) and their channels, with authorization on every call. The rules
// (docs/security.md "Spaces, roles and channels" has the whole matrix):
// - a space is private unless its owner makes it discoverable; it is joined through an
//   invitation, by being added by an admin, or (discoverable only) by anyone not banned;
// - to anyone who is not a member, a space (and every channel in it) answers not_found exactly
//   as a missing one does; a private channel likewise to anyone not in it;
// - roles: owner (one, space.owner_id), admin, member. Admins and the owner rename, invite,
//   add, remove and ban members; only the owner removes or bans admins, changes roles, makes
//   the space discoverable and transfers ownership; the owner cannot leave without
//   transferring it first;
// - any member creates channels (public or private); a public channel is joined by any space
//   member, a private one only by being added by one of its members;
// - a channel's creator and the space's admins and owner archive (read-only) and unarchive it
//   and set its history_from_join; admins and the owner delete it and remove its members (an
//   admin only members, as for the space).
// Membership checks read the user cache (each user's space and channel ids); role checks read
// the Store. Membership changes write the Store first, then invalidate the member cache of the
// channels touched and the user cache of the user, so a stale list lives at most until the
// next read; a removed or banned user's connections get a RemovedEvent.
// Thread-safe; blocking (Store, caches): run on the pool.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/id_generator.hpp"
#include "domain/attachments.hpp"
#include "domain/ports/member_cache.hpp"
#include "domain/ports/pusher.hpp"
#include "domain/ports/routes.hpp"
#include "domain/ports/store.hpp"
#include "domain/ports/user_cache.hpp"

namespace imd {

using MemberPage = Page<Member>;

// Quotas (docs/security.md); over one, forbidden naming the limit. Checked before the write:
// requests racing each other may pass a quota by the few in flight.
struct SpaceQuotas {
  std::uint64_t spaces_per_user = 100;  // spaces a user owns
  std::uint64_t channels_per_space = 500;
  std::uint64_t members_per_space = 10000;
  std::uint32_t invites_per_space = 100;  // usable invitations at a time
};

// An invitation's lifetime and uses when created: defaults and caps (docs/api.md).
inline constexpr std::int64_t kInviteDefaultTtlS = 7 * 24 * 3600;
inline constexpr std::int64_t kInviteMaxTtlS = 30 * 24 * 3600;
inline constexpr std::uint32_t kInviteDefaultUses = 100;
inline constexpr std::uint32_t kInviteMaxUses = 10000;

// What GET /invites/{code} shows before accepting.
struct InvitePreview {
  Space space;
  std::uint64_t members = 0;
  Millis expires_at = 0;
};

// Where a removal is told to the removed user's connections; both may be null (no pushes).
struct SpaceEvents {
  Routes* routes = nullptr;
  Pusher* pusher = nullptr;
};

class SpaceService {
 public:
  SpaceService(Store& store, MemberCache& cache, UserCache& users, IdGenerator& ids, Clock& clock,
               SpaceQuotas quotas = {}, SpaceEvents events = {});
  // Where a deleted channel's file messages let their files go (null: the orphan sweep does
  // not reach shared files, so without it their bytes stay). Set once, before serving.
  void set_attachments(Attachments* attachments) { attachments_ = attachments; }

  Result<Space> create_space(Id user, const std::string& name, const std::string& avatar);
  Result<Space> get_space(Id user, Id space_id);
  Result<Page<Space>> my_spaces(Id user, Id after, std::uint32_t limit);
  Result<Space> update_space(Id user, Id space_id, const std::optional<std::string>& name,
                             const std::optional<std::string>& avatar);
  // Owner only.
  Result<Space> set_discoverable(Id user, Id space_id, bool discoverable);
  Result<Page<Space>> discoverable_spaces(Id after, std::uint32_t limit);
  // A discoverable space (else not_found); forbidden for a banned user.
  Result<Space> join_space(Id user, Id space_id);
  Result<void> leave_space(Id user, Id space_id);
  Result<MemberPage> space_members(Id user, Id space_id, Id after, std::uint32_t limit);

  // Invitations: created, listed and revoked by admins and the owner.
  Result<Invite> create_invite(Id user, Id space_id, std::optional<std::uint32_t> max_uses,
                               std::optional<std::int64_t> expires_in_s);
  Result<std::vector<Invite>> invites(Id user, Id space_id);
  Result<void> revoke_invite(Id user, Id space_id, const std::string& code);
  // not_found for a bad, expired, used-up or revoked code.
  Result<InvitePreview> preview_invite(const std::string& code);
  // Joins (idempotent for a member: no use consumed); forbidden for a banned user.
  Result<Space> accept_invite(Id user, const std::string& code);

  // Members: added by admins (a user not banned), removed and banned by admins (members) and
  // the owner (admins too); roles changed by the owner (member <-> admin; owner = transfer).
  Result<void> add_member(Id user, Id space_id, Id target);
  Result<void> remove_member(Id user, Id space_id, Id target);
  // Server administration (AdminService checks the caller): every space, and removing a
  // member whatever their role but the owner's (the space would have none).
  Result<Page<Space>> all_spaces(Id after, std::uint32_t limit);
  Result<void> remove_member_by_server_admin(Id space_id, Id target);
  Result<void> ban(Id user, Id space_id, Id target);
  Result<void> unban(Id user, Id space_id, Id target);
  Result<MemberPage> bans(Id user, Id space_id, Id after, std::uint32_t limit);
  Result<Space> set_role(Id user, Id space_id, Id target, SpaceRole role);
  Result<Space> transfer(Id user, Id space_id, Id new_owner);

  Result<Channel> create_channel(Id user, Id space_id, const std::string& name,
                                 const std::string& avatar, bool is_private = false);
  Result<Page<Channel>> space_channels(Id user, Id space_id, Id after, std::uint32_t limit);
  Result<Channel> get_channel(Id user, Id channel_id);
  // Its creator, and the space's admins and owner who see it, rename a channel.
  Result<Channel> update_channel(Id user, Id channel_id, const std::optional<std::string>& name,
                                 const std::optional<std::string>& avatar);
  Result<Channel> join_channel(Id user, Id channel_id);
  Result<void> leave_channel(Id user, Id channel_id);
  Result<MemberPage> channel_members(Id user, Id channel_id, Id after, std::uint32_t limit);
  // Adds a member of the channel's space to it; the caller must be in the channel (channel_id
  // in space_id, else not_found).
  Result<Channel> add_channel_member(Id user, Id space_id, Id channel_id, Id target);
  // The settings that are given: archived (read-only: sends and edits refused, history kept)
  // and history_from_join. Its creator and the space's admins and owner who see it.
  Result<Channel> set_channel_settings(Id user, Id channel_id, std::optional<bool> archived,
                                       std::optional<bool> history_from_join);
  // Admins and the owner who see it: the channel, its messages and the files shared only there
  // are gone; its members' connections get a RemovedEvent ("deleted").
  Result<void> delete_channel(Id user, Id channel_id);
  // Admins and the owner who see the channel (an admin removes members, the owner admins too;
  // nobody the owner); the removed member's connections get a RemovedEvent ("removed"). A
  // public channel can be joined again: ban from the space to keep someone out. Removing
  // oneself is leaving.
  Result<void> remove_channel_member(Id user, Id channel_id, Id target);

 private:
  Result<bool> in_space(Id user, Id space_id);
  Result<bool> in_channel(Id user, Id channel_id);
  Result<Space> space_for_member(Id user, Id space_id);
  Result<void> check_space_member(Id user, Id space_id);
  Result<Channel> channel_for_space_member(Id user, Id channel_id);
  // The caller's role, or not_found (as for a missing space) when not a member.
  Result<SpaceRole> role_of(Id user, Id space_id);
  // forbidden unless the caller's role is at least `least`; not_found for a non-member.
  Result<SpaceRole> require_role(Id user, Id space_id, SpaceRole least, const char* action);
  // Whether `by` (with role `by_role`) may remove or ban `target` from the space.
  Result<void> may_moderate(Id space_id, SpaceRole by_role, Id target);
  Result<void> within_members_quota(Id space_id);
  // Makes `user` a member unless banned (false), within the members quota.
  Result<bool> admit(Id space_id, Id user);
  // Every channel id of the space (for invalidation).
  Result<std::vector<Id>> channels_of(Id space_id);
  // After a membership of `target` in the space ended: caches, and unless `reason` is null
  // ("removed", "banned") a RemovedEvent to their connections.
  void after_removal(Id space_id, Id target, const std::vector<Id>& channels, const char* reason);
  // A RemovedEvent to every connection of `users`.
  void tell_removed(std::span<const Id> users, RemovedEvent event);
  // The channel as `user` sees it (else not_found), and their role in its space: forbidden
  // unless they are an admin or the owner, or (`creator_may`) created the channel.
  Result<std::pair<Channel, SpaceRole>> channel_for_moderator(Id user, Id channel_id,
                                                              bool creator_may, const char* action);
  // Removes the member and does after_removal; with a `reason` (a removal, not a leave), a
  // user who is not a member is not_found. Returns whether they were one.
  Result<bool> take_out(Id space_id, Id target, const char* reason);

  Store& store_;
  MemberCache& cache_;
  UserCache& users_;
  IdGenerator& ids_;
  Clock& clock_;
  SpaceQuotas quotas_;
  SpaceEvents events_;
  Attachments* attachments_ = nullptr;
};

}  // namespace imd
