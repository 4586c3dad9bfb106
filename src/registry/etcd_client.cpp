// Slightly over ~600 lines: the KV calls, the lease keep-alive stream and the watch streams
// share the channel and its retry policy.
#include "registry/etcd_client.hpp"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/thread_name.hpp"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"

namespace imd {

namespace pb = etcdserverpb;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string etcd_prefix_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c < 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every byte was 0xff (or no prefix): to the end of the keys
}

namespace {

EtcdKeyValue from_pb(const mvccpb::KeyValue& kv) {
  return EtcdKeyValue{kv.key(),          kv.value(),   kv.create_revision(),
                      kv.mod_revision(), kv.version(), kv.lease()};
}

EtcdRange from_pb(const pb::RangeResponse& r) {
  EtcdRange out;
  out.revision = r.header().revision();
  out.kvs.reserve(r.kvs_size());
  for (const auto& kv : r.kvs()) out.kvs.push_back(from_pb(kv));
  return out;
}

Error status_error(const char* what, const grpc::Status& st) {
  std::string msg = std::string("etcd ") + what + ": " + st.error_message();
  switch (st.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::PERMISSION_DENIED:
      return make_error(Errc::invalid_argument, std::move(msg));
    default:
      return make_error(Errc::unavailable, std::move(msg));
  }
}

// imd_registry_call_seconds / imd_registry_errors_total{operation}: the operations this
// client times (a fixed set, registered up front so the series exist from the start).
constexpr const char* kOperations[] = {"range",       "put",          "delete",     "txn",
                                       "lease_grant", "lease_revoke", "keep_alive", "watch"};

void observe(std::string_view operation, std::int64_t start_ns, bool ok) {
  auto& m = metrics::imd();
  metrics::observe_call(m.registry_call_seconds, m.registry_errors, operation, start_ns, ok);
}

// Waits on `cv` until `deadline` or until `stop` is set; true when stopping.
bool wait_stoppable(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                    const bool& stop, Clock::time_point deadline) {
  cv.wait_until(lock, deadline, [&] { return stop; });
  return stop;
}

}  // namespace

struct EtcdClient::Impl {
  struct Endpoint {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<pb::KV::Stub> kv;
    std::unique_ptr<pb::Lease::Stub> lease;
    std::unique_ptr<pb::Watch::Stub> watch;
  };

  EtcdOptions options;
  std::vector<Endpoint> endpoints;
  std::atomic<std::size_t> current{0};

  explicit Impl(EtcdOptions o) : options(std::move(o)) {
    if (options.endpoints.empty()) throw std::invalid_argument("etcd: no endpoint given");
    for (const char* op : kOperations) {
      metrics::imd().registry_call_seconds.at(op);
      metrics::imd().registry_errors.at(op);
    }
    for (const auto& address : options.endpoints) {
      grpc::ChannelArguments args;
      // Reconnect quickly after an etcd restart (gRPC's default back-off grows to 120 s).
      // gRPC takes the minimum back-off as the connect (TCP + HTTP/2 handshake) timeout too:
      // its default, 20 s, outlasts a lease when a restarting etcd accepts connections before
      // it serves them (the handshake hangs); 100 ms failed handshakes with a busy etcd.
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      // Notice a silently dead peer under a long-lived watch; etcd accepts pings every 5 s+.
      args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
      args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
      args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
      Endpoint ep;
      ep.address = address;
      ep.channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
      ep.kv = pb::KV::NewStub(ep.channel);
      ep.lease = pb::Lease::NewStub(ep.channel);
      ep.watch = pb::Watch::NewStub(ep.channel);
      endpoints.push_back(std::move(ep));
    }
  }

  std::size_t next_endpoint(std::size_t i) const { return (i + 1) % endpoints.size(); }

  // Waits until the endpoint's channel is connected: true when READY, false when a connection
  // attempt failed or `deadline` passed. Waiting here is what drives the connection: gRPC
  // completes a connect only while some thread polls the channel (otherwise its backup poller
  // notices it seconds later, after the connect timeout has failed it), and a fail-fast call
  // on a channel in back-off returns at once without polling.
  // `stop`, when given, is checked every 100 ms and ends the wait (false).
  bool wait_connected(Endpoint& ep, Clock::time_point deadline,
                      const std::function<bool()>& stop = nullptr) {
    bool attempted = false;
    auto state = ep.channel->GetState(true);
    while (state != GRPC_CHANNEL_READY) {
      if (state == GRPC_CHANNEL_CONNECTING) attempted = true;
      if (state == GRPC_CHANNEL_SHUTDOWN) return false;
      if (state == GRPC_CHANNEL_TRANSIENT_FAILURE && attempted) return false;
      const auto now = Clock::now();
      if (now >= deadline || (stop && stop())) return false;
      const auto slice = std::min(deadline - now, Clock::duration(milliseconds(100)));
      ep.channel->WaitForStateChange(state, std::chrono::system_clock::now() + slice);
      state = ep.channel->GetState(true);
    }
    return true;
  }

  // Runs fn(endpoint, context) on the current endpoint, then on the next ones while the
  // failure is UNAVAILABLE (the request did not reach a server). Timed as `operation`, every
  // endpoint tried included; NOT_FOUND (a lease already gone) is an answer, not an error.
  template <class Fn>
  grpc::Status call(std::string_view operation, Fn&& fn) {
    const std::int64_t start = metrics::steady_ns();
    grpc::Status st = call_endpoints(std::forward<Fn>(fn));
    observe(operation, start, st.ok() || st.error_code() == grpc::StatusCode::NOT_FOUND);
    return st;
  }

  template <class Fn>
  grpc::Status call_endpoints(Fn&& fn) {
    const std::size_t n = endpoints.size();
    const std::size_t start = current.load() % n;
    grpc::Status st;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t idx = (start + i) % n;
      if (!wait_connected(endpoints[idx], Clock::now() + options.call_timeout)) {
        st = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "cannot connect to " + endpoints[idx].address);
        continue;
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + options.call_timeout);
      st = fn(endpoints[idx], ctx);
      if (st.ok()) {
        current = idx;
        return st;
      }
      if (st.error_code() != grpc::StatusCode::UNAVAILABLE) {
        current = next_endpoint(idx);
        return st;
      }
    }
    current = next_endpoint(start);
    return st;
  }

  Result<EtcdRange> range(const std::string& key, const std::string& range_end) {
    pb::RangeRequest req;
    req.set_key(key);
    if (!range_end.empty()) req.set_range_end(range_end);
    pb::RangeResponse resp;
    auto st = call("range", [&](Endpoint& ep, grpc::ClientContext& ctx) {
      return ep.kv->Range(&ctx, req, &resp);
    });
    if (!st.ok()) return status_error("range", st);
    return from_pb(resp);
  }

  Result<std::int64_t> delete_range(const std::string& key, const std::string& range_end) {
    pb::DeleteRangeRequest req;
    req.set_key(key);
    if (!range_end.empty()) req.set_range_end(range_end);
    pb::DeleteRangeResponse resp;
    auto st = call("delete", [&](Endpoint& ep, grpc::ClientContext& ctx) {
      return ep.kv->DeleteRange(&ctx, req, &resp);
    });
    if (!st.ok()) return status_error("delete", st);
    return static_cast<std::int64_t>(resp.deleted());
  }
};

// ---- keep-alive

namespace {

// What both streaming tasks share: a thread, a stream context to cancel, and a stop flag that
// wakes the thread's waits. Subclasses start `thread_` in their constructor and call stop()
// in their destructor (before their own members go).
class StreamTask : public EtcdTask {
 public:
  void stop() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      if (ctx_ != nullptr) ctx_->TryCancel();
    }
    cv_.notify_all();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

 protected:
  bool stopping() {
    std::lock_guard lock(mu_);
    return stopping_;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  grpc::ClientContext* ctx_ = nullptr;  // the open stream's, for stop(); guarded by mu_
  std::thread thread_;
};

class KeepAliveTask final : public StreamTask {
 public:
  KeepAliveTask(EtcdClient::Impl& impl, EtcdLease lease, std::function<void()> on_lost)
      : impl_(impl), lease_(lease), on_lost_(std::move(on_lost)) {
    thread_ = std::thread([this] {
      set_thread_name("imd-etcd-lease");
      run();
    });
  }
  ~KeepAliveTask() override { stop(); }

 private:
  void run() {
    const auto ttl = std::chrono::duration_cast<milliseconds>(lease_.ttl);
    const auto interval = std::max(milliseconds(100), ttl / 3);
    // The lease was granted just before: count its TTL from now (the grant's send time is a
    // little earlier, and the first keep-alive goes out at once).
    auto last_ok_send = Clock::now();
    std::size_t ep = impl_.current.load() % impl_.endpoints.size();
    auto backoff = milliseconds(100);
    bool lost = false;

    while (!lost) {
      if (!impl_.wait_connected(
              impl_.endpoints[ep],
              std::min(Clock::now() + impl_.options.call_timeout, last_ok_send + ttl),
              [this] { return stopping(); })) {
        std::unique_lock lock(mu_);
        if (stopping_) return;
        if (Clock::now() >= last_ok_send + ttl) break;
        ep = impl_.next_endpoint(ep);
        auto wake = std::min(Clock::now() + backoff, last_ok_send + ttl);
        backoff = std::min(backoff * 2, milliseconds(1000));
        if (wait_stoppable(lock, cv_, stopping_, wake)) return;
        continue;
      }
      auto ctx = std::make_unique<grpc::ClientContext>();
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        ctx_ = ctx.get();
      }
      auto stream = impl_.endpoints[ep].lease->LeaseKeepAlive(ctx.get());

      // Exchange state between this thread (sender) and the reader below; guarded by mu_.
      bool pending = false, broken = false, gone = false, timed_out = false;
      Clock::time_point pending_since{};
      std::int64_t pending_ns = 0;  // pending_since for the metrics' clock
      std::thread reader([&] {
        set_thread_name("imd-etcd-lease");
        pb::LeaseKeepAliveResponse r;
        while (stream->Read(&r)) {
          std::lock_guard lock(mu_);
          if (r.ttl() <= 0) {
            gone = true;
          } else if (pending) {
            observe("keep_alive", pending_ns, true);
            last_ok_send = pending_since;
            pending = false;
          }
          cv_.notify_all();
        }
        std::lock_guard lock(mu_);
        broken = true;
        cv_.notify_all();
      });

      auto next_send = Clock::now();
      pb::LeaseKeepAliveRequest req;
      req.set_id(lease_.id);
      std::unique_lock lock(mu_);
      while (!stopping_ && !broken && !gone) {
        const auto now = Clock::now();
        if (now >= last_ok_send + ttl) {
          lost = true;
          break;
        }
        if (pending && now >= pending_since + impl_.options.call_timeout) {
          observe("keep_alive", pending_ns, false);
          timed_out = true;
          LOG_WARN("etcd keep-alive of lease " << lease_.id << " on " << impl_.endpoints[ep].address
                                               << ": no answer in time; reconnecting");
          break;
        }
        if (!pending && now >= next_send) {
          pending = true;
          pending_since = now;
          pending_ns = metrics::steady_ns();
          next_send = now + interval;
          lock.unlock();
          const bool written = stream->Write(req);
          lock.lock();
          if (!written) break;
          backoff = milliseconds(100);
          continue;
        }
        auto wake = last_ok_send + ttl;
        if (pending) wake = std::min(wake, pending_since + impl_.options.call_timeout);
        if (!pending) wake = std::min(wake, next_send);
        cv_.wait_until(lock, wake);
      }
      if (gone) lost = true;
      ctx_->TryCancel();
      lock.unlock();
      reader.join();
      stream->Finish();
      lock.lock();
      ctx_ = nullptr;
      if (stopping_) return;
      if (lost) break;
      if (!timed_out) observe("keep_alive", pending ? pending_ns : metrics::steady_ns(), false);
      LOG_WARN("etcd keep-alive stream of lease "
               << lease_.id << " on " << impl_.endpoints[ep].address << " broke; reconnecting");
      ep = impl_.next_endpoint(ep);
      // Retry soon, but never past the moment the lease is counted lost.
      auto wake = std::min(Clock::now() + backoff, last_ok_send + ttl);
      backoff = std::min(backoff * 2, milliseconds(1000));
      if (wait_stoppable(lock, cv_, stopping_, wake)) return;
    }
    LOG_WARN("etcd lease " << lease_.id << " lost (expired, or no keep-alive for "
                           << lease_.ttl.count() << " s)");
    if (on_lost_) on_lost_();
  }

  EtcdClient::Impl& impl_;
  const EtcdLease lease_;
  std::function<void()> on_lost_;
};

// ---- watch

class WatchTask final : public StreamTask {
 public:
  WatchTask(EtcdClient::Impl& impl, std::string prefix, EtcdClient::SnapshotHandler on_snapshot,
            EtcdClient::EventsHandler on_events)
      : impl_(impl),
        prefix_(std::move(prefix)),
        on_snapshot_(std::move(on_snapshot)),
        on_events_(std::move(on_events)) {
    thread_ = std::thread([this] {
      set_thread_name("imd-etcd-watch");
      run();
    });
  }
  ~WatchTask() override { stop(); }

 private:
  // Sleeps for the back-off (doubling it); true when stopping.
  bool back_off(milliseconds& backoff) {
    std::unique_lock lock(mu_);
    const bool stop = wait_stoppable(lock, cv_, stopping_, Clock::now() + backoff);
    backoff = std::min(backoff * 2, milliseconds(2000));
    return stop;
  }

  void run() {
    const std::string range_end = etcd_prefix_end(prefix_);
    std::int64_t next_rev = 0;
    bool need_list = true;
    std::size_t ep = impl_.current.load() % impl_.endpoints.size();
    auto backoff = milliseconds(100);

    while (!stopping()) {
      if (need_list) {
        auto r = impl_.range(prefix_, range_end);
        if (!r.ok()) {
          LOG_WARN("etcd watch " << prefix_ << ": listing failed (" << r.error().message
                                 << "); retrying");
          if (back_off(backoff)) return;
          continue;
        }
        next_rev = r->revision + 1;
        need_list = false;
        if (on_snapshot_) on_snapshot_(std::move(r->kvs), r->revision);
      }

      const std::int64_t open_ns = metrics::steady_ns();
      if (!impl_.wait_connected(impl_.endpoints[ep], Clock::now() + impl_.options.call_timeout,
                                [this] { return stopping(); })) {
        if (!stopping()) observe("watch", open_ns, false);
        ep = impl_.next_endpoint(ep);
        if (back_off(backoff)) return;
        continue;
      }
      auto ctx = std::make_unique<grpc::ClientContext>();
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        ctx_ = ctx.get();
      }
      auto stream = impl_.endpoints[ep].watch->Watch(ctx.get());
      pb::WatchRequest req;
      auto* create = req.mutable_create_request();
      create->set_key(prefix_);
      create->set_range_end(range_end);
      create->set_start_revision(next_rev);
      create->set_progress_notify(true);
      bool healthy = false, created = false;
      if (stream->Write(req)) {
        pb::WatchResponse resp;
        while (stream->Read(&resp)) {
          if (resp.compact_revision() > 0) {
            LOG_WARN("etcd watch " << prefix_ << ": revision " << next_rev << " was compacted (now "
                                   << resp.compact_revision() << "); listing again");
            need_list = true;
            break;
          }
          if (resp.canceled()) {
            LOG_WARN("etcd watch " << prefix_
                                   << " canceled by the server: " << resp.cancel_reason());
            break;
          }
          healthy = true;
          backoff = milliseconds(100);
          if (resp.created() && !created) {
            created = true;
            observe("watch", open_ns, true);
          }
          if (resp.events_size() == 0) {
            // A progress notification: every later event has a higher revision.
            if (!resp.created() && resp.header().revision() >= next_rev) {
              next_rev = resp.header().revision() + 1;
            }
            continue;
          }
          std::vector<EtcdEvent> events;
          events.reserve(resp.events_size());
          for (const auto& e : resp.events()) {
            events.push_back(EtcdEvent{
                e.type() == mvccpb::Event::DELETE ? EtcdEvent::Type::del : EtcdEvent::Type::put,
                from_pb(e.kv())});
          }
          next_rev = events.back().kv.mod_revision + 1;
          if (on_events_) on_events_(std::move(events));
        }
      }
      {
        std::lock_guard lock(mu_);
        ctx_->TryCancel();
      }
      stream->Finish();
      {
        std::lock_guard lock(mu_);
        ctx_ = nullptr;
        if (stopping_) return;
      }
      if (need_list) continue;
      // A watch ends only when stopped or re-listed: any other end is a failure.
      observe("watch", created ? metrics::steady_ns() : open_ns, false);
      if (!healthy) ep = impl_.next_endpoint(ep);
      LOG_DEBUG("etcd watch " << prefix_ << ": stream ended; reopening from revision " << next_rev);
      if (back_off(backoff)) return;
    }
  }

  EtcdClient::Impl& impl_;
  const std::string prefix_;
  EtcdClient::SnapshotHandler on_snapshot_;
  EtcdClient::EventsHandler on_events_;
};

void fill_op(const EtcdOp& op, pb::RequestOp* out) {
  switch (op.kind) {
    case EtcdOp::Kind::get:
      out->mutable_request_range()->set_key(op.key);
      break;
    case EtcdOp::Kind::put: {
      auto* put = out->mutable_request_put();
      put->set_key(op.key);
      put->set_value(op.value);
      put->set_lease(op.lease);
      break;
    }
    case EtcdOp::Kind::del:
      out->mutable_request_delete_range()->set_key(op.key);
      break;
  }
}

void fill_compare(const EtcdCompare& c, pb::Compare* out) {
  out->set_key(c.key);
  switch (c.op) {
    case EtcdCompare::Op::equal:
      out->set_result(pb::Compare::EQUAL);
      break;
    case EtcdCompare::Op::greater:
      out->set_result(pb::Compare::GREATER);
      break;
    case EtcdCompare::Op::less:
      out->set_result(pb::Compare::LESS);
      break;
    case EtcdCompare::Op::not_equal:
      out->set_result(pb::Compare::NOT_EQUAL);
      break;
  }
  switch (c.target) {
    case EtcdCompare::Target::version:
      out->set_target(pb::Compare::VERSION);
      out->set_version(c.number);
      break;
    case EtcdCompare::Target::create_revision:
      out->set_target(pb::Compare::CREATE);
      out->set_create_revision(c.number);
      break;
    case EtcdCompare::Target::mod_revision:
      out->set_target(pb::Compare::MOD);
      out->set_mod_revision(c.number);
      break;
    case EtcdCompare::Target::value:
      out->set_target(pb::Compare::VALUE);
      out->set_value(c.value);
      break;
    case EtcdCompare::Target::lease:
      out->set_target(pb::Compare::LEASE);
      out->set_lease(c.number);
      break;
  }
}

}  // namespace

// ---- EtcdClient

EtcdClient::EtcdClient(EtcdOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
EtcdClient::~EtcdClient() = default;

const EtcdOptions& EtcdClient::options() const {
  return impl_->options;
}

Result<EtcdRange> EtcdClient::get(const std::string& key) {
  return impl_->range(key, {});
}

Result<EtcdRange> EtcdClient::get_prefix(const std::string& prefix) {
  return impl_->range(prefix, etcd_prefix_end(prefix));
}

Result<std::int64_t> EtcdClient::put(const std::string& key, const std::string& value,
                                     std::int64_t lease) {
  pb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  req.set_lease(lease);
  pb::PutResponse resp;
  auto st = impl_->call("put", [&](Impl::Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.kv->Put(&ctx, req, &resp);
  });
  if (!st.ok()) return status_error("put", st);
  return static_cast<std::int64_t>(resp.header().revision());
}

Result<std::int64_t> EtcdClient::del(const std::string& key) {
  return impl_->delete_range(key, {});
}

Result<std::int64_t> EtcdClient::del_prefix(const std::string& prefix) {
  return impl_->delete_range(prefix, etcd_prefix_end(prefix));
}

Result<EtcdTxnResult> EtcdClient::txn(const std::vector<EtcdCompare>& compares,
                                      const std::vector<EtcdOp>& success,
                                      const std::vector<EtcdOp>& failure) {
  pb::TxnRequest req;
  for (const auto& c : compares) fill_compare(c, req.add_compare());
  for (const auto& op : success) fill_op(op, req.add_success());
  for (const auto& op : failure) fill_op(op, req.add_failure());
  pb::TxnResponse resp;
  auto st = impl_->call("txn", [&](Impl::Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.kv->Txn(&ctx, req, &resp);
  });
  if (!st.ok()) return status_error("txn", st);
  EtcdTxnResult out;
  out.succeeded = resp.succeeded();
  out.revision = resp.header().revision();
  for (const auto& r : resp.responses()) {
    if (r.has_response_range()) out.gets.push_back(from_pb(r.response_range()));
  }
  return out;
}

Result<EtcdLease> EtcdClient::lease_grant(std::chrono::seconds ttl) {
  pb::LeaseGrantRequest req;
  req.set_ttl(ttl.count());
  pb::LeaseGrantResponse resp;
  auto st = impl_->call("lease_grant", [&](Impl::Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.lease->LeaseGrant(&ctx, req, &resp);
  });
  if (!st.ok()) return status_error("lease grant", st);
  if (!resp.error().empty()) {
    return make_error(Errc::unavailable, "etcd lease grant: " + resp.error());
  }
  return EtcdLease{resp.id(), std::chrono::seconds(resp.ttl())};
}

Result<void> EtcdClient::lease_revoke(std::int64_t lease_id) {
  pb::LeaseRevokeRequest req;
  req.set_id(lease_id);
  pb::LeaseRevokeResponse resp;
  auto st = impl_->call("lease_revoke", [&](Impl::Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.lease->LeaseRevoke(&ctx, req, &resp);
  });
  if (st.error_code() == grpc::StatusCode::NOT_FOUND) return {};  // already gone
  if (!st.ok()) return status_error("lease revoke", st);
  return {};
}

std::unique_ptr<EtcdTask> EtcdClient::keep_alive(EtcdLease lease, std::function<void()> on_lost) {
  return std::make_unique<KeepAliveTask>(*impl_, lease, std::move(on_lost));
}

std::unique_ptr<EtcdTask> EtcdClient::watch_prefix(std::string prefix, SnapshotHandler on_snapshot,
                                                   EventsHandler on_events) {
  return std::make_unique<WatchTask>(*impl_, std::move(prefix), std::move(on_snapshot),
                                     std::move(on_events));
}

}  // namespace imd
