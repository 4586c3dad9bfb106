#include "registry/etcd_registry.hpp"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>

#include "common/log.hpp"
#include "common/thread_name.hpp"
#include "registry/etcd_client.hpp"
#include "registry/node_codec.hpp"
#include "registry/rendezvous.hpp"

namespace imd {

using Clock = std::chrono::steady_clock;

namespace {

// The id at the end of `key` when it is `dir` + a registry id, else nullopt.
std::optional<std::uint32_t> key_id(const std::string& key, const std::string& dir) {
  if (key.size() <= dir.size() || key.compare(0, dir.size(), dir) != 0) return std::nullopt;
  return parse_registry_id(std::string_view(key).substr(dir.size()));
}

}  // namespace

struct EtcdRegistry::Impl {
  enum class State { idle, running, lost, stopped };

  explicit Impl(EtcdRegistryOptions o) : opt(std::move(o)) {
    if (opt.endpoints.empty()) throw std::invalid_argument("etcd registry: no endpoint");
    if (opt.prefix.empty() || opt.prefix.back() != '/') {
      throw std::invalid_argument("etcd registry: the key prefix must end with '/'");
    }
    if (opt.lease_ttl < std::chrono::seconds(2)) {
      throw std::invalid_argument("etcd registry: the lease TTL must be at least 2 s");
    }
    if (opt.rebalance_interval.count() <= 0) {
      opt.rebalance_interval =
          std::chrono::duration_cast<std::chrono::milliseconds>(opt.lease_ttl) / 3;
    }
    client = std::make_unique<EtcdClient>(EtcdOptions{opt.endpoints, opt.call_timeout});
    ids_dir = opt.prefix + "ids/";
    nodes_dir = opt.prefix + "nodes/";
    versions_dir = opt.prefix + "versions/";
    logic_dir = opt.prefix + "logic/";
    parts_dir = opt.prefix + "partitions/";
  }

  EtcdRegistryOptions opt;
  std::unique_ptr<EtcdClient> client;
  std::string ids_dir, nodes_dir, versions_dir, logic_dir, parts_dir;

  // The node entry, then its version beside it (NodeInfo::version), under the lease.
  Result<void> put_self(const NodeInfo& self, std::int64_t lease) {
    auto put = client->put(nodes_dir + std::to_string(self.id), encode_node(self), lease);
    if (!put) return put.error();
    if (self.version.empty()) return {};
    auto v = client->put(versions_dir + std::to_string(self.id), self.version, lease);
    if (!v) return v.error();
    return {};
  }

  std::mutex mu;
  std::condition_variable cv;
  // Everything below is guarded by mu.
  State state = State::idle;
  std::int64_t lease = 0;
  std::uint32_t id = 0;
  LeaseLost on_lost;
  std::unique_ptr<EtcdTask> keepalive, nodes_watch, versions_watch, logic_watch, parts_watch;
  std::map<std::uint32_t, NodeInfo> nodes;
  // versions/<id> of every node that registered one (builds from before versions did not).
  std::map<std::uint32_t, std::string> versions;
  bool nodes_synced = false;
  bool participating = false;
  std::uint32_t count = 0;
  PartitionsChanged changed;
  std::set<std::uint32_t> participants;
  std::map<std::uint32_t, std::uint32_t> holders;  // partition -> holder id, from the watch
  bool logic_synced = false, parts_synced = false;
  bool logic_announced = false;
  bool dirty = false, lease_lost = false, stopping = false;
  // Owned only by the worker thread (no lock needed).
  std::set<std::uint32_t> owned;
  bool reported = false;  // changed() was called at least once
  std::thread worker;

  std::string part_key(std::uint32_t p) const { return parts_dir + std::to_string(p); }

  // ---- watch handlers (watch threads)

  void nodes_snapshot(std::vector<EtcdKeyValue> kvs) {
    std::map<std::uint32_t, NodeInfo> fresh;
    for (auto& kv : kvs) {
      if (auto n = node_from(kv)) fresh[n->id] = std::move(*n);
    }
    std::lock_guard lock(mu);
    nodes = std::move(fresh);
    nodes_synced = true;
    cv.notify_all();
  }

  // A watch's events applied to `map` (mu held): a delete erases its key's id; a put stores
  // what `parse` makes of it (an id and a value), nothing when it refuses the entry.
  template <typename Map, typename Parse>
  static void apply_events(std::vector<EtcdEvent>& events, const std::string& dir, Map& map,
                           Parse parse) {
    for (auto& e : events) {
      if (e.type == EtcdEvent::Type::del) {
        if (auto k = key_id(e.kv.key, dir)) map.erase(*k);
      } else if (auto v = parse(e.kv)) {
        map[v->first] = std::move(v->second);
      }
    }
  }

  void nodes_events(std::vector<EtcdEvent> events) {
    std::lock_guard lock(mu);
    apply_events(events, nodes_dir, nodes, [this](const EtcdKeyValue& kv) {
      auto n = node_from(kv);
      return n ? std::optional(std::pair{n->id, std::move(*n)}) : std::nullopt;
    });
  }

  void versions_snapshot(std::vector<EtcdKeyValue> kvs) {
    std::map<std::uint32_t, std::string> fresh;
    for (auto& kv : kvs) {
      if (auto v = version_from(kv)) fresh[v->first] = std::move(v->second);
    }
    std::lock_guard lock(mu);
    versions = std::move(fresh);
  }

  void versions_events(std::vector<EtcdEvent> events) {
    std::lock_guard lock(mu);
    apply_events(events, versions_dir, versions,
                 [this](const EtcdKeyValue& kv) { return version_from(kv); });
  }

  // A version as the config allows it (at most 64 printable ASCII characters, no spaces).
  std::optional<std::pair<std::uint32_t, std::string>> version_from(const EtcdKeyValue& kv) {
    auto k = key_id(kv.key, versions_dir);
    const bool printable = std::all_of(kv.value.begin(), kv.value.end(),
                                       [](char ch) { return ch > ' ' && ch <= '~'; });
    if (!k || kv.value.empty() || kv.value.size() > 64 || !printable) {
      LOG_WARN("etcd registry: ignoring a malformed version under " << kv.key.substr(0, 100));
      return std::nullopt;
    }
    return std::pair{*k, kv.value};
  }

  // nodes[id] with its version (mu held).
  NodeInfo with_version(const NodeInfo& n) const {
    NodeInfo out = n;
    if (auto it = versions.find(n.id); it != versions.end()) out.version = it->second;
    return out;
  }

  std::optional<NodeInfo> node_from(const EtcdKeyValue& kv) {
    auto k = key_id(kv.key, nodes_dir);
    if (!k) {
      LOG_WARN("etcd registry: ignoring the unexpected key " << kv.key.substr(0, 100));
      return std::nullopt;
    }
    auto n = decode_node(kv.value);
    if (!n || n->id != *k) {
      LOG_WARN("etcd registry: ignoring a malformed entry under " << kv.key);
      return std::nullopt;
    }
    return std::move(*n);
  }

  void logic_snapshot(std::vector<EtcdKeyValue> kvs) {
    std::lock_guard lock(mu);
    participants.clear();
    for (const auto& kv : kvs) {
      if (auto k = key_id(kv.key, logic_dir)) participants.insert(*k);
    }
    logic_synced = true;
    dirty = true;
    cv.notify_all();
  }

  void logic_events(std::vector<EtcdEvent> events) {
    std::lock_guard lock(mu);
    for (const auto& e : events) {
      auto k = key_id(e.kv.key, logic_dir);
      if (!k) continue;
      if (e.type == EtcdEvent::Type::del) {
        participants.erase(*k);
      } else {
        participants.insert(*k);
      }
    }
    dirty = true;
    cv.notify_all();
  }

  void parts_snapshot(std::vector<EtcdKeyValue> kvs) {
    std::lock_guard lock(mu);
    holders.clear();
    for (const auto& kv : kvs) {
      auto p = key_id(kv.key, parts_dir);
      auto holder = parse_registry_id(kv.value);
      if (p && holder) holders[*p] = *holder;
    }
    parts_synced = true;
    dirty = true;
    cv.notify_all();
  }

  void parts_events(std::vector<EtcdEvent> events) {
    std::lock_guard lock(mu);
    for (const auto& e : events) {
      auto p = key_id(e.kv.key, parts_dir);
      if (!p) continue;
      auto holder = parse_registry_id(e.kv.value);
      if (e.type == EtcdEvent::Type::del || !holder) {
        holders.erase(*p);
      } else {
        holders[*p] = *holder;
      }
    }
    dirty = true;
    cv.notify_all();
  }

  void lease_lost_cb() {
    std::lock_guard lock(mu);
    lease_lost = true;
    cv.notify_all();
  }

  // ---- worker thread

  void run_worker() {
    std::unique_lock lock(mu);
    auto next_periodic = Clock::now() + opt.rebalance_interval;
    while (true) {
      cv.wait_until(lock, next_periodic, [&] { return dirty || lease_lost || stopping; });
      if (stopping) return;
      if (lease_lost) {
        state = State::lost;
        const bool tell = participating && reported;
        auto changed_cb = changed;
        auto lost_cb = on_lost;
        lock.unlock();
        owned.clear();
        if (tell && changed_cb) changed_cb({});
        if (lost_cb) lost_cb();
        return;
      }
      const bool periodic = Clock::now() >= next_periodic;
      if (periodic) next_periodic = Clock::now() + opt.rebalance_interval;
      dirty = false;
      if (!participating || !logic_synced || !parts_synced) continue;
      lock.unlock();
      rebalance(periodic);
      lock.lock();
    }
  }

  // True when the worker should give up its current step (each etcd call may take a while).
  bool interrupted() {
    std::lock_guard lock(mu);
    return stopping || lease_lost;
  }

  // One ownership step: release what this node should no longer own (after telling the
  // consumer), then claim what it should own and is free.
  void rebalance(bool periodic) {
    std::unique_lock lock(mu);
    const std::uint32_t self = id;
    const std::int64_t lease_id = lease;
    const std::uint32_t n = count;
    const bool announced = logic_announced;
    std::vector<std::uint32_t> live(participants.begin(), participants.end());
    auto held = holders;
    auto changed_cb = changed;
    lock.unlock();

    if (!announced) {
      auto r = client->put(logic_dir + std::to_string(self), "", lease_id);
      if (!r) {
        LOG_WARN("etcd registry: cannot announce partition participation: " << r.error().message);
        return;
      }
      std::lock_guard relock(mu);
      logic_announced = true;
    }

    const auto share = rendezvous_share(self, n, live);
    const std::set<std::uint32_t> desired(share.begin(), share.end());

    std::vector<std::uint32_t> release;
    for (auto p : owned) {
      if (!desired.count(p)) release.push_back(p);
    }
    // Keys still naming this node that it does not own (a release that failed earlier).
    for (const auto& [p, holder] : held) {
      if (holder == self && !owned.count(p) && !desired.count(p)) release.push_back(p);
    }
    bool told = false;
    if (!release.empty()) {
      for (auto p : release) owned.erase(p);
      if (changed_cb) changed_cb({owned.begin(), owned.end()});
      told = reported = true;
      for (auto p : release) {
        if (interrupted()) return;  // stop() revokes the lease; a lost lease took the keys
        auto r = client->txn({EtcdCompare{part_key(p), EtcdCompare::Target::value,
                                          EtcdCompare::Op::equal, 0, std::to_string(self)}},
                             {EtcdOp::del(part_key(p))}, {});
        if (!r) LOG_WARN("etcd registry: releasing partition " << p << ": " << r.error().message);
      }
    }

    std::vector<std::uint32_t> claimed;
    for (auto p : desired) {
      if (owned.count(p)) continue;
      if (interrupted()) break;
      auto it = held.find(p);
      // On a watch event try only what looks free (or already ours); periodically try all.
      if (!periodic && it != held.end() && it->second != self) continue;
      auto r = client->txn(
          {EtcdCompare{
              part_key(p), EtcdCompare::Target::create_revision, EtcdCompare::Op::equal, 0, {}}},
          {EtcdOp::put(part_key(p), std::to_string(self), lease_id)}, {EtcdOp::get(part_key(p))});
      if (!r) {
        LOG_WARN("etcd registry: claiming partition " << p << ": " << r.error().message);
        continue;
      }
      if (r->succeeded) {
        claimed.push_back(p);
      } else if (!r->gets.empty() && r->gets[0].kvs.size() == 1 &&
                 r->gets[0].kvs[0].value == std::to_string(self) &&
                 r->gets[0].kvs[0].lease == lease_id) {
        claimed.push_back(p);  // ours already (a claim whose answer was lost)
      }
    }
    if (!claimed.empty() || !reported) {
      owned.insert(claimed.begin(), claimed.end());
      if (!claimed.empty() || !told) {
        if (changed_cb) changed_cb({owned.begin(), owned.end()});
      }
      reported = true;
    }
  }

  // ---- start / stop

  Result<std::uint32_t> take_id(std::uint32_t max_id, std::int64_t lease_id) {
    auto taken_r = client->get_prefix(ids_dir);
    if (!taken_r) return taken_r.error();
    std::set<std::uint32_t> taken;
    for (const auto& kv : taken_r->kvs) {
      if (auto k = key_id(kv.key, ids_dir)) taken.insert(*k);
    }
    const std::uint64_t space = std::uint64_t{max_id} + 1;
    std::mt19937_64 rng{std::random_device{}()};
    const std::uint64_t first = rng() % space;
    std::uint64_t tried = 0;
    for (std::uint64_t i = 0; i < space; ++i) {
      const auto candidate = static_cast<std::uint32_t>((first + i) % space);
      if (taken.count(candidate)) continue;
      if (++tried > 4096) break;  // a huge id space that is nearly full: give up
      const std::string key = ids_dir + std::to_string(candidate);
      auto r = client->txn(
          {EtcdCompare{key, EtcdCompare::Target::create_revision, EtcdCompare::Op::equal, 0, {}}},
          {EtcdOp::put(key, "", lease_id)}, {});
      if (!r) return r.error();
      if (r->succeeded) return candidate;
    }
    return make_error(Errc::unavailable, "etcd registry: every worker id in [0, " +
                                             std::to_string(max_id) + "] is taken");
  }

  // Stops the background tasks (not the worker); never with mu held (they take it).
  void stop_tasks() {
    std::unique_ptr<EtcdTask> ka, nw, vw, lw, pw;
    {
      std::lock_guard lock(mu);
      ka = std::move(keepalive);
      nw = std::move(nodes_watch);
      vw = std::move(versions_watch);
      lw = std::move(logic_watch);
      pw = std::move(parts_watch);
    }
    for (auto* t : {ka.get(), nw.get(), vw.get(), lw.get(), pw.get()}) {
      if (t != nullptr) t->stop();
    }
  }

  void join_worker() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    cv.notify_all();
    if (worker.joinable()) worker.join();
  }
};

EtcdRegistry::EtcdRegistry(EtcdRegistryOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

EtcdRegistry::~EtcdRegistry() {
  stop();
}

Result<std::uint32_t> EtcdRegistry::start(NodeInfo self, std::uint32_t max_id, LeaseLost on_lost) {
  Impl& m = *impl_;
  {
    std::lock_guard lock(m.mu);
    if (m.state != Impl::State::idle) {
      return make_error(Errc::invalid_argument, "etcd registry: start() called twice");
    }
    m.state = Impl::State::running;  // until proven otherwise below
    m.on_lost = std::move(on_lost);
  }
  auto fail = [&](Error e, std::int64_t lease_id) -> Result<std::uint32_t> {
    m.stop_tasks();
    if (lease_id != 0) (void)m.client->lease_revoke(lease_id);
    std::lock_guard lock(m.mu);
    m.state = Impl::State::stopped;
    m.lease = 0;
    return e;
  };

  auto lease = m.client->lease_grant(m.opt.lease_ttl);
  if (!lease) return fail(lease.error(), 0);
  {
    std::lock_guard lock(m.mu);
    m.lease = lease->id;
    m.keepalive = m.client->keep_alive(*lease, [impl = impl_.get()] { impl->lease_lost_cb(); });
  }
  auto id = m.take_id(max_id, lease->id);
  if (!id) return fail(id.error(), lease->id);
  self.id = *id;
  if (auto put = m.put_self(self, lease->id); !put) return fail(put.error(), lease->id);

  {
    std::lock_guard lock(m.mu);
    m.id = *id;
    m.nodes[*id] = self;  // until the watch's first listing replaces it
    Impl* impl = impl_.get();
    m.nodes_watch = m.client->watch_prefix(
        m.nodes_dir, [impl](auto kvs, std::int64_t) { impl->nodes_snapshot(std::move(kvs)); },
        [impl](auto events) { impl->nodes_events(std::move(events)); });
    m.versions_watch = m.client->watch_prefix(
        m.versions_dir, [impl](auto kvs, std::int64_t) { impl->versions_snapshot(std::move(kvs)); },
        [impl](auto events) { impl->versions_events(std::move(events)); });
    m.worker = std::thread([impl] {
      set_thread_name("imd-registry");
      impl->run_worker();
    });
  }
  std::unique_lock lock(m.mu);
  if (!m.cv.wait_for(lock, m.opt.call_timeout, [&] { return m.nodes_synced; })) {
    LOG_WARN("etcd registry: the node list is not read yet; continuing (the watch retries)");
  }
  LOG_INFO("etcd registry: worker id " << *id << " under lease " << lease->id << " (TTL "
                                       << lease->ttl.count() << " s)");
  return *id;
}

Result<void> EtcdRegistry::announce(NodeInfo self) {
  Impl& m = *impl_;
  std::int64_t lease;
  {
    std::lock_guard lock(m.mu);
    if (m.state != Impl::State::running) {
      return make_error(Errc::unavailable, "etcd registry: not running");
    }
    self.id = m.id;
    lease = m.lease;
  }
  if (auto r = m.put_self(self, lease); !r) return r.error();
  std::lock_guard lock(m.mu);
  m.nodes[self.id] = std::move(self);  // the watch brings the same soon; answer it already
  return {};
}

std::optional<NodeInfo> EtcdRegistry::node(std::uint32_t id) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->nodes.find(id);
  if (it == impl_->nodes.end()) return std::nullopt;
  return impl_->with_version(it->second);
}

std::vector<NodeInfo> EtcdRegistry::nodes() {
  std::lock_guard lock(impl_->mu);
  std::vector<NodeInfo> out;
  out.reserve(impl_->nodes.size());
  for (const auto& [id, n] : impl_->nodes) out.push_back(impl_->with_version(n));
  return out;
}

void EtcdRegistry::own_partitions(std::uint32_t count, PartitionsChanged changed) {
  Impl& m = *impl_;
  std::uint32_t self;
  std::int64_t lease;
  {
    std::lock_guard lock(m.mu);
    if (m.state != Impl::State::running || m.participating) {
      LOG_WARN("etcd registry: own_partitions() ignored (not started, stopped, or called twice)");
      return;
    }
    m.participating = true;
    m.count = count;
    m.changed = std::move(changed);
    self = m.id;
    lease = m.lease;
  }
  // Announce before watching, so this node's first listing already counts itself.
  auto r = m.client->put(m.logic_dir + std::to_string(self), "", lease);
  Impl* impl = impl_.get();
  auto logic = m.client->watch_prefix(
      m.logic_dir, [impl](auto kvs, std::int64_t) { impl->logic_snapshot(std::move(kvs)); },
      [impl](auto events) { impl->logic_events(std::move(events)); });
  auto parts = m.client->watch_prefix(
      m.parts_dir, [impl](auto kvs, std::int64_t) { impl->parts_snapshot(std::move(kvs)); },
      [impl](auto events) { impl->parts_events(std::move(events)); });
  std::lock_guard lock(m.mu);
  if (r) {
    m.logic_announced = true;
  } else {
    LOG_WARN("etcd registry: cannot announce partition participation yet: " << r.error().message);
  }
  m.logic_watch = std::move(logic);
  m.parts_watch = std::move(parts);
  m.dirty = true;
  m.cv.notify_all();
}

void EtcdRegistry::stop() {
  Impl& m = *impl_;
  Impl::State state;
  {
    std::lock_guard lock(m.mu);
    state = m.state;
    if (state == Impl::State::idle || state == Impl::State::stopped) {
      m.state = Impl::State::stopped;
      return;
    }
  }
  m.join_worker();
  // The worker is gone: this thread may call changed() now.
  bool lost, tell;
  PartitionsChanged changed_cb;
  std::int64_t lease;
  {
    std::lock_guard lock(m.mu);
    lost = m.state == Impl::State::lost;
    tell = m.participating && m.reported && !lost;
    changed_cb = m.changed;
    lease = m.lease;
    m.state = Impl::State::stopped;
  }
  if (tell && changed_cb) changed_cb({});
  m.owned.clear();
  // The keep-alive stops before the revoke, so it cannot mistake the revoke for a lost lease.
  m.stop_tasks();
  if (!lost && lease != 0) {
    auto r = m.client->lease_revoke(lease);
    if (!r) LOG_WARN("etcd registry: revoking lease " << lease << ": " << r.error().message);
  }
}

void EtcdRegistry::abandon_for_test() {
  Impl& m = *impl_;
  m.join_worker();
  m.stop_tasks();
  std::lock_guard lock(m.mu);
  m.state = Impl::State::stopped;
}

Result<void> EtcdRegistry::ping() {
  auto r = impl_->client->get(impl_->opt.prefix);
  if (!r) return r.error();
  return {};
}

std::int64_t EtcdRegistry::lease_id() const {
  std::lock_guard lock(impl_->mu);
  return impl_->lease;
}

}  // namespace imd
