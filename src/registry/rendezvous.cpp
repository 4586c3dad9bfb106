#include "registry/rendezvous.hpp"

namespace imd {

std::uint64_t rendezvous_weight(std::uint32_t node, std::uint32_t partition) {
  // splitmix64's finalizer: a bijection on 64 bits, so (node, partition) pairs never collide.
  std::uint64_t x = (static_cast<std::uint64_t>(node) << 32) | partition;
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint32_t rendezvous_owner(std::uint32_t partition,
                               const std::vector<std::uint32_t>& participants) {
  std::uint32_t best = participants.empty() ? 0 : participants.front();
  std::uint64_t best_weight = 0;
  bool first = true;
  for (std::uint32_t node : participants) {
    const std::uint64_t w = rendezvous_weight(node, partition);
    if (first || w > best_weight) {
      best = node;
      best_weight = w;
      first = false;
    }
  }
  return best;
}

std::vector<std::uint32_t> rendezvous_share(std::uint32_t self, std::uint32_t count,
                                            const std::vector<std::uint32_t>& participants) {
  std::vector<std::uint32_t> all = participants;
  all.push_back(self);
  std::vector<std::uint32_t> mine;
  for (std::uint32_t p = 0; p < count; ++p) {
    if (rendezvous_owner(p, all) == self) mine.push_back(p);
  }
  return mine;
}

}  // namespace imd
