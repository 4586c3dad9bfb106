// MemoryCacheAside<V>: the in-process cache-aside machinery shared by the memory caches of the
// ports (MemoryMemberCache, MemoryUserCache), standalone mode.
//
// A miss loads the value through `load` (the Store); concurrent misses of one key wait for the
// one load in flight (single flight: no stampede on a hot key). invalidate() bumps the key's
// generation, so a load that started before a change is not cached after it. Errors are
// returned, not cached. Bounded: at most `capacity` keys; beyond that, an arbitrary entry is
// evicted. No TTL: every change goes through invalidate() in this same process. Thread-safe;
// the loader is called with no lock held. Instantiated (in the .cpp) for the caches above.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/error.hpp"
#include "domain/model.hpp"

namespace imd {

template <class V>
class MemoryCacheAside {
 public:
  using Value = std::shared_ptr<const V>;
  using Loader = std::function<Result<V>(Id)>;

  MemoryCacheAside(Loader load, std::size_t capacity);
  Result<Value> get(Id id);
  // The cached value, or null: never loads, never waits for a load.
  Value peek(Id id);
  void invalidate(Id id);
  std::uint64_t hits() const;
  std::uint64_t misses() const;

 private:
  struct Entry {
    Value value;  // null while not loaded
    std::uint64_t generation = 0;
    bool loading = false;
  };

  Loader load_;
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable loaded_;
  std::unordered_map<Id, Entry> entries_;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

}  // namespace imd
