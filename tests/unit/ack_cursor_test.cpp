// MessagingService's delivery ACKs through the cursor cache (domain/ports/cursor_cache.hpp):
// an ACK that does not move the cursor forward is answered without a write, and the cache never
// runs ahead of the Store, so a stale entry costs a write and never skips one. And the paths an
// I/O thread takes (try_submit, try_ack): answered from memory, or stepping aside untouched.
// In process, on the standalone adapters (SQLite store and inbox, memory caches).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "cache/memory_cursor_cache.hpp"
#include "cache/memory_member_cache.hpp"
#include "cache/memory_user_cache.hpp"
#include "common/snowflake.hpp"
#include "domain/messaging_service.hpp"
#include "queue/local_queue.hpp"
#include "routes/memory_routes.hpp"
#include "store/sqlite_inbox.hpp"
#include "store/sqlite_store.hpp"
#include "store/sqlite_test_support.hpp"

namespace imd {
namespace {

using testing::dm_msg;
using testing::make_user;

// The SQLite inbox, counting the flushes that reached it (each one follows a Store write of the
// same cursors) and able to fail them.
class CountingInbox final : public Inbox {
 public:
  explicit CountingInbox(std::shared_ptr<SqliteDatabase> db) : inner_(std::move(db)) {}
  Result<void> push(std::span<const InboxItem> items) override { return inner_.push(items); }
  Result<std::vector<Message>> list(Id user, const std::optional<InboxCursor>& after,
                                    std::uint32_t limit) override {
    return inner_.list(user, after, limit);
  }
  Result<void> ack(Id user, const ConvKey& conv, std::uint64_t seq) override {
    return inner_.ack(user, conv, seq);
  }
  Result<void> ack_many(std::span<const DeliveryUpdate> acks) override {
    ++flushes;
    if (fail) return make_error(Errc::unavailable, "inbox down");
    return inner_.ack_many(acks);
  }
  std::atomic<int> flushes{0};
  bool fail = false;

 private:
  SqliteInbox inner_;
};

struct NoPusher final : Pusher {
  void push(std::vector<Push>) override {}
};

class AckCursor : public ::testing::Test {
 protected:
  void SetUp() override {
    for (Id u : {1, 2}) ASSERT_TRUE(store_.create_user(make_user(u, "u"), "h").ok());
  }
  // Stores DMs from 1 to 2 through the consumer, as the queue would: seqs next, next+1, ...
  void send(int n) {
    std::vector<NewMessage> batch;
    for (int i = 0; i < n; ++i) {
      ++sent_;
      batch.push_back(dm_msg(1000 + sent_, 1, 2, "c" + std::to_string(sent_)));
    }
    ASSERT_EQ(messaging_.consume(batch), Queue::Outcome::done);
  }
  std::size_t inbox_size() { return inbox_.list(2, std::nullopt, 100)->size(); }
  std::uint64_t stored_cursor() {
    auto convs = store_.conversations(2);
    EXPECT_TRUE(convs.ok());
    if (!convs.ok()) return 0;
    for (const auto& c : *convs) {
      if (c.conv == dm_) return c.ack_seq;
    }
    return 0;
  }

  testing::TempDir dir_;
  std::shared_ptr<SqliteDatabase> db_ = testing::open_db(dir_.file("imd.db"));
  SqliteStore store_{db_};
  CountingInbox inbox_{db_};
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
  const ConvKey dm_ = ConvKey::dm(1, 2);
  int sent_ = 0;
};

// Without the cache every ACK below would be gathered and written (4 flushes, not 1).
TEST_F(AckCursor, AnAckAtOrBelowTheCachedCursorWritesNothing) {
  send(3);
  ASSERT_TRUE(messaging_.ack(2, dm_, 3).ok());
  ASSERT_TRUE(messaging_.flush_acks().ok());
  EXPECT_EQ(inbox_.flushes.load(), 1);
  EXPECT_EQ(cursors_.get(2, dm_), 3u);
  EXPECT_EQ(inbox_size(), 0u);
  for (std::uint64_t seq : {3, 2, 1}) {
    ASSERT_TRUE(messaging_.ack(2, dm_, seq).ok());  // a second device, a retried ACK
    ASSERT_TRUE(messaging_.flush_acks().ok());
  }
  EXPECT_EQ(inbox_.flushes.load(), 1);
  EXPECT_EQ(stored_cursor(), 3u);
}

// The cache holds what the Store stored, not what the client asked: an ACK beyond the last
// message is clamped by the Store, and so is the cached cursor. Caching the asked 100 would
// skip the ACK of messages 4 and 5 below: they would stay in the inbox and be delivered again
// on every connect.
TEST_F(AckCursor, TheCacheNeverRunsAheadOfTheStore) {
  send(3);
  ASSERT_TRUE(messaging_.ack(2, dm_, 100).ok());
  ASSERT_TRUE(messaging_.flush_acks().ok());
  EXPECT_EQ(stored_cursor(), 3u);
  EXPECT_EQ(cursors_.get(2, dm_), 3u);
  send(2);
  EXPECT_EQ(inbox_size(), 2u);
  ASSERT_TRUE(messaging_.ack(2, dm_, 5).ok());
  ASSERT_TRUE(messaging_.flush_acks().ok());
  EXPECT_EQ(inbox_.flushes.load(), 2);
  EXPECT_EQ(stored_cursor(), 5u);
  EXPECT_EQ(inbox_size(), 0u);
}

// A cache behind the Store (an entry lost, or another process's write not seen) only costs a
// write: the ACK goes through, and the Store's cursor does not move back.
TEST_F(AckCursor, AStaleCachedCursorOnlyCostsAWrite) {
  send(4);
  ASSERT_TRUE(store_.advance_delivery(2, dm_, 4).ok());  // written by another process
  std::vector<DeliveryUpdate> stale = {{2, dm_, 1}};
  cursors_.put(stale);
  ASSERT_TRUE(messaging_.ack(2, dm_, 2).ok());
  ASSERT_TRUE(messaging_.flush_acks().ok());
  EXPECT_EQ(inbox_.flushes.load(), 1);  // the extra write
  EXPECT_EQ(stored_cursor(), 4u);
  EXPECT_EQ(cursors_.get(2, dm_), 4u);  // and the cache learnt the stored cursor
}

// A flush that did not complete leaves the cache as it was: the ACK is retried, not skipped.
TEST_F(AckCursor, AFailedFlushDoesNotAdvanceTheCache) {
  send(2);
  inbox_.fail = true;
  ASSERT_TRUE(messaging_.ack(2, dm_, 2).ok());
  EXPECT_FALSE(messaging_.flush_acks().ok());
  EXPECT_EQ(cursors_.get(2, dm_), 0u);
  inbox_.fail = false;
  ASSERT_TRUE(messaging_.ack(2, dm_, 2).ok());
  ASSERT_TRUE(messaging_.flush_acks().ok());
  EXPECT_EQ(inbox_size(), 0u);
  EXPECT_EQ(cursors_.get(2, dm_), 2u);
}

// What an I/O thread may call: an answer from memory, or nullopt (nothing done) when the
// answer needs the Store; the blocking calls then warm what the next fast call needs.
TEST_F(AckCursor, TheNonBlockingPathsAnswerFromMemoryOrStepAside) {
  SendInput in;
  in.cid = "x1";
  in.to = 2;
  in.type = "text";
  in.body = "hi";
  EXPECT_FALSE(messaging_.try_submit(1, in, {}).has_value());  // is user 2 real? the Store knows
  EXPECT_EQ(queue_.depth(), 0u);
  ASSERT_TRUE(messaging_.submit(1, in, {}).ok());
  in.cid = "x2";
  auto fast = messaging_.try_submit(1, in, {});
  ASSERT_TRUE(fast.has_value());
  EXPECT_TRUE(fast->ok());
  EXPECT_EQ(queue_.depth(), 2u);
  in.body.clear();  // refused input is answered at once either way
  auto bad = messaging_.try_submit(1, in, {});
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->error().code, Errc::invalid_argument);

  // A channel: a cold member list steps aside; once loaded, members are answered from memory
  // and a non-member steps aside (telling "no such channel" from "forbidden" reads the Store).
  ASSERT_TRUE(store_.create_space(Space{50, "s", "", 1, 1}).ok());
  ASSERT_TRUE(store_.create_channel(Channel{60, 50, "c", "", 1, 1}).ok());
  const ConvKey ch = ConvKey::channel(60);
  in.to.reset();
  in.channel = 60;
  in.body = "to the channel";
  in.cid = "x3";
  EXPECT_FALSE(messaging_.try_submit(1, in, {}).has_value());
  EXPECT_FALSE(messaging_.try_ack(1, ch, 1).has_value());
  ASSERT_TRUE(messaging_.check_access(1, ch).ok());  // loads the list
  auto to_channel = messaging_.try_submit(1, in, {});
  ASSERT_TRUE(to_channel.has_value());
  EXPECT_TRUE(to_channel->ok());
  EXPECT_FALSE(messaging_.try_submit(2, in, {}).has_value());

  // ACKs: answered from the in-memory cursors, gathered like ack() does.
  send(2);
  auto ack = messaging_.try_ack(2, dm_, 2);
  ASSERT_TRUE(ack.has_value());
  EXPECT_TRUE(ack->ok());
  ASSERT_TRUE(messaging_.flush_acks().ok());
  EXPECT_EQ(stored_cursor(), 2u);
  auto again = messaging_.try_ack(2, dm_, 1);  // at or below the cursor: nothing to write
  ASSERT_TRUE(again.has_value());
  ASSERT_TRUE(messaging_.flush_acks().ok());
  EXPECT_EQ(inbox_.flushes.load(), 1);
  auto foreign = messaging_.try_ack(3, dm_, 1);
  ASSERT_TRUE(foreign.has_value());
  EXPECT_EQ(foreign->error().code, Errc::forbidden);
}

// A closed connection asks for the gathered ACKs to be written at once, not at the next tick
// (here an hour away): a reconnect elsewhere then resumes from them.
TEST_F(AckCursor, FlushSoonWritesTheGatheredAcksBeforeTheNextTick) {
  send(3);
  messaging_.start(std::chrono::hours(1));
  ASSERT_TRUE(messaging_.ack(2, dm_, 3).ok());
  EXPECT_EQ(stored_cursor(), 0u);
  messaging_.flush_soon();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (stored_cursor() != 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(stored_cursor(), 3u);
  messaging_.stop();
}

}  // namespace
}  // namespace imd
