// Plain value types shared by services, ports and adapters. No behaviour beyond keys.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/types.hpp"

namespace imd {

struct User {
  Id id = 0;
  std::string name;
  std::string avatar;
  std::string phone;
  Millis created_at = 0;
};

// A user's account as the server administration sees it: ended sessions and deactivation,
// kept in the store so that every process of a cluster (and this one after a restart) refuses
// the access tokens they cover.
struct AccountState {
  Id user_id = 0;
  Millis sessions_before = 0;  // access tokens issued before this (ms) are refused
  bool deactivated = false;
  Millis changed_at = 0;  // wall clock of the last change (ms), what processes poll by
};

// A user with their account's state (the admin API's user list).
struct UserStatus {
  User user;
  bool deactivated = false;
};

struct UserCredentials {
  User user;
  std::string password_hash;  // libsodium crypto_pwhash_str output
};

struct RefreshToken {
  std::string token_hash;  // SHA-256 of the opaque token, hex; the token itself is never stored
  Id user_id = 0;
  Millis expires_at = 0;
  Id session_id = 0;  // the login it was rotated from; 0 for tokens from before sessions
};

// A login on one device (docs/security.md "Sessions"): what every refresh token rotated from
// it, and the access tokens and WebSocket tickets issued from those, carry.
struct LoginSession {
  Id id = 0;
  Id user_id = 0;
  Millis created_at = 0;
  Millis last_used_at = 0;  // the last login or refresh
  Millis expires_at = 0;    // its newest refresh token's expiry
  Millis ended_at = 0;      // 0 while it lives
  std::string user_agent;   // as sanitized by AuthService
  std::string ip;
};

// A session that ended (what every process polls to refuse its access tokens).
struct EndedSession {
  Id id = 0;
  Id user_id = 0;
  Millis ended_at = 0;
};

struct Space {
  Id id = 0;
  std::string name;
  std::string avatar;
  Id owner_id = 0;
  Millis created_at = 0;
  // Listed to every user and joinable without an invitation (docs/security.md "Spaces").
  bool discoverable = false;
};

// A member's role in a space (docs/security.md "Roles"). Stored as these numbers.
enum class SpaceRole : std::uint8_t { member = 0, admin = 1, owner = 2 };

// An invitation to a space: `code` is the secret (>= 128 random bits, URL-safe). Usable while
// not revoked, before expires_at and while uses < max_uses.
struct Invite {
  std::string code;
  Id space_id = 0;
  Id created_by = 0;
  Millis created_at = 0;
  Millis expires_at = 0;
  std::uint32_t max_uses = 0;
  std::uint32_t uses = 0;
};

// What accepting an invitation did (Store::accept_invite).
enum class InviteOutcome : std::uint8_t {
  joined,          // the user is now a member; one use consumed
  already_member,  // nothing changed, no use consumed
  banned,          // the user is banned from the space; nothing changed
};
struct AcceptedInvite {
  Id space_id = 0;
  InviteOutcome outcome = InviteOutcome::joined;
};

struct Channel {
  Id id = 0;
  Id space_id = 0;
  std::string name;
  std::string avatar;
  Id owner_id = 0;
  Millis created_at = 0;
  std::uint64_t last_seq = 0;
  Id last_message_id = 0;
  // Hidden from non-members; joined only by being added (docs/security.md "Channels").
  bool is_private = false;
  // Read-only: history stays readable by its members, sends and edits are refused.
  bool archived = false;
  // Members who join see history from their join on only (Store::add_channel_member).
  bool history_from_join = false;
};

// The ids of a user's spaces and of the channels they are a member of, each ascending: what
// the user cache holds per online user (ports/user_cache.hpp).
struct Memberships {
  std::vector<Id> spaces;
  std::vector<Id> channels;
  bool operator==(const Memberships&) const = default;
};

struct Member {
  Id user_id = 0;
  std::string name;
  std::string avatar;
  Millis joined_at = 0;
  std::optional<SpaceRole> role;  // space member lists only
};

// A user someone blocked (GET /users/me/blocks).
struct Blocked {
  Id user_id = 0;
  std::string name;
  Millis blocked_at = 0;
};

// What decides whether `from` may start or continue a DM with `to` (Store::dm_policy).
struct DmPolicy {
  bool blocked_by_peer = false;  // `to` blocked `from`
  bool blocked_peer = false;     // `from` blocked `to`
  bool shares_space = false;
  bool has_conversation = false;  // a DM between them exists already
};

// A page of a keyset-paged list (by id, ascending; members by user id).
template <class T>
struct Page {
  std::vector<T> items;
  std::optional<Id> next_after;  // pass as `after` for the next page; none at the end
};
inline constexpr std::uint32_t kMaxPageSize = 100;

// A conversation: a channel (a = channel id, b = 0) or a direct-message pair
// (a < b are the two user ids). Every conversation has its own dense seq 1, 2, 3, ...
enum class ConvKind : std::uint8_t { channel = 1, dm = 2 };

struct ConvKey {
  ConvKind kind = ConvKind::channel;
  Id a = 0;
  Id b = 0;

  static ConvKey channel(Id channel_id) { return {ConvKind::channel, channel_id, 0}; }
  static ConvKey dm(Id u1, Id u2) {
    return u1 < u2 ? ConvKey{ConvKind::dm, u1, u2} : ConvKey{ConvKind::dm, u2, u1};
  }
  bool is_channel() const { return kind == ConvKind::channel; }
  bool is_dm() const { return kind == ConvKind::dm; }
  Id channel_id() const { return a; }
  // For a DM, the participant that is not `me`.
  Id peer_of(Id me) const { return a == me ? b : a; }
  bool has_participant(Id u) const { return is_dm() && (a == u || b == u); }
  auto operator<=>(const ConvKey&) const = default;
};

struct ConvKeyHash {
  std::size_t operator()(const ConvKey& k) const noexcept {
    std::uint64_t h = k.a * 0x9E3779B97F4A7C15ull ^ (k.b + 0x632BE59BD9B4E019ull + (k.a << 6));
    return static_cast<std::size_t>(h ^ static_cast<std::uint64_t>(k.kind));
  }
};

// What happened last to a stored message (docs/protocol.md "Changes"). A change is applied by
// the consumer of the message's conversation, like a send, and numbered by the conversation's
// `rev` counter (dense 1, 2, 3 ..., separate from seq).
enum class Change : std::uint8_t { none = 0, edit = 1, erase = 2, react = 3 };

// One emoji's reactions on a message: who reacted, ascending. A message holds at most
// kMaxReactionEmoji emoji with at most kMaxReactionUsers users each.
struct Reaction {
  std::string emoji;
  std::vector<Id> users;
  bool operator==(const Reaction&) const = default;
};
inline constexpr std::size_t kMaxReactionEmoji = 20;
inline constexpr std::size_t kMaxReactionUsers = 100;
inline constexpr std::size_t kMaxEmojiBytes = 32;

struct Message {
  Id id = 0;  // snowflake, global
  ConvKey conv;
  std::uint64_t seq = 0;  // dense within conv
  Id from = 0;
  Id to = 0;  // the DM recipient; 0 for channel messages
  std::string type;
  std::string body;
  Millis created_at = 0;
  std::string cid;  // the sender's client id (unique per sender)
  Id reply_to = 0;  // the message this one answers (same conversation), 0 for none
  // The conversation's rev at this message's last change (0: never changed), what that change
  // was, and the state it left: the body of the last edit (edited_at) or none (deleted).
  std::uint64_t rev = 0;
  Change change = Change::none;
  Millis edited_at = 0;
  bool deleted = false;
  std::vector<Reaction> reactions{};  // in order of each emoji's first use
};

// What Store::delete_channel removed that others must still hear of: who was in the channel,
// and the file messages that shared files there (their files are let go: Attachments).
struct DeletedChannel {
  Channel channel;
  std::vector<Id> members;
  std::vector<Message> file_messages;
};

// A send accepted by a gateway and waiting in the queue to be stored.
// `origin` names the connection that gets the `sent` ACK (node 0, conn 0 = none).
struct ConnRef {
  std::uint32_t node = 0;
  std::uint64_t conn = 0;
  auto operator<=>(const ConnRef&) const = default;
};

// Also a change of a stored message: then `change` is not none, msg.id names the message,
// msg.conv its conversation, msg.from who changes it, msg.created_at when; an edit's new body is
// msg.body. `change_id` (unique, from the IdGenerator) makes a redelivered change a no-op.
struct NewMessage {
  Message msg;  // id, conv, from, to, type, body, created_at, cid set; seq assigned by the store
  ConnRef origin;
  // 1 on first delivery to a consumer; more when a queue redelivers it (see Queue).
  std::uint32_t attempt = 1;
  Change change = Change::none;
  Id change_id = 0;
  bool react_on = false;  // a reaction: added (true) or taken back; the emoji is msg.body
  // The members a send mentions (`<@USER_ID>` in its body), set by the consumer before storing.
  std::vector<Id> mentions;
};

// The outcome of applying one change: the message as it is now. `duplicate`: this change_id
// was applied already (a redelivery); nothing was written.
struct Changed {
  Message msg;
  bool duplicate = false;
};

// Changes of one conversation by rev: the current state of every message whose last change has
// a rev in (after_rev, up_to_rev] and a seq in (after_seq, up_to_seq], ascending by rev.
struct ChangeQuery {
  std::uint64_t after_rev = 0;
  std::uint64_t up_to_rev = 0;
  std::uint64_t after_seq = 0;
  std::uint64_t up_to_seq = 0;
  std::uint32_t limit = 100;
};

// The outcome of storing one NewMessage. `duplicate` means (from, cid) was already stored:
// `msg` is then the original message and nothing new was written.
struct Appended {
  Message msg;
  bool duplicate = false;
};

// A user's view of one conversation, for the conversation list and unread counts.
struct ConversationState {
  ConvKey conv;
  Id space_id = 0;   // channels only
  std::string name;  // channel name; for a DM the peer's name
  std::string avatar;
  std::uint64_t last_seq = 0;
  std::uint64_t read_seq = 0;
  std::uint64_t ack_seq = 0;        // delivery cursor
  std::uint64_t last_rev = 0;       // the conversation's change counter (Message::rev)
  std::uint64_t mentions = 0;       // messages after read_seq that mention the user
  std::uint64_t peer_read_seq = 0;  // a DM's peer's read marker (read receipts)
  // A channel with history_from_join: the seq the member joined at; they read only after it.
  std::uint64_t history_floor = 0;
  std::optional<Message> last;
};

// A member of a conversation: the key of per-member state (delivery cursors).
struct MemberKey {
  Id user = 0;
  ConvKey conv;
  bool operator==(const MemberKey&) const = default;
};

struct MemberKeyHash {
  std::size_t operator()(const MemberKey& k) const noexcept {
    return ConvKeyHash{}(k.conv) ^ (k.user * 0x9E3779B97F4A7C15ull);
  }
};

// A cumulative delivery ACK: `user` has received `conv` up to `seq`.
struct DeliveryUpdate {
  Id user = 0;
  ConvKey conv;
  std::uint64_t seq = 0;
};

// Paging of history: at most one of before/after; neither means "the newest page".
struct HistoryQuery {
  std::optional<std::uint64_t> before_seq;
  std::optional<std::uint64_t> after_seq;
  std::uint32_t limit = 50;
};

}  // namespace imd
