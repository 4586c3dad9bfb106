// In-process Queue adapter (standalone mode): a bounded FIFO and one consumer thread.
//
// publish() never blocks: a full queue answers too_many_requests (back-pressure to the
// sender, who retries with the same cid). The consumer takes everything waiting, up to
// `batch_max`, per call: under load batches grow (group commit), when idle a message is
// stored alone at once. One thread consumes, so the order of publish is the order of storing.
// A `retry` outcome is treated as `done` (see Queue): the consumer has told the senders.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

#include "domain/ports/queue.hpp"

namespace imd {

class LocalQueue final : public Queue {
 public:
  // `linger`: once a message is waiting, the consumer waits this long for more (or for a full
  // batch) before taking them; 0 takes at once.
  LocalQueue(std::size_t capacity, std::size_t batch_max,
             std::chrono::microseconds linger = std::chrono::microseconds(0));
  ~LocalQueue() override;

  Result<void> publish(NewMessage msg) override;
  // Nothing fails after an accepted publish here: the handler is never called.
  void on_failed(Failed) override {}
  // One process holds the queue: there is nobody to redeliver to after a failure.
  bool redelivers() const override { return false; }
  void start(Consumer consumer) override;
  // Stores what is queued, then returns. With a deadline set by drain_until(), what is still
  // queued when it passes is dropped (logged): those sends were never ACKed, so their senders
  // resend them with the same cid after reconnecting; a slow or failing store cannot hold a
  // shutdown for longer than the operator allowed.
  void stop() override;
  void drain_until(std::chrono::steady_clock::time_point deadline);

  std::size_t depth() const;
  // created_at of the oldest waiting message (0: none waiting), for imd_queue_oldest_age_seconds.
  Millis oldest_created_at() const;

 private:
  void run();

  const std::size_t capacity_;
  const std::size_t batch_max_;
  const std::chrono::microseconds linger_;
  Consumer consumer_;
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::condition_variable full_;
  std::deque<NewMessage> items_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point drain_deadline_ =
      std::chrono::steady_clock::time_point::max();
  std::thread thread_;
};

}  // namespace imd
