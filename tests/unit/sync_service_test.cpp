// SyncService, the backfill rules of a (re)connecting device (domain/sync_service.hpp): what it
// returns, from which source, in which order, and when the inbox overflow is cleared. In
// process, on the standalone adapters (SQLite store and inbox, memory caches); messages go
// through MessagingService::consume as the queue's consumer would store them.
#include <gtest/gtest.h>

#include "cache/memory_cursor_cache.hpp"
#include "cache/memory_member_cache.hpp"
#include "cache/memory_user_cache.hpp"
#include "common/snowflake.hpp"
#include "domain/messaging_service.hpp"
#include "domain/sync_service.hpp"
#include "queue/local_queue.hpp"
#include "routes/memory_routes.hpp"
#include "store/sqlite_inbox.hpp"
#include "store/sqlite_store.hpp"
#include "store/sqlite_test_support.hpp"

namespace imd {
namespace {

using testing::channel_msg;
using testing::dm_msg;
using testing::make_user;

// The SQLite inbox with a bound it reports as overflowed (the Redis inbox's signal: entries were
// dropped), which SQLite's unbounded inbox never does.
class OverflowingInbox final : public Inbox {
 public:
  explicit OverflowingInbox(std::shared_ptr<SqliteDatabase> db) : inner_(std::move(db)) {}
  Result<void> push(std::span<const InboxItem> items) override { return inner_.push(items); }
  Result<std::vector<Message>> list(Id user, const std::optional<InboxCursor>& after,
                                    std::uint32_t limit) override {
    ++lists;
    if (down) return make_error(Errc::unavailable, "inbox down");
    return inner_.list(user, after, limit);
  }
  Result<void> ack(Id user, const ConvKey& conv, std::uint64_t seq) override {
    return inner_.ack(user, conv, seq);
  }
  Result<void> ack_many(std::span<const DeliveryUpdate> acks) override {
    return inner_.ack_many(acks);
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

 private:
  SqliteInbox inner_;
};

struct NoPusher final : Pusher {
  void push(std::vector<Push>) override {}
};

constexpr Id kAlice = 1, kBob = 2, kCarol = 3;
constexpr Id kSpace = 50, kChannel = 60;

class Sync : public ::testing::Test {
 protected:
  void SetUp() override {
    for (Id u : {kAlice, kBob, kCarol})
      ASSERT_TRUE(store_.create_user(make_user(u, "u"), "h").ok());
    ASSERT_TRUE(store_.create_space(Space{kSpace, "s", "", kAlice, 1}).ok());
    ASSERT_TRUE(store_.add_space_member(kSpace, kBob, 1).ok());
    Channel ch;
    ch.id = kChannel;
    ch.space_id = kSpace;
    ch.name = "general";
    ch.owner_id = kAlice;
    ASSERT_TRUE(store_.create_channel(ch).ok());
    ASSERT_TRUE(store_.add_channel_member(kChannel, kBob, 1).ok());
  }
  // Stores messages as the queue's consumer would (DMs also land in the recipient's inbox).
  void dm(Id from, Id to, int n) {
    std::vector<NewMessage> batch;
    for (int i = 0; i < n; ++i) batch.push_back(dm_msg(next_id(), from, to, cid()));
    ASSERT_EQ(messaging_.consume(batch), Queue::Outcome::done);
  }
  void post(Id from, int n) {
    std::vector<NewMessage> batch;
    for (int i = 0; i < n; ++i) batch.push_back(channel_msg(next_id(), kChannel, from, cid()));
    ASSERT_EQ(messaging_.consume(batch), Queue::Outcome::done);
  }
  Id next_id() { return 10000 + ++sent_; }
  std::string cid() { return "c" + std::to_string(sent_ + 1); }

  struct Got {
    ConvKey conv;
    std::uint64_t seq;
  };
  // A whole pass, page by page; checks that no page is over `limit`.
  std::vector<Got> drain(SyncService::Pass& pass, std::uint32_t limit = 500) {
    std::vector<Got> out;
    for (int pages = 0; pages < 1000; ++pages) {
      auto page = sync_.next(pass, limit);
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

  testing::TempDir dir_;
  std::shared_ptr<SqliteDatabase> db_ = testing::open_db(dir_.file("imd.db"));
  SqliteStore store_{db_};
  OverflowingInbox inbox_{db_};
  LocalQueue queue_{16, 16};
  MemoryMemberCache members_{[this](Id c) { return store_.channel_member_ids(c); }};
  MemoryUserCache users_{[this](Id u) { return store_.memberships_of_user(u); }};
  MemoryCursorCache cursors_;
  MemoryRoutes routes_;
  NoPusher pusher_;
  SystemClock clock_;
  Snowflake ids_{clock_, 1};
  MessagingService messaging_{
      store_, inbox_, queue_, {members_, users_, cursors_}, routes_, pusher_, ids_, clock_, {}};
  SyncService sync_{store_, inbox_, messaging_};
  int sent_ = 0;
  const ConvKey alice_bob_ = ConvKey::dm(kAlice, kBob);
  const ConvKey carol_bob_ = ConvKey::dm(kCarol, kBob);
  const ConvKey channel_ = ConvKey::channel(kChannel);
};

// On connect: channels from the delivery cursor, DMs from the inbox, each conversation in seq
// order; nothing of the user's own sends in channels they already ACKed.
TEST_F(Sync, ConnectServesChannelsFromCursorsAndDmsFromTheInbox) {
  dm(kAlice, kBob, 3);
  dm(kCarol, kBob, 2);
  post(kAlice, 4);
  auto pass = sync_.begin(kBob, std::nullopt, {});
  ASSERT_TRUE(pass.ok());
  auto got = drain(*pass);
  EXPECT_EQ(seqs_of(got, alice_bob_), range(1, 3));
  EXPECT_EQ(seqs_of(got, carol_bob_), range(1, 2));
  EXPECT_EQ(seqs_of(got, channel_), range(1, 4));
  EXPECT_EQ(got.size(), 9u);
  EXPECT_EQ(pass->returned(), 9u);
  EXPECT_GT(inbox_.lists, 0);  // the DMs came from the inbox
}

// What the device ACKed is not sent again: the pass starts by writing the gathered ACKs.
TEST_F(Sync, StartsFromTheAcksGatheredSoFar) {
  dm(kAlice, kBob, 5);
  post(kAlice, 5);
  ASSERT_TRUE(messaging_.ack(kBob, alice_bob_, 3).ok());  // gathered, not yet written
  ASSERT_TRUE(messaging_.ack(kBob, channel_, 4).ok());
  auto pass = sync_.begin(kBob, std::nullopt, {});
  ASSERT_TRUE(pass.ok());
  auto got = drain(*pass);
  EXPECT_EQ(seqs_of(got, alice_bob_), range(4, 5));
  EXPECT_EQ(seqs_of(got, channel_), range(5, 5));
}

// `sync` with cursors: the conversations it names come from the Store from those cursors (even
// messages already ACKed: a device that lost them asks again); the others as on connect.
TEST_F(Sync, ClientCursorsServeThoseConversationsFromTheStore) {
  dm(kAlice, kBob, 6);
  dm(kCarol, kBob, 2);
  ASSERT_TRUE(messaging_.ack(kBob, alice_bob_, 6).ok());
  ASSERT_TRUE(messaging_.flush_acks().ok());
  SyncCursors cursors{{alice_bob_, 2}};
  auto pass = sync_.begin(kBob, cursors, {});
  ASSERT_TRUE(pass.ok());
  auto got = drain(*pass);
  EXPECT_EQ(seqs_of(got, alice_bob_), range(3, 6));
  EXPECT_EQ(seqs_of(got, carol_bob_), range(1, 2));
}

// What the connection holds already (live pushes before a `sync`, or an earlier pass) is
// skipped, in every source.
TEST_F(Sync, SkipsWhatTheConnectionHolds) {
  dm(kAlice, kBob, 5);
  post(kAlice, 5);
  Delivered held{{alice_bob_, 4}, {channel_, 2}};
  auto pass = sync_.begin(kBob, std::nullopt, held);
  ASSERT_TRUE(pass.ok());
  auto got = drain(*pass);
  EXPECT_EQ(seqs_of(got, alice_bob_), range(5, 5));
  EXPECT_EQ(seqs_of(got, channel_), range(3, 5));
}

// Small pages: every message once, in order, no page over the limit.
TEST_F(Sync, PagesKeepOrderAndTheLimit) {
  dm(kAlice, kBob, 23);
  post(kAlice, 17);
  auto pass = sync_.begin(kBob, std::nullopt, {});
  ASSERT_TRUE(pass.ok());
  auto got = drain(*pass, 5);
  EXPECT_EQ(seqs_of(got, alice_bob_), range(1, 23));
  EXPECT_EQ(seqs_of(got, channel_), range(1, 17));
}

// An inbox that dropped entries: every DM comes from the Store by delivery cursor, and the
// signal is cleared only once a pass found every DM delivered.
TEST_F(Sync, AnOverflowedInboxIsReplacedByTheStoreUntilEverythingIsAcked) {
  dm(kAlice, kBob, 4);
  dm(kCarol, kBob, 3);
  inbox_.overflow = 2;
  auto first = sync_.begin(kBob, std::nullopt, {});
  ASSERT_TRUE(first.ok());
  auto got = drain(*first);
  EXPECT_EQ(seqs_of(got, alice_bob_), range(1, 4));
  EXPECT_EQ(seqs_of(got, carol_bob_), range(1, 3));
  EXPECT_EQ(inbox_.lists, 0);
  ASSERT_TRUE(sync_.finish(*first).ok());
  EXPECT_TRUE(inbox_.cleared.empty());  // not ACKed yet: the next connect reads the Store again

  ASSERT_TRUE(messaging_.ack(kBob, alice_bob_, 4).ok());
  ASSERT_TRUE(messaging_.ack(kBob, carol_bob_, 3).ok());
  auto second = sync_.begin(kBob, std::nullopt, {});
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(drain(*second).empty());
  ASSERT_TRUE(sync_.finish(*second).ok());
  EXPECT_EQ(inbox_.cleared, std::vector<std::uint64_t>{2});
  EXPECT_EQ(inbox_.overflow, 0u);
}

// An inbox that cannot be read: its overflow is unknown, so the Store serves the DMs (nothing
// is missed), and nothing is cleared.
TEST_F(Sync, AnUnreachableInboxFallsBackToTheStore) {
  dm(kAlice, kBob, 3);
  inbox_.down = true;
  auto pass = sync_.begin(kBob, std::nullopt, {});
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(seqs_of(drain(*pass), alice_bob_), range(1, 3));
  ASSERT_TRUE(sync_.finish(*pass).ok());
  EXPECT_TRUE(inbox_.cleared.empty());
}

// A channel the user left is not read (the access check), and does not fail the pass.
TEST_F(Sync, AChannelLeftIsSkipped) {
  post(kAlice, 3);
  dm(kAlice, kBob, 1);
  auto pass = sync_.begin(kBob, std::nullopt, {});
  ASSERT_TRUE(pass.ok());
  ASSERT_TRUE(store_.remove_channel_member(kChannel, kBob).ok());
  members_.invalidate(kChannel);
  auto got = drain(*pass);
  EXPECT_TRUE(seqs_of(got, channel_).empty());
  EXPECT_EQ(seqs_of(got, alice_bob_), range(1, 1));
}

}  // namespace
}  // namespace imd
