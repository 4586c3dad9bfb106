// RedisClient: a small, blocking Redis client on hiredis for the cluster adapters, talking to a
// single Redis or to a Redis Cluster through the same API.
//
// Debian ships no Redis Cluster client for C or C++ (only hiredis, which speaks RESP to one
// server), so this file is one: kept small on purpose, and tested against a real 3-master
// cluster (redis_client_test.cpp).
//
// - Commands are argv vectors sent with redisAppendCommandArgv: values are never formatted
//   into command text, so any bytes (spaces, NULs, "\r\n") are safe.
// - A bounded pool per node (at most pool_size connections, opened on demand); waiting longer
//   than acquire_timeout_ms for a free one is unavailable. Connects and commands have timeouts
//   (redisConnectWithTimeout, redisSetTimeout); a connection that failed or timed out is
//   closed, never reused.
// - pipeline(): N commands, N replies, in order. In cluster mode the batch is grouped by node;
//   every node's group is written before any reply is read, so the round trips overlap.
// - Cluster mode: the slot of a command is CRC16-XMODEM(key) mod 16384, hashing only the
//   {hash tag} when the key has a non-empty one. The slot map comes from CLUSTER SLOTS.
//   MOVED updates the map for that slot (and schedules a full refresh) and retries on the new
//   owner; ASK retries once on the named node behind ASKING and leaves the map alone (the
//   slot is mid-migration); TRYAGAIN / CLUSTERDOWN / LOADING back off and retry. A connection
//   error refreshes the map and retries the command once on a fresh connection. Redirects and
//   retries per command are bounded (max_redirects).
// - EVALSHA scripts: load_script() registers a script and returns its SHA1; a NOSCRIPT reply
//   (a restarted or new node) is retried with EVAL of the registered source.
//
// Retry contract: a command whose connection broke may have run before the break, and it is
// sent again; callers send only idempotent commands (every adapter in src/redis does).
// In cluster mode the keys of one command must share a slot (use hash tags); MULTI/EXEC is not
// supported across a pipeline (use a Lua script for atomic multi-key work).
//
// Thread-safe; every call blocks on the network: run them off I/O threads.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/error.hpp"

namespace imd {
class Breaker;  // common/breaker.hpp
}  // namespace imd

namespace imd::redis {

struct Endpoint {
  std::string host;
  int port = 0;
  std::string str() const { return host + ":" + std::to_string(port); }
  auto operator<=>(const Endpoint&) const = default;
};

// "host:port[,host:port...]" -> endpoints; invalid_argument names the bad entry.
Result<std::vector<Endpoint>> parse_endpoints(std::string_view text);

struct RedisOptions {
  std::vector<Endpoint> seeds;  // single mode: the server; cluster mode: any of its nodes
  bool cluster = false;
  int pool_size = 8;  // connections per node, at most
  int connect_timeout_ms = 1000;
  int command_timeout_ms = 2000;
  int acquire_timeout_ms = 2000;  // waiting for a free pooled connection
  int max_redirects = 5;          // MOVED/ASK/TRYAGAIN/CLUSTERDOWN retries per command
  int retry_backoff_ms = 50;      // before a TRYAGAIN / CLUSTERDOWN / LOADING retry
};

// A reply, copied out of hiredis' redisReply (the caller owns no C memory).
struct Reply {
  enum class Type { nil, string, status, integer, array, error };
  Type type = Type::nil;
  std::string str;  // string, status, error
  long long integer = 0;
  std::vector<Reply> elements;

  bool is_nil() const { return type == Type::nil; }
  bool is_error() const { return type == Type::error; }
  bool is_string() const { return type == Type::string; }
  bool is_array() const { return type == Type::array; }
  bool is_integer() const { return type == Type::integer; }
};

// An error reply as an Error: server-side overload or transient cluster states are
// unavailable, everything else (a wrong command, WRONGTYPE, a script error) internal.
Error reply_to_error(const Reply& reply);

using Command = std::vector<std::string>;

// CRC16-XMODEM (polynomial 0x1021, initial value 0), as in the Redis Cluster specification.
std::uint16_t crc16(std::string_view data);
// The cluster hash slot of a key (0..16383), honouring {hash tags}.
int key_slot(std::string_view key);
// The key that routes a command (argv[1]; the first key of EVAL/EVALSHA/FCALL), or nullopt for
// commands without keys (PING, INFO, CLUSTER, SCRIPT, ...), which go to any node.
std::optional<std::string_view> routing_key(const Command& argv);

inline constexpr int kSlots = 16384;

class RedisClient {
 public:
  // Connects nothing yet (connections open on first use), so a Redis that is down at start-up
  // does not stop the process; call ping() to check it. Throws std::invalid_argument for bad
  // options (no seeds, pool_size < 1).
  explicit RedisClient(RedisOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // One command. Error replies become errors (reply_to_error); transport failures are
  // unavailable.
  Result<Reply> command(const Command& argv);
  // N commands -> N replies in order. An error reply stays in its slot as a Reply of type
  // error; only a transport failure that outlived the retries fails the whole call.
  Result<std::vector<Reply>> pipeline(std::span<const Command> commands);

  // From now on every command's outcome is told to `breaker` (Breaker::track): a transport
  // failure counts toward opening it, a success closes it from half-open. Nothing is refused
  // (Redis failures degrade, docs/operations.md). Set once, before use; it must outlive this.
  void report_to(Breaker* breaker) { breaker_.store(breaker, std::memory_order_release); }

  // Registers a Lua script; returns its SHA1 (hex) for EVALSHA commands.
  std::string load_script(std::string source);

  // Single mode: PING. Cluster mode: loads the slot map, then pings every master.
  Result<void> ping();

  // Administration and tests: one command on one node, without routing or redirects.
  Result<Reply> command_at(const Endpoint& node, const Command& argv);
  // The masters (single mode: the server).
  std::vector<Endpoint> masters();
  // Cluster mode: the node the client believes owns `slot`.
  std::optional<Endpoint> slot_owner(int slot);
  // Cluster mode: reloads the slot map now.
  Result<void> refresh_slots();

  bool cluster() const { return options_.cluster; }

  struct Stats {
    std::uint64_t moved = 0;      // MOVED replies followed
    std::uint64_t ask = 0;        // ASK replies followed
    std::uint64_t retries = 0;    // TRYAGAIN / CLUSTERDOWN / LOADING / connection retries
    std::uint64_t refreshes = 0;  // slot map loads
    std::uint64_t connects = 0;   // connections opened
    std::uint64_t broken = 0;     // connections closed after an error
  };
  Stats stats() const;

 private:
  class NodePool;
  struct Target;

  std::shared_ptr<NodePool> pool_for(const Endpoint& ep);
  std::shared_ptr<NodePool> owner_of(int slot);
  std::shared_ptr<NodePool> any_node();
  // Refreshes the slot map unless one was loaded less than min_interval ago.
  Result<void> refresh_slots_if_stale(std::chrono::milliseconds min_interval);
  // pipeline() without its metrics (imd_redis_call_seconds, imd_redis_errors_total).
  Result<std::vector<Reply>> pipeline_untimed(std::span<const Command> commands);
  Result<void> load_slots_from(NodePool& pool);
  void note_moved(int slot, const Endpoint& owner);

  const RedisOptions options_;
  std::atomic<Breaker*> breaker_{nullptr};  // report_to()

  mutable std::shared_mutex map_mu_;
  std::map<Endpoint, std::shared_ptr<NodePool>> pools_;
  std::vector<std::shared_ptr<NodePool>> slot_owner_;  // kSlots entries (cluster mode)
  std::vector<Endpoint> masters_;

  std::mutex refresh_mu_;  // one slot-map load at a time
  std::chrono::steady_clock::time_point last_refresh_{};
  std::atomic<bool> map_stale_{true};

  std::mutex scripts_mu_;
  std::unordered_map<std::string, std::string> scripts_;  // sha1 -> source

  std::atomic<std::uint64_t> moved_{0}, ask_{0}, retries_{0}, refreshes_{0}, connects_{0},
      broken_{0};
};

}  // namespace imd::redis
