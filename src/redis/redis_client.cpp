// One file over ~600 lines on purpose: the pool, the pipelined commands and the cluster's slot
// routing (MOVED/ASK, topology refresh) act on the same connection state; a split would put
// one protocol's retry rules in two places.
#include "redis/redis_client.hpp"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <optional>
#include <stdexcept>
#include <thread>

#include "common/breaker.hpp"
#include "common/metrics.hpp"

namespace imd::redis {

namespace {

using Clock = std::chrono::steady_clock;

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextFree>;

timeval to_timeval(int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

Reply convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::array;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      out.type = Reply::Type::nil;
      break;
  }
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// The first word of an error reply ("MOVED", "ASK", "NOSCRIPT", ...).
std::string_view error_kind(const Reply& r) {
  std::string_view s = r.str;
  return s.substr(0, s.find(' '));
}

std::optional<int> parse_int(std::string_view s) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381" -> (slot, endpoint). An empty host
// (":6381") means the host of the node that answered.
std::optional<std::pair<int, Endpoint>> parse_redirect(std::string_view text,
                                                       const Endpoint& from) {
  auto sp1 = text.find(' ');
  if (sp1 == std::string_view::npos) return std::nullopt;
  auto sp2 = text.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return std::nullopt;
  auto slot = parse_int(text.substr(sp1 + 1, sp2 - sp1 - 1));
  std::string_view addr = text.substr(sp2 + 1);
  auto colon = addr.rfind(':');
  if (!slot || colon == std::string_view::npos) return std::nullopt;
  auto port = parse_int(addr.substr(colon + 1));
  if (!port) return std::nullopt;
  Endpoint ep{std::string(addr.substr(0, colon)), *port};
  if (ep.host.empty()) ep.host = from.host;
  return std::pair{*slot, ep};
}

Error io_error(const Endpoint& ep, const redisContext* c, std::string_view what) {
  std::string msg = "redis " + ep.str() + ": " + std::string(what);
  if (c != nullptr && c->err != 0) msg += ": " + std::string(c->errstr);
  return make_error(Errc::unavailable, std::move(msg));
}

std::string sha1_hex(std::string_view data) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

}  // namespace

// --- free functions

Result<std::vector<Endpoint>> parse_endpoints(std::string_view text) {
  std::vector<Endpoint> out;
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    auto colon = item.rfind(':');
    auto port = colon == std::string_view::npos ? std::nullopt : parse_int(item.substr(colon + 1));
    if (colon == 0 || !port || *port < 1 || *port > 65535) {
      return make_error(Errc::invalid_argument,
                        "bad redis address '" + std::string(item) + "' (want HOST:PORT)");
    }
    out.push_back(Endpoint{std::string(item.substr(0, colon)), *port});
  }
  if (out.empty()) return make_error(Errc::invalid_argument, "no redis address given");
  return out;
}

Error reply_to_error(const Reply& reply) {
  static constexpr std::string_view kTransient[] = {
      "OOM",         "BUSY",     "LOADING",    "MASTERDOWN", "READONLY",
      "CLUSTERDOWN", "TRYAGAIN", "NOREPLICAS", "MOVED",      "ASK"};
  std::string_view kind = error_kind(reply);
  bool transient =
      std::find(std::begin(kTransient), std::end(kTransient), kind) != std::end(kTransient);
  return make_error(transient ? Errc::unavailable : Errc::internal, "redis: " + reply.str);
}

std::uint16_t crc16(std::string_view data) {
  std::uint16_t crc = 0;
  for (char ch : data) {
    crc ^= static_cast<std::uint16_t>(static_cast<unsigned char>(ch)) << 8;
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<std::uint16_t>(crc << 1);
    }
  }
  return crc;
}

int key_slot(std::string_view key) {
  auto open = key.find('{');
  if (open != std::string_view::npos) {
    auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return crc16(key) & (kSlots - 1);
}

std::optional<std::string_view> routing_key(const Command& argv) {
  if (argv.size() < 2) return std::nullopt;
  std::string name = upper(argv[0]);
  if (name == "EVAL" || name == "EVALSHA" || name == "EVAL_RO" || name == "EVALSHA_RO" ||
      name == "FCALL" || name == "FCALL_RO") {
    auto numkeys = argv.size() >= 3 ? parse_int(argv[2]) : std::nullopt;
    if (!numkeys || *numkeys < 1 || argv.size() < 4) return std::nullopt;
    return std::string_view(argv[3]);
  }
  static constexpr std::string_view kKeyless[] = {
      "PING",      "ECHO",   "INFO",      "TIME",     "CLUSTER", "SCRIPT", "FLUSHALL",
      "FLUSHDB",   "DBSIZE", "CONFIG",    "CLIENT",   "COMMAND", "ASKING", "READONLY",
      "READWRITE", "WAIT",   "RANDOMKEY", "LASTSAVE", "SAVE",    "BGSAVE", "FUNCTION"};
  if (std::find(std::begin(kKeyless), std::end(kKeyless), name) != std::end(kKeyless)) {
    return std::nullopt;
  }
  return std::string_view(argv[1]);
}

// --- the pool of one node

class RedisClient::NodePool {
 public:
  NodePool(Endpoint ep, RedisClient& owner) : ep_(std::move(ep)), owner_(owner) {}
  ~NodePool() {
    for (redisContext* c : idle_) redisFree(c);
  }

  // A pooled connection, returned to the pool when it goes out of scope, or closed when
  // marked broken (an error or a timeout leaves a hiredis context unusable).
  class Lease {
   public:
    Lease(NodePool* pool, redisContext* ctx, std::uint64_t epoch)
        : pool_(pool), ctx_(ctx), epoch_(epoch) {}
    Lease(Lease&& o) noexcept
        : pool_(std::exchange(o.pool_, nullptr)),
          ctx_(o.ctx_),
          epoch_(o.epoch_),
          broken_(o.broken_) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ != nullptr) pool_->release(ctx_, epoch_, broken_);
    }
    redisContext* get() const { return ctx_; }
    void mark_broken() { broken_ = true; }

   private:
    NodePool* pool_;
    redisContext* ctx_;
    std::uint64_t epoch_;
    bool broken_ = false;
  };

  const Endpoint& endpoint() const { return ep_; }

  // unavailable when no connection frees up within acquire_timeout_ms (`*exhausted` set) or
  // the connect fails.
  Result<Lease> acquire(bool* exhausted = nullptr) {
    const RedisOptions& o = owner_.options_;
    std::unique_lock lock(mu_);
    auto deadline = Clock::now() + std::chrono::milliseconds(o.acquire_timeout_ms);
    for (;;) {
      if (!idle_.empty()) {
        redisContext* c = idle_.back();
        idle_.pop_back();
        return Lease(this, c, epoch_);
      }
      if (open_ < static_cast<std::size_t>(o.pool_size)) {
        ++open_;
        std::uint64_t epoch = epoch_;
        lock.unlock();
        auto c = connect();
        if (!c.ok()) {
          lock.lock();
          --open_;
          freed_.notify_one();
          return c.error();
        }
        return Lease(this, *c, epoch);
      }
      if (freed_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
          open_ >= static_cast<std::size_t>(o.pool_size)) {
        if (exhausted != nullptr) *exhausted = true;
        return make_error(Errc::unavailable, "redis " + ep_.str() + ": all " +
                                                 std::to_string(o.pool_size) +
                                                 " pooled connections busy");
      }
    }
  }

  // Closes the idle connections and makes the ones in use close on return: after an error
  // on one connection the others to that node are likely dead too (a restarted server).
  void invalidate() {
    std::vector<redisContext*> closing;
    {
      std::lock_guard lock(mu_);
      ++epoch_;
      closing.swap(idle_);
      open_ -= closing.size();
    }
    freed_.notify_all();
    for (redisContext* c : closing) redisFree(c);
  }

 private:
  Result<redisContext*> connect() {
    const RedisOptions& o = owner_.options_;
    ContextPtr c(
        redisConnectWithTimeout(ep_.host.c_str(), ep_.port, to_timeval(o.connect_timeout_ms)));
    if (!c) return make_error(Errc::unavailable, "redis " + ep_.str() + ": out of memory");
    if (c->err != 0) return io_error(ep_, c.get(), "connect");
    if (redisSetTimeout(c.get(), to_timeval(o.command_timeout_ms)) != REDIS_OK) {
      return io_error(ep_, c.get(), "set timeout");
    }
    redisEnableKeepAlive(c.get());
    ++owner_.connects_;
    return c.release();
  }

  void release(redisContext* c, std::uint64_t epoch, bool broken) {
    bool close = broken || c->err != 0;
    {
      std::lock_guard lock(mu_);
      if (close || epoch != epoch_) {
        --open_;
        close = true;
      } else {
        idle_.push_back(c);
      }
    }
    freed_.notify_one();
    if (close) {
      if (broken || c->err != 0) ++owner_.broken_;
      redisFree(c);
    }
  }

  const Endpoint ep_;
  RedisClient& owner_;
  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<redisContext*> idle_;
  std::size_t open_ = 0;  // idle + leased
  std::uint64_t epoch_ = 0;
};

// --- the client

RedisClient::RedisClient(RedisOptions options) : options_(std::move(options)) {
  if (options_.seeds.empty()) throw std::invalid_argument("redis: no address given");
  if (options_.pool_size < 1) throw std::invalid_argument("redis: pool_size must be >= 1");
  if (options_.max_redirects < 1) throw std::invalid_argument("redis: max_redirects must be >= 1");
  if (options_.cluster) slot_owner_.resize(kSlots);
  for (const Endpoint& ep : options_.seeds) pools_[ep] = std::make_shared<NodePool>(ep, *this);
}

RedisClient::~RedisClient() = default;

std::shared_ptr<RedisClient::NodePool> RedisClient::pool_for(const Endpoint& ep) {
  {
    std::shared_lock lock(map_mu_);
    if (auto it = pools_.find(ep); it != pools_.end()) return it->second;
  }
  std::unique_lock lock(map_mu_);
  auto& p = pools_[ep];
  if (!p) p = std::make_shared<NodePool>(ep, *this);
  return p;
}

std::shared_ptr<RedisClient::NodePool> RedisClient::any_node() {
  std::shared_lock lock(map_mu_);
  if (!masters_.empty()) {
    if (auto it = pools_.find(masters_.front()); it != pools_.end()) return it->second;
  }
  return pools_.at(options_.seeds.front());
}

std::shared_ptr<RedisClient::NodePool> RedisClient::owner_of(int slot) {
  if (!options_.cluster) return any_node();
  {
    std::shared_lock lock(map_mu_);
    if (slot_owner_[static_cast<std::size_t>(slot)]) {
      return slot_owner_[static_cast<std::size_t>(slot)];
    }
  }
  return any_node();  // an unassigned slot: any node answers with MOVED or CLUSTERDOWN
}

void RedisClient::note_moved(int slot, const Endpoint& owner) {
  auto pool = pool_for(owner);
  {
    std::unique_lock lock(map_mu_);
    if (slot >= 0 && slot < kSlots) slot_owner_[static_cast<std::size_t>(slot)] = pool;
  }
  // One MOVED usually means a whole range moved (resharding, failover): reload the map soon.
  map_stale_ = true;
}

Result<void> RedisClient::load_slots_from(NodePool& pool) {
  auto r = command_at(pool.endpoint(), {"CLUSTER", "SLOTS"});
  if (!r.ok()) return r.error();
  if (!r->is_array()) return make_error(Errc::internal, "redis: unexpected CLUSTER SLOTS reply");
  std::vector<std::shared_ptr<NodePool>> table(kSlots);
  std::vector<Endpoint> masters;
  for (const Reply& range : r->elements) {
    // [start, end, [host, port, id, ...], replicas...]
    if (!range.is_array() || range.elements.size() < 3 || !range.elements[2].is_array() ||
        range.elements[2].elements.size() < 2) {
      continue;
    }
    const Reply& master = range.elements[2];
    Endpoint ep{master.elements[0].str, static_cast<int>(master.elements[1].integer)};
    if (ep.host.empty()) ep.host = pool.endpoint().host;  // "": the node we asked
    if (ep.host == "?" || ep.port <= 0) continue;         // endpoint unknown
    auto owner = pool_for(ep);
    long long lo = std::clamp<long long>(range.elements[0].integer, 0, kSlots - 1);
    long long hi = std::clamp<long long>(range.elements[1].integer, 0, kSlots - 1);
    for (long long s = lo; s <= hi; ++s) table[static_cast<std::size_t>(s)] = owner;
    if (std::find(masters.begin(), masters.end(), ep) == masters.end()) masters.push_back(ep);
  }
  if (masters.empty()) return make_error(Errc::unavailable, "redis: cluster has no slots assigned");
  std::sort(masters.begin(), masters.end());
  std::unique_lock lock(map_mu_);
  slot_owner_.swap(table);
  masters_ = std::move(masters);
  return {};
}

Result<void> RedisClient::refresh_slots_if_stale(std::chrono::milliseconds min_interval) {
  if (!options_.cluster) return {};
  std::lock_guard lock(refresh_mu_);
  auto now = Clock::now();
  if (last_refresh_ != Clock::time_point{} && now - last_refresh_ < min_interval) return {};
  // Ask the masters we know, then the seeds: one answer is enough.
  std::vector<Endpoint> candidates;
  {
    std::shared_lock map_lock(map_mu_);
    candidates = masters_;
  }
  for (const Endpoint& s : options_.seeds) {
    if (std::find(candidates.begin(), candidates.end(), s) == candidates.end()) {
      candidates.push_back(s);
    }
  }
  Error last = make_error(Errc::unavailable, "redis: no node answered CLUSTER SLOTS");
  for (const Endpoint& ep : candidates) {
    auto r = load_slots_from(*pool_for(ep));
    if (r.ok()) {
      last_refresh_ = Clock::now();
      map_stale_ = false;
      ++refreshes_;
      return {};
    }
    last = r.error();
  }
  last_refresh_ = Clock::now();  // do not hammer dead nodes: the next try waits min_interval
  return last;
}

Result<void> RedisClient::refresh_slots() {
  return refresh_slots_if_stale(std::chrono::milliseconds(0));
}

struct RedisClient::Target {
  std::shared_ptr<NodePool> pool;
  bool asking = false;  // an ASK redirect: send ASKING first
};

Result<std::vector<Reply>> RedisClient::pipeline(std::span<const Command> commands) {
  // Labelled by the command (the code sends a fixed set), "pipeline" for several at once.
  const std::string_view op =
      commands.size() == 1 && !commands[0].empty() ? std::string_view(commands[0][0]) : "pipeline";
  auto& m = metrics::imd();
  Breaker* breaker = breaker_.load(std::memory_order_acquire);
  std::optional<Breaker::Permit> permit;
  if (breaker != nullptr) permit = breaker->track();
  auto r = [&] {
    metrics::Timer t(m.redis_call_seconds.at(op));
    return pipeline_untimed(commands);
  }();
  if (!r.ok()) m.redis_errors.at(op).inc();
  if (permit) breaker->record_result(*permit, r.ok() ? nullptr : &r.error());
  return r;
}

Result<std::vector<Reply>> RedisClient::pipeline_untimed(std::span<const Command> commands) {
  const std::size_t n = commands.size();
  std::vector<Reply> results(n);
  if (n == 0) return results;

  std::vector<std::optional<Command>> rewritten(n);  // EVALSHA -> EVAL after NOSCRIPT
  std::vector<Target> redirect(n);                   // one-shot target after MOVED / ASK
  std::vector<int> redirects(n, 0), io_retries(n, 0);
  std::vector<std::size_t> pending(n);
  for (std::size_t i = 0; i < n; ++i) pending[i] = i;
  auto cmd = [&](std::size_t i) -> const Command& {
    return rewritten[i] ? *rewritten[i] : commands[i];
  };

  while (!pending.empty()) {
    if (options_.cluster && map_stale_.load()) {
      (void)refresh_slots_if_stale(std::chrono::milliseconds(100));
    }

    // Group by node, in a fixed node order (so two batches never wait for each other's
    // connections in opposite orders), keeping the batch order within a node.
    struct Group {
      std::shared_ptr<NodePool> pool;
      std::vector<std::pair<std::size_t, bool>> items;  // (index, asking)
      std::optional<NodePool::Lease> lease;
    };
    std::map<Endpoint, Group> groups;
    for (std::size_t i : pending) {
      Target t = std::move(redirect[i]);
      redirect[i] = Target{};
      if (!t.pool) {
        auto key = routing_key(cmd(i));
        t.pool = options_.cluster && key ? owner_of(key_slot(*key)) : any_node();
      }
      Group& g = groups[t.pool->endpoint()];
      g.pool = t.pool;
      g.items.emplace_back(i, t.asking);
    }
    pending.clear();

    std::optional<Error> fatal;
    bool backoff = false;
    // Another try for command i, or false once its redirect budget is spent (its last error
    // reply then stays its result).
    auto retry_later = [&](std::size_t i) {
      if (++redirects[i] > options_.max_redirects) return false;
      pending.push_back(i);
      return true;
    };
    auto io_failed = [&](Group& g, std::size_t from, const Error& e) {
      g.pool->invalidate();
      map_stale_ = true;
      for (std::size_t k = from; k < g.items.size(); ++k) {
        std::size_t i = g.items[k].first;
        if (io_retries[i]++ < 1) {
          ++retries_;
          pending.push_back(i);
        } else {
          fatal = e;
        }
      }
    };

    // Phase 1: write every group, so the nodes work in parallel.
    for (auto& [ep, g] : groups) {
      bool exhausted = false;
      auto lease = g.pool->acquire(&exhausted);
      if (!lease.ok()) {
        // A busy pool is back-pressure, not a broken node: no retry, no invalidation.
        if (exhausted) {
          fatal = lease.error();
        } else {
          io_failed(g, 0, lease.error());
        }
        continue;
      }
      redisContext* c = lease->get();
      bool ok = true;
      for (auto [i, asking] : g.items) {
        if (asking) {
          const char* a = "ASKING";
          std::size_t alen = 6;
          ok = ok && redisAppendCommandArgv(c, 1, &a, &alen) == REDIS_OK;
        }
        const Command& argv = cmd(i);
        std::vector<const char*> ptrs;
        std::vector<std::size_t> lens;
        ptrs.reserve(argv.size());
        lens.reserve(argv.size());
        for (const std::string& s : argv) {
          ptrs.push_back(s.data());
          lens.push_back(s.size());
        }
        ok = ok && redisAppendCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(),
                                          lens.data()) == REDIS_OK;
      }
      int done = 0;
      while (ok && !done) ok = redisBufferWrite(c, &done) == REDIS_OK;
      if (!ok) {
        Error e = io_error(ep, c, "write");
        lease->mark_broken();
        io_failed(g, 0, e);
        continue;
      }
      g.lease.emplace(std::move(*lease));
    }

    // Phase 2: read the replies, group by group.
    for (auto& [ep, g] : groups) {
      if (!g.lease) continue;
      redisContext* c = g.lease->get();
      for (std::size_t k = 0; k < g.items.size(); ++k) {
        auto [i, asking] = g.items[k];
        void* raw = nullptr;
        bool ok = true;
        if (asking) {
          ok = redisGetReply(c, &raw) == REDIS_OK;
          if (raw != nullptr) freeReplyObject(raw);
          raw = nullptr;
        }
        ok = ok && redisGetReply(c, &raw) == REDIS_OK && raw != nullptr;
        if (!ok) {
          if (raw != nullptr) freeReplyObject(raw);
          Error e = io_error(ep, c, "read");
          g.lease->mark_broken();
          io_failed(g, k, e);
          break;
        }
        Reply reply = convert(static_cast<redisReply*>(raw));
        freeReplyObject(raw);
        if (!reply.is_error()) {
          results[i] = std::move(reply);
          continue;
        }
        std::string_view kind = error_kind(reply);
        if (options_.cluster && (kind == "MOVED" || kind == "ASK")) {
          auto where = parse_redirect(reply.str, ep);
          if (!where) {
            results[i] = std::move(reply);
            continue;
          }
          if (kind == "MOVED") {
            ++moved_;
            note_moved(where->first, where->second);
            redirect[i] = Target{pool_for(where->second), false};
          } else {
            ++ask_;
            redirect[i] = Target{pool_for(where->second), true};
          }
          if (!retry_later(i)) results[i] = std::move(reply);
        } else if (kind == "TRYAGAIN" || kind == "CLUSTERDOWN" || kind == "LOADING") {
          ++retries_;
          backoff = true;
          if (kind == "CLUSTERDOWN") map_stale_ = true;
          if (!retry_later(i)) results[i] = std::move(reply);
        } else if (kind == "NOSCRIPT") {
          const Command& argv = cmd(i);
          std::string name = upper(argv[0]);
          std::optional<std::string> source;
          if ((name == "EVALSHA" || name == "EVALSHA_RO") && argv.size() >= 2) {
            std::lock_guard lock(scripts_mu_);
            if (auto it = scripts_.find(argv[1]); it != scripts_.end()) source = it->second;
          }
          if (!source || rewritten[i]) {
            results[i] = std::move(reply);
            continue;
          }
          Command eval = argv;
          eval[0] = name == "EVALSHA" ? "EVAL" : "EVAL_RO";
          eval[1] = std::move(*source);
          rewritten[i] = std::move(eval);
          pending.push_back(i);
        } else {
          results[i] = std::move(reply);
        }
      }
    }
    // Leases return to their pools here, before any wait.
    groups.clear();
    if (fatal) return *fatal;
    if (backoff && !pending.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(options_.retry_backoff_ms));
    }
  }
  return results;
}

Result<Reply> RedisClient::command(const Command& argv) {
  auto r = pipeline(std::span<const Command>(&argv, 1));
  if (!r.ok()) return r.error();
  Reply& reply = (*r)[0];
  if (reply.is_error()) return reply_to_error(reply);
  return std::move(reply);
}

Result<Reply> RedisClient::command_at(const Endpoint& node, const Command& argv) {
  auto pool = pool_for(node);
  std::vector<const char*> ptrs;
  std::vector<std::size_t> lens;
  for (const std::string& s : argv) {
    ptrs.push_back(s.data());
    lens.push_back(s.size());
  }
  for (int attempt = 0;; ++attempt) {
    auto lease = pool->acquire();
    if (!lease.ok()) return lease.error();
    auto* raw = static_cast<redisReply*>(
        redisCommandArgv(lease->get(), static_cast<int>(argv.size()), ptrs.data(), lens.data()));
    if (raw == nullptr) {
      Error e = io_error(node, lease->get(), "command");
      lease->mark_broken();
      pool->invalidate();
      if (attempt == 0) continue;  // a stale pooled connection: once more on a fresh one
      return e;
    }
    Reply reply = convert(raw);
    freeReplyObject(raw);
    if (reply.is_error()) return reply_to_error(reply);
    return reply;
  }
}

std::string RedisClient::load_script(std::string source) {
  std::string sha = sha1_hex(source);
  std::lock_guard lock(scripts_mu_);
  scripts_.emplace(sha, std::move(source));
  return sha;
}

std::vector<Endpoint> RedisClient::masters() {
  if (!options_.cluster) return {options_.seeds.front()};
  {
    std::shared_lock lock(map_mu_);
    if (!masters_.empty()) return masters_;
  }
  (void)refresh_slots();
  std::shared_lock lock(map_mu_);
  return masters_;
}

std::optional<Endpoint> RedisClient::slot_owner(int slot) {
  if (!options_.cluster || slot < 0 || slot >= kSlots) return std::nullopt;
  std::shared_lock lock(map_mu_);
  const auto& p = slot_owner_[static_cast<std::size_t>(slot)];
  if (!p) return std::nullopt;
  return p->endpoint();
}

Result<void> RedisClient::ping() {
  if (!options_.cluster) {
    auto r = command({"PING"});
    if (!r.ok()) return r.error();
    return {};
  }
  IMD_TRY(refresh_slots());
  for (const Endpoint& m : masters()) {
    auto r = command_at(m, {"PING"});
    if (!r.ok()) return r.error();
  }
  return {};
}

RedisClient::Stats RedisClient::stats() const {
  return Stats{moved_.load(),     ask_.load(),      retries_.load(),
               refreshes_.load(), connects_.load(), broken_.load()};
}

}  // namespace imd::redis
