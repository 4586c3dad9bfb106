// EtcdClient: a small client of etcd's v3 API over gRPC (the subset in proto/etcd/), enough for
// leases, compare-and-set claims and prefix watches. gRPC stays behind a pimpl: including this
// header costs no gRPC headers.
//
// Model: blocking calls plus background threads.
// - Unary calls (range, put, del, txn, lease_grant, lease_revoke) block the caller for at most
//   twice the call deadline (options.call_timeout: once to connect, once for the call) per
//   endpoint tried. Endpoints are tried in turn: an endpoint that cannot be connected to, or a
//   call that fails with UNAVAILABLE, moves on to the next endpoint (so a write may be applied
//   twice: every write the registry makes is safe to repeat); any other failure (including a
//   deadline) is returned, and the next call starts at the next endpoint. Failures are
//   Errc::unavailable; a request etcd refuses (e.g. an unknown lease) is Errc::invalid_argument, a
//   compare that failed is a normal TxnResult.
// - keep_alive() and watch_prefix() run one background thread each (two for a keep-alive:
//   sender and reader) until the returned handle is stopped or destroyed; they reconnect on
//   their own. Callbacks run on those threads: keep them short, and never destroy or stop the
//   handle from inside its own callback.
// Thread-safety: every member function may be called from any thread. The client must outlive
// the handles it returned.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace imd {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // "host:port", at least one
  std::chrono::milliseconds call_timeout{3000};
};

struct EtcdKeyValue {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::int64_t lease = 0;
};

struct EtcdRange {
  std::vector<EtcdKeyValue> kvs;
  std::int64_t revision = 0;  // the store revision the range was read at
};

// One comparison of a transaction: `target` of `key` compared with `number` (version, create,
// mod revision, lease) or `value`.
struct EtcdCompare {
  enum class Target { version, create_revision, mod_revision, value, lease };
  enum class Op { equal, greater, less, not_equal };
  std::string key;
  Target target = Target::version;
  Op op = Op::equal;
  std::int64_t number = 0;
  std::string value;
};

// One operation of a transaction branch.
struct EtcdOp {
  enum class Kind { get, put, del };
  Kind kind = Kind::get;
  std::string key;
  std::string value;       // put
  std::int64_t lease = 0;  // put
  static EtcdOp get(std::string key) { return {Kind::get, std::move(key), {}, 0}; }
  static EtcdOp put(std::string key, std::string value, std::int64_t lease = 0) {
    return {Kind::put, std::move(key), std::move(value), lease};
  }
  static EtcdOp del(std::string key) { return {Kind::del, std::move(key), {}, 0}; }
};

struct EtcdTxnResult {
  bool succeeded = false;
  std::int64_t revision = 0;
  std::vector<EtcdRange> gets;  // one per get op of the branch that ran, in order
};

struct EtcdEvent {
  enum class Type { put, del };
  Type type = Type::put;
  EtcdKeyValue kv;  // for del: the key and the deletion's mod_revision
};

struct EtcdLease {
  std::int64_t id = 0;
  std::chrono::seconds ttl{0};  // as granted by the server
};

// The end of the key range holding every key that starts with `prefix` ("\0" for all keys).
std::string etcd_prefix_end(const std::string& prefix);

// A running background activity (keep-alive or watch). stop() ends it and joins its threads;
// it is idempotent and also run by the destructor.
class EtcdTask {
 public:
  virtual ~EtcdTask() = default;
  virtual void stop() = 0;
};

class EtcdClient {
 public:
  // Throws std::invalid_argument when no endpoint is given (start-up only).
  explicit EtcdClient(EtcdOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  const EtcdOptions& options() const;

  Result<EtcdRange> get(const std::string& key);
  Result<EtcdRange> get_prefix(const std::string& prefix);
  // Returns the revision of the write.
  Result<std::int64_t> put(const std::string& key, const std::string& value,
                           std::int64_t lease = 0);
  // Returns the number of keys deleted.
  Result<std::int64_t> del(const std::string& key);
  Result<std::int64_t> del_prefix(const std::string& prefix);
  Result<EtcdTxnResult> txn(const std::vector<EtcdCompare>& compares,
                            const std::vector<EtcdOp>& success, const std::vector<EtcdOp>& failure);

  Result<EtcdLease> lease_grant(std::chrono::seconds ttl);
  // Revoking an unknown (already expired) lease is success.
  Result<void> lease_revoke(std::int64_t lease_id);

  // Keeps `lease` alive on a stream: a keep-alive every ttl/3, the stream reopened (on the next
  // endpoint) when it breaks. `on_lost` is called once, from the keep-alive thread, when the
  // server answers TTL <= 0 (the lease is gone) or when no keep-alive succeeded for a full TTL
  // counted from the send time of the last one that did (so the server may still hold the
  // lease for a moment, never the other way round); the task then ends by itself.
  std::unique_ptr<EtcdTask> keep_alive(EtcdLease lease, std::function<void()> on_lost);

  // Lists `prefix` and then watches it, from a background thread: `on_snapshot` gets every key
  // under the prefix (the whole state), `on_events` each later batch of changes, in revision
  // order. A broken stream is reopened from the last revision seen + 1, so no change is missed
  // or repeated; when that revision has been compacted away, the prefix is listed again and
  // `on_snapshot` called with the new state. Listing is retried (with back-off) until it
  // succeeds or the task is stopped.
  using SnapshotHandler = std::function<void(std::vector<EtcdKeyValue> kvs, std::int64_t revision)>;
  using EventsHandler = std::function<void(std::vector<EtcdEvent> events)>;
  std::unique_ptr<EtcdTask> watch_prefix(std::string prefix, SnapshotHandler on_snapshot,
                                         EventsHandler on_events);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace imd
