// SyncService, the backfill rules of a (re)connecting device (domain/sync_service.hpp): what it
// returns, from which source, in which order, and when the inbox overflow is cleared. In
// process, on the standalone adapters (SQLite store and inbox, memory caches); messages go
// through MessagingService::consume as the queue's consumer would store them.
#include <gtest/gtest.h>

#include "support/in_process.hpp"

namespace imd {
namespace {

// The SQLite inbox with a bound it reports as overflowed (the Redis inbox's signal: entries were
// dropped), which SQLite's unbounded inbox never does.
class OverflowingInbox final : public testing::ForwardingInbox {
 public:
  using ForwardingInbox::ForwardingInbox;
  Result<std::vector<Message>> list(Id user, const std::optional<InboxCursor>& after,
                                    std::uint32_t limit) override {
    ++lists;
    if (down) return make_error(Errc::unavailable, "inbox down");
    return ForwardingInbox::list(user, after, limit);
  }
  Result<std::uint64_t> overflowed(Id) override {
    if (down) return make_error(Errc::unavailable, "inbox down");
    return overflow;
  }
  Result<void> clear_overflow(Id, std::uint64_t seen) override {
    cleared.push_back(seen);
    overflow -= std::min(overflow, seen);
    return {};
  }
  std::uint64_t overflow = 0;
  bool down = false;
  int lists = 0;
  std::vector<std::uint64_t> cleared;
};

constexpr Id kAlice = 1, kBob = 2, kCarol = 3;
constexpr Id kSpace = 50, kChannel = 60;

class Sync : public ::testing::Test, protected testing::InProcess<OverflowingInbox> {
 protected:
  void SetUp() override {
    add_users({kAlice, kBob, kCarol});
    add_channel(kSpace, kChannel, kAlice, {kBob});
  }
  struct Got {
    ConvKey conv;
    std::uint64_t seq;
  };
  // A whole pass, page by page; checks that no page is over `limit`.
  std::vector<Got> drain(SyncService::Pass& pass, std::uint32_t limit = 500) {
    std::vector<Got> out;
    for (int pages = 0; pages < 1000; ++pages) {
      auto page = sync.next(pass, limit);
      EXPECT_TRUE(page.ok()) << (page.ok() ? "" : page.error().message);
      if (!page.ok() || page->empty()) break;
      EXPECT_LE(page->size(), limit);
      for (const auto& m : *page) out.push_back({m.conv, m.seq});
    }
    return out;
  }
  static std::vector<std::uint64_t> seqs_of(const std::vector<Got>& got, const ConvKey& conv) {
    std::vector<std::uint64_t> out;
    for (const auto& g : got) {
      if (g.conv == conv) out.push_back(g.seq);
    }
    return out;
  }
  static std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
    std::vector<std::uint64_t> out;
    for (auto s = from; s <= to; ++s) out.push_back(s);
    return out;
  }

  // Applies a change of the stored message at `seq` of `conv` as the queue's consumer would.
  void change(const ConvKey& conv, std::uint64_t seq, Change kind, std::string body = {}) {
    HistoryQuery q;
    q.after_seq = seq - 1;
    q.limit = 1;
    auto m = store.messages(conv, q);
    ASSERT_TRUE(m.ok() && m->size() == 1);
    NewMessage nm;
    nm.change = kind;
    nm.change_id = ++changes_;
    nm.msg.id = (*m)[0].id;
    nm.msg.conv = conv;
    nm.msg.from = (*m)[0].from;
    nm.msg.body = std::move(body);
    auto r = store.change_messages(std::vector<NewMessage>{nm});
    ASSERT_TRUE(r.ok() && (*r)[0].ok());
  }
  struct Item {
    bool change;
    ConvKey conv;
    std::uint64_t seq, rev;
    std::string body;
  };
  // A whole pass, messages and changes.
  std::vector<Item> drain_all(SyncService::Pass& pass) {
    std::vector<Item> out;
    for (int pages = 0; pages < 1000; ++pages) {
      auto page = sync.next(pass, 500);
      EXPECT_TRUE(page.ok()) << (page.ok() ? "" : page.error().message);
      if (!page.ok() || page->empty()) break;
      for (const auto& m : *page)
        out.push_back({pass.changes_page(), m.conv, m.seq, m.rev, m.body});
    }
    return out;
  }

  const ConvKey alice_bob_ = ConvKey::dm(kAlice, kBob);
  const ConvKey carol_bob_ = ConvKey::dm(kCarol, kBob);
  const ConvKey channel_ = ConvKey::channel(kChannel);
  Id changes_ = 0;
};

// On connect: channels from the delivery cursor, DMs from the inbox, each conversation in seq
// order; nothing of the user's own sends in channels they already ACKed.
TEST_F(Sync, ConnectServesChannelsFromCursorsAndDmsFromTheInbox) {
  store_dms(kAlice, kBob, 3);
  store_dms(kCarol, kBob, 2);
  store_posts(kAlice, kChannel, 4);
  auto pass = sync.begin(kBob, std::nullopt, {});
  ASSERT_TRUE(pass.ok());
  auto got = drain(*pass);
  EXPECT_EQ(seqs_of(got, alice_bob_), range(1, 3));
  EXPECT_EQ(seqs_of(got, carol_bob_), range(1, 2));
  EXPECT_EQ(seqs_of(got, channel_), range(1, 4));
  EXPECT_EQ(got.size(), 9u);
  EXPECT_EQ(pass->returned(), 9u);
  EXPECT_GT(inbox.lists, 0);  // the DMs came from the inbox
}

// What the device ACKed is not sent again: the pass starts by writing the gathered ACKs.
TEST_F(Sync, StartsFromTheAcksGatheredSoFar) {
  store_dms(kAlice, kBob, 5);
  store_posts(kAlice, kChannel, 5);
  ASSERT_TRUE(messaging.ack(kBob, alice_bob_, 3).ok());  // gathered, not yet written
  ASSERT_TRUE(messaging.ack(kBob, channel_, 4).ok());
  auto pass = sync.begin(kBob, std::nullopt, {});
  ASSERT_TRUE(pass.ok());
  auto got = drain(*pass);
  EXPECT_EQ(seqs_of(got, alice_bob_), range(4, 5));
  EXPECT_EQ(seqs_of(got, channel_), range(5, 5));
}

// `sync` with cursors: the conversations it names come from the Store from those cursors (even
// messages already ACKed: a device that lost them asks again); the others as on connect.
TEST_F(Sync, ClientCursorsServeThoseConversationsFromTheStore) {
  store_dms(kAlice, kBob, 6);
  store_dms(kCarol, kBob, 2);
  ASSERT_TRUE(messaging.ack(kBob, alice_bob_, 6).ok());
  ASSERT_TRUE(messaging.flush_acks().ok());
  SyncCursors cursors{{alice_bob_, 2}};
  auto pass = sync.begin(kBob, cursors, {});
  ASSERT_TRUE(pass.ok());
  auto got = drain(*pass);
  EXPECT_EQ(seqs_of(got, alice_bob_), range(3, 6));
  EXPECT_EQ(seqs_of(got, carol_bob_), range(1, 2));
}

// What the connection holds already (live pushes before a `sync`, or an earlier pass) is
// skipped, in every source.
TEST_F(Sync, SkipsWhatTheConnectionHolds) {
  store_dms(kAlice, kBob, 5);
  store_posts(kAlice, kChannel, 5);
  Delivered held{{alice_bob_, 4}, {channel_, 2}};
  auto pass = sync.begin(kBob, std::nullopt, held);
  ASSERT_TRUE(pass.ok());
  auto got = drain(*pass);
  EXPECT_EQ(seqs_of(got, alice_bob_), range(5, 5));
  EXPECT_EQ(seqs_of(got, channel_), range(3, 5));
}

// Small pages: every message once, in order, no page over the limit.
TEST_F(Sync, PagesKeepOrderAndTheLimit) {
  store_dms(kAlice, kBob, 23);
  store_posts(kAlice, kChannel, 17);
  auto pass = sync.begin(kBob, std::nullopt, {});
  ASSERT_TRUE(pass.ok());
  auto got = drain(*pass, 5);
  EXPECT_EQ(seqs_of(got, alice_bob_), range(1, 23));
  EXPECT_EQ(seqs_of(got, channel_), range(1, 17));
}

// An inbox that dropped entries: every DM comes from the Store by delivery cursor, and the
// signal is cleared only once a pass found every DM delivered.
TEST_F(Sync, AnOverflowedInboxIsReplacedByTheStoreUntilEverythingIsAcked) {
  store_dms(kAlice, kBob, 4);
  store_dms(kCarol, kBob, 3);
  inbox.overflow = 2;
  auto first = sync.begin(kBob, std::nullopt, {});
  ASSERT_TRUE(first.ok());
  auto got = drain(*first);
  EXPECT_EQ(seqs_of(got, alice_bob_), range(1, 4));
  EXPECT_EQ(seqs_of(got, carol_bob_), range(1, 3));
  EXPECT_EQ(inbox.lists, 0);
  ASSERT_TRUE(sync.finish(*first).ok());
  EXPECT_TRUE(inbox.cleared.empty());  // not ACKed yet: the next connect reads the Store again

  ASSERT_TRUE(messaging.ack(kBob, alice_bob_, 4).ok());
  ASSERT_TRUE(messaging.ack(kBob, carol_bob_, 3).ok());
  auto second = sync.begin(kBob, std::nullopt, {});
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(drain(*second).empty());
  ASSERT_TRUE(sync.finish(*second).ok());
  EXPECT_EQ(inbox.cleared, std::vector<std::uint64_t>{2});
  EXPECT_EQ(inbox.overflow, 0u);
}

// An inbox that cannot be read: its overflow is unknown, so the Store serves the DMs (nothing
// is missed), and nothing is cleared.
TEST_F(Sync, AnUnreachableInboxFallsBackToTheStore) {
  store_dms(kAlice, kBob, 3);
  inbox.down = true;
  auto pass = sync.begin(kBob, std::nullopt, {});
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(seqs_of(drain(*pass), alice_bob_), range(1, 3));
  ASSERT_TRUE(sync.finish(*pass).ok());
  EXPECT_TRUE(inbox.cleared.empty());
}

// A channel the user left is not read (the access check), and does not fail the pass.
TEST_F(Sync, AChannelLeftIsSkipped) {
  store_posts(kAlice, kChannel, 3);
  store_dms(kAlice, kBob, 1);
  auto pass = sync.begin(kBob, std::nullopt, {});
  ASSERT_TRUE(pass.ok());
  ASSERT_TRUE(store.remove_channel_member(kChannel, kBob).ok());
  members.invalidate(kChannel);
  auto got = drain(*pass);
  EXPECT_TRUE(seqs_of(got, channel_).empty());
  EXPECT_EQ(seqs_of(got, alice_bob_), range(1, 1));
}

// Changes: after the messages, for the messages the device holds, from its change cursor, in rev
// order, each changed message once at its current state; messages sent in the pass are current.
TEST_F(Sync, ChangesFollowTheMessagesFromTheClientsChangeCursor) {
  store_dms(kAlice, kBob, 4);
  store_posts(kAlice, kChannel, 3);
  ASSERT_TRUE(messaging.ack(kBob, alice_bob_, 3).ok());
  ASSERT_TRUE(messaging.ack(kBob, channel_, 3).ok());
  change(alice_bob_, 1, Change::edit, "one");        // rev 1
  change(alice_bob_, 4, Change::edit, "four");       // rev 2: a message the device lacks
  change(alice_bob_, 2, Change::erase);              // rev 3
  change(alice_bob_, 1, Change::edit, "one again");  // rev 4: seq 1 again
  change(channel_, 2, Change::edit, "two");          // rev 1 of the channel

  auto pass = sync.begin(kBob, std::nullopt, {}, ChangeCursors{{alice_bob_, 1}, {channel_, 0}});
  ASSERT_TRUE(pass.ok());
  auto got = drain_all(*pass);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_FALSE(got[0].change);  // the inbox's seq 4, as it is now
  EXPECT_EQ(got[0].seq, 4u);
  EXPECT_EQ(got[0].body, "four");
  EXPECT_EQ(got[0].rev, 2u);
  // The DM's changes after rev 1 for seqs up to 3: seq 2 (rev 3), seq 1 (rev 4); the channel's.
  EXPECT_TRUE(got[1].change && got[2].change && got[3].change);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> dm, ch;
  for (std::size_t i = 1; i < got.size(); ++i) {
    (got[i].conv == alice_bob_ ? dm : ch).emplace_back(got[i].seq, got[i].rev);
  }
  EXPECT_EQ(dm, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{2, 3}, {1, 4}}));
  EXPECT_EQ(ch, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{2, 1}}));
  EXPECT_EQ(pass->changes_returned(), 3u);
  // The connection now stands at each conversation's last rev.
  EXPECT_EQ(pass->revs().at(alice_bob_).hw, 4u);
  EXPECT_EQ(pass->revs().at(channel_).hw, 1u);
}

// Without change cursors a connection starts at the current rev (nothing sent); from then on
// each pass sends what it lacks since its state, for the messages it holds, and a client cursor
// below that state adds only what came before the connection.
TEST_F(Sync, AConnectionsRevStateDecidesWhatItLacks) {
  store_dms(kAlice, kBob, 3);
  ASSERT_TRUE(messaging.ack(kBob, alice_bob_, 3).ok());
  change(alice_bob_, 1, Change::edit, "a");  // rev 1, before the connection
  auto first = sync.begin(kBob, std::nullopt, {});
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(drain_all(*first).empty());
  Revs revs = first->revs();
  EXPECT_EQ(revs.at(alice_bob_).base, 1u);
  EXPECT_EQ(revs.at(alice_bob_).hw, 1u);

  change(alice_bob_, 2, Change::edit, "b");  // rev 2, missed by the connection
  auto second = sync.begin(kBob, std::nullopt, {}, {}, revs);
  ASSERT_TRUE(second.ok());
  auto got = drain_all(*second);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].seq, 2u);
  EXPECT_EQ(got[0].rev, 2u);
  revs = second->revs();
  EXPECT_EQ(revs.at(alice_bob_).hw, 2u);

  // The client says it holds rev 0: only rev 1 (before this connection) is added.
  auto third = sync.begin(kBob, std::nullopt, {}, ChangeCursors{{alice_bob_, 0}}, revs);
  ASSERT_TRUE(third.ok());
  got = drain_all(*third);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].seq, 1u);
  EXPECT_EQ(got[0].rev, 1u);
  EXPECT_EQ(got[0].body, "a");
}

}  // namespace
}  // namespace imd
