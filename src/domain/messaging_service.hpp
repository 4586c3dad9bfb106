// Messaging: the send path (validate -> Queue -> consume: Store -> Inbox -> ACK -> fan-out),
// delivery ACKs, read markers, history (roaming), the conversation list with unread counts.
// What a (re)connecting client missed is SyncService's (sync_service.hpp).
//
// Caches: channel members (MemberCache: access checks, fan-out), the user's spaces
// (UserCache: the conversation list's space roll-up) and delivery cursors (CursorCache: an ACK
// at or below the cached cursor is answered without a write).
//
// Guarantees (docs/architecture.md §2): a `sent` ACK is pushed only after the Store committed
// the message (and, for a DM, the recipient's inbox holds it); (sender, cid) is stored once;
// fan-out happens from the single consumer in seq order, so each connection sees a
// conversation in order. Thread-safe; blocking calls (Store, Inbox) belong on the pool;
// consume() runs on the queue's consumer thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/clock.hpp"
#include "common/id_generator.hpp"
#include "domain/attachments.hpp"
#include "domain/ports/cursor_cache.hpp"
#include "domain/ports/inbox.hpp"
#include "domain/ports/member_cache.hpp"
#include "domain/ports/presence.hpp"
#include "domain/ports/pusher.hpp"
#include "domain/ports/queue.hpp"
#include "domain/ports/routes.hpp"
#include "domain/ports/store.hpp"
#include "domain/ports/user_cache.hpp"

namespace imd {

struct SendInput {
  std::string cid;
  std::optional<Id> to;       // a DM to this user ...
  std::optional<Id> channel;  // ... or a message to this channel (exactly one of the two)
  std::string type;
  std::string body;
  std::optional<Id> reply_to;  // a message of the same conversation this one answers
  // type "file" or "image": the uploaded file it carries (body: an optional caption).
  std::optional<std::string> file;
};

// A change of a stored message: an edit (new body), an erase (delete), or a reaction (body:
// the emoji, added when `on`, else taken back).
struct ChangeInput {
  Id id = 0;
  Change change = Change::none;
  std::string body;
  bool on = true;
};

struct SpaceUnread {
  Id space_id = 0;
  std::uint64_t unread = 0;
  std::uint64_t mentions = 0;
};

struct ConversationList {
  std::vector<ConversationState> conversations;
  std::vector<SpaceUnread> spaces;  // every space of the user, with its channels' unread summed
};

// What MessagingService reads through caches.
struct MessagingCaches {
  MemberCache& members;
  UserCache& users;
  CursorCache& cursors;
};

struct MessagingLimits {
  std::size_t max_message_bytes = 16 * 1024;
  // The DM policy (docs/security.md "Direct messages"): true, a user may DM only users they
  // share a space with or already have a DM with; false, anyone. Blocks apply either way.
  bool dm_shared_space_only = true;
  // Who may mention @channel / @here: false, the space's owner and admins; true, any member.
  bool channel_mentions_by_members = false;
};

// How long a DM the policy allowed is remembered per (sender, recipient) in each process (the
// send path's fast path): a block, or the end of the last shared space, made through another
// process takes effect within this time. Refusals are not remembered.
inline constexpr Millis kDmPolicyTtlMs = 2000;
// How long a member's history floor (a channel's history_from_join) is remembered in each
// process: turning the setting on or off elsewhere takes effect within this time.
inline constexpr Millis kHistoryFloorTtlMs = 2000;

inline constexpr std::size_t kMaxCidBytes = 64;
inline constexpr std::uint32_t kMaxHistoryPage = 100;
inline constexpr std::size_t kMaxTypingMembers = 1000;

bool is_message_type(std::string_view type);
// The user ids a body mentions (`<@USER_ID>`), each once, in order of appearance, at most
// kMaxMentions.
inline constexpr std::size_t kMaxMentions = 50;
std::vector<Id> mentioned_ids(std::string_view body);
// A channel body's broadcast mention (docs/protocol.md "Mentions"): `<!channel>` (every member)
// wins over `<!here>` (every member online).
enum class Broadcast : std::uint8_t { none, here, channel };
Broadcast broadcast_of(std::string_view body);
// The mention row that stands for every member of a channel (an @channel).
inline constexpr Id kEveryMember = 0;
std::uint64_t unread_of(const ConversationState& c);

class MessagingService {
 public:
  MessagingService(Store& store, Inbox& inbox, Queue& queue, MessagingCaches caches, Routes& routes,
                   Pusher& pusher, IdGenerator& ids, Clock& clock, MessagingLimits limits);

  // Files sent in messages (null: a send of type file/image is refused). Set once, before the
  // service is used.
  void set_attachments(Attachments* attachments) { attachments_ = attachments; }
  // Who is online, for @here (null: @here mentions nobody). Set once, before use.
  void set_presence(PresenceStore* presence) { presence_ = presence; }

  // Validates (target, membership, type, UTF-8, size) and publishes to the queue. The `sent`
  // ACK, or a SendFailedEvent, reaches `origin` through the Pusher later.
  Result<void> submit(Id sender, const SendInput& in, ConnRef origin);
  // submit() when every lookup it needs is answered from this process's memory: then it never
  // blocks, and an I/O thread may call it (no hand-off to the blocking pool per message).
  // nullopt when it would have to block (a cache miss, a remote cache): call submit() on the
  // blocking pool instead. Nothing was published then.
  std::optional<Result<void>> try_submit(Id sender, const SendInput& in, ConnRef origin);

  // Validates a change of a stored message and publishes it to the queue, like a send (so it is
  // applied by the consumer of its conversation, in order with its sends). not_found when the
  // message does not exist, is deleted or is in a conversation the user cannot read; forbidden
  // when it is someone else's (edit; erase too, except by an owner or admin of the space of
  // the message's channel: moderators delete anyone's; anyone who reads it may react);
  // payload_too_large
  // for an oversized edit; invalid_argument for an emoji that is not 1..32 bytes of UTF-8
  // without spaces or control characters. The changed message
  // reaches every connection of the conversation's members (the origin's too: that is its
  // answer); a change that fails later is a SendFailedEvent to `origin`. Blocking.
  Result<void> change(Id user, const ChangeInput& in, ConnRef origin);
  // A server admin's delete (AdminService checks who may): the message, in any conversation, is
  // tombstoned through the same queue and consumer as its sender's own delete (the `deleted`
  // frame to every connection of the conversation, the body and a file's bytes removed).
  // Returns the message as it was; not_found for a missing or already deleted one. Blocking.
  Result<Message> erase_by_server_admin(Id message_id);
  // Whether `user` is an owner or admin of the space of the channel `conv` (false for a DM).
  Result<bool> moderates(Id user, const ConvKey& conv);

  // The queue's consumer: stores a batch in one transaction, then inbox, ACKs, fan-out.
  // Changes (NewMessage::change) in the batch are applied in their place in it.
  // `retry` when an engine failed and the queue redelivers (see Queue::Outcome).
  Queue::Outcome consume(std::vector<NewMessage>& batch);

  // A cumulative delivery ACK. One at or below the cached delivery cursor is answered at once
  // (it would not move the stored one). Others are gathered in memory and written with the
  // others every `ack_flush` interval in one transaction (a crash loses at most that interval
  // of ACKs: the messages are delivered again, and clients drop what they already hold by seq).
  Result<void> ack(Id user, const ConvKey& conv, std::uint64_t seq);
  // ack() without blocking, or nullopt when it would block (as try_submit()).
  std::optional<Result<void>> try_ack(Id user, const ConvKey& conv, std::uint64_t seq);
  // Writes the gathered ACKs now (a resync calls it so that it starts from current cursors):
  // the Store's cursors, then the inbox, then the cursor cache with the cursors the Store
  // returned (so the cache never runs ahead of the Store).
  Result<void> flush_acks();
  // Starts the background ACK writer; stop() writes what is left and joins it.
  void start(std::chrono::milliseconds ack_flush);
  void stop();
  // Asks the background writer to write the gathered ACKs now rather than at its next tick
  // (a connection closed: its user may reconnect elsewhere and resync from the store).
  // Never blocks.
  void flush_soon();
  ~MessagingService();
  // Moves the read cursor forward and tells the user's other connections, and in a DM the
  // peer's (a read receipt).
  Result<std::uint64_t> read(Id user, const ConvKey& conv, std::uint64_t seq, ConnRef origin);

  // DM read receipts (docs/protocol.md "Read receipts"): a user who turns them off sends none
  // (their read marker reaches only their own devices) and sees none (no `seen`, no
  // `peer_read_seq`). On by default. Blocking.
  Result<bool> read_receipts(Id user);
  Result<void> set_read_receipts(Id user, bool on);

  // The user directory (docs/api.md, GET /users?q=): the people `caller` may DM under the DM
  // policy whose name starts with `query` (case-insensitive), by name, paged by the last user's
  // id (`after`, 0 first). With the shared_space policy, those sharing a space with the caller
  // (an empty query lists them all); with "anyone", everyone by a prefix, and those sharing a
  // space without one. Never the caller,
  // never a deactivated account, no phones. invalid_argument for a query over kMaxNameBytes or
  // not UTF-8, or an unknown `after`. Blocking.
  Result<Page<User>> directory(Id caller, const std::string& query, Id after, std::uint32_t limit);

  // `user` is typing in `conv`: a TypingEvent to the connections of the conversation's other
  // members that are online. Nothing is stored; clients let it expire. A channel of more than
  // kMaxTypingMembers members gets none (bounded fan-out). forbidden unless the user may read
  // the conversation. Blocking (member list, routes).
  Result<void> typing(Id user, const ConvKey& conv);

  // A channel with history_from_join shows its member only what came after their join.
  Result<std::vector<Message>> history(Id user, const ConvKey& conv, HistoryQuery q);
  // One message by id, as history shows it (a reply's quoted original that the client has not
  // loaded): not_found unless `user` may read it (a member of its channel above their history
  // floor, or a party of its DM). Blocking.
  Result<Message> message(Id user, Id message_id);
  // The seq after which `user` reads `conv` (Store::history_floor; 0 for a DM), remembered
  // for kHistoryFloorTtlMs. Blocking the first time.
  Result<std::uint64_t> history_floor(Id user, const ConvKey& conv);
  // history() without blocking: answered when the access check and the page are in this
  // process's memory (member list, known users, the Store's cached rows); nullopt otherwise,
  // and also for any request history() would refuse (the caller then asks history()).
  std::optional<std::vector<Message>> try_history(Id user, const ConvKey& conv,
                                                  const HistoryQuery& q);
  Result<ConversationList> conversations(Id user);

  // Warm-up when a user connects: their memberships, then their channels' member lists. Best
  // effort: errors are logged (a cold cache costs the first request a load).
  void warm(Id user);

  // forbidden unless the user may read the conversation (channel member / DM participant).
  Result<void> check_access(Id user, const ConvKey& conv);

  // Blocks: `user` refuses DMs from `target` (and may not DM them either). Idempotent;
  // not_found for an unknown target.
  Result<void> block(Id user, Id target);
  Result<void> unblock(Id user, Id target);
  Result<Page<Blocked>> blocks(Id user, Id after, std::uint32_t limit);

 private:
  // Queues change `in` of stored message `m` by `from` (checked by the caller).
  Result<void> publish_change(const Message& m, Id from, const ChangeInput& in, ConnRef origin);
  // Pushes `m` (a new message, or a changed one) to the connections of its conversation's
  // members but `skip`.
  void fan_out(const Message& m, ConnRef skip, std::vector<Push>& out, bool changed = false);
  // consume() of a run of sends / of changes; false: retry the whole batch (nothing pushed).
  bool consume_sends(std::span<NewMessage> run, std::vector<Push>& pushes);
  bool consume_changes(std::span<NewMessage> run, std::vector<Push>& pushes);
  // NewMessage::mentions of a send: the mentioned ids that are members of its conversation,
  // but the sender.
  void find_mentions(NewMessage& nm);
  // How the bodies below may get what they need: may_block (the Store, remote caches) or
  // in_memory, where a lookup that is not in this process's memory returns nullopt at once,
  // before any side effect (the inline-first policy of common/offload.hpp). With may_block
  // they never return nullopt.
  enum class Lookup { may_block, in_memory };
  std::optional<Result<void>> submit_impl(Id sender, const SendInput& in, ConnRef origin,
                                          Lookup how);
  std::optional<Result<void>> access(Id user, const ConvKey& conv, Lookup how);
  // Whether `from` may send a DM to `to` (blocks, MessagingLimits::dm_shared_space_only); an
  // allowed pair is remembered for kDmPolicyTtlMs.
  std::optional<Result<void>> dm_allowed(Id from, Id to, Lookup how);
  void forget_dm_policy(Id a, Id b);
  // A message body (send, edit): not empty, within the limit, UTF-8.
  Result<void> check_body(const std::string& body) const;
  // Adds an ACK to the gathered ones. Returns whether they reached their bound (the caller
  // then writes them), or nullopt (nothing gathered) when `refuse_at_bound` and they had.
  std::optional<bool> gather_ack(Id user, const ConvKey& conv, std::uint64_t seq,
                                 bool refuse_at_bound);

  Store& store_;
  Inbox& inbox_;
  Queue& queue_;
  MemberCache& members_;
  UserCache& users_;
  CursorCache& cursors_;
  Routes& routes_;
  Pusher& pusher_;
  IdGenerator& ids_;
  Clock& clock_;
  MessagingLimits limits_;
  Attachments* attachments_ = nullptr;
  PresenceStore* presence_ = nullptr;

  static constexpr std::size_t kMaxPendingAcks = 100000;

  // Users known to exist (ids are never reused, so a positive answer never goes stale);
  // spares the send path a Store read per DM. Bounded: cleared when full.
  bool known_user(Id user);
  static constexpr std::size_t kMaxKnownUsers = 1 << 20;
  std::mutex known_mu_;
  std::unordered_set<Id> known_users_;
  // (sender, DM) pairs the policy allowed, until when. Bounded: cleared when full.
  static constexpr std::size_t kMaxDmVerdicts = 1 << 16;
  std::mutex dm_mu_;
  std::unordered_map<MemberKey, Millis, MemberKeyHash> dm_allowed_until_;
  // Members' history floors: (floor, until when). Bounded like the DM verdicts.
  std::mutex floor_mu_;
  std::unordered_map<MemberKey, std::pair<std::uint64_t, Millis>, MemberKeyHash> floors_;
  std::optional<std::uint64_t> cached_floor(Id user, const ConvKey& conv);
  std::mutex ack_mu_;
  std::condition_variable ack_cv_;
  std::unordered_map<MemberKey, std::uint64_t, MemberKeyHash> pending_acks_;
  std::mutex flush_mu_;  // one flush at a time keeps cursor writes in order
  bool stopping_ = false;
  bool flush_now_ = false;  // guarded by ack_mu_
  std::thread flusher_;
};

}  // namespace imd
