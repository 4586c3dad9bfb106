// MessagingService's delivery ACKs through the cursor cache (domain/ports/cursor_cache.hpp):
// an ACK that does not move the cursor forward is answered without a write, and the cache never
// runs ahead of the Store, so a stale entry costs a write and never skips one. And the paths an
// I/O thread takes (try_submit, try_ack): answered from memory, or stepping aside untouched.
// In process, on the standalone adapters (SQLite store and inbox, memory caches).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "support/in_process.hpp"

namespace imd {
namespace {

// The SQLite inbox, counting the flushes that reached it (each one follows a Store write of the
// same cursors; a test may wait for them) and able to fail them.
class CountingInbox final : public testing::ForwardingInbox {
 public:
  using ForwardingInbox::ForwardingInbox;
  Result<void> ack_many(std::span<const DeliveryUpdate> acks) override {
    auto r = fail ? Result<void>(make_error(Errc::unavailable, "inbox down"))
                  : ForwardingInbox::ack_many(acks);
    {
      std::lock_guard lock(mu_);
      ++flushes;
    }
    flushed_.notify_all();
    return r;
  }
  // Waits until `n` flushes reached the inbox; false after `timeout`.
  bool wait_flushes(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return flushed_.wait_for(lock, timeout, [&] { return flushes.load() >= n; });
  }
  std::atomic<int> flushes{0};
  bool fail = false;

 private:
  std::mutex mu_;
  std::condition_variable flushed_;
};

class AckCursor : public ::testing::Test, protected testing::InProcess<CountingInbox> {
 protected:
  void SetUp() override { add_users({1, 2}); }
  std::size_t inbox_size() { return inbox.list(2, std::nullopt, 100)->size(); }
  std::uint64_t stored_cursor() {
    auto convs = store.conversations(2);
    EXPECT_TRUE(convs.ok());
    if (!convs.ok()) return 0;
    for (const auto& c : *convs) {
      if (c.conv == dm_) return c.ack_seq;
    }
    return 0;
  }

  const ConvKey dm_ = ConvKey::dm(1, 2);
};

// Without the cache every ACK below would be gathered and written (4 flushes, not 1).
TEST_F(AckCursor, AnAckAtOrBelowTheCachedCursorWritesNothing) {
  store_dms(1, 2, 3);
  ASSERT_TRUE(messaging.ack(2, dm_, 3).ok());
  ASSERT_TRUE(messaging.flush_acks().ok());
  EXPECT_EQ(inbox.flushes.load(), 1);
  EXPECT_EQ(cursors.get(2, dm_), 3u);
  EXPECT_EQ(inbox_size(), 0u);
  for (std::uint64_t seq : {3, 2, 1}) {
    ASSERT_TRUE(messaging.ack(2, dm_, seq).ok());  // a second device, a retried ACK
    ASSERT_TRUE(messaging.flush_acks().ok());
  }
  EXPECT_EQ(inbox.flushes.load(), 1);
  EXPECT_EQ(stored_cursor(), 3u);
}

// The cache holds what the Store stored, not what the client asked: an ACK beyond the last
// message is clamped by the Store, and so is the cached cursor. Caching the asked 100 would
// skip the ACK of messages 4 and 5 below: they would stay in the inbox and be delivered again
// on every connect.
TEST_F(AckCursor, TheCacheNeverRunsAheadOfTheStore) {
  store_dms(1, 2, 3);
  ASSERT_TRUE(messaging.ack(2, dm_, 100).ok());
  ASSERT_TRUE(messaging.flush_acks().ok());
  EXPECT_EQ(stored_cursor(), 3u);
  EXPECT_EQ(cursors.get(2, dm_), 3u);
  store_dms(1, 2, 2);
  EXPECT_EQ(inbox_size(), 2u);
  ASSERT_TRUE(messaging.ack(2, dm_, 5).ok());
  ASSERT_TRUE(messaging.flush_acks().ok());
  EXPECT_EQ(inbox.flushes.load(), 2);
  EXPECT_EQ(stored_cursor(), 5u);
  EXPECT_EQ(inbox_size(), 0u);
}

// A cache behind the Store (an entry lost, or another process's write not seen) only costs a
// write: the ACK goes through, and the Store's cursor does not move back.
TEST_F(AckCursor, AStaleCachedCursorOnlyCostsAWrite) {
  store_dms(1, 2, 4);
  ASSERT_TRUE(store.advance_delivery(2, dm_, 4).ok());  // written by another process
  std::vector<DeliveryUpdate> stale = {{2, dm_, 1}};
  cursors.put(stale);
  ASSERT_TRUE(messaging.ack(2, dm_, 2).ok());
  ASSERT_TRUE(messaging.flush_acks().ok());
  EXPECT_EQ(inbox.flushes.load(), 1);  // the extra write
  EXPECT_EQ(stored_cursor(), 4u);
  EXPECT_EQ(cursors.get(2, dm_), 4u);  // and the cache learnt the stored cursor
}

// A flush that did not complete leaves the cache as it was: the ACK is retried, not skipped.
TEST_F(AckCursor, AFailedFlushDoesNotAdvanceTheCache) {
  store_dms(1, 2, 2);
  inbox.fail = true;
  ASSERT_TRUE(messaging.ack(2, dm_, 2).ok());
  EXPECT_FALSE(messaging.flush_acks().ok());
  EXPECT_EQ(cursors.get(2, dm_), 0u);
  inbox.fail = false;
  ASSERT_TRUE(messaging.ack(2, dm_, 2).ok());
  ASSERT_TRUE(messaging.flush_acks().ok());
  EXPECT_EQ(inbox_size(), 0u);
  EXPECT_EQ(cursors.get(2, dm_), 2u);
}

// What an I/O thread may call: an answer from memory, or nullopt (nothing done) when the
// answer needs the Store; the blocking calls then warm what the next fast call needs.
TEST_F(AckCursor, TheNonBlockingPathsAnswerFromMemoryOrStepAside) {
  SendInput in;
  in.cid = "x1";
  in.to = 2;
  in.type = "text";
  in.body = "hi";
  EXPECT_FALSE(messaging.try_submit(1, in, {}).has_value());  // is user 2 real? the Store knows
  EXPECT_EQ(queue.depth(), 0u);
  ASSERT_TRUE(messaging.submit(1, in, {}).ok());
  in.cid = "x2";
  auto fast = messaging.try_submit(1, in, {});
  ASSERT_TRUE(fast.has_value());
  EXPECT_TRUE(fast->ok());
  EXPECT_EQ(queue.depth(), 2u);
  in.body.clear();  // refused input is answered at once either way
  auto bad = messaging.try_submit(1, in, {});
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->error().code, Errc::invalid_argument);

  // A channel: a cold member list steps aside; once loaded, members and non-members are
  // answered from memory (to a non-member the channel does not exist: not_found).
  ASSERT_TRUE(store.create_space(Space{50, "s", "", 1, 1}).ok());
  ASSERT_TRUE(store.create_channel(Channel{60, 50, "c", "", 1, 1}).ok());
  const ConvKey ch = ConvKey::channel(60);
  in.to.reset();
  in.channel = 60;
  in.body = "to the channel";
  in.cid = "x3";
  EXPECT_FALSE(messaging.try_submit(1, in, {}).has_value());
  EXPECT_FALSE(messaging.try_ack(1, ch, 1).has_value());
  ASSERT_TRUE(messaging.check_access(1, ch).ok());  // loads the list
  auto to_channel = messaging.try_submit(1, in, {});
  ASSERT_TRUE(to_channel.has_value());
  EXPECT_TRUE(to_channel->ok());
  auto stranger = messaging.try_submit(2, in, {});
  ASSERT_TRUE(stranger.has_value());
  EXPECT_EQ(stranger->error().code, Errc::not_found);
  EXPECT_EQ(queue.depth(), 3u);  // only the member's send

  // ACKs: answered from the in-memory cursors, gathered like ack() does.
  store_dms(1, 2, 2);
  auto ack = messaging.try_ack(2, dm_, 2);
  ASSERT_TRUE(ack.has_value());
  EXPECT_TRUE(ack->ok());
  ASSERT_TRUE(messaging.flush_acks().ok());
  EXPECT_EQ(stored_cursor(), 2u);
  auto again = messaging.try_ack(2, dm_, 1);  // at or below the cursor: nothing to write
  ASSERT_TRUE(again.has_value());
  ASSERT_TRUE(messaging.flush_acks().ok());
  EXPECT_EQ(inbox.flushes.load(), 1);
  auto foreign = messaging.try_ack(3, dm_, 1);
  ASSERT_TRUE(foreign.has_value());
  EXPECT_EQ(foreign->error().code, Errc::forbidden);
}

// A closed connection asks for the gathered ACKs to be written at once, not at the next tick
// (here an hour away): a reconnect elsewhere then resumes from them.
TEST_F(AckCursor, FlushSoonWritesTheGatheredAcksBeforeTheNextTick) {
  store_dms(1, 2, 3);
  messaging.start(std::chrono::hours(1));
  ASSERT_TRUE(messaging.ack(2, dm_, 3).ok());
  EXPECT_EQ(stored_cursor(), 0u);
  messaging.flush_soon();
  ASSERT_TRUE(inbox.wait_flushes(1, testing::kWaitTimeout));
  EXPECT_EQ(stored_cursor(), 3u);
  messaging.stop();
}

}  // namespace
}  // namespace imd
