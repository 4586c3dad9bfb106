// MessagingService (domain/messaging_service.hpp) in process, on the standalone adapters: the
// send path (submit -> queue -> consume: Store -> Inbox -> `sent` and fan-out through the routes
// and the Pusher), its validation, the non-blocking paths, read markers, history and the
// conversation list. The queue's consumer thread runs where a test starts it; the tests wait for
// the pushes they expect (RecordingPusher), never a fixed time.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "support/in_process.hpp"

namespace imd {
namespace {

using testing::error_of;
using testing::text_to_channel;
using testing::text_to_user;

// The SQLite inbox, whose pushes can be made to fail (the engine down between the Store's
// commit and the inbox write).
class FlakyInbox final : public testing::ForwardingInbox {
 public:
  using ForwardingInbox::ForwardingInbox;
  Result<void> push(std::span<const InboxItem> items) override {
    if (fail_push) return make_error(Errc::unavailable, "inbox down");
    return ForwardingInbox::push(items);
  }
  std::atomic<bool> fail_push{false};
};

constexpr Id kAlice = 1, kBob = 2, kCarol = 3, kDave = 4;  // Dave is in no space
constexpr Id kSpace = 50, kChannel = 60;

class Messaging : public ::testing::Test, protected testing::InProcess<FlakyInbox> {
 protected:
  void SetUp() override {
    add_users({kAlice, kBob, kCarol, kDave});
    add_channel(kSpace, kChannel, kAlice, {kBob, kCarol});
  }

  static std::vector<std::uint64_t> seqs(const std::vector<MessageEvent>& events) {
    std::vector<std::uint64_t> out;
    for (const auto& e : events) out.push_back(e.msg.seq);
    return out;
  }
  static std::vector<std::uint64_t> seqs(const std::vector<Message>& messages) {
    std::vector<std::uint64_t> out;
    for (const auto& m : messages) out.push_back(m.seq);
    return out;
  }
  static ConversationState find(const ConversationList& list, const ConvKey& conv) {
    for (const auto& c : list.conversations) {
      if (c.conv == conv) return c;
    }
    ADD_FAILURE() << "conversation not listed";
    return {};
  }

  // How many changes (MessageEvent::changed) `all` pushed to `conn`.
  static int changes_to(const std::vector<Push>& all, ConnRef conn) {
    int n = 0;
    for (const auto& p : all) {
      const auto* e = std::get_if<MessageEvent>(p.event.get());
      if (!e || !e->changed) continue;
      for (ConnRef t : p.targets) n += t == conn ? 1 : 0;
    }
    return n;
  }

  const ConvKey alice_bob_ = ConvKey::dm(kAlice, kBob);
  const ConvKey channel_ = ConvKey::channel(kChannel);
};

// A DM: stored with the next seq, in the recipient's inbox, `sent` to the sending connection,
// the message to every connection of the recipient and to the sender's other connections, each
// in seq order; nobody else hears of it.
TEST_F(Messaging, ADmIsStoredInboxedAckedAndFannedOutInOrder) {
  start_queue();
  ConnRef a1 = connect(kAlice), a2 = connect(kAlice);
  ConnRef b1 = connect(kBob), b2 = connect(kBob);
  ConnRef c1 = connect(kCarol);
  for (int i = 1; i <= 5; ++i) {
    auto in = text_to_user(kBob, "c" + std::to_string(i), "m" + std::to_string(i));
    ASSERT_TRUE(messaging.submit(kAlice, in, a1).ok());
  }
  auto sent = pusher.wait_events<SentEvent>(a1, 5);
  ASSERT_EQ(sent.size(), 5u);
  auto to_b1 = pusher.wait_events<MessageEvent>(b1, 5);
  ASSERT_EQ(to_b1.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(sent[i].cid, "c" + std::to_string(i + 1));
    EXPECT_EQ(sent[i].seq, i + 1);
    EXPECT_EQ(sent[i].conv, alice_bob_);
    EXPECT_EQ(sent[i].sender, kAlice);
    EXPECT_EQ(sent[i].created_at, clock.now_ms());  // the injected clock's time
    EXPECT_EQ(to_b1[i].msg.id, sent[i].id);
    EXPECT_EQ(to_b1[i].msg.body, "m" + std::to_string(i + 1));
    EXPECT_EQ(to_b1[i].msg.to, kBob);
  }
  const std::vector<std::uint64_t> one_to_five = {1, 2, 3, 4, 5};
  EXPECT_EQ(seqs(to_b1), one_to_five);
  EXPECT_EQ(seqs(pusher.wait_events<MessageEvent>(b2, 5)), one_to_five);
  EXPECT_EQ(seqs(pusher.wait_events<MessageEvent>(a2, 5)), one_to_five);  // sender's other device
  EXPECT_TRUE(pusher.events<MessageEvent>(a1).empty());  // the sending one gets `sent` instead
  EXPECT_TRUE(pusher.events_to(c1).empty());

  auto history = messaging.history(kBob, alice_bob_, {});
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(seqs(*history), one_to_five);
  auto inboxed = inbox.list(kBob, std::nullopt, 100);
  ASSERT_TRUE(inboxed.ok());
  EXPECT_EQ(seqs(*inboxed), one_to_five);
}

// Changes go through the queue like sends, are applied in order with them, and reach every
// connection of the conversation (the origin's too: its answer); a send followed by its edit
// in one batch is stored before the edit is applied.
TEST_F(Messaging, ChangesAreQueuedAppliedInOrderAndFannedOutToEveryConnection) {
  start_queue();
  ConnRef a1 = connect(kAlice), a2 = connect(kAlice), b1 = connect(kBob), d1 = connect(kDave);
  auto first = send(kAlice, text_to_channel(kChannel, "x1", "one"), a1);
  auto second = send(kAlice, text_to_channel(kChannel, "x2", "two"), a1);
  ASSERT_TRUE(first && second);
  ASSERT_TRUE(
      messaging.change(kAlice, ChangeInput{first->id, Change::edit, "one, edited"}, a1).ok());
  ASSERT_TRUE(messaging.change(kAlice, ChangeInput{second->id, Change::erase, {}}, a2).ok());
  for (ConnRef c : {a1, a2, b1}) {
    ASSERT_TRUE(
        pusher.wait_until([&](const std::vector<Push>& all) { return changes_to(all, c) == 2; }));
    std::vector<MessageEvent> changes;
    for (auto& e : pusher.events<MessageEvent>(c)) {
      if (e.changed) changes.push_back(e);
    }
    EXPECT_EQ(changes[0].msg.rev, 1u);
    EXPECT_EQ(changes[0].msg.change, Change::edit);
    EXPECT_EQ(changes[0].msg.body, "one, edited");
    EXPECT_EQ(changes[0].msg.edited_at, clock.now_ms());
    EXPECT_EQ(changes[1].msg.rev, 2u);
    EXPECT_TRUE(changes[1].msg.deleted);
    EXPECT_TRUE(changes[1].msg.body.empty());
  }
  EXPECT_TRUE(pusher.events_to(d1).empty());
  auto history = messaging.history(kBob, channel_, {});
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].body, "one, edited");
  EXPECT_TRUE((*history)[1].deleted);

  // One batch: a send, then the edit of a stored message, then another send.
  queue.stop();
  std::vector<NewMessage> batch;
  batch.push_back(testing::channel_msg(777, kChannel, kAlice, "x3", "three"));
  NewMessage edit;
  edit.change = Change::edit;
  edit.change_id = 4242;
  edit.msg.id = first->id;
  edit.msg.conv = channel_;
  edit.msg.from = kAlice;
  edit.msg.body = "one, again";
  edit.origin = a1;
  batch.push_back(edit);
  batch.push_back(testing::channel_msg(778, kChannel, kAlice, "x4", "four"));
  ASSERT_EQ(messaging.consume(batch), Queue::Outcome::done);
  auto list = messaging.history(kBob, channel_, {});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 4u);
  EXPECT_EQ((*list)[0].body, "one, again");
  EXPECT_EQ((*list)[0].rev, 3u);
  EXPECT_EQ((*list)[3].body, "four");
}

// Refused before the queue: nothing is published, the error names why.
TEST_F(Messaging, ChangesOfOthersMissingOrDeletedMessagesAreRefused) {
  start_queue();
  ConnRef a1 = connect(kAlice), b1 = connect(kBob);
  auto sent = send(kAlice, text_to_channel(kChannel, "y1", "mine"), a1);
  auto dm = send(kAlice, text_to_user(kBob, "y2", "psst"), a1);
  ASSERT_TRUE(sent && dm);
  auto refused = [&](Id user, ChangeInput in) { return error_of(messaging.change(user, in, b1)); };
  EXPECT_EQ(refused(kBob, {sent->id, Change::edit, "not mine"}), Errc::forbidden);
  EXPECT_EQ(refused(kBob, {sent->id, Change::erase, {}}), Errc::forbidden);
  EXPECT_EQ(refused(kDave, {sent->id, Change::edit, "x"}), Errc::not_found);  // cannot read it
  EXPECT_EQ(refused(kCarol, {dm->id, Change::erase, {}}), Errc::not_found);   // not her DM
  EXPECT_EQ(refused(kAlice, {987654321, Change::edit, "x"}), Errc::not_found);
  EXPECT_EQ(refused(kAlice, {0, Change::edit, "x"}), Errc::invalid_argument);
  EXPECT_EQ(refused(kAlice, {sent->id, Change::edit, ""}), Errc::invalid_argument);
  EXPECT_EQ(refused(kAlice, {sent->id, Change::edit, std::string(16 * 1024 + 1, 'x')}),
            Errc::payload_too_large);
  EXPECT_EQ(refused(kAlice, {sent->id, Change::edit, "\xff"}), Errc::invalid_argument);
  EXPECT_EQ(refused(kAlice, {sent->id, Change::none, "x"}), Errc::invalid_argument);
  ASSERT_TRUE(messaging.change(kAlice, {sent->id, Change::erase, {}}, a1).ok());
  ASSERT_TRUE(
      pusher.wait_until([&](const std::vector<Push>& all) { return changes_to(all, b1) == 1; }));
  EXPECT_EQ(refused(kAlice, {sent->id, Change::edit, "back"}), Errc::not_found);
  EXPECT_EQ(refused(kAlice, {sent->id, Change::erase, {}}), Errc::not_found);
}

// A change that the store refuses when it applies it (here: deleted after the check) is an
// error to its origin, naming the change and the message.
TEST_F(Messaging, AChangeRefusedWhenAppliedIsAnErrorToItsOrigin) {
  ConnRef a1 = connect(kAlice);
  store_posts(kAlice, kChannel, 1);
  auto m = store.messages(channel_, {});
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->size(), 1u);
  ASSERT_TRUE(messaging.change(kAlice, {(*m)[0].id, Change::erase, {}}, a1).ok());
  ASSERT_TRUE(messaging.change(kAlice, {(*m)[0].id, Change::edit, "too late"}, a1).ok());
  start_queue();
  auto failed = pusher.wait_events<SendFailedEvent>(a1, 1);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].error.code, Errc::not_found);
  EXPECT_EQ(failed[0].change, Change::edit);
  EXPECT_EQ(failed[0].id, (*m)[0].id);
}

// `<@USER_ID>`: digits only, each id once, in order, bounded.
TEST(Mentions, AreParsedFromTheBody) {
  using V = std::vector<Id>;
  EXPECT_EQ(mentioned_ids("hi <@12> and <@7>, <@12> again"), (V{12, 7}));
  EXPECT_EQ(mentioned_ids("<@> <@x1> <@1x> <@ 5> <@0> <@99999999999999999999999> <@3"), V{});
  EXPECT_EQ(mentioned_ids("<<@5>>"), V{5});
  std::string many;
  for (int i = 1; i <= 80; ++i) many += "<@" + std::to_string(i) + ">";
  EXPECT_EQ(mentioned_ids(many).size(), kMaxMentions);
}

// A channel message reaches every member's connections but the sending one, and no one else.
TEST_F(Messaging, AChannelMessageReachesEveryMemberConnection) {
  start_queue();
  ConnRef a1 = connect(kAlice), a2 = connect(kAlice);
  ConnRef b1 = connect(kBob), c1 = connect(kCarol), d1 = connect(kDave);
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(send(kAlice, text_to_channel(kChannel, "p" + std::to_string(i)), a1));
  }
  const std::vector<std::uint64_t> one_to_three = {1, 2, 3};
  for (ConnRef c : {a2, b1, c1})
    EXPECT_EQ(seqs(pusher.wait_events<MessageEvent>(c, 3)), one_to_three);
  EXPECT_TRUE(pusher.events<MessageEvent>(a1).empty());
  EXPECT_TRUE(pusher.events_to(d1).empty());
  auto inboxed = inbox.list(kBob, std::nullopt, 100);  // channels have no inbox
  ASSERT_TRUE(inboxed.ok());
  EXPECT_TRUE(inboxed->empty());
}

// (sender, cid) is stored once: a retry is answered with the original message and not pushed
// to the recipients again.
TEST_F(Messaging, ARetriedCidIsStoredOnceAndAnsweredWithTheOriginal) {
  start_queue();
  ConnRef a1 = connect(kAlice), b1 = connect(kBob);
  auto first = send(kAlice, text_to_user(kBob, "same", "first"), a1);
  ASSERT_TRUE(first);
  auto again = send(kAlice, text_to_user(kBob, "same", "second"), a1);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, first->id);
  EXPECT_EQ(again->seq, 1u);
  EXPECT_EQ(again->cid, "same");
  // The retry's answer and any fan-out of it are pushed in one call: nothing more can come.
  auto to_b1 = pusher.events<MessageEvent>(b1);
  ASSERT_EQ(to_b1.size(), 1u);
  EXPECT_EQ(to_b1[0].msg.body, "first");
  auto history = messaging.history(kAlice, alice_bob_, {});
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ(history->front().body, "first");
  // The same cid from another sender is another message.
  auto other = send(kCarol, text_to_user(kBob, "same"), connect(kCarol));
  ASSERT_TRUE(other);
  EXPECT_NE(other->id, first->id);
}

// `sent` means durable: a DM whose inbox write failed is stored and pushed live, but its sender
// gets an error, no `sent`; the retry with the same cid repairs the inbox and is acknowledged.
TEST_F(Messaging, NoSentBeforeTheInboxHoldsTheDmAndTheRetryRepairsIt) {
  start_queue();
  ConnRef a1 = connect(kAlice), b1 = connect(kBob);
  inbox.fail_push = true;
  ASSERT_TRUE(messaging.submit(kAlice, text_to_user(kBob, "x"), a1).ok());
  auto failed = pusher.wait_events<SendFailedEvent>(a1, 1);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].cid, "x");
  EXPECT_EQ(failed[0].error.code, Errc::unavailable);
  EXPECT_TRUE(pusher.events<SentEvent>(a1).empty());
  EXPECT_EQ(pusher.events<MessageEvent>(b1).size(), 1u);
  // The standalone inbox is the stored DM itself (SqliteInbox), so it lists it already; an inbox
  // of copies (Redis) would not hold it until the retry's push.
  EXPECT_EQ(seqs(*inbox.list(kBob, std::nullopt, 100)), std::vector<std::uint64_t>{1});

  inbox.fail_push = false;
  auto sent = send(kAlice, text_to_user(kBob, "x"), a1);
  ASSERT_TRUE(sent);
  EXPECT_EQ(sent->seq, 1u);
  EXPECT_EQ(seqs(*inbox.list(kBob, std::nullopt, 100)), std::vector<std::uint64_t>{1});
  EXPECT_EQ(pusher.events<MessageEvent>(b1).size(), 1u);
}

// Refused input is answered at once, and nothing reaches the queue.
// Routes that cannot be read (Redis away) are not "offline": the message goes out addressed to
// its users (every gateway resolves them), the sending connection excepted, and is still ACKed;
// a read marker falls back the same way; typing is not worth it and sends nothing.
TEST_F(Messaging, WithoutRoutesPushesAreAddressedToTheUsers) {
  start_queue();
  const ConnRef a1 = connect(kAlice), b1 = connect(kBob);
  routes.fail_lookups = true;
  auto sent = send(kAlice, text_to_user(kBob, "c1", "hi"), a1);
  ASSERT_TRUE(sent);
  auto by_user = [&](auto is_kind) {
    std::vector<Push> out;
    for (auto& p : pusher.pushes()) {
      if (is_kind(*p.event) && !p.users.empty()) out.push_back(p);
    }
    return out;
  };
  auto msgs = by_user([](const Event& e) { return std::holds_alternative<MessageEvent>(e); });
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_TRUE(msgs[0].targets.empty());
  EXPECT_EQ(msgs[0].users, (std::vector<Id>{kAlice, kBob}));
  EXPECT_EQ(msgs[0].except, a1);
  EXPECT_EQ(std::get<MessageEvent>(*msgs[0].event).msg.seq, sent->seq);

  ASSERT_TRUE(messaging.read(kBob, ConvKey::dm(kBob, kAlice), sent->seq, b1));
  auto reads = by_user([](const Event& e) { return std::holds_alternative<ReadEvent>(e); });
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].except, b1);

  const std::size_t before = pusher.pushes().size();
  ASSERT_TRUE(messaging.typing(kAlice, alice_bob_));
  EXPECT_EQ(pusher.pushes().size(), before);
}

TEST_F(Messaging, InvalidSendsAreRefusedBeforeTheQueue) {
  const ConnRef origin{1, 1};
  auto refused = [&](Id from, const SendInput& in) {
    return error_of(messaging.submit(from, in, origin));
  };
  SendInput in = text_to_user(kBob, "ok");
  in.body.clear();
  EXPECT_EQ(refused(kAlice, in), Errc::invalid_argument);
  in.body = std::string(16 * 1024 + 1, 'x');
  EXPECT_EQ(refused(kAlice, in), Errc::payload_too_large);
  in.body = "\xC3\x28";  // not UTF-8
  EXPECT_EQ(refused(kAlice, in), Errc::invalid_argument);
  in = text_to_user(kBob, "ok");
  in.type = "video";
  EXPECT_EQ(refused(kAlice, in), Errc::invalid_argument);
  for (std::string bad_cid : {std::string(), std::string(65, 'c'), std::string("a b")}) {
    EXPECT_EQ(refused(kAlice, text_to_user(kBob, bad_cid)), Errc::invalid_argument) << bad_cid;
  }
  in = text_to_user(kBob, "ok");
  in.channel = kChannel;  // both targets
  EXPECT_EQ(refused(kAlice, in), Errc::invalid_argument);
  in.to.reset();
  in.channel.reset();  // neither
  EXPECT_EQ(refused(kAlice, in), Errc::invalid_argument);
  EXPECT_EQ(refused(kAlice, text_to_user(kAlice, "ok")), Errc::invalid_argument);  // yourself
  EXPECT_EQ(refused(kAlice, text_to_user(999, "ok")), Errc::not_found);
  EXPECT_EQ(refused(kDave, text_to_channel(kChannel, "ok")), Errc::not_found);  // as if missing
  in = text_to_channel(kChannel, "ok");
  in.channel = 999;
  EXPECT_EQ(refused(kAlice, in), Errc::not_found);
  EXPECT_EQ(queue.depth(), 0u);

  // The limits themselves pass.
  ASSERT_TRUE(messaging
                  .submit(kAlice,
                          text_to_user(kBob, std::string(64, 'c'), std::string(16 * 1024, 'x')),
                          origin)
                  .ok());
  ASSERT_TRUE(messaging.submit(kBob, text_to_channel(kChannel, "ok", "\xC3\xA9"), origin).ok());
  EXPECT_EQ(queue.depth(), 2u);
  EXPECT_TRUE(pusher.pushes().empty());
}

// The I/O thread's calls never load anything: what is not in memory steps aside (nullopt) and
// leaves no trace, neither a published send, nor a gathered ACK, nor a loaded member list.
TEST_F(Messaging, TheNonBlockingPathsStepAsideWithoutSideEffects) {
  store_posts(kAlice, kChannel, 3);
  members.invalidate(kChannel);  // consume() loaded the list for its fan-out
  const ConnRef origin{1, 1};
  EXPECT_FALSE(messaging.try_submit(kBob, text_to_channel(kChannel, "t1"), origin).has_value());
  EXPECT_FALSE(messaging.try_ack(kBob, channel_, 3).has_value());
  EXPECT_FALSE(messaging.try_history(kBob, channel_, {}).has_value());
  EXPECT_FALSE(members.cached(kChannel).has_value());
  EXPECT_EQ(queue.depth(), 0u);
  ASSERT_TRUE(messaging.flush_acks().ok());  // nothing was gathered: the cursor stays
  EXPECT_EQ(find(*messaging.conversations(kBob), channel_).ack_seq, 0u);

  // Once the list is loaded, members are answered from memory, and so is a non-member: the
  // channel does not exist for them (not_found, as for a missing one), nothing published.
  ASSERT_TRUE(messaging.check_access(kBob, channel_).ok());
  auto submitted = messaging.try_submit(kBob, text_to_channel(kChannel, "t1"), origin);
  ASSERT_TRUE(submitted.has_value());
  EXPECT_TRUE(submitted->ok());
  EXPECT_EQ(queue.depth(), 1u);
  auto stranger = messaging.try_submit(kDave, text_to_channel(kChannel, "t2"), origin);
  ASSERT_TRUE(stranger.has_value());
  EXPECT_EQ(error_of(*stranger), Errc::not_found);
  auto stranger_ack = messaging.try_ack(kDave, channel_, 1);
  ASSERT_TRUE(stranger_ack.has_value());
  EXPECT_EQ(error_of(*stranger_ack), Errc::not_found);
  EXPECT_EQ(queue.depth(), 1u);
  auto acked = messaging.try_ack(kBob, channel_, 3);
  ASSERT_TRUE(acked.has_value());
  EXPECT_TRUE(acked->ok());
  ASSERT_TRUE(messaging.flush_acks().ok());
  EXPECT_EQ(find(*messaging.conversations(kBob), channel_).ack_seq, 3u);
  // A DM needs no member list; a stranger to it is refused from memory.
  auto foreign = messaging.try_ack(kCarol, alice_bob_, 1);
  ASSERT_TRUE(foreign.has_value());
  EXPECT_EQ(error_of(*foreign), Errc::forbidden);
}

// Read markers move forward only, are clamped to the last message, and each move is told to the
// user's other connections (not the one that read, not the other participant).
TEST_F(Messaging, ReadMarkersMoveForwardAndReachTheUsersOtherConnectionsAndTheDmPeer) {
  store_dms(kAlice, kBob, 5);
  ConnRef a1 = connect(kAlice), b1 = connect(kBob), b2 = connect(kBob), b3 = connect(kBob);
  auto r = messaging.read(kBob, alice_bob_, 3, b1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 3u);
  for (ConnRef c : {b2, b3}) {
    auto reads = pusher.events<ReadEvent>(c);
    ASSERT_EQ(reads.size(), 1u);
    EXPECT_EQ(reads[0].user_id, kBob);
    EXPECT_EQ(reads[0].conv, alice_bob_);
    EXPECT_EQ(reads[0].seq, 3u);
  }
  EXPECT_TRUE(pusher.events_to(b1).empty());
  // The DM's peer gets it too: a read receipt.
  auto receipts = pusher.events<ReadEvent>(a1);
  ASSERT_EQ(receipts.size(), 1u);
  EXPECT_EQ(receipts[0].user_id, kBob);
  EXPECT_EQ(receipts[0].seq, 3u);
  EXPECT_EQ(find(*messaging.conversations(kAlice), alice_bob_).peer_read_seq, 3u);

  EXPECT_EQ(*messaging.read(kBob, alice_bob_, 2, b1), 3u);  // backwards: stays
  EXPECT_EQ(pusher.events<ReadEvent>(b2).back().seq, 3u);
  EXPECT_EQ(*messaging.read(kBob, alice_bob_, 100, b1), 5u);  // clamped to the last seq
  EXPECT_EQ(pusher.events<ReadEvent>(b2).back().seq, 5u);
  EXPECT_EQ(find(*messaging.conversations(kBob), alice_bob_).read_seq, 5u);

  EXPECT_EQ(error_of(messaging.read(kCarol, alice_bob_, 1, {})), Errc::forbidden);
  EXPECT_EQ(error_of(messaging.read(kDave, channel_, 1, {})), Errc::not_found);
  // A channel's read marker is nobody else's business.
  ConnRef c1 = connect(kCarol);
  store_posts(kAlice, kChannel, 2);
  ASSERT_TRUE(messaging.read(kBob, channel_, 2, b1).ok());
  EXPECT_TRUE(pusher.events<ReadEvent>(c1).empty());
}

// History: pages of at most `limit`, ascending, by seq before or after a cursor; only for those
// who may read the conversation.
TEST_F(Messaging, HistoryPagesBySeqForThoseWhoMayRead) {
  store_posts(kAlice, kChannel, 12);
  store_dms(kAlice, kBob, 2);
  auto query = [](std::uint32_t limit, std::optional<std::uint64_t> before,
                  std::optional<std::uint64_t> after) {
    HistoryQuery q;
    q.before_seq = before;
    q.after_seq = after;
    q.limit = limit;
    return q;
  };
  auto page = [&](const ConvKey& conv, std::optional<std::uint64_t> before,
                  std::optional<std::uint64_t> after) {
    auto r = messaging.history(kBob, conv, query(5, before, after));
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? seqs(*r) : std::vector<std::uint64_t>{};
  };
  using V = std::vector<std::uint64_t>;
  const auto none = std::nullopt;
  EXPECT_EQ(page(channel_, none, none), (V{8, 9, 10, 11, 12}));
  EXPECT_EQ(page(channel_, 8, none), (V{3, 4, 5, 6, 7}));
  EXPECT_EQ(page(channel_, 3, none), (V{1, 2}));
  EXPECT_EQ(page(channel_, none, 10), (V{11, 12}));
  EXPECT_EQ(page(channel_, none, 12), V{});
  EXPECT_EQ(page(alice_bob_, none, none), (V{1, 2}));

  EXPECT_EQ(error_of(messaging.history(kBob, channel_, query(5, 5, 1))), Errc::invalid_argument);
  EXPECT_EQ(error_of(messaging.history(kBob, channel_, query(0, none, none))),
            Errc::invalid_argument);
  EXPECT_EQ(error_of(messaging.history(kBob, channel_, query(101, none, none))),
            Errc::invalid_argument);
  EXPECT_EQ(error_of(messaging.history(kDave, channel_, {})), Errc::not_found);
  EXPECT_EQ(error_of(messaging.history(kBob, ConvKey::channel(999), {})), Errc::not_found);
  EXPECT_EQ(error_of(messaging.history(kCarol, alice_bob_, {})), Errc::forbidden);
  EXPECT_EQ(error_of(messaging.history(kBob, ConvKey::dm(kBob, 999), {})), Errc::not_found);
}

// The conversation list: unread = last_seq - read_seq per conversation (one's own messages are
// read), summed per space over its channels, with every space of the user listed.
TEST_F(Messaging, ConversationsCountUnreadAndRollThemUpPerSpace) {
  constexpr Id kOtherSpace = 51, kOtherChannel = 61, kQuietSpace = 52, kQuietChannel = 62;
  add_channel(kOtherSpace, kOtherChannel, kCarol, {kBob});
  add_channel(kQuietSpace, kQuietChannel, kBob, {});
  store_posts(kAlice, kChannel, 3);
  store_posts(kCarol, kOtherChannel, 2);
  store_dms(kAlice, kBob, 4);
  ASSERT_TRUE(messaging.read(kBob, channel_, 1, {}).ok());

  auto bob = messaging.conversations(kBob);
  ASSERT_TRUE(bob.ok());
  EXPECT_EQ(bob->conversations.size(), 4u);
  EXPECT_EQ(unread_of(find(*bob, channel_)), 2u);
  EXPECT_EQ(unread_of(find(*bob, ConvKey::channel(kOtherChannel))), 2u);
  EXPECT_EQ(unread_of(find(*bob, ConvKey::channel(kQuietChannel))), 0u);
  auto dm = find(*bob, alice_bob_);
  EXPECT_EQ(unread_of(dm), 4u);
  ASSERT_TRUE(dm.last.has_value());
  EXPECT_EQ(dm.last->seq, 4u);
  std::map<Id, std::uint64_t> spaces;
  for (const auto& s : bob->spaces) spaces[s.space_id] = s.unread;
  EXPECT_EQ(spaces, (std::map<Id, std::uint64_t>{{kSpace, 2}, {kOtherSpace, 2}, {kQuietSpace, 0}}));

  auto alice = messaging.conversations(kAlice);
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(unread_of(find(*alice, channel_)), 0u);  // her own messages
  EXPECT_EQ(unread_of(find(*alice, alice_bob_)), 0u);
  ASSERT_EQ(alice->spaces.size(), 1u);
  EXPECT_EQ(alice->spaces[0].unread, 0u);
}

}  // namespace
}  // namespace imd
