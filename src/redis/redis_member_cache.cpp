#include "redis/redis_member_cache.hpp"

#include <algorithm>
#include <cstring>
#include <random>
#include <thread>

#include "common/log.hpp"

namespace imd {

namespace {

using redis::Command;

// KEYS: m, lock, v. ARGV: token, lock_ttl_ms.
// {1, list} when cached; else {2, version} when this caller took the lock, {0, version} when
// another one holds it.
const char* kGetOrLockScript = R"lua(
local v = redis.call('GET', KEYS[1])
if v then return {1, v} end
local got = redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2])
local ver = redis.call('GET', KEYS[3]) or '0'
if got then return {2, ver} end
return {0, ver}
)lua";

// KEYS: m, lock, v. ARGV: value ('' = store nothing), ttl_ms, version, token.
// Stores the list if no invalidation happened since `version` was read; releases the lock if
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

// KEYS: m, v. ARGV: version_ttl_ms. Bumps the version, then deletes the list.
const char* kInvalidateScript = R"lua(
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
)lua";

constexpr char kList = 'L';
constexpr char kEmpty = 'E';
constexpr char kNotFound = 'N';

std::string encode_list(const std::vector<Id>& ids) {
  if (ids.empty()) return std::string(1, kEmpty);
  std::string out(1 + ids.size() * 8, '\0');
  out[0] = kList;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    for (int b = 0; b < 8; ++b) out[1 + i * 8 + b] = static_cast<char>((ids[i] >> (8 * b)) & 0xff);
  }
  return out;
}

// nullopt for a value this code did not write (then it is treated as a miss).
std::optional<Result<MemberList>> decode_list(std::string_view v) {
  if (v.size() == 1 && v[0] == kEmpty)
    return Result<MemberList>(std::make_shared<const std::vector<Id>>());
  if (v.size() == 1 && v[0] == kNotFound) {
    return Result<MemberList>(make_error(Errc::not_found, "no such channel"));
  }
  if (v.empty() || v[0] != kList || (v.size() - 1) % 8 != 0) return std::nullopt;
  std::vector<Id> ids((v.size() - 1) / 8);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    Id id = 0;
    for (int b = 0; b < 8; ++b) {
      id |= static_cast<Id>(static_cast<unsigned char>(v[1 + i * 8 + b])) << (8 * b);
    }
    ids[i] = id;
  }
  return Result<MemberList>(std::make_shared<const std::vector<Id>>(std::move(ids)));
}

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

RedisMemberCache::RedisMemberCache(std::shared_ptr<redis::RedisClient> client, Loader load,
                                   RedisMemberCacheOptions options)
    : client_(std::move(client)), load_(std::move(load)), options_(std::move(options)) {
  get_or_lock_sha_ = client_->load_script(kGetOrLockScript);
  store_sha_ = client_->load_script(kStoreScript);
  invalidate_sha_ = client_->load_script(kInvalidateScript);
}

std::string RedisMemberCache::key(Id channel, std::string_view suffix) const {
  std::string k = options_.prefix + ":{ch:" + std::to_string(channel) + "}";
  k += suffix;
  return k;
}

std::chrono::milliseconds RedisMemberCache::jittered(std::chrono::milliseconds ttl) {
  double j = std::clamp(options_.jitter, 0.0, 0.9);
  std::uniform_real_distribution<double> factor(1.0 - j, 1.0 + j);
  auto ms = static_cast<std::int64_t>(static_cast<double>(ttl.count()) * factor(rng()));
  return std::chrono::milliseconds(std::max<std::int64_t>(ms, 1));
}

Result<MemberList> RedisMemberCache::members(Id channel_id) {
  auto r = client_->command({"GET", key(channel_id, ":m")});
  if (!r.ok()) {
    LOG_WARN("member cache: redis unavailable, loading channel "
             << channel_id << " from the store: " << r.error().message);
    return load_through_flight(channel_id, false);
  }
  if (!r->is_nil()) {
    if (auto cached = decode_list(r->str)) {
      ++hits_;
      if (!cached->ok() || (**cached)->empty()) ++negative_hits_;
      return std::move(*cached);
    }
  }
  ++misses_;
  return load_through_flight(channel_id, true);
}

Result<MemberList> RedisMemberCache::load_through_flight(Id channel_id, bool use_redis) {
  std::unique_lock lock(mu_);
  if (auto it = flights_.find(channel_id); it != flights_.end()) {
    // Another thread of this process loads this key: share its answer.
    std::shared_ptr<Flight> f = it->second;
    ++shared_;
    auto patience = options_.lock_ttl + options_.lock_wait + std::chrono::seconds(10);
    if (!landed_.wait_for(lock, patience, [&] { return f->done; })) {
      return make_error(Errc::unavailable, "member list load timed out");
    }
    return *f->result;
  }
  auto f = std::make_shared<Flight>();
  flights_[channel_id] = f;
  lock.unlock();

  Result<MemberList> result = make_error(Errc::internal, "unset");
  if (use_redis) {
    result = load_with_lock(channel_id);
  } else {
    ++degraded_;
    result = load_from_store(channel_id, nullptr);
  }

  lock.lock();
  f->done = true;
  f->result = result;
  // invalidate() may have detached this flight already (callers after it start a new one).
  if (auto it = flights_.find(channel_id); it != flights_.end() && it->second == f) {
    flights_.erase(it);
  }
  landed_.notify_all();
  return result;
}

Result<MemberList> RedisMemberCache::load_with_lock(Id channel_id) {
  const std::string token = random_token();
  const auto deadline = std::chrono::steady_clock::now() + options_.lock_wait;
  const std::string m = key(channel_id, ":m"), lk = key(channel_id, ":lock"),
                    v = key(channel_id, ":v");
  for (;;) {
    auto r = client_->command({"EVALSHA", get_or_lock_sha_, "3", m, lk, v, token,
                               std::to_string(options_.lock_ttl.count())});
    if (!r.ok() || !r->is_array() || r->elements.size() != 2) {
      ++degraded_;
      return load_from_store(channel_id, nullptr);
    }
    long long code = r->elements[0].integer;
    const std::string& payload = r->elements[1].str;
    if (code == 1) {
      if (auto cached = decode_list(payload)) return std::move(*cached);
    } else if (code == 2) {
      std::string encoded;
      auto loaded = load_from_store(channel_id, &encoded);
      auto ttl = jittered(is_negative(encoded) ? options_.negative_ttl : options_.ttl);
      auto stored = client_->command({"EVALSHA", store_sha_, "3", m, lk, v, encoded,
                                      std::to_string(ttl.count()), payload, token});
      if (!stored.ok()) {
        LOG_WARN("member cache: storing channel " << channel_id
                                                  << " failed: " << stored.error().message);
      }
      return loaded;
    }
    // Another process loads it: re-read shortly (it may also have died: the lock expires).
    if (std::chrono::steady_clock::now() >= deadline) {
      ++degraded_;
      return load_from_store(channel_id, nullptr);
    }
    ++lock_waits_;
    std::this_thread::sleep_for(options_.poll);
  }
}

Result<MemberList> RedisMemberCache::load_from_store(Id channel_id, std::string* encoded) {
  ++loads_;
  auto loaded = load_(channel_id);
  if (!loaded.ok()) {
    if (encoded != nullptr && loaded.error().code == Errc::not_found) {
      *encoded = std::string(1, kNotFound);
    }
    return loaded.error();
  }
  std::vector<Id> ids = std::move(*loaded);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (encoded != nullptr) *encoded = encode_list(ids);
  return MemberList(std::make_shared<const std::vector<Id>>(std::move(ids)));
}

void RedisMemberCache::invalidate(Id channel_id) {
  {
    std::lock_guard lock(mu_);
    flights_.erase(channel_id);  // a load in flight may predate the change: do not join it
  }
  auto version_ttl = std::max(options_.ttl * 2, std::chrono::milliseconds(60000));
  auto r = client_->command({"EVALSHA", invalidate_sha_, "2", key(channel_id, ":m"),
                             key(channel_id, ":v"), std::to_string(version_ttl.count())});
  if (!r.ok()) {
    LOG_WARN("member cache: invalidating channel "
             << channel_id << " failed (the list may "
             << "be stale for one TTL): " << r.error().message);
  }
}

Result<std::size_t> RedisMemberCache::warm(std::span<const Id> channel_ids) {
  std::vector<Command> cmds;
  cmds.reserve(channel_ids.size());
  for (Id c : channel_ids) cmds.push_back({"EXISTS", key(c, ":m")});
  auto exists = client_->pipeline(cmds);
  if (!exists.ok()) return exists.error();
  std::size_t loaded = 0;
  std::optional<Error> first_error;
  for (std::size_t i = 0; i < channel_ids.size(); ++i) {
    const redis::Reply& e = (*exists)[i];
    if (e.is_integer() && e.integer == 1) continue;
    auto r = members(channel_ids[i]);
    if (r.ok() || r.error().code == Errc::not_found) {
      ++loaded;
    } else if (!first_error) {
      first_error = r.error();
    }
  }
  if (first_error) return *first_error;
  return loaded;
}

RedisMemberCache::Counters RedisMemberCache::counters() const {
  return Counters{hits_.load(),   misses_.load(),     negative_hits_.load(), loads_.load(),
                  shared_.load(), lock_waits_.load(), degraded_.load()};
}

}  // namespace imd
