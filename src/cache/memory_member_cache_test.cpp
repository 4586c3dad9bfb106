#include "cache/memory_member_cache.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace imd {
namespace {

// A loader whose answers and pace the test controls.
struct FakeMembers {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Id> members{3, 1, 2};
  std::atomic<int> loads{0};
  bool hold = false;  // loads wait while set
  bool fail = false;

  Result<std::vector<Id>> load(Id) {
    ++loads;
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return !hold; });
    if (fail) return make_error(Errc::unavailable, "store down");
    return members;
  }
  void release() {
    {
      std::lock_guard lock(mu);
      hold = false;
    }
    cv.notify_all();
  }
};

TEST(MemoryMemberCache, LoadsOnceSortedThenHits) {
  FakeMembers f;
  MemoryMemberCache cache([&](Id c) { return f.load(c); });
  auto a = cache.members(7);
  ASSERT_TRUE(a);
  EXPECT_EQ(**a, (std::vector<Id>{1, 2, 3}));
  auto b = cache.members(7);
  ASSERT_TRUE(b);
  EXPECT_EQ(f.loads.load(), 1);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 1u);
}

TEST(MemoryMemberCache, InvalidateForcesAReload) {
  FakeMembers f;
  MemoryMemberCache cache([&](Id c) { return f.load(c); });
  ASSERT_TRUE(cache.members(7));
  f.members = {1, 2, 3, 4};
  cache.invalidate(7);
  EXPECT_EQ((*cache.members(7))->size(), 4u);
  EXPECT_EQ(f.loads.load(), 2);
}

TEST(MemoryMemberCache, ConcurrentMissesShareOneLoad) {
  FakeMembers f;
  f.hold = true;
  MemoryMemberCache cache([&](Id c) { return f.load(c); });
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    ts.emplace_back([&] {
      if (auto r = cache.members(7); r && (*r)->size() == 3) ++ok;
    });
  }
  while (f.loads.load() == 0) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the others queue up
  f.release();
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(f.loads.load(), 1);  // single flight: no stampede on the store
}

TEST(MemoryMemberCache, AChangeDuringALoadIsNotCachedStale) {
  FakeMembers f;
  f.hold = true;
  MemoryMemberCache cache([&](Id c) { return f.load(c); });
  std::thread loader([&] { (void)cache.members(7); });  // reads {1,2,3}, held
  while (f.loads.load() == 0) std::this_thread::yield();
  cache.invalidate(7);  // a member joins while that load is in flight
  f.members = {1, 2, 3, 4};
  f.release();
  loader.join();
  auto after = cache.members(7);
  ASSERT_TRUE(after);
  EXPECT_EQ((*after)->size(), 4u);  // the stale list was not kept
  EXPECT_EQ(f.loads.load(), 2);
}

TEST(MemoryMemberCache, FailuresAreReturnedAndNotCached) {
  FakeMembers f;
  f.fail = true;
  MemoryMemberCache cache([&](Id c) { return f.load(c); });
  auto r = cache.members(7);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unavailable);
  f.fail = false;
  EXPECT_TRUE(cache.members(7));
  EXPECT_EQ(f.loads.load(), 2);
}

TEST(MemoryMemberCache, CapacityBoundsTheEntries) {
  FakeMembers f;
  MemoryMemberCache cache([&](Id c) { return f.load(c); }, 2);
  for (Id c = 1; c <= 5; ++c) ASSERT_TRUE(cache.members(c));
  ASSERT_TRUE(cache.members(5));
  EXPECT_EQ(f.loads.load(), 5);  // 5 was still cached; evictions made room for it
}

}  // namespace
}  // namespace imd
