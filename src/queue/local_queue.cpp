#include "queue/local_queue.hpp"

#include "common/log.hpp"
#include "common/thread_name.hpp"

namespace imd {

LocalQueue::LocalQueue(std::size_t capacity, std::size_t batch_max,
                       std::chrono::microseconds linger)
    : capacity_(capacity), batch_max_(batch_max), linger_(linger) {}

LocalQueue::~LocalQueue() {
  stop();
}

Result<void> LocalQueue::publish(NewMessage msg) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return make_error(Errc::unavailable, "server is shutting down");
    if (items_.size() >= capacity_) {
      return make_error(Errc::too_many_requests, "send queue is full, retry later");
    }
    items_.push_back(std::move(msg));
    if (items_.size() == batch_max_) full_.notify_one();
  }
  ready_.notify_one();
  return {};
}

void LocalQueue::start(Consumer consumer) {
  consumer_ = std::move(consumer);
  thread_ = std::thread([this] {
    set_thread_name("imd-queue");
    run();
  });
}

void LocalQueue::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  ready_.notify_all();
  full_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LocalQueue::drain_until(std::chrono::steady_clock::time_point deadline) {
  std::lock_guard lock(mu_);
  drain_deadline_ = deadline;
}

std::size_t LocalQueue::depth() const {
  std::lock_guard lock(mu_);
  return items_.size();
}

void LocalQueue::run() {
  std::vector<NewMessage> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      ready_.wait(lock, [&] { return stopping_ || !items_.empty(); });
      if (items_.empty()) return;  // stopping and drained
      if (stopping_ && std::chrono::steady_clock::now() >= drain_deadline_) {
        LOG_WARN("shutdown: " << items_.size()
                              << " accepted sends were not stored in time; they were never"
                                 " ACKed and their senders resend them");
        items_.clear();
        return;
      }
      if (linger_.count() > 0 && items_.size() < batch_max_) {
        // Let the batch fill for a moment: one transaction and, above all, one write per
        // connection for everything that arrives meanwhile (a channel's 500 members get the
        // batch's messages in one frame each instead of one write per message).
        auto until = std::chrono::steady_clock::now() + linger_;
        full_.wait_until(lock, until, [&] { return stopping_ || items_.size() >= batch_max_; });
      }
      std::size_t n = std::min(items_.size(), batch_max_);
      batch.clear();
      batch.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(items_.front()));
        items_.pop_front();
      }
    }
    (void)consumer_(batch);  // retry == done here: no redelivery (see redelivers())
  }
}

Millis LocalQueue::oldest_created_at() const {
  std::lock_guard lock(mu_);
  return items_.empty() ? 0 : items_.front().msg.created_at;
}

}  // namespace imd
