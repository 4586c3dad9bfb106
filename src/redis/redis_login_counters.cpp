#include "redis/redis_login_counters.hpp"

#include <charconv>

namespace imd {

namespace {

// KEYS: pair, account. ARGV: now, forget_after_ms.
constexpr const char* kFailedScript = R"lua(
for i = 1, 2 do
  redis.call('HINCRBY', KEYS[i], 'f', 1)
  redis.call('HSET', KEYS[i], 't', ARGV[1])
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return 1
)lua";

// KEYS: pair, known. ARGV: now, source, known_per_account, known_for_ms.
constexpr const char* kSucceededScript = R"lua(
redis.call('DEL', KEYS[1])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[3]) + 1))
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
)lua";

std::int64_t to_int(const redis::Reply& r) {
  std::int64_t v = 0;
  if (r.is_string()) std::from_chars(r.str.data(), r.str.data() + r.str.size(), v);
  return v;
}

LoginCount count_of(const redis::Reply& r) {
  LoginCount c;
  if (r.is_array() && r.elements.size() == 2) {
    c.failures = static_cast<int>(to_int(r.elements[0]));
    c.last_ms = to_int(r.elements[1]);
  }
  return c;
}

}  // namespace

RedisLoginCounters::RedisLoginCounters(std::shared_ptr<redis::RedisClient> client,
                                       RedisLoginCountersOptions options)
    : client_(std::move(client)), options_(std::move(options)) {
  failed_sha_ = client_->load_script(kFailedScript);
  succeeded_sha_ = client_->load_script(kSucceededScript);
}

std::string RedisLoginCounters::key(std::string_view account, std::string_view what) const {
  std::string k = options_.prefix + ":{login:";
  k.append(account.substr(0, kMaxAccountBytes));
  k.append("}:");
  k.append(what);
  return k;
}

Result<LoginCounts> RedisLoginCounters::read(std::string_view account, std::string_view source,
                                             Millis now) {
  const std::string pair = key(account, "p:" + std::string(source));
  const redis::Command cmds[] = {{"HMGET", pair, "f", "t"},
                                 {"HMGET", key(account, "a"), "f", "t"},
                                 {"ZSCORE", key(account, "k"), std::string(source)}};
  auto r = client_->pipeline(cmds);
  if (!r) return r.error();
  for (const auto& reply : *r) {
    if (reply.is_error()) return redis::reply_to_error(reply);
  }
  LoginCounts c;
  c.pair = count_of((*r)[0]);
  c.account = count_of((*r)[1]);
  const auto& score = (*r)[2];
  if (score.is_string()) {
    double last_login = 0;
    std::from_chars(score.str.data(), score.str.data() + score.str.size(), last_login);
    c.known =
        static_cast<double>(now) - last_login < static_cast<double>(options_.limits.known_for_ms);
  }
  return c;
}

Result<void> RedisLoginCounters::failed(std::string_view account, std::string_view source,
                                        Millis now) {
  auto r = client_->command({"EVALSHA", failed_sha_, "2", key(account, "p:" + std::string(source)),
                             key(account, "a"), std::to_string(now),
                             std::to_string(options_.limits.forget_after_ms)});
  if (!r) return r.error();
  return {};
}

Result<void> RedisLoginCounters::succeeded(std::string_view account, std::string_view source,
                                           Millis now) {
  auto r = client_->command(
      {"EVALSHA", succeeded_sha_, "2", key(account, "p:" + std::string(source)), key(account, "k"),
       std::to_string(now), std::string(source), std::to_string(options_.limits.known_per_account),
       std::to_string(options_.limits.known_for_ms)});
  if (!r) return r.error();
  return {};
}

}  // namespace imd
