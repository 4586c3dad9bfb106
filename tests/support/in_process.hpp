// In-process test support: the standalone adapters (SQLite store and inbox on a temporary
// database, memory caches and routes, LocalQueue, Snowflake ids) wired to the domain services
// as src/app/app.cpp wires them, with a FakeClock (time moves only when the test moves it) and a
// RecordingPusher (keeps every Push; a test waits for what it expects with a timeout, it never
// sleeps a fixed time). Header-only; link imd_in_process.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "cache/memory_cursor_cache.hpp"
#include "cache/memory_member_cache.hpp"
#include "cache/memory_user_cache.hpp"
#include "common/snowflake.hpp"
#include "domain/auth_service.hpp"
#include "domain/messaging_service.hpp"
#include "domain/password.hpp"
#include "domain/ports/pusher.hpp"
#include "domain/space_service.hpp"
#include "domain/sync_service.hpp"
#include "domain/tokens.hpp"
#include "queue/local_queue.hpp"
#include "routes/memory_routes.hpp"
#include "store/sqlite_inbox.hpp"
#include "store/sqlite_store.hpp"
#include "store/sqlite_test_support.hpp"
#include "support/fake_clock.hpp"

namespace imd::testing {

// How long a test waits for an event it expects before it fails (long: a loaded machine is
// slow, and only a failing test waits this long).
inline constexpr std::chrono::milliseconds kWaitTimeout{10000};

// A Pusher that keeps every Push in call order, optionally handing each call on to another
// Pusher (a Hub) first. Thread-safe: the queue's consumer pushes from its own thread while the
// test waits.
class RecordingPusher final : public Pusher {
 public:
  // Every call is handed to `next` (which must outlive this) before it is recorded.
  void forward_to(Pusher* next) {
    std::lock_guard lock(mu_);
    next_ = next;
  }

  void push(std::vector<Push> pushes) override {
    Pusher* next = nullptr;
    {
      std::lock_guard lock(mu_);
      next = next_;
    }
    if (next) next->push(pushes);
    {
      std::lock_guard lock(mu_);
      for (auto& p : pushes) pushes_.push_back(std::move(p));
    }
    changed_.notify_all();
  }

  // Waits until `done(pushes so far)` holds; false if it did not within `timeout`.
  bool wait_until(const std::function<bool(const std::vector<Push>&)>& done,
                  std::chrono::milliseconds timeout = kWaitTimeout) const {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return done(pushes_); });
  }
  // Waits until `conn` got at least `n` events of type E, and returns those it got (fewer after
  // a timeout: the caller's size check fails then).
  template <class E>
  std::vector<E> wait_events(ConnRef conn, std::size_t n,
                             std::chrono::milliseconds timeout = kWaitTimeout) const {
    wait_until([&](const std::vector<Push>& all) { return of_type<E>(all, conn).size() >= n; },
               timeout);
    return events<E>(conn);
  }

  // The events of type E pushed to `conn`, in push order.
  template <class E>
  std::vector<E> events(ConnRef conn) const {
    std::lock_guard lock(mu_);
    return of_type<E>(pushes_, conn);
  }
  // Every event pushed to `conn`, in push order.
  std::vector<std::shared_ptr<const Event>> events_to(ConnRef conn) const {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<const Event>> out;
    for (const auto& p : pushes_) {
      for (ConnRef t : p.targets) {
        if (t == conn) out.push_back(p.event);
      }
    }
    return out;
  }
  std::vector<Push> pushes() const {
    std::lock_guard lock(mu_);
    return pushes_;
  }

 private:
  template <class E>
  static std::vector<E> of_type(const std::vector<Push>& all, ConnRef conn) {
    std::vector<E> out;
    for (const auto& p : all) {
      const E* e = std::get_if<E>(p.event.get());
      if (!e) continue;
      for (ConnRef t : p.targets) {
        if (t == conn) out.push_back(*e);
      }
    }
    return out;
  }

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::vector<Push> pushes_;
  Pusher* next_ = nullptr;
};

// MemoryRoutes whose lookups can be made to fail, as RedisRoutes' do while Redis is away.
class FlakyRoutes final : public Routes {
 public:
  void add(Id user, ConnRef conn) override { inner_.add(user, conn); }
  void remove(Id user, ConnRef conn) override { inner_.remove(user, conn); }
  std::vector<ConnRef> lookup(Id user) override { return inner_.lookup(user); }
  bool lookup_many(std::span<const Id> users,
                   const std::function<void(Id, ConnRef)>& visit) override {
    return !fail_lookups.load() && inner_.lookup_many(users, visit);
  }
  std::atomic<bool> fail_lookups{false};

 private:
  MemoryRoutes inner_;
};

// SqliteInbox behind an Inbox that forwards every call: a test's inbox derives from it and
// overrides the calls it counts or fails.
class ForwardingInbox : public Inbox {
 public:
  explicit ForwardingInbox(std::shared_ptr<SqliteDatabase> db) : inner_(std::move(db)) {}
  Result<void> push(std::span<const InboxItem> items) override { return inner_.push(items); }
  Result<std::vector<Message>> list(Id user, const std::optional<InboxCursor>& after,
                                    std::uint32_t limit) override {
    return inner_.list(user, after, limit);
  }
  Result<void> ack(Id user, const ConvKey& conv, std::uint64_t seq) override {
    return inner_.ack(user, conv, seq);
  }
  Result<void> ack_many(std::span<const DeliveryUpdate> acks) override {
    return inner_.ack_many(acks);
  }
  Result<std::uint64_t> overflowed(Id user) override { return inner_.overflowed(user); }
  Result<void> clear_overflow(Id user, std::uint64_t seen) override {
    return inner_.clear_overflow(user, seen);
  }

 private:
  SqliteInbox inner_;
};

// The code of a failed Result, nullopt for a success: `EXPECT_EQ(error_of(r), Errc::forbidden)`.
template <class T>
std::optional<Errc> error_of(const Result<T>& r) {
  if (r) return std::nullopt;
  return r.error().code;
}

// A text message to a user, or to a channel, as a client sends it.
inline SendInput text_to_user(Id to, std::string cid, std::string body = "hi") {
  SendInput in;
  in.cid = std::move(cid);
  in.to = to;
  in.type = "text";
  in.body = std::move(body);
  return in;
}
inline SendInput text_to_channel(Id channel, std::string cid, std::string body = "hi") {
  SendInput in = text_to_user(0, std::move(cid), std::move(body));
  in.to.reset();
  in.channel = channel;
  return in;
}

inline constexpr std::int64_t kAccessTtlS = 900;
inline constexpr std::int64_t kRefreshTtlS = 30 * 24 * 3600;
inline constexpr std::int64_t kRefreshReuseS = 60;
inline const std::string kJwtSecret(40, 'k');

// The standalone composition on a temporary database. `InboxT` is SqliteInbox or a wrapper
// around it built from the same database (a test's inbox that counts or fails calls).
// The queue's consumer runs only after start_queue(); before it, published sends wait in the
// queue and a test may call messaging.consume() itself.
template <class InboxT = SqliteInbox>
struct InProcess {
  InProcess() = default;
  InProcess(const InProcess&) = delete;
  InProcess& operator=(const InProcess&) = delete;
  // The consumer thread calls into messaging: stop it before any part goes.
  ~InProcess() { queue.stop(); }

  // MessagingService::consume as the queue's consumer, as App::start sets it.
  void start_queue() {
    queue.start([this](std::vector<NewMessage>& batch) { return messaging.consume(batch); });
  }
  // submit(), then waits for its answer to `origin` (the queue's consumer must run): the `sent`,
  // or nullopt when submit() refused it, a failure was pushed instead, or nothing came in time.
  std::optional<SentEvent> send(Id from, const SendInput& in, ConnRef origin) {
    auto answers = [&](const std::vector<Push>& all) {
      std::size_t n = 0;
      for (const auto& p : all) {
        if (std::holds_alternative<MessageEvent>(*p.event)) continue;
        for (ConnRef t : p.targets) n += t == origin;
      }
      return n;
    };
    const std::size_t before = answers(pusher.pushes());
    const std::size_t sent_before = pusher.events<SentEvent>(origin).size();
    if (!messaging.submit(from, in, origin)) return std::nullopt;
    pusher.wait_until([&](const std::vector<Push>& all) { return answers(all) > before; });
    auto sent = pusher.events<SentEvent>(origin);
    if (sent.size() <= sent_before) return std::nullopt;
    return sent[sent_before];
  }
  // Messages stored as the queue's consumer stores them (a DM lands in the inbox too), without
  // the queue, from no connection: ids 10001, 10002 ..., cids "s1", "s2" ...
  void store_dms(Id from, Id to, int n) {
    consume_new(n, [&](Id id, std::string cid) { return dm_msg(id, from, to, std::move(cid)); });
  }
  void store_posts(Id from, Id channel, int n) {
    consume_new(
        n, [&](Id id, std::string cid) { return channel_msg(id, channel, from, std::move(cid)); });
  }
  // Users straight into the Store (no password hashing): `make_user(id, "u<id>")`.
  void add_users(std::initializer_list<Id> ids) {
    for (Id u : ids) require(store.create_user(make_user(u, "u" + std::to_string(u)), "h"));
  }
  // A space and a channel in it, both owned by `owner`, with `members` in both; straight into
  // the Store, so the caches are cold.
  void add_channel(Id space, Id channel, Id owner, std::initializer_list<Id> members) {
    require(store.create_space(Space{space, "s" + std::to_string(space), "", owner, 1}));
    Channel ch;
    ch.id = channel;
    ch.space_id = space;
    ch.name = "c" + std::to_string(channel);
    ch.owner_id = owner;
    ch.created_at = 1;
    require(store.create_channel(ch));
    for (Id u : members) {
      require(store.add_space_member(space, u, 1));
      require(store.add_channel_member(channel, u, 1));
    }
  }
  // A connection of `user` as a session opens it (after Hub::attach): routed, so that fan-out
  // finds it. Node 1, connection ids 1, 2, 3 ...
  ConnRef connect(Id user) {
    ConnRef c{1, ++next_conn_};
    routes.add(user, c);
    return c;
  }

  TempDir dir;
  std::shared_ptr<SqliteDatabase> db = open_db(dir.file("imd.db"));
  SqliteStore store{db};
  InboxT inbox{db};
  LocalQueue queue{64, 16};
  MemoryMemberCache members{[this](Id c) { return store.channel_member_ids(c); }};
  MemoryUserCache users{[this](Id u) { return store.memberships_of_user(u); }};
  MemoryCursorCache cursors;
  FlakyRoutes routes;
  RecordingPusher pusher;
  FakeClock clock;
  Snowflake ids{clock, 1};
  PasswordHasher hasher{"min"};
  TokenIssuer tokens{clock, kJwtSecret, kAccessTtlS};
  AuthService auth{store, ids, clock, hasher, tokens, users, kRefreshTtlS, kRefreshReuseS};
  SpaceService spaces{store, members, users, ids, clock};
  // DMs between any users (the fixtures' users share no space); the DM policy has its own tests.
  MessagingService messaging{store,
                             inbox,
                             queue,
                             {members, users, cursors},
                             routes,
                             pusher,
                             ids,
                             clock,
                             MessagingLimits{.dm_shared_space_only = false}};
  SyncService sync{store, inbox, messaging};

 private:
  template <class T>
  static void require(const Result<T>& r) {
    if (!r) throw std::runtime_error("setting up the Store: " + r.error().message);
  }
  template <class Make>
  void consume_new(int n, Make make) {
    std::vector<NewMessage> batch;
    for (int i = 0; i < n; ++i) {
      ++stored_;
      batch.push_back(make(10000 + stored_, "s" + std::to_string(stored_)));
    }
    if (messaging.consume(batch) != Queue::Outcome::done) {
      throw std::runtime_error("storing a batch failed");
    }
  }

  std::uint64_t next_conn_ = 0;
  int stored_ = 0;
};

}  // namespace imd::testing
