// A thread pool that holds at most `max_held` jobs (running and waiting). try_enter() takes a
// place or says the pool is full, so the caller answers "busy" at once instead of queueing
// without bound. Used for password hashing (Argon2id): a login flood fills this pool, not the
// blocking pool every other request needs. Thread-safe.
#pragma once

#include <atomic>
#include <cstddef>

#include <boost/asio/thread_pool.hpp>

namespace imd {

class BoundedPool {
 public:
  BoundedPool(std::size_t threads, std::size_t max_held) : pool_(threads), max_held_(max_held) {}
  ~BoundedPool() { pool_.join(); }
  BoundedPool(const BoundedPool&) = delete;
  BoundedPool& operator=(const BoundedPool&) = delete;

  // A place for one job, released by the Place's destructor; false when the pool is full.
  class Place {
   public:
    explicit Place(BoundedPool& p) : p_(&p) {
      if (p.held_.fetch_add(1, std::memory_order_acq_rel) >= p.max_held_) {
        p.held_.fetch_sub(1, std::memory_order_acq_rel);
        p_ = nullptr;
      }
    }
    ~Place() {
      if (p_) p_->held_.fetch_sub(1, std::memory_order_acq_rel);
    }
    Place(const Place&) = delete;
    Place& operator=(const Place&) = delete;
    explicit operator bool() const { return p_ != nullptr; }

   private:
    BoundedPool* p_;
  };

  boost::asio::thread_pool& pool() { return pool_; }
  std::size_t held() const { return held_.load(std::memory_order_relaxed); }
  void join() { pool_.join(); }

 private:
  boost::asio::thread_pool pool_;
  const std::size_t max_held_;
  std::atomic<std::size_t> held_{0};
};

}  // namespace imd
