#include "queue/local_queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace imd {
namespace {

NewMessage msg(Id id) {
  NewMessage m;
  m.msg.id = id;
  return m;
}

TEST(LocalQueue, DeliversInOrderInBatches) {
  LocalQueue q(10000, 64);
  std::mutex mu;
  std::vector<Id> seen;
  std::size_t max_batch = 0;
  q.start([&](std::vector<NewMessage>& batch) {
    std::lock_guard lock(mu);
    max_batch = std::max(max_batch, batch.size());
    for (auto& m : batch) seen.push_back(m.msg.id);
    return Queue::Outcome::done;
  });
  for (Id i = 1; i <= 5000; ++i) ASSERT_TRUE(q.publish(msg(i)));
  q.stop();  // drains
  ASSERT_EQ(seen.size(), 5000u);
  for (Id i = 0; i < 5000; ++i) EXPECT_EQ(seen[i], i + 1);
  EXPECT_LE(max_batch, 64u);
}

TEST(LocalQueue, FullQueueAppliesBackPressure) {
  LocalQueue q(3, 10);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  q.start([&](std::vector<NewMessage>&) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return release; });
    return Queue::Outcome::done;
  });
  // The consumer holds the first batch; the queue takes `capacity` more, then refuses.
  ASSERT_TRUE(q.publish(msg(1)));
  while (q.depth() != 0) std::this_thread::yield();
  for (Id i = 2; i <= 4; ++i) ASSERT_TRUE(q.publish(msg(i)));
  auto r = q.publish(msg(5));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::too_many_requests);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  q.stop();
  auto after = q.publish(msg(6));
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, Errc::unavailable);
}

TEST(LocalQueue, LingerGathersMessagesThatArriveMeanwhileIntoOneBatch) {
  using namespace std::chrono_literals;
  LocalQueue q(100, 4, std::chrono::microseconds(2000000));
  std::mutex mu;
  std::vector<std::size_t> batches;
  q.start([&](std::vector<NewMessage>& batch) {
    std::lock_guard lock(mu);
    batches.push_back(batch.size());
    return Queue::Outcome::done;
  });
  // Three messages 20 ms apart: well inside the 2 s linger, so one batch.
  for (Id i = 1; i <= 3; ++i) {
    ASSERT_TRUE(q.publish(msg(i)));
    std::this_thread::sleep_for(20ms);
  }
  // A full batch (batch_max 4) is taken at once, without waiting out the linger.
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(q.publish(msg(4)));
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (!batches.empty()) break;
    }
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms);
  q.stop();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0], 4u);
}

// A store that stalls cannot hold a shutdown past its deadline: what is still queued then is
// dropped (never ACKed: the senders resend it), the batch in hand is finished.
TEST(LocalQueue, StopDropsWhatIsLeftOnceTheDrainDeadlinePassed) {
  LocalQueue q(1000000, 1);
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, released = false;
  std::atomic<int> consumed{0};
  q.start([&](std::vector<NewMessage>& batch) {
    std::unique_lock lock(mu);
    started = true;
    cv.notify_all();
    cv.wait(lock, [&] { return released; });
    consumed += static_cast<int>(batch.size());
    return Queue::Outcome::done;
  });
  for (Id i = 1; i <= 10; ++i) ASSERT_TRUE(q.publish(msg(i)));
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return started; });  // the first message is in the consumer's hands
  }
  q.drain_until(std::chrono::steady_clock::now());  // already passed
  std::thread stopper([&] { q.stop(); });
  // stop() has begun once publishing is refused as shutting down (what is accepted until then
  // is queued behind the stalled batch, and dropped with the rest).
  for (;;) {
    auto r = q.publish(msg(99));
    if (!r && r.error().code == Errc::unavailable) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  {
    std::lock_guard lock(mu);
    released = true;
  }
  cv.notify_all();
  stopper.join();
  EXPECT_EQ(consumed.load(), 1);
  EXPECT_EQ(q.depth(), 0u);
}

}  // namespace
}  // namespace imd
