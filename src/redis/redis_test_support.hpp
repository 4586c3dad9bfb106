// Helpers for tests against the Redis servers that scripts/services.sh starts (the CTest
// fixtures `redis` and `redis_cluster` set IMD_TEST_REDIS_ADDR, IMD_TEST_REDIS_CLUSTER_ADDRS and
// IMD_TEST_REDIS_CLUSTER_STATE): client options from the environment, and a fresh key prefix per
// test so that tests run in parallel (ctest -j) never see each other's keys.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "redis/redis_client.hpp"

namespace imd::testing {

enum class RedisKind { single, cluster };

inline const char* redis_env_name(RedisKind kind) {
  return kind == RedisKind::single ? "IMD_TEST_REDIS_ADDR" : "IMD_TEST_REDIS_CLUSTER_ADDRS";
}

// The fixture's server(s), or nullopt when the variable is unset (the binary was run outside
// ctest): such tests skip with a message that says how to run them.
inline std::optional<redis::RedisOptions> redis_test_options(RedisKind kind) {
  const char* v = std::getenv(redis_env_name(kind));
  if (v == nullptr || *v == '\0') return std::nullopt;
  auto seeds = redis::parse_endpoints(v);
  if (!seeds.ok()) return std::nullopt;
  redis::RedisOptions o;
  o.seeds = std::move(*seeds);
  o.cluster = kind == RedisKind::cluster;
  o.pool_size = 8;
  return o;
}

inline std::shared_ptr<redis::RedisClient> redis_test_client(RedisKind kind) {
  auto o = redis_test_options(kind);
  if (!o) return nullptr;
  return std::make_shared<redis::RedisClient>(std::move(*o));
}

inline constexpr const char* kRedisSkipReason =
    "IMD_TEST_REDIS_ADDR / IMD_TEST_REDIS_CLUSTER_ADDRS are not set: run through ctest (its "
    "fixtures start Redis with scripts/services.sh), or start one yourself and set them";

// "t<pid>_<n>_<time>": unique per test, so keys never collide across tests or runs.
inline std::string unique_prefix() {
  static std::atomic<int> counter{0};
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
         std::to_string(static_cast<unsigned long long>(now) % 100000000);
}

// A value of the shell state file scripts/services.sh writes (NAME=value, %q-quoted; the values
// read here contain no characters that need quoting).
inline std::optional<std::string> services_state_value(const std::string& file,
                                                       const std::string& name) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + "=", 0) == 0) return line.substr(name.size() + 1);
  }
  return std::nullopt;
}

}  // namespace imd::testing
