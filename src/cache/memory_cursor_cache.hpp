// In-process CursorCache adapter (standalone mode): the delivery cursors in a hash map,
// forward-only (see domain/ports/cursor_cache.hpp for the invariant). Bounded: when
// `capacity` cursors are cached, the map is cleared (a cleared cursor costs one cursor write).
// Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "domain/ports/cursor_cache.hpp"

namespace imd {

class MemoryCursorCache final : public CursorCache {
 public:
  explicit MemoryCursorCache(std::size_t capacity = 1 << 20) : capacity_(capacity) {}

  std::uint64_t get(Id user_id, const ConvKey& conv) override;
  std::optional<std::uint64_t> cached(Id user_id, const ConvKey& conv) override {
    return get(user_id, conv);
  }
  std::vector<std::uint64_t> get_many(Id user_id, std::span<const ConvKey> convs) override;
  void put(std::span<const DeliveryUpdate> stored) override;

 private:
  const std::size_t capacity_;
  std::mutex mu_;
  std::unordered_map<MemberKey, std::uint64_t, MemberKeyHash> cursors_;
};

}  // namespace imd
