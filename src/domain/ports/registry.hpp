// Registry port: which imd processes are alive, where to reach them, and leases that die with
// their holder (docs/architecture.md §4). Adapters: StaticRegistry (standalone: one process
// owns everything) and EtcdRegistry (cluster: etcd leases, keep-alive and watches).
//
// Contract: thread-safe. Blocking calls (start) belong on start-up or a blocking pool;
// node()/nodes() answer from memory (a watch keeps them current) and never block.
// Everything this process registered is tied to one lease: if the process dies, or cannot
// reach the registry for longer than the lease TTL, its entries vanish by themselves. When the
// lease is lost, the registry calls on_lost once: the process must stop serving (another
// process may already hold its worker id and its partitions).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace imd {

struct NodeInfo {
  std::uint32_t id = 0;            // the leased worker id: snowflake worker id and ConnRef::node
  std::vector<std::string> roles;  // "gateway", "api", "logic"
  std::string push_address;        // host:port of the gateway's gRPC Push service; empty if none
  // The process's version (rolling upgrades). Written beside the entry (EtcdRegistry: the key
  // <prefix>versions/<id>, same lease), not in it: the entry's readers refuse unknown fields,
  // and an older node must keep reading a newer one's entry (docs/operations.md, "Versions").
  // node() and nodes() read it back; empty for a node that registered none (a build from
  // before versions), which RemotePusher treats as older than channel removals.
  std::string version;
  bool operator==(const NodeInfo&) const = default;
};

class Registry {
 public:
  using PartitionsChanged = std::function<void(std::vector<std::uint32_t> owned)>;
  using LeaseLost = std::function<void()>;

  virtual ~Registry() = default;

  // Takes a worker id in [0, max_id] that no other live process holds (StaticRegistry: the
  // configured one), announces `self` (with that id) under the lease and starts watching the
  // other nodes. Returns the id. unavailable when the registry cannot be reached in time or
  // every id is taken.
  virtual Result<std::uint32_t> start(NodeInfo self, std::uint32_t max_id, LeaseLost on_lost) = 0;

  // Replaces this node's entry (same id, same lease), e.g. once its Push service is bound: the
  // composition root needs the id to build the gateway before it knows that address.
  virtual Result<void> announce(NodeInfo self) = 0;

  // The live node with this id, if any (from the watch cache).
  virtual std::optional<NodeInfo> node(std::uint32_t id) = 0;
  virtual std::vector<NodeInfo> nodes() = 0;

  // Partition ownership for queue consumers (logic role): partitions [0, count) are shared out
  // among the live nodes that take part (each calls this), each partition owned by at most one
  // node at a time under its lease. `changed` is called (from a registry thread) with the full
  // set this node owns whenever it changes, including the first time; a partition whose owner
  // dies is taken over by a survivor within about one lease TTL.
  virtual void own_partitions(std::uint32_t count, PartitionsChanged changed) = 0;

  // Releases this node's partitions and revokes its lease (entries vanish at once).
  virtual void stop() = 0;
};

}  // namespace imd
