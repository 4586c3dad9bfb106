#include "rpc/remote_pusher.hpp"

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <unordered_map>

#include "common/log.hpp"
#include "common/metrics.hpp"
#include "imd/rpc/push.grpc.pb.h"
#include "rpc/log_throttle.hpp"
#include "rpc/push_codec.hpp"

namespace imd::rpc {
namespace {

using Clock = std::chrono::system_clock;

struct Item {
  std::vector<std::uint64_t> conns;
  std::shared_ptr<const Event> event;
  std::size_t bytes = 0;
  std::vector<Id> users{};  // user-addressed (then conns is empty)
  std::uint64_t except_conn = 0;
};

// One batch on its way: the request is built once and sent by every attempt.
struct Call {
  PushBatch request;
  PushReply reply;
  std::shared_ptr<grpc::ClientContext> ctx;  // shared with stop(), which may cancel it
  std::size_t events = 0;
  int attempt = 0;
  std::int64_t attempt_started_ns = 0;  // metrics::steady_ns() when this attempt began
};

struct Node {
  explicit Node(std::uint32_t id) : id(id) {}
  const std::uint32_t id;
  std::mutex mu;  // guards everything below
  std::deque<Item> outbox;
  std::size_t outbox_bytes = 0;
  bool active = false;  // a call, or the backoff before its retry, is under way
  std::unique_ptr<Call> call;
  std::shared_ptr<grpc::Alarm> alarm;  // shared with stop(), which may cancel it
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<Gateway::Stub> stub;
};

bool retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

}  // namespace

struct RemotePusher::Impl {
  Impl(std::uint32_t self, Pusher* local, PushResolver resolver, RemotePusherOptions options,
       UserPushNodes user_push_nodes)
      : self_(self),
        local_(local),
        resolver_(std::move(resolver)),
        user_push_nodes_(std::move(user_push_nodes)),
        options_(options) {
    if (options_.max_attempts < 1) options_.max_attempts = 1;
    if (options_.max_call_events < 1) options_.max_call_events = 1;
    metrics::imd().rpc_client_call_seconds.at(kPushMethod);
    metrics::imd().rpc_client_errors.at(kPushMethod);
  }

  void push(std::vector<Push>& pushes);
  void stop();

  Node& node(std::uint32_t id);
  void enqueue(Node& n, std::vector<Item>& items);
  void set_active(Node& n, bool active);  // n.mu held
  void next_call(Node& n);                // n.active, n.mu not held
  void attempt(Node& n);                  // n.active, n.call set, n.mu not held
  void on_done(Node& n, grpc::Status status);
  void on_backoff(Node& n, bool fired);
  void finish_call(Node& n);  // drops n.call, continues with the outbox
  void callback_started();
  void callback_ended();
  std::chrono::milliseconds backoff(int attempt);
  void drop_failed(std::size_t events, const std::string& why, std::uint32_t node);

  const std::uint32_t self_;
  Pusher* const local_;
  const PushResolver resolver_;
  const UserPushNodes user_push_nodes_;
  RemotePusherOptions options_;

  std::mutex nodes_mu_;
  std::unordered_map<std::uint32_t, std::unique_ptr<Node>> nodes_;

  std::atomic<bool> stopping_{false};   // no new remote events
  std::atomic<bool> cancelled_{false};  // past the stop deadline: no calls, no retries
  std::mutex mu_;                       // guards the two counts below, for stop()
  std::condition_variable idle_cv_;
  std::size_t active_nodes_ = 0;
  std::size_t outstanding_ = 0;  // gRPC callbacks (calls, alarms) not yet returned
  bool stopped_ = false;

  std::mutex rng_mu_;
  std::minstd_rand rng_{std::random_device{}()};

  LogThrottle warn_full_{std::chrono::seconds(10)};
  LogThrottle warn_failed_{std::chrono::seconds(10)};
  LogThrottle warn_unknown_{std::chrono::seconds(10)};
  LogThrottle warn_old_gateway_{std::chrono::seconds(10)};

  // A remote target that must not get `event`: a gateway of an older version would misread it.
  bool withheld(const Event& event, std::uint32_t node);

  std::atomic<std::uint64_t> calls_{0}, sent_{0}, dropped_unknown_{0}, dropped_full_{0},
      dropped_failed_{0}, dropped_old_gateway_{0}, retries_{0}, fallback_broadcasts_{0};
};

Node& RemotePusher::Impl::node(std::uint32_t id) {
  std::lock_guard lock(nodes_mu_);
  auto& slot = nodes_[id];
  if (!slot) slot = std::make_unique<Node>(id);
  return *slot;
}

void RemotePusher::Impl::set_active(Node& n, bool active) {
  if (n.active == active) return;
  n.active = active;
  std::lock_guard lock(mu_);
  if (active) {
    ++active_nodes_;
  } else {
    --active_nodes_;
    idle_cv_.notify_all();
  }
}

void RemotePusher::Impl::callback_started() {
  std::lock_guard lock(mu_);
  ++outstanding_;
}

// The last thing a gRPC callback does: after it, stop() may return and this may be destroyed.
void RemotePusher::Impl::callback_ended() {
  std::lock_guard lock(mu_);
  --outstanding_;
  idle_cv_.notify_all();
}

void RemotePusher::Impl::push(std::vector<Push>& pushes) {
  std::vector<Push> local;
  struct Pending {
    std::vector<Item> items;
    std::size_t last = static_cast<std::size_t>(-1);  // index of the push of items.back()
  };
  std::unordered_map<std::uint32_t, Pending> remote;
  std::optional<std::vector<std::uint32_t>> gateways;  // asked once, on the first fallback
  for (std::size_t i = 0; i < pushes.size(); ++i) {
    Push& p = pushes[i];
    if (!p.event) continue;
    if (!p.users.empty()) {
      if (!gateways)
        gateways = user_push_nodes_ ? user_push_nodes_() : std::vector<std::uint32_t>{};
      fallback_broadcasts_.fetch_add(1, std::memory_order_relaxed);
      for (std::uint32_t id : *gateways) {
        if (id == self_) continue;
        Pending& pending = remote[id];
        pending.items.push_back(
            Item{{}, p.event, 0, p.users, p.except.node == id ? p.except.conn : 0});
        pending.last = i;
      }
      if (local_) local.push_back(std::move(p));
      continue;
    }
    Push* mine = nullptr;
    for (ConnRef ref : p.targets) {
      if (ref.node == self_ && local_) {
        if (!mine) mine = &local.emplace_back(Push{{}, p.event});
        mine->targets.push_back(ref);
        continue;
      }
      if (withheld(*p.event, ref.node)) continue;
      Pending& pending = remote[ref.node];
      if (pending.last != i) {
        pending.items.push_back(Item{{}, p.event, 0});
        pending.last = i;
      }
      pending.items.back().conns.push_back(ref.conn);
    }
  }
  if (!local.empty()) local_->push(std::move(local));
  for (auto& [id, pending] : remote) {
    if (stopping_.load()) {
      drop_failed(pending.items.size(), "stopping", id);
      continue;
    }
    enqueue(node(id), pending.items);
  }
}

bool RemotePusher::Impl::withheld(const Event& event, std::uint32_t node) {
  if (!misread_by_unversioned_gateways(event)) return false;
  auto peer = resolver_(node);
  if (!peer || !peer->version.empty()) return false;
  dropped_old_gateway_.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t held = 0;
  if (warn_old_gateway_.allow(held)) {
    LOG_WARN("rpc push: node " << node << " runs a version from before channel removals; one "
                               << "not sent to it (the client learns at its next read); " << held
                               << " similar warnings suppressed");
  }
  return true;
}

void RemotePusher::Impl::enqueue(Node& n, std::vector<Item>& items) {
  std::size_t dropped = 0;
  bool start = false;
  {
    std::lock_guard lock(n.mu);
    for (Item& item : items) {
      item.bytes = estimated_bytes(*item.event) + 8 * (item.conns.size() + item.users.size());
      if (n.outbox.size() >= options_.max_outbox_events ||
          n.outbox_bytes + item.bytes > options_.max_outbox_bytes) {
        ++dropped;
        continue;
      }
      n.outbox_bytes += item.bytes;
      n.outbox.push_back(std::move(item));
    }
    if (!n.active && !n.outbox.empty()) {
      set_active(n, true);
      start = true;
    }
  }
  if (dropped > 0) {
    dropped_full_.fetch_add(dropped, std::memory_order_relaxed);
    std::uint64_t held = 0;
    if (warn_full_.allow(held)) {
      LOG_WARN("rpc push: outbox of node " << n.id << " full, dropped " << dropped << " events; "
                                           << held << " similar warnings suppressed");
    }
  }
  if (start) next_call(n);
}

void RemotePusher::Impl::next_call(Node& n) {
  std::size_t cancelled = 0;
  std::vector<Item> batch;
  {
    std::lock_guard lock(n.mu);
    if (cancelled_.load()) {
      cancelled = n.outbox.size();
      n.outbox.clear();
      n.outbox_bytes = 0;
    }
    std::size_t bytes = 0;
    while (!n.outbox.empty() && batch.size() < options_.max_call_events &&
           (batch.empty() || bytes + n.outbox.front().bytes <= options_.max_call_bytes)) {
      bytes += n.outbox.front().bytes;
      n.outbox_bytes -= n.outbox.front().bytes;
      batch.push_back(std::move(n.outbox.front()));
      n.outbox.pop_front();
    }
    if (batch.empty()) set_active(n, false);
  }
  if (cancelled > 0) drop_failed(cancelled, "stopped", n.id);
  if (batch.empty()) return;
  // Encoded outside the lock: push() to this node must not wait for it.
  auto call = std::make_unique<Call>();
  call->events = batch.size();
  call->request.mutable_deliveries()->Reserve(static_cast<int>(batch.size()));
  for (const Item& item : batch) {
    Delivery& d = *call->request.add_deliveries();
    d.mutable_conns()->Add(item.conns.begin(), item.conns.end());
    d.mutable_users()->Add(item.users.begin(), item.users.end());
    if (item.except_conn != 0) d.set_except_conn(item.except_conn);
    encode_event(*item.event, d);
  }
  {
    std::lock_guard lock(n.mu);
    n.call = std::move(call);
  }
  attempt(n);
}

void RemotePusher::Impl::attempt(Node& n) {
  std::optional<PushPeer> peer = resolver_(n.id);
  if (!peer) {
    std::size_t dropped = 0;
    {
      std::lock_guard lock(n.mu);
      dropped = n.call->events + n.outbox.size();
      n.call.reset();
      n.outbox.clear();
      n.outbox_bytes = 0;
      n.stub.reset();
      n.channel.reset();
      n.address.clear();
      set_active(n, false);
    }
    dropped_unknown_.fetch_add(dropped, std::memory_order_relaxed);
    std::uint64_t held = 0;
    if (warn_unknown_.allow(held)) {
      LOG_WARN("rpc push: node " << n.id << " is not alive, dropped " << dropped << " events; "
                                 << held << " similar warnings suppressed");
    }
    return;
  }
  const std::string& address = peer->address;
  Gateway::Stub* stub;
  Call* call;
  {
    std::lock_guard lock(n.mu);
    if (!n.stub || n.address != address) {
      grpc::ChannelArguments args;
      args.SetMaxSendMessageSize(-1);           // batches are bounded by max_call_bytes
      args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);  // retries are ours, with our bounds
      auto reconnect = static_cast<int>(options_.reconnect_backoff_max.count());
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::min(reconnect, 100));
      args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, std::min(reconnect, 100));
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, reconnect);
      n.channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
      n.stub = Gateway::NewStub(n.channel);
      n.address = address;
    }
    stub = n.stub.get();
    call = n.call.get();
    ++call->attempt;
    call->attempt_started_ns = metrics::steady_ns();
    call->ctx = std::make_shared<grpc::ClientContext>();
    call->ctx->set_deadline(Clock::now() + options_.call_deadline);
    // A gateway that is (re)starting gets the whole deadline to accept the call.
    call->ctx->set_wait_for_ready(true);
    if (cancelled_.load()) call->ctx->TryCancel();
  }
  calls_.fetch_add(1, std::memory_order_relaxed);
  callback_started();
  stub->async()->Push(call->ctx.get(), &call->request, &call->reply,
                      [this, &n](grpc::Status status) {
                        on_done(n, std::move(status));
                        callback_ended();
                      });
}

void RemotePusher::Impl::on_done(Node& n, grpc::Status status) {
  Call* call;
  {
    std::lock_guard lock(n.mu);
    call = n.call.get();
  }
  auto& m = metrics::imd();
  metrics::observe_call(m.rpc_client_call_seconds, m.rpc_client_errors, kPushMethod,
                        call->attempt_started_ns, status.ok());
  if (status.ok()) {
    sent_.fetch_add(call->events, std::memory_order_relaxed);
    finish_call(n);
    return;
  }
  if (retryable(status.error_code()) && call->attempt < options_.max_attempts &&
      !cancelled_.load()) {
    retries_.fetch_add(1, std::memory_order_relaxed);
    grpc::Alarm* alarm;
    {
      std::lock_guard lock(n.mu);
      n.alarm = std::make_shared<grpc::Alarm>();
      alarm = n.alarm.get();
    }
    callback_started();
    alarm->Set(Clock::now() + backoff(call->attempt), [this, &n](bool fired) {
      on_backoff(n, fired);
      callback_ended();
    });
    return;
  }
  drop_failed(call->events,
              "call failed after " + std::to_string(call->attempt) + " attempts: " +
                  std::to_string(status.error_code()) + " " + status.error_message(),
              n.id);
  finish_call(n);
}

void RemotePusher::Impl::on_backoff(Node& n, bool fired) {
  std::shared_ptr<grpc::Alarm> self;  // a retry below may replace n.alarm: not while it runs
  {
    std::lock_guard lock(n.mu);
    self = n.alarm;
  }
  if (!fired || cancelled_.load()) {
    std::size_t events;
    {
      std::lock_guard lock(n.mu);
      events = n.call->events;
    }
    drop_failed(events, "stopped", n.id);
    finish_call(n);
    return;
  }
  attempt(n);
}

void RemotePusher::Impl::finish_call(Node& n) {
  {
    std::lock_guard lock(n.mu);
    n.call.reset();
  }
  next_call(n);
}

std::chrono::milliseconds RemotePusher::Impl::backoff(int attempt) {
  auto base = options_.backoff_initial * (1LL << std::min(attempt - 1, 20));
  if (base > options_.backoff_max) base = options_.backoff_max;
  double jitter;
  {
    std::lock_guard lock(rng_mu_);
    jitter = std::uniform_real_distribution<double>(0.8, 1.2)(rng_);
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(base.count() * jitter));
}

void RemotePusher::Impl::drop_failed(std::size_t events, const std::string& why,
                                     std::uint32_t node) {
  if (events == 0) return;
  dropped_failed_.fetch_add(events, std::memory_order_relaxed);
  std::uint64_t held = 0;
  if (warn_failed_.allow(held)) {
    LOG_WARN("rpc push: dropped " << events << " events for node " << node << " (" << why << "); "
                                  << held << " similar warnings suppressed");
  }
}

void RemotePusher::Impl::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopping_.store(true);
  }
  auto idle = [this] { return active_nodes_ == 0 && outstanding_ == 0; };
  {
    std::unique_lock lock(mu_);
    idle_cv_.wait_for(lock, options_.stop_deadline, idle);
  }
  cancelled_.store(true);
  std::vector<Node*> nodes;
  {
    std::lock_guard lock(nodes_mu_);
    for (auto& [id, n] : nodes_) nodes.push_back(n.get());
  }
  for (Node* n : nodes) {
    std::size_t dropped;
    std::shared_ptr<grpc::ClientContext> ctx;
    std::shared_ptr<grpc::Alarm> alarm;
    {
      std::lock_guard lock(n->mu);
      dropped = n->outbox.size();
      n->outbox.clear();
      n->outbox_bytes = 0;
      if (n->call) ctx = n->call->ctx;
      if (n->active) alarm = n->alarm;
    }
    // Outside the lock: a cancelled call may run its callback on this thread.
    if (ctx) ctx->TryCancel();
    if (alarm) alarm->Cancel();
    drop_failed(dropped, "stopped", n->id);
  }
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, idle);
  stopped_ = true;
}

RemotePusher::RemotePusher(std::uint32_t self, Pusher* local, PushResolver resolver,
                           RemotePusherOptions options, UserPushNodes user_push_nodes)
    : impl_(std::make_unique<Impl>(self, local, std::move(resolver), options,
                                   std::move(user_push_nodes))) {}

RemotePusher::~RemotePusher() {
  stop();
}

void RemotePusher::push(std::vector<Push> pushes) {
  impl_->push(pushes);
}

void RemotePusher::stop() {
  impl_->stop();
}

RemotePusherStats RemotePusher::stats() const {
  const Impl& i = *impl_;
  return RemotePusherStats{i.calls_.load(),           i.sent_.load(),
                           i.dropped_unknown_.load(), i.dropped_full_.load(),
                           i.dropped_failed_.load(),  i.dropped_old_gateway_.load(),
                           i.retries_.load(),         i.fallback_broadcasts_.load()};
}

}  // namespace imd::rpc
