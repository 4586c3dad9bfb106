// EtcdRegistry: the Registry port on etcd (cluster mode, docs/architecture.md §4). Everything
// this process writes hangs off one lease that a keep-alive stream renews every TTL/3:
//
//   <prefix>ids/<id>          the worker id, taken with a compare-and-create
//   <prefix>nodes/<id>        the NodeInfo (node_codec.hpp), watched into memory by every node
//   <prefix>logic/<id>        present while this node takes part in partition ownership
//   <prefix>partitions/<p>    value <id>: the one owner of partition p
//
// Partitions are shared by rendezvous hashing (rendezvous.hpp) over the live `logic/`
// participants. A partition changes hands in this order: the old owner calls changed() without
// it, then deletes its key (compare value == its id); the new owner claims the key only once it
// is gone (compare create_revision == 0) and then calls changed() with it. A dead owner's keys
// vanish when its lease expires, and survivors claim them then.
//
// Threads: a keep-alive pair and one watch thread per prefix (EtcdClient), plus one worker that
// makes every ownership decision and is the only thread that calls `changed` and `on_lost`.
// All public functions are thread-safe. start() blocks (several etcd round trips); node() and
// nodes() answer from memory. Never call stop() or the destructor from inside `changed` or
// `on_lost` (they join the thread that runs them). gRPC stays behind the pimpl.
// Errors: the constructor throws std::invalid_argument on bad options (start-up); start()
// returns unavailable when etcd cannot be reached or every id is taken; later failures are
// logged and retried (every rebalance interval) until the lease is lost.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "domain/ports/registry.hpp"

namespace imd {

struct EtcdRegistryOptions {
  std::vector<std::string> endpoints;  // "host:port" of etcd's client URLs, at least one
  std::string prefix = "/imd/";        // must end with '/'
  std::chrono::seconds lease_ttl{10};  // >= 2 (etcd's minimum lease TTL)
  std::chrono::milliseconds call_timeout{3000};
  // How often partition claims are retried without a watch event; 0: lease_ttl / 3.
  std::chrono::milliseconds rebalance_interval{0};
};

class EtcdRegistry final : public Registry {
 public:
  explicit EtcdRegistry(EtcdRegistryOptions options);
  ~EtcdRegistry() override;  // stop()
  EtcdRegistry(const EtcdRegistry&) = delete;
  EtcdRegistry& operator=(const EtcdRegistry&) = delete;

  // Once per object; a second call is invalid_argument.
  Result<std::uint32_t> start(NodeInfo self, std::uint32_t max_id, LeaseLost on_lost) override;
  // Rewrites this node's entry under the same id and lease. unavailable when not running (not
  // started, stopped, lease lost) or etcd cannot be reached.
  Result<void> announce(NodeInfo self) override;
  std::optional<NodeInfo> node(std::uint32_t id) override;
  std::vector<NodeInfo> nodes() override;
  // Once, after a successful start (other calls are ignored with a warning). The first
  // changed() comes once the participants and the current owners have been read.
  void own_partitions(std::uint32_t count, PartitionsChanged changed) override;
  // changed({}) (when partitions were taken part in and the lease was not lost), then the
  // lease is revoked and every thread joined. Idempotent.
  void stop() override;

  // Test only: simulates a crash. Ends every thread (the keep-alive included) without calling
  // changed() or revoking the lease, so the entries vanish only when the lease expires.
  void abandon_for_test();
  // For readiness: etcd answers a read of this registry's prefix (unavailable otherwise,
  // bounded by the call timeout). Thread-safe.
  Result<void> ping();
  // The lease id (0 before start), for tests that inspect etcd.
  std::int64_t lease_id() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace imd
