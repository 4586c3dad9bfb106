// The Queue port's contract, run on every adapter: LocalQueue (instantiation Local/, no outside
// service) and NatsQueue (Nats/, needs the CTest fixture `nats`).
#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "queue/local_queue.hpp"
#include "queue_nats/nats_queue.hpp"
#include "queue_nats/nats_test_support.hpp"

namespace imd {
namespace {

using namespace std::chrono_literals;
using testing::wait_until;

// How a test builds, starts and settles one adapter.
class Harness {
 public:
  virtual ~Harness() = default;
  // `bound`: what publish() may hold before refusing (LocalQueue: capacity; NatsQueue:
  // unconfirmed publishes).
  virtual std::unique_ptr<Queue> make(std::size_t bound, std::size_t batch_max) = 0;
  // Starts consuming everything (a NatsQueue is assigned all partitions).
  virtual void start(Queue& q, Queue::Consumer c) = 0;
  // Returns once every accepted publish is ready for consumption.
  virtual void settle(Queue& q, std::size_t published) = 0;
  // The adapter's counters, for failure messages.
  virtual std::string describe(Queue&) { return {}; }
};

class LocalHarness final : public Harness {
 public:
  std::unique_ptr<Queue> make(std::size_t bound, std::size_t batch_max) override {
    return std::make_unique<LocalQueue>(bound, batch_max);
  }
  void start(Queue& q, Queue::Consumer c) override { q.start(std::move(c)); }
  void settle(Queue&, std::size_t) override {}
};

class NatsHarness final : public Harness {
 public:
  explicit NatsHarness(std::string url) : url_(std::move(url)), raw_(url_) {}
  std::unique_ptr<Queue> make(std::size_t bound, std::size_t batch_max) override {
    auto o = testing::nats_test_options(url_);
    o.partitions = 8;
    o.max_pending_publishes = bound;
    o.fetch_batch_max = static_cast<std::uint32_t>(batch_max);
    o.publish_confirm_timeout = 10s;
    raw_.delete_later(o.stream);
    raw_.delete_later(o.dlq_stream);
    return std::make_unique<NatsQueue>(o);
  }
  void start(Queue& q, Queue::Consumer c) override {
    auto& n = dynamic_cast<NatsQueue&>(q);
    n.start(std::move(c));
    std::vector<std::uint32_t> all;
    for (std::uint32_t p = 0; p < n.options().partitions; ++p) all.push_back(p);
    n.assign(all);
  }
  void settle(Queue& q, std::size_t published) override {
    auto& n = dynamic_cast<NatsQueue&>(q);
    ASSERT_TRUE(wait_until([&] { return n.stats().confirmed >= published; }));
  }
  std::string describe(Queue& q) override {
    auto s = dynamic_cast<NatsQueue&>(q).stats();
    return "published " + std::to_string(s.published) + ", confirmed " +
           std::to_string(s.confirmed) + ", failed " + std::to_string(s.publish_failed) +
           ", consumed " + std::to_string(s.consumed) + ", acked " + std::to_string(s.acked) +
           ", retried " + std::to_string(s.retried) + ", duplicates " +
           std::to_string(s.duplicates) + ", dead " + std::to_string(s.dead_lettered);
  }

 private:
  std::string url_;
  testing::RawNats raw_;
};

NewMessage make_msg(ConvKey conv, Id id, std::uint64_t n) {
  NewMessage m;
  m.msg.id = id;
  m.msg.conv = conv;
  m.msg.seq = n;  // the publish order within the conversation (the store would overwrite it)
  m.msg.from = 1;
  m.msg.type = "text";
  m.msg.body = "b" + std::to_string(id);
  m.msg.cid = "c" + std::to_string(id);
  return m;
}

// Retries while the queue pushes back, as a gateway's sender would (same message, same order).
void publish_with_retry(Queue& q, NewMessage m) {
  for (;;) {
    auto r = q.publish(m);
    if (r) return;
    ASSERT_EQ(r.error().code, Errc::too_many_requests) << r.error().message;
    std::this_thread::sleep_for(1ms);
  }
}

class QueueContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "local") {
      harness_ = std::make_unique<LocalHarness>();
      return;
    }
    auto url = testing::nats_test_url();
    if (!url) GTEST_SKIP() << testing::kNatsSkipReason;
    harness_ = std::make_unique<NatsHarness>(*url);
  }
  std::unique_ptr<Harness> harness_;
};

TEST_P(QueueContract, KeepsPublishOrderPerConversationAcrossPartitions) {
  constexpr int kConvs = 50, kPerConv = 200, kThreads = 5;
  auto q = harness_->make(20000, 512);
  std::mutex mu;
  std::map<Id, std::vector<std::uint64_t>> seen;  // conversation -> order numbers
  std::size_t total = 0;
  harness_->start(*q, [&](std::vector<NewMessage>& batch) {
    std::lock_guard lock(mu);
    for (auto& m : batch) seen[m.msg.conv.a].push_back(m.msg.seq);
    total += batch.size();
    return Queue::Outcome::done;
  });
  // Each thread owns some conversations and interleaves them.
  std::vector<std::thread> publishers;
  for (int t = 0; t < kThreads; ++t) {
    publishers.emplace_back([&, t] {
      for (int n = 1; n <= kPerConv; ++n) {
        for (int c = t; c < kConvs; c += kThreads) {
          Id id = static_cast<Id>(c) * 1000 + n;
          publish_with_retry(*q, make_msg(ConvKey::channel(100 + c), id, n));
        }
      }
    });
  }
  for (auto& p : publishers) p.join();
  ASSERT_TRUE(wait_until(
      [&] {
        std::lock_guard lock(mu);
        return total >= kConvs * kPerConv;
      },
      60s));
  q->stop();
  std::lock_guard lock(mu);
  EXPECT_EQ(total, static_cast<std::size_t>(kConvs * kPerConv)) << harness_->describe(*q);
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(kConvs));
  for (auto& [conv, order] : seen) {
    ASSERT_EQ(order.size(), static_cast<std::size_t>(kPerConv)) << "conversation " << conv;
    for (int n = 0; n < kPerConv; ++n) ASSERT_EQ(order[n], std::uint64_t(n + 1)) << conv;
  }
}

TEST_P(QueueContract, BatchesGrowUnderLoad) {
  constexpr std::size_t kBatchMax = 64, kCount = 2000;
  auto q = harness_->make(20000, kBatchMax);
  for (std::size_t i = 1; i <= kCount; ++i) {
    publish_with_retry(*q, make_msg(ConvKey::channel(1 + i % 4), i, i));
  }
  harness_->settle(*q, kCount);
  std::mutex mu;
  std::size_t total = 0, max_batch = 0;
  harness_->start(*q, [&](std::vector<NewMessage>& batch) {
    std::lock_guard lock(mu);
    total += batch.size();
    max_batch = std::max(max_batch, batch.size());
    return Queue::Outcome::done;
  });
  ASSERT_TRUE(wait_until([&] {
    std::lock_guard lock(mu);
    return total >= kCount;
  }));
  q->stop();
  EXPECT_GT(max_batch, 1u);
  EXPECT_LE(max_batch, kBatchMax);
}

TEST_P(QueueContract, RefusesAtOnceWhenFullAndNeverBlocks) {
  constexpr std::size_t kBound = 8;
  auto q = harness_->make(kBound, 16);
  std::atomic<int> failed{0};
  q->on_failed([&](const NewMessage&, const Error&) { ++failed; });
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<std::size_t> consumed{0};
  harness_->start(*q, [&](std::vector<NewMessage>& batch) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return release; });
    consumed += batch.size();
    return Queue::Outcome::done;
  });
  std::size_t accepted = 0, refused = 0;
  auto slowest = std::chrono::steady_clock::duration::zero();
  for (Id i = 1; i <= 100000 && refused < 10; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = q->publish(make_msg(ConvKey::channel(1 + i % 3), i, i));
    slowest = std::max(slowest, std::chrono::steady_clock::now() - t0);
    if (r) {
      ++accepted;
    } else {
      ASSERT_EQ(r.error().code, Errc::too_many_requests) << r.error().message;
      ++refused;
    }
  }
  EXPECT_GE(refused, 10u);
  EXPECT_LT(slowest, 100ms);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  // Every accepted message is consumed, or reported as failed.
  ASSERT_TRUE(wait_until([&] { return consumed.load() + failed.load() >= accepted; }))
      << consumed.load() << " + " << failed.load() << " of " << accepted;
  q->stop();
}

TEST_P(QueueContract, StopEndsConsumption) {
  auto q = harness_->make(1000, 16);
  std::atomic<std::size_t> consumed{0};
  harness_->start(*q, [&](std::vector<NewMessage>& batch) {
    consumed += batch.size();
    return Queue::Outcome::done;
  });
  for (Id i = 1; i <= 100; ++i) publish_with_retry(*q, make_msg(ConvKey::channel(1 + i % 5), i, i));
  ASSERT_TRUE(wait_until([&] { return consumed.load() >= 1; }));
  q->stop();
  std::size_t at_stop = consumed.load();
  auto after = q->publish(make_msg(ConvKey::channel(1), 1000, 1000));
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, Errc::unavailable);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(consumed.load(), at_stop);
}

INSTANTIATE_TEST_SUITE_P(Local, QueueContract, ::testing::Values(std::string("local")));
INSTANTIATE_TEST_SUITE_P(Nats, QueueContract, ::testing::Values(std::string("nats")));

}  // namespace
}  // namespace imd
