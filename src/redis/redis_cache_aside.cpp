#include "redis/redis_cache_aside.hpp"

#include <algorithm>
#include <random>
#include <thread>

#include "common/log.hpp"
#include "common/metrics.hpp"

namespace imd::redis {

namespace {

// KEYS: value, lock, version. ARGV: token, lock_ttl_ms.
// {1, value} when cached; else {2, version} when this caller took the lock, {0, version} when
// another one holds it.
const char* kGetOrLockScript = R"lua(
local v = redis.call('GET', KEYS[1])
if v then return {1, v} end
local got = redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2])
local ver = redis.call('GET', KEYS[3]) or '0'
if got then return {2, ver} end
return {0, ver}
)lua";

// KEYS: value, lock, version. ARGV: value ('' = store nothing), ttl_ms, version, token.
// Stores the value if no invalidation happened since `version` was read; releases the lock if
// it is still ours. Returns 1 when stored.
const char* kStoreScript = R"lua(
local stored = 0
if ARGV[1] ~= '' and (redis.call('GET', KEYS[3]) or '0') == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  stored = 1
end
if redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('DEL', KEYS[2]) end
return stored
)lua";

// KEYS: value, version. ARGV: version_ttl_ms. Bumps the version, then deletes the value.
const char* kInvalidateScript = R"lua(
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
)lua";

constexpr char kValue = 'L';
constexpr char kEmpty = 'E';
constexpr char kNotFound = 'N';

bool is_negative(std::string_view encoded) {
  return encoded.size() == 1 && (encoded[0] == kEmpty || encoded[0] == kNotFound);
}

std::mt19937_64& rng() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return gen;
}

std::string random_token() {
  std::uint64_t a = rng()(), b = rng()();
  return std::to_string(a) + "-" + std::to_string(b);
}

}  // namespace

void append_ids(std::string& out, std::span<const Id> ids) {
  for (Id id : ids) {
    for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>((id >> (8 * b)) & 0xff));
  }
}

void sort_unique(std::vector<Id>& ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
}

bool read_ids(std::string_view& in, std::size_t count, std::vector<Id>& out) {
  if (in.size() / 8 < count) return false;
  out.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    Id id = 0;
    for (int b = 0; b < 8; ++b) {
      id |= static_cast<Id>(static_cast<unsigned char>(in[i * 8 + b])) << (8 * b);
    }
    out[i] = id;
  }
  in.remove_prefix(count * 8);
  return true;
}

template <class V>
CacheAside<V>::CacheAside(std::shared_ptr<RedisClient> client, RedisCacheOptions options,
                          Names names, Loader load, Codec codec)
    : client_(std::move(client)),
      options_(std::move(options)),
      names_(std::move(names)),
      load_(std::move(load)),
      codec_(std::move(codec)) {
  get_or_lock_sha_ = client_->load_script(kGetOrLockScript);
  store_sha_ = client_->load_script(kStoreScript);
  invalidate_sha_ = client_->load_script(kInvalidateScript);
}

template <class V>
std::string CacheAside<V>::key(Id id, std::string_view suffix) const {
  std::string k = options_.prefix + ":{" + names_.tag + ":" + std::to_string(id) + "}";
  k += suffix;
  return k;
}

template <class V>
std::chrono::milliseconds CacheAside<V>::jittered(std::chrono::milliseconds ttl) {
  double j = std::clamp(options_.jitter, 0.0, 0.9);
  std::uniform_real_distribution<double> factor(1.0 - j, 1.0 + j);
  auto ms = static_cast<std::int64_t>(static_cast<double>(ttl.count()) * factor(rng()));
  return std::chrono::milliseconds(std::max<std::int64_t>(ms, 1));
}

// nullopt for a value this code did not write (then it is treated as a miss).
template <class V>
std::optional<Result<typename CacheAside<V>::Value>> CacheAside<V>::decode(
    std::string_view stored) const {
  if (stored.size() == 1 && stored[0] == kEmpty) {
    return Result<Value>(std::make_shared<const V>());
  }
  if (stored.size() == 1 && stored[0] == kNotFound) {
    return Result<Value>(make_error(Errc::not_found, names_.not_found));
  }
  if (stored.empty() || stored[0] != kValue) return std::nullopt;
  auto v = codec_.decode(stored.substr(1));
  if (!v) return std::nullopt;
  return Result<Value>(std::make_shared<const V>(std::move(*v)));
}

template <class V>
Result<typename CacheAside<V>::Value> CacheAside<V>::get(Id id) {
  auto r = client_->command({"GET", key(id, names_.value)});
  if (!r.ok()) {
    LOG_WARN("cache " << names_.tag << ": redis unavailable, loading " << id
                      << " from the store: " << r.error().message);
    return load_through_flight(id, false);
  }
  if (!r->is_nil()) {
    if (auto cached = decode(r->str)) {
      ++hits_;
      metrics::imd().cache_requests.at("hit").inc();
      if (is_negative(r->str)) ++negative_hits_;
      return std::move(*cached);
    }
  }
  ++misses_;
  metrics::imd().cache_requests.at("miss").inc();
  return load_through_flight(id, true);
}

template <class V>
Result<typename CacheAside<V>::Value> CacheAside<V>::load_through_flight(Id id, bool use_redis) {
  std::unique_lock lock(mu_);
  if (auto it = flights_.find(id); it != flights_.end()) {
    // Another thread of this process loads this key: share its answer.
    std::shared_ptr<Flight> f = it->second;
    ++shared_;
    auto patience = options_.lock_ttl + options_.lock_wait + std::chrono::seconds(10);
    if (!landed_.wait_for(lock, patience, [&] { return f->done; })) {
      return make_error(Errc::unavailable, "cache load timed out");
    }
    return *f->result;
  }
  auto f = std::make_shared<Flight>();
  flights_[id] = f;
  lock.unlock();

  Result<Value> result = make_error(Errc::internal, "unset");
  if (use_redis) {
    result = load_with_lock(id);
  } else {
    ++degraded_;
    result = load_from_store(id, nullptr);
  }

  lock.lock();
  f->done = true;
  f->result = result;
  // invalidate() may have detached this flight already (callers after it start a new one).
  if (auto it = flights_.find(id); it != flights_.end() && it->second == f) flights_.erase(it);
  landed_.notify_all();
  return result;
}

template <class V>
Result<typename CacheAside<V>::Value> CacheAside<V>::load_with_lock(Id id) {
  const std::string token = random_token();
  const auto deadline = std::chrono::steady_clock::now() + options_.lock_wait;
  const std::string value = key(id, names_.value), lk = key(id, names_.lock),
                    version = key(id, names_.version);
  for (;;) {
    auto r = client_->command({"EVALSHA", get_or_lock_sha_, "3", value, lk, version, token,
                               std::to_string(options_.lock_ttl.count())});
    if (!r.ok() || !r->is_array() || r->elements.size() != 2) {
      ++degraded_;
      return load_from_store(id, nullptr);
    }
    long long code = r->elements[0].integer;
    const std::string& payload = r->elements[1].str;
    if (code == 1) {
      if (auto cached = decode(payload)) return std::move(*cached);
    } else if (code == 2) {
      std::string encoded;
      auto loaded = load_from_store(id, &encoded);
      auto ttl = jittered(is_negative(encoded) ? options_.negative_ttl : options_.ttl);
      auto stored = client_->command({"EVALSHA", store_sha_, "3", value, lk, version, encoded,
                                      std::to_string(ttl.count()), payload, token});
      if (!stored.ok()) {
        LOG_WARN("cache " << names_.tag << ": storing " << id
                          << " failed: " << stored.error().message);
      }
      return loaded;
    }
    // Another process loads it: re-read shortly (it may also have died: the lock expires).
    if (std::chrono::steady_clock::now() >= deadline) {
      ++degraded_;
      return load_from_store(id, nullptr);
    }
    ++lock_waits_;
    std::this_thread::sleep_for(options_.poll);
  }
}

template <class V>
Result<typename CacheAside<V>::Value> CacheAside<V>::load_from_store(Id id, std::string* encoded) {
  ++loads_;
  auto loaded = load_(id);
  if (!loaded.ok()) {
    if (encoded != nullptr && loaded.error().code == Errc::not_found) {
      *encoded = std::string(1, kNotFound);
    }
    return loaded.error();
  }
  codec_.normalize(*loaded);
  if (encoded != nullptr) {
    if (codec_.empty(*loaded)) {
      *encoded = std::string(1, kEmpty);
    } else {
      *encoded = std::string(1, kValue);
      codec_.encode(*loaded, *encoded);
    }
  }
  return Value(std::make_shared<const V>(std::move(*loaded)));
}

template <class V>
void CacheAside<V>::invalidate(Id id) {
  {
    std::lock_guard lock(mu_);
    flights_.erase(id);  // a load in flight may predate the change: do not join it
  }
  auto version_ttl = std::max(options_.ttl * 2, std::chrono::milliseconds(60000));
  auto r = client_->command({"EVALSHA", invalidate_sha_, "2", key(id, names_.value),
                             key(id, names_.version), std::to_string(version_ttl.count())});
  if (!r.ok()) {
    LOG_WARN("cache " << names_.tag << ": invalidating " << id
                      << " failed (the value may be stale for one TTL): " << r.error().message);
  }
}

template <class V>
Result<std::size_t> CacheAside<V>::warm(std::span<const Id> ids) {
  std::vector<Command> cmds;
  cmds.reserve(ids.size());
  for (Id id : ids) cmds.push_back({"EXISTS", key(id, names_.value)});
  auto exists = client_->pipeline(cmds);
  if (!exists.ok()) return exists.error();
  std::size_t loaded = 0;
  std::optional<Error> first_error;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const Reply& e = (*exists)[i];
    if (e.is_integer() && e.integer == 1) continue;
    auto r = get(ids[i]);
    if (r.ok() || r.error().code == Errc::not_found) {
      ++loaded;
    } else if (!first_error) {
      first_error = r.error();
    }
  }
  if (first_error) return *first_error;
  return loaded;
}

template <class V>
RedisCacheCounters CacheAside<V>::counters() const {
  return RedisCacheCounters{hits_.load(),    misses_.load(), negative_hits_.load(),
                            loads_.load(),   shared_.load(), lock_waits_.load(),
                            degraded_.load()};
}

template class CacheAside<std::vector<Id>>;
template class CacheAside<Memberships>;

}  // namespace imd::redis
