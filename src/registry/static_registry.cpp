#include "registry/static_registry.hpp"

#include <string>

namespace imd {

Result<std::uint32_t> StaticRegistry::start(NodeInfo self, std::uint32_t max_id, LeaseLost) {
  if (worker_id_ > max_id) {
    return make_error(Errc::invalid_argument, "worker id " + std::to_string(worker_id_) +
                                                  " is above the maximum " +
                                                  std::to_string(max_id));
  }
  std::lock_guard lock(mu_);
  self.id = worker_id_;
  self_ = std::move(self);
  return worker_id_;
}

Result<void> StaticRegistry::announce(NodeInfo self) {
  std::lock_guard lock(mu_);
  if (!self_) return make_error(Errc::invalid_argument, "announce() before start()");
  self.id = worker_id_;
  self_ = std::move(self);
  return {};
}

std::optional<NodeInfo> StaticRegistry::node(std::uint32_t id) {
  std::lock_guard lock(mu_);
  if (self_ && self_->id == id) return self_;
  return std::nullopt;
}

std::vector<NodeInfo> StaticRegistry::nodes() {
  std::lock_guard lock(mu_);
  if (self_) return {*self_};
  return {};
}

void StaticRegistry::own_partitions(std::uint32_t count, PartitionsChanged changed) {
  {
    std::lock_guard lock(mu_);
    if (!self_ || changed_ || !changed) return;
    changed_ = changed;
  }
  std::vector<std::uint32_t> all(count);
  for (std::uint32_t p = 0; p < count; ++p) all[p] = p;
  changed(std::move(all));
}

void StaticRegistry::stop() {
  PartitionsChanged changed;
  {
    std::lock_guard lock(mu_);
    changed = std::move(changed_);
    changed_ = nullptr;
    self_.reset();
  }
  if (changed) changed({});
}

}  // namespace imd
