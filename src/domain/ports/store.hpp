// Store port: durable state (users, spaces, channels, messages, cursors).
//
// Contract for every adapter (SQLite standalone, MySQL cluster):
// - Thread-safe: any method may be called from any thread concurrently. Methods block;
//   callers run them on a blocking pool, never on an I/O thread.
// - Errors: not_found for a missing row, conflict for a unique violation, unavailable for an
//   engine failure (I/O, lock timeout). Never throws.
// - append_messages is atomic for the batch and assigns each new message the next dense
//   seq of its conversation inside the storing transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "domain/model.hpp"

namespace imd {

class Store {
 public:
  virtual ~Store() = default;

  // One round trip to the engine (readiness: GET /readyz). unavailable when it cannot answer.
  virtual Result<void> ping() = 0;

  // --- users and sessions
  virtual Result<void> create_user(const User& user, const std::string& password_hash) = 0;
  virtual Result<UserCredentials> user_by_phone(std::string_view phone) = 0;
  virtual Result<User> user_by_id(Id id) = 0;
  // Users whose name equals `name` (case-insensitive), at most `limit`.
  virtual Result<std::vector<User>> users_by_name(std::string_view name, std::uint32_t limit) = 0;
  // The user directory (docs/api.md, GET /users?q=): active users other than `viewer` whose
  // name starts with `prefix` (case-insensitive; every user when empty), in (name, id) order
  // after (`after_name`, `after_id`) (from the start when `after_id` is 0), at most `limit`;
  // with `shared_space_only`, only those sharing a space with `viewer`. Phones are not read.
  virtual Result<std::vector<User>> directory_users(Id viewer, std::string_view prefix,
                                                    std::string_view after_name, Id after_id,
                                                    bool shared_space_only,
                                                    std::uint32_t limit) = 0;
  virtual Result<User> update_user(Id id, const std::optional<std::string>& name,
                                   const std::optional<std::string>& avatar) = 0;

  virtual Result<void> save_refresh_token(const RefreshToken& token) = 0;
  // Uses the token: returns it and, atomically, ends its life at `reuse_until` (if that is
  // sooner), so that a retry whose answer was lost still finds it until then, and nothing after.
  // not_found when it is unknown, revoked or expired at `now`.
  virtual Result<RefreshToken> take_refresh_token(std::string_view token_hash, Millis now,
                                                  Millis reuse_until) = 0;
  // Returns the token as stored (its user and session); not_found for an unknown token.
  virtual Result<RefreshToken> revoke_refresh_token(std::string_view token_hash) = 0;
  // Revokes every refresh token of the user (logout everywhere, password change); returns how
  // many were live.
  virtual Result<std::uint64_t> revoke_refresh_tokens_of(Id user_id) = 0;

  // --- sessions (LoginSession): a session lives while ended_at is 0 and expires_at > now.
  // Stores the session; then, if the user has more than `max_live` live sessions, ends the
  // least recently used beyond that at session.created_at (as end_session does) and returns
  // their ids. not_found for a user that does not exist.
  virtual Result<std::vector<Id>> create_session(const LoginSession& session,
                                                 std::uint32_t max_live) = 0;
  // A refresh of the session: sets last_used_at = now, expires_at and ip. not_found when the
  // session is unknown or ended.
  virtual Result<void> touch_session(Id session_id, Millis now, Millis expires_at,
                                     std::string_view ip) = 0;
  // The user's live sessions at `now`, most recently used first (at most `limit`).
  virtual Result<std::vector<LoginSession>> sessions_of(Id user_id, Millis now,
                                                        std::uint32_t limit) = 0;
  // Ends the user's live session at `now` and revokes its refresh tokens. not_found when the
  // session is unknown, another user's, or already ended.
  virtual Result<void> end_session(Id user_id, Id session_id, Millis now) = 0;
  // Ends every live session of the user at `now`; returns how many.
  virtual Result<std::uint64_t> end_sessions_of(Id user_id, Millis now) = 0;
  // The sessions ended at or after `since` (> 0), oldest end first, at most `limit`.
  virtual Result<std::vector<EndedSession>> sessions_ended(Millis since, std::uint32_t limit) = 0;

  // --- account state (ended sessions, deactivation) and server administration
  // Writes the user's state: sessions_before (never lowered), deactivated when given, and
  // changed_at. not_found for a user that does not exist.
  virtual Result<AccountState> set_account_state(Id user_id, Millis sessions_before,
                                                 std::optional<bool> deactivated,
                                                 Millis changed_at) = 0;
  // not_found: the account's sessions were never ended and it was never deactivated.
  virtual Result<AccountState> account_state(Id user_id) = 0;
  // The states changed at or after `since`, oldest change first, at most `limit`.
  virtual Result<std::vector<AccountState>> account_states_changed(Millis since,
                                                                   std::uint32_t limit) = 0;
  // Users in id order after `after_id`: all of them when `name_prefix` is empty, else those
  // whose name starts with it (ASCII case-insensitive) or whose phone is `phone`.
  virtual Result<std::vector<UserStatus>> list_users(std::string_view name_prefix,
                                                     std::string_view phone, Id after_id,
                                                     std::uint32_t limit) = 0;
  // The first account registered (the smallest id); not_found when there is none.
  virtual Result<Id> first_user_id() = 0;
  virtual Result<UserCredentials> credentials_by_id(Id id) = 0;
  // Replaces the password hash; not_found for an unknown user.
  virtual Result<void> set_password_hash(Id user_id, const std::string& password_hash) = 0;

  // --- spaces
  // Stores the space and makes its owner a member.
  virtual Result<void> create_space(const Space& space) = 0;
  virtual Result<Space> space_by_id(Id id) = 0;
  // Keyset paging by space id: the user's spaces with id > after_space_id, ascending.
  virtual Result<std::vector<Space>> spaces_of_user(Id user_id, Id after_space_id,
                                                    std::uint32_t limit) = 0;
  virtual Result<Space> update_space(Id id, const std::optional<std::string>& name,
                                     const std::optional<std::string>& avatar) = 0;
  virtual Result<bool> is_space_member(Id space_id, Id user_id) = 0;
  // Returns false when the user already was a member.
  virtual Result<bool> add_space_member(Id space_id, Id user_id, Millis now) = 0;
  // Also removes the user from every channel of the space. Returns false if not a member.
  virtual Result<bool> remove_space_member(Id space_id, Id user_id) = 0;
  // Keyset paging by user id: members with user_id > after_user_id, ascending.
  virtual Result<std::vector<Member>> space_members(Id space_id, Id after_user_id,
                                                    std::uint32_t limit) = 0;

  // --- access: roles, discoverable spaces, invitations, bans, blocks (docs/security.md)
  // The user's role in the space; not_found when they are not a member.
  virtual Result<SpaceRole> space_role(Id space_id, Id user_id) = 0;
  // Sets a member's role (member or admin); false when the user is not a member. The owner's
  // role changes only through transfer_space.
  virtual Result<bool> set_space_role(Id space_id, Id user_id, SpaceRole role) = 0;
  // In one transaction: `to` (a member, else forbidden) becomes owner, `from` an admin.
  virtual Result<Space> transfer_space(Id space_id, Id from, Id to) = 0;
  virtual Result<Space> set_space_discoverable(Id space_id, bool discoverable) = 0;
  // Keyset paging by space id over discoverable spaces.
  virtual Result<std::vector<Space>> discoverable_spaces(Id after_space_id,
                                                         std::uint32_t limit) = 0;
  // Keyset paging by space id over every space (server administration).
  virtual Result<std::vector<Space>> all_spaces(Id after_space_id, std::uint32_t limit) = 0;
  // add_space_member unless the user is banned from the space (checked in the same
  // transaction): joined, already_member or banned.
  virtual Result<InviteOutcome> join_unless_banned(Id space_id, Id user_id, Millis now) = 0;

  virtual Result<void> create_invite(const Invite& invite) = 0;
  // The space's usable invitations at `now`, newest first, at most `limit`.
  virtual Result<std::vector<Invite>> invites_of_space(Id space_id, Millis now,
                                                       std::uint32_t limit) = 0;
  // A usable invitation at `now`; not_found for an unknown, revoked, expired or used-up code.
  virtual Result<Invite> usable_invite(std::string_view code, Millis now) = 0;
  // false when the space has no such invitation.
  virtual Result<bool> revoke_invite(Id space_id, std::string_view code) = 0;
  // In one transaction: the invitation must be usable at `now` (else not_found); a member
  // changes nothing, a banned user is refused, anyone else becomes a member and consumes one
  // use (two accepts of a last use cannot both succeed).
  virtual Result<AcceptedInvite> accept_invite(std::string_view code, Id user_id, Millis now) = 0;

  // In one transaction: the user leaves the space and its channels, and is banned from it.
  // Returns whether they were a member.
  virtual Result<bool> ban_space_member(Id space_id, Id user_id, Id by, Millis now) = 0;
  // false when the user was not banned.
  virtual Result<bool> unban_space_member(Id space_id, Id user_id) = 0;
  // Keyset paging by user id over the space's bans (joined_at is when the ban was made).
  virtual Result<std::vector<Member>> space_bans(Id space_id, Id after_user_id,
                                                 std::uint32_t limit) = 0;

  // Blocks between users: idempotent; block returns false when it existed already.
  virtual Result<bool> block_user(Id user_id, Id blocked_id, Millis now) = 0;
  virtual Result<bool> unblock_user(Id user_id, Id blocked_id) = 0;
  virtual Result<std::vector<Blocked>> blocks_of(Id user_id, Id after_user_id,
                                                 std::uint32_t limit) = 0;
  virtual Result<DmPolicy> dm_policy(Id from, Id to) = 0;
  // Of `users`, those `viewer` may see the presence of, in order: themselves, members of a
  // space the viewer is in, and DM peers. One read, a primary-key probe per user.
  virtual Result<std::vector<Id>> visible_users(Id viewer, std::span<const Id> users) = 0;
  // Whether the user sends and sees DM read receipts (default true); not_found: no such user.
  virtual Result<bool> read_receipts(Id user_id) = 0;
  virtual Result<void> set_read_receipts(Id user_id, bool on) = 0;
  // Whether neither user turned read receipts off (unknown users count as off).
  virtual Result<bool> receipts_between(Id a, Id b) = 0;

  // --- channels
  // Stores the channel in its space and makes its owner a member; forbidden unless the owner
  // is a member of the space (checked in the same transaction).
  virtual Result<void> create_channel(const Channel& channel) = 0;
  virtual Result<Channel> channel_by_id(Id id) = 0;
  // Sets the fields that are given; the channel as stored after, or not_found.
  virtual Result<Channel> update_channel(Id id, const std::optional<std::string>& name,
                                         const std::optional<std::string>& avatar) = 0;
  // Sets the settings that are given (archived: read-only; history_from_join: members who
  // join from now on read history from their join); the channel as stored after, or not_found.
  virtual Result<Channel> set_channel_settings(Id id, std::optional<bool> archived,
                                               std::optional<bool> history_from_join) = 0;
  // In one transaction: the channel and all of it (memberships, messages with their cids,
  // mentions and search rows) are deleted. A batch storing into it is wholly before (its
  // messages are deleted too) or after (not_found per message). Returns its members and its
  // file messages as they were; not_found for a missing channel.
  virtual Result<DeletedChannel> delete_channel(Id id) = 0;
  // Keyset paging by channel id: channels with id > after_channel_id, ascending.
  virtual Result<std::vector<Channel>> channels_of_space(Id space_id, Id after_channel_id,
                                                         std::uint32_t limit) = 0;
  // channels_of_space as `viewer` sees it: private channels only when they are a member.
  virtual Result<std::vector<Channel>> visible_channels_of_space(Id space_id, Id viewer,
                                                                 Id after_channel_id,
                                                                 std::uint32_t limit) = 0;

  // --- quotas (limits.spaces_per_user and the like): how many rows of a kind `id` has.
  enum class Counted {
    spaces_owned_by,    // id: a user
    channels_in_space,  // id: a space
    members_in_space,   // id: a space
  };
  virtual Result<std::uint64_t> count(Counted what, Id id) = 0;
  virtual Result<bool> is_channel_member(Id channel_id, Id user_id) = 0;
  // New members start with their delivery and read cursors at the channel's last_seq:
  // history before joining is readable but neither unread nor pushed. forbidden unless the
  // user is a member of the channel's space, checked in the same transaction as the insert
  // (a concurrent leave of the space must not leave a channel membership behind).
  virtual Result<bool> add_channel_member(Id channel_id, Id user_id, Millis now) = 0;
  virtual Result<bool> remove_channel_member(Id channel_id, Id user_id) = 0;
  virtual Result<std::vector<Member>> channel_members(Id channel_id, Id after_user_id,
                                                      std::uint32_t limit) = 0;
  // The seq after which the member reads the channel's history: the channel's last_seq when
  // they joined if the channel has history_from_join, else 0. not_found for a non-member.
  virtual Result<std::uint64_t> history_floor(Id channel_id, Id user_id) = 0;
  virtual Result<std::vector<Id>> channel_member_ids(Id channel_id) = 0;
  // The ids of the user's spaces and channels, each ascending (one index range per table);
  // not_found when the user does not exist (the user cache's negative entry).
  virtual Result<Memberships> memberships_of_user(Id user_id) = 0;

  // --- messages
  // One transaction for the whole batch. Per item: when (from, cid) exists, the original
  // message with duplicate = true; otherwise the message stored with the next seq of its
  // conversation (a DM conversation is created on its first message), the conversation's
  // last_seq/last_message_id advanced, and the sender's read cursor moved to the new seq
  // (one's own message is not unread). The sender's delivery cursor stays: the sender's
  // other devices still get the message, and a message of someone else that is still in
  // flight to the sender is not skipped.
  // Per-item failures (e.g. the channel vanished) are returned in place; an engine failure
  // fails the whole batch (the outer Result).
  virtual Result<std::vector<Result<Appended>>> append_messages(
      std::span<const NewMessage> batch) = 0;

  // Messages of a conversation by seq; ascending order in the result.
  virtual Result<std::vector<Message>> messages(const ConvKey& conv, const HistoryQuery& q) = 0;
  // messages() answered from this process's memory only, never blocking: the same page, or
  // nullopt when it would have to ask the engine (the default: no such memory).
  virtual std::optional<std::vector<Message>> cached_messages(const ConvKey& conv,
                                                              const HistoryQuery& q) {
    (void)conv;
    (void)q;
    return std::nullopt;
  }

  // A stored message by id (either kind of conversation); not_found when there is none.
  virtual Result<Message> message_by_id(Id id) = 0;
  // Applies a batch of changes (NewMessage::change not none) in one transaction, in order. Per
  // item: not_found when the message is missing, not in msg.conv, or deleted; forbidden when
  // msg.from is not its sender (edit, erase); otherwise the conversation's last_rev is bumped
  // and the message gets it as its rev, with the change's state: an edit's body and edited_at,
  // an erase's tombstone (body and reactions removed, deleted set; its seq stays), a reaction
  // (react: msg.from adds, react_on, or takes back the emoji msg.body; payload_too_large past
  // kMaxReactionEmoji / kMaxReactionUsers). An item whose change_id is the message's last, or a
  // reaction that changes nothing, is a duplicate: the current state, nothing written. An engine
  // failure fails the whole batch (the outer Result).
  virtual Result<std::vector<Result<Changed>>> change_messages(
      std::span<const NewMessage> batch) = 0;
  // The changed messages of a conversation (ChangeQuery), ascending by rev, at most q.limit.
  virtual Result<std::vector<Message>> changes(const ConvKey& conv, const ChangeQuery& q) = 0;

  // Delivery cursor (cumulative ACK): moves forward only, clamped to last_seq; returns the
  // cursor after the update (never above what is stored: the cursor cache relies on it).
  // For a channel it also sets channel_user.last_ack_message_id. forbidden if not a member
  // / participant.
  virtual Result<std::uint64_t> advance_delivery(Id user_id, const ConvKey& conv,
                                                 std::uint64_t seq) = 0;
  // Many delivery cursors at once (the ACKs gathered over a short interval). Items the user
  // may not move (forbidden, not_found) are skipped; an engine failure fails the call.
  // Returns the cursor after the update of every item that was not skipped, in input order.
  // Adapters should do it in one transaction; this default applies them one by one.
  virtual Result<std::vector<DeliveryUpdate>> advance_deliveries(
      std::span<const DeliveryUpdate> updates) {
    std::vector<DeliveryUpdate> out;
    out.reserve(updates.size());
    for (const auto& u : updates) {
      auto r = advance_delivery(u.user, u.conv, u.seq);
      if (r) {
        out.push_back({u.user, u.conv, *r});
      } else if (r.error().code != Errc::forbidden && r.error().code != Errc::not_found) {
        return r.error();
      }
    }
    return out;
  }
  // Read cursor: forward only, clamped to last_seq; returns the cursor after the update.
  virtual Result<std::uint64_t> advance_read(Id user_id, const ConvKey& conv,
                                             std::uint64_t seq) = 0;

  // Every channel the user is a member of and every DM they take part in.
  virtual Result<std::vector<ConversationState>> conversations(Id user_id) = 0;
};

}  // namespace imd
