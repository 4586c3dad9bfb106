// StaticRegistry: the Registry port for the standalone mode, where one process is the whole
// system. start() hands back the configured worker id, the process is the only node, and
// own_partitions() gives it every partition at once. Nothing can be lost, so on_lost is never
// called. Thread-safe; no threads of its own (changed() runs on the caller's thread, inside
// own_partitions() and stop()).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "domain/ports/registry.hpp"

namespace imd {

class StaticRegistry final : public Registry {
 public:
  explicit StaticRegistry(std::uint32_t worker_id) : worker_id_(worker_id) {}

  // invalid_argument when the configured id exceeds max_id; the node's id becomes worker_id.
  Result<std::uint32_t> start(NodeInfo self, std::uint32_t max_id, LeaseLost on_lost) override;
  // Replaces self (keeping the configured id); invalid_argument before start.
  Result<void> announce(NodeInfo self) override;
  std::optional<NodeInfo> node(std::uint32_t id) override;
  std::vector<NodeInfo> nodes() override;
  // Calls changed({0..count-1}) once, before returning (only after start; later calls after
  // the first are ignored).
  void own_partitions(std::uint32_t count, PartitionsChanged changed) override;
  // Calls changed({}) when partitions were handed out; forgets self.
  void stop() override;

 private:
  const std::uint32_t worker_id_;
  std::mutex mu_;
  std::optional<NodeInfo> self_;  // guarded by mu_
  PartitionsChanged changed_;     // guarded by mu_
};

}  // namespace imd
