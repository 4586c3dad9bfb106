// NatsQueue against a real nats-server (JetStream): what the Queue contract test does not
// cover because only a redelivering, de-duplicating, partitioned queue has it.
#include "queue_nats/nats_queue.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "queue_nats/message_codec.hpp"
#include "queue_nats/nats_test_support.hpp"

namespace imd {
namespace {

using namespace std::chrono_literals;
using testing::nats_test_options;
using testing::RawNats;
using testing::wait_until;

NewMessage make(ConvKey conv, Id id, std::string cid = {}, std::string body = {}) {
  NewMessage m;
  m.msg.id = id;
  m.msg.conv = conv;
  m.msg.from = 1000 + id % 7;
  m.msg.type = "text";
  m.msg.body = body.empty() ? "m" + std::to_string(id) : std::move(body);
  m.msg.cid = cid.empty() ? "c" + std::to_string(id) : std::move(cid);
  m.origin = ConnRef{1, id};
  return m;
}

// Everything the consumer was handed, call by call.
struct Recorder {
  struct Call {
    std::vector<Id> ids;
    std::vector<std::uint32_t> attempts;
    std::vector<std::uint64_t> origins;  // origin connection ids
  };
  std::mutex mu;
  std::vector<Call> calls;
  std::vector<Id> done_ids;  // ids of batches answered `done`, in order
  std::function<Queue::Outcome(const std::vector<NewMessage>&)> policy =
      [](const std::vector<NewMessage>&) { return Queue::Outcome::done; };

  Queue::Consumer consumer() {
    return [this](std::vector<NewMessage>& batch) {
      Call c;
      for (auto& m : batch) {
        c.ids.push_back(m.msg.id);
        c.attempts.push_back(m.attempt);
        c.origins.push_back(m.origin.conn);
      }
      auto outcome = policy(batch);
      std::lock_guard lock(mu);
      calls.push_back(std::move(c));
      if (outcome == Queue::Outcome::done) {
        for (auto& m : batch) done_ids.push_back(m.msg.id);
      }
      return outcome;
    };
  }
  std::size_t done_count() {
    std::lock_guard lock(mu);
    return done_ids.size();
  }
  std::size_t call_count() {
    std::lock_guard lock(mu);
    return calls.size();
  }
};

class NatsQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = testing::nats_test_url();
    if (!url) GTEST_SKIP() << testing::kNatsSkipReason;
    opts_ = nats_test_options(*url);
    raw_ = std::make_unique<RawNats>(*url);
    ASSERT_TRUE(raw_->ok());
    raw_->delete_later(opts_.stream);
    raw_->delete_later(opts_.dlq_stream);
  }

  // A conversation whose messages land on `partition`.
  ConvKey conv_on(const NatsQueue& q, std::uint32_t partition, Id from = 1) {
    for (Id c = from;; ++c) {
      if (q.partition_of(ConvKey::channel(c)) == partition) return ConvKey::channel(c);
    }
  }

  static void all_confirmed(NatsQueue& q, std::uint64_t n) {
    ASSERT_TRUE(wait_until([&] { return q.stats().confirmed >= n; })) << q.stats().confirmed;
  }

  NatsQueueOptions opts_;
  std::unique_ptr<RawNats> raw_;
};

// JetStream keeps one copy per (sender, cid); a repeat that it drops is published once more
// under an id naming the repeat's connection, so that the consumer (whose store answers it as a
// duplicate) can tell that connection too. A repeat from that same connection again is dropped.
TEST_F(NatsQueueTest, SameSenderAndCidIsKeptOncePlusOnceForEachOtherConnection) {
  NatsQueue q(opts_);
  auto conv = ConvKey::dm(1, 2);
  auto from_conn = [&](std::uint64_t conn) {
    auto m = make(conv, 1, "same");
    m.origin = ConnRef{1, conn};
    return m;
  };
  ASSERT_TRUE(q.publish(from_conn(10)));
  all_confirmed(q, 1);
  ASSERT_TRUE(q.publish(from_conn(10)));  // the client retried on the same connection
  ASSERT_TRUE(q.publish(from_conn(10)));
  // Each repeat: its own confirmation, then one for the copy under the connection's id.
  ASSERT_TRUE(wait_until([&] { return q.stats().confirmed >= 5; }));
  ASSERT_TRUE(q.publish(from_conn(20)));  // ... and once more after reconnecting elsewhere
  ASSERT_TRUE(q.publish(make(conv, 2, "other")));
  ASSERT_TRUE(wait_until([&] { return q.stats().confirmed >= 8; }));

  Recorder rec;
  q.start(rec.consumer());
  q.assign({0, 1, 2, 3});
  ASSERT_TRUE(wait_until([&] { return rec.done_count() >= 4; }));
  std::this_thread::sleep_for(300ms);
  std::vector<std::uint64_t> origins_of_1;
  {
    std::lock_guard lock(rec.mu);
    for (const auto& call : rec.calls)
      for (std::size_t i = 0; i < call.ids.size(); ++i)
        if (call.ids[i] == 1) origins_of_1.push_back(call.origins[i]);
  }
  // The original, one copy for connection 10's repeats, one for connection 20.
  EXPECT_EQ(origins_of_1, (std::vector<std::uint64_t>{10, 10, 20}));
  EXPECT_EQ(std::count(rec.done_ids.begin(), rec.done_ids.end(), 2), 1);
  EXPECT_EQ(raw_->stream_msgs(opts_.stream), 0u);  // work queue: ACKed messages are removed
  q.stop();
  auto s = q.stats();
  EXPECT_EQ(s.confirmed, s.published);
  EXPECT_EQ(s.acked, 4u);
  EXPECT_EQ(s.publish_failed, 0u);
}

TEST_F(NatsQueueTest, RetryHandsTheSameBatchAgainInOrderWithAttemptsCountingUp) {
  opts_.partitions = 1;
  opts_.max_attempts = 10;
  NatsQueue q(opts_);
  auto conv = ConvKey::channel(7);
  for (Id i = 1; i <= 5; ++i) ASSERT_TRUE(q.publish(make(conv, i)));
  all_confirmed(q, 5);

  Recorder rec;
  std::atomic<int> calls{0};
  rec.policy = [&](const std::vector<NewMessage>&) {
    return ++calls <= 3 ? Queue::Outcome::retry : Queue::Outcome::done;
  };
  q.start(rec.consumer());
  q.assign({0});
  ASSERT_TRUE(wait_until([&] { return calls.load() >= 1; }));
  for (Id i = 6; i <= 10; ++i) ASSERT_TRUE(q.publish(make(conv, i)));  // must not overtake
  ASSERT_TRUE(wait_until([&] { return rec.done_count() >= 10; }));
  q.stop();

  std::lock_guard lock(rec.mu);
  ASSERT_GE(rec.calls.size(), 4u);
  const auto& first = rec.calls[0].ids;
  for (int c = 0; c < 4; ++c) {
    EXPECT_EQ(rec.calls[c].ids, first) << "call " << c;
    for (auto a : rec.calls[c].attempts) EXPECT_EQ(a, static_cast<std::uint32_t>(c + 1));
  }
  std::vector<Id> want;
  for (Id i = 1; i <= 10; ++i) want.push_back(i);
  EXPECT_EQ(rec.done_ids, want);
  auto s = q.stats();
  EXPECT_EQ(s.retried, 3 * first.size());
  EXPECT_EQ(s.acked, 10u);
  EXPECT_EQ(s.dead_lettered, 0u);
}

TEST_F(NatsQueueTest, RetryBeyondMaxAttemptsDeadLettersAndLaterMessagesFlow) {
  opts_.partitions = 1;
  opts_.max_attempts = 3;
  NatsQueue q(opts_);
  std::mutex fmu;
  std::vector<std::pair<NewMessage, Error>> failed;
  q.on_failed([&](const NewMessage& m, const Error& e) {
    std::lock_guard lock(fmu);
    failed.emplace_back(m, e);
  });
  auto conv = ConvKey::channel(9);
  ASSERT_TRUE(q.publish(make(conv, 1, "p", "poison")));
  all_confirmed(q, 1);

  Recorder rec;
  rec.policy = [](const std::vector<NewMessage>& batch) {
    for (auto& m : batch) {
      if (m.msg.body == "poison") return Queue::Outcome::retry;
    }
    return Queue::Outcome::done;
  };
  q.start(rec.consumer());
  q.assign({0});
  ASSERT_TRUE(wait_until([&] { return rec.call_count() >= 1; }));
  for (Id i = 2; i <= 4; ++i) ASSERT_TRUE(q.publish(make(conv, i)));
  ASSERT_TRUE(wait_until([&] { return rec.done_count() >= 3; }));
  q.stop();

  {
    std::lock_guard lock(rec.mu);
    ASSERT_GE(rec.calls.size(), 4u);
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(rec.calls[c].ids, (std::vector<Id>{1}));
      EXPECT_EQ(rec.calls[c].attempts, (std::vector<std::uint32_t>{std::uint32_t(c + 1)}));
    }
    EXPECT_EQ(rec.done_ids, (std::vector<Id>{2, 3, 4}));
  }
  {
    std::lock_guard lock(fmu);
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].first.msg.id, 1u);
    EXPECT_EQ(failed[0].first.msg.body, "poison");
    EXPECT_EQ(failed[0].second.code, Errc::unavailable);
  }
  EXPECT_EQ(q.stats().dead_lettered, 1u);
  ASSERT_EQ(raw_->stream_msgs(opts_.dlq_stream), 1u);
  auto dead =
      raw_->get(opts_.dlq_stream, 1,
                {"Imd-Dlq-Reason", "Imd-Dlq-Partition", "Imd-Dlq-Stream", "Imd-Dlq-Attempts"});
  ASSERT_TRUE(dead);
  auto decoded = queue_nats::decode_new_message(dead->data);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->msg.body, "poison");
  EXPECT_FALSE(dead->headers[0].empty());
  EXPECT_EQ(dead->headers[1], "0");
  EXPECT_EQ(dead->headers[2], opts_.stream);
  EXPECT_EQ(dead->headers[3], "3");
}

// A queue that goes away holding an un-ACKed batch: the next owner of the partition gets those
// messages again after ack_wait (attempt >= 2), before the newer ones, and nothing is lost.
void redelivered_to_next_owner(const NatsQueueOptions& opts, bool destroy) {
  auto first = std::make_unique<NatsQueue>(opts);
  auto conv = ConvKey::channel(3);
  for (Id i = 1; i <= 20; ++i) ASSERT_TRUE(first->publish(make(conv, i)));
  ASSERT_TRUE(wait_until([&] { return first->stats().confirmed >= 20; }));
  Recorder stuck;
  stuck.policy = [](const std::vector<NewMessage>&) { return Queue::Outcome::retry; };
  first->start(stuck.consumer());
  first->assign({0});
  ASSERT_TRUE(wait_until([&] { return stuck.call_count() >= 1; }));
  std::vector<Id> held;
  {
    std::lock_guard lock(stuck.mu);
    held = stuck.calls[0].ids;
  }
  if (destroy) {
    first.reset();
  } else {
    first->stop();
  }

  NatsQueue second(opts);
  Recorder rec;
  std::mutex mu;
  std::map<Id, std::uint32_t> attempts;
  rec.policy = [&](const std::vector<NewMessage>& batch) {
    std::lock_guard lock(mu);
    for (auto& m : batch) attempts[m.msg.id] = m.attempt;
    return Queue::Outcome::done;
  };
  for (Id i = 21; i <= 25; ++i) ASSERT_TRUE(second.publish(make(conv, i)));
  auto t0 = std::chrono::steady_clock::now();
  second.start(rec.consumer());
  second.assign({0});
  ASSERT_TRUE(wait_until([&] { return rec.done_count() >= 25; }));
  second.stop();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, opts.ack_wait / 2);
  std::vector<Id> want;
  for (Id i = 1; i <= 25; ++i) want.push_back(i);
  EXPECT_EQ(rec.done_ids, want);
  for (Id id : held) EXPECT_GE(attempts[id], 2u) << "message " << id;
}

TEST_F(NatsQueueTest, StoppedHolderIsRedeliveredToTheNextOwner) {
  opts_.partitions = 1;
  opts_.max_attempts = 1000;
  redelivered_to_next_owner(opts_, /*destroy=*/false);
}

TEST_F(NatsQueueTest, DestroyedHolderIsRedeliveredToTheNextOwner) {
  opts_.partitions = 1;
  opts_.max_attempts = 1000;
  redelivered_to_next_owner(opts_, /*destroy=*/true);
}

TEST_F(NatsQueueTest, ASlowConsumerCallCausesNoRedeliveryWhileItOwnsThePartition) {
  opts_.partitions = 1;
  NatsQueue q(opts_);
  auto conv = ConvKey::channel(4);
  for (Id i = 1; i <= 5; ++i) ASSERT_TRUE(q.publish(make(conv, i)));
  all_confirmed(q, 5);
  Recorder rec;
  std::atomic<bool> first{true};
  rec.policy = [&](const std::vector<NewMessage>&) {
    if (first.exchange(false)) std::this_thread::sleep_for(opts_.ack_wait * 5 / 2);
    return Queue::Outcome::done;
  };
  q.start(rec.consumer());
  q.assign({0});
  ASSERT_TRUE(wait_until([&] { return rec.done_count() >= 5; }));
  std::this_thread::sleep_for(opts_.ack_wait + 500ms);  // a redelivery would show by now
  q.stop();
  std::lock_guard lock(rec.mu);
  EXPECT_EQ(rec.done_ids, (std::vector<Id>{1, 2, 3, 4, 5}));
  for (auto& c : rec.calls) {
    for (auto a : c.attempts) EXPECT_EQ(a, 1u);
  }
}

TEST_F(NatsQueueTest, ReassigningPartitionsBetweenInstancesLosesNothing) {
  opts_.partitions = 4;
  NatsQueue a(opts_), b(opts_);
  std::mutex mu;
  std::map<Id, int> times;
  std::map<ConvKey, std::vector<Id>> order;
  std::size_t by[2] = {0, 0};
  auto consumer = [&](int who) {
    return [&, who](std::vector<NewMessage>& batch) {
      std::lock_guard lock(mu);
      by[who] += batch.size();
      for (auto& m : batch) {
        if (times[m.msg.id]++ == 0) order[m.msg.conv].push_back(m.msg.id);
      }
      return Queue::Outcome::done;
    };
  };
  a.start(consumer(0));
  b.start(consumer(1));
  a.assign({0, 1, 2, 3});
  b.assign({});

  constexpr Id kTotal = 2000;
  std::thread publisher([&] {
    for (Id i = 1; i <= kTotal; ++i) {
      while (!a.publish(make(ConvKey::channel(1 + i % 20), i))) std::this_thread::sleep_for(1ms);
      if (i % 20 == 0) std::this_thread::sleep_for(5ms);  // ~0.5 s: reassigned meanwhile
    }
  });
  std::this_thread::sleep_for(100ms);
  a.assign({0, 1});  // the old owner lets go first, then the new one takes over
  b.assign({2, 3});
  std::this_thread::sleep_for(100ms);
  b.assign({3});
  a.assign({0, 1, 2});
  std::this_thread::sleep_for(100ms);
  a.assign({});
  b.assign({0, 1, 2, 3});
  publisher.join();
  ASSERT_TRUE(wait_until([&] {
    std::lock_guard lock(mu);
    return times.size() == kTotal;
  }));
  a.stop();
  b.stop();
  std::lock_guard lock(mu);
  EXPECT_GT(by[0], 0u);
  EXPECT_GT(by[1], 0u);
  for (auto& [id, n] : times) EXPECT_EQ(n, 1) << "message " << id << " consumed " << n << " times";
  for (auto& [conv, ids] : order) {
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << "conversation " << conv.a;
  }
}

TEST_F(NatsQueueTest, GarbageOnAPartitionSubjectIsDeadLetteredAndConsumingGoesOn) {
  NatsQueue q(opts_);
  auto conv = conv_on(q, 0);
  ASSERT_TRUE(raw_->publish(opts_.subject_prefix + ".0", "\x01garbage\xff"));
  ASSERT_TRUE(q.publish(make(conv, 1)));
  all_confirmed(q, 1);
  std::atomic<int> failed{0};
  q.on_failed([&](const NewMessage&, const Error&) { ++failed; });

  Recorder rec;
  q.start(rec.consumer());
  q.assign({0, 1, 2, 3});
  ASSERT_TRUE(wait_until([&] { return rec.done_count() >= 1; }));
  ASSERT_TRUE(wait_until([&] { return q.stats().dead_lettered >= 1; }));
  q.stop();
  EXPECT_EQ(rec.done_ids, (std::vector<Id>{1}));
  auto s = q.stats();
  EXPECT_EQ(s.decode_errors, 1u);
  EXPECT_EQ(s.dead_lettered, 1u);
  EXPECT_EQ(failed.load(), 0);  // no sender to tell
  ASSERT_EQ(raw_->stream_msgs(opts_.dlq_stream), 1u);
  auto dead = raw_->get(opts_.dlq_stream, 1, {"Imd-Dlq-Reason"});
  ASSERT_TRUE(dead);
  EXPECT_EQ(dead->data, "\x01garbage\xff");
  EXPECT_NE(dead->headers[0].find("magic"), std::string::npos) << dead->headers[0];
}

// The server stops answering (paused, then killed) after the queue started: every accepted
// publish is either refused at once or reported to Failed; none is dropped silently.
TEST_F(NatsQueueTest, UnconfirmedPublishIsReportedToFailed) {
  testing::PrivateNatsServer server;
  if (!server.started()) GTEST_SKIP() << "nats-server not found";
  ASSERT_TRUE(server.wait_ready());
  auto opts = nats_test_options(server.url());
  opts.publish_confirm_timeout = 300ms;
  opts.stop_timeout = 500ms;
  NatsQueue q(opts);
  std::mutex mu;
  std::vector<std::pair<Id, Errc>> failed;
  q.on_failed([&](const NewMessage& m, const Error& e) {
    std::lock_guard lock(mu);
    failed.emplace_back(m.msg.id, e.code);
  });
  ASSERT_TRUE(q.publish(make(ConvKey::channel(1), 1)));
  ASSERT_TRUE(wait_until([&] { return q.stats().confirmed == 1; }));

  server.pause();
  for (Id i = 2; i <= 4; ++i) ASSERT_TRUE(q.publish(make(ConvKey::channel(1), i)));
  ASSERT_TRUE(wait_until([&] { return q.stats().publish_failed >= 3; }, 10s));
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(failed.size(), 3u);
    for (auto& [id, code] : failed) EXPECT_EQ(code, Errc::unavailable);
  }

  server.kill();
  std::size_t refused = 0;
  for (Id i = 5; i <= 6; ++i) {
    if (!q.publish(make(ConvKey::channel(1), i))) ++refused;
  }
  ASSERT_TRUE(wait_until([&] { return q.stats().publish_failed + refused >= 5; }, 10s));
  q.stop();
  auto s = q.stats();
  EXPECT_EQ(s.confirmed, 1u);
  EXPECT_EQ(s.publish_failed + refused, 5u);
}

TEST_F(NatsQueueTest, StartUpIsIdempotentAndRefusesAnIncompatibleStream) {
  { NatsQueue first(opts_); }
  { NatsQueue again(opts_); }  // same configuration: nothing to change
  auto other = opts_;
  other.file_storage = !opts_.file_storage;  // JetStream cannot change a stream's storage
  try {
    NatsQueue q(other);
    FAIL() << "started on a stream of another storage type";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(opts_.stream), std::string::npos) << e.what();
  }
}

TEST(NatsQueueUnit, StartUpFailsWithAClearMessageWhenNatsIsUnreachable) {
  auto opts = nats_test_options("unused");
  opts.url = "nats://user:secret@127.0.0.1:1";
  opts.connect_timeout = 500ms;
  try {
    NatsQueue q(opts);
    FAIL() << "constructed without a server";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("127.0.0.1:1"), std::string::npos) << what;
    EXPECT_EQ(what.find("secret"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace imd
