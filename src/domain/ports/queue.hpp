// Queue port: the send pipeline between gateways and the consumer that stores messages.
//
// Contract: publish is thread-safe and never blocks; when the queue is full it fails with
// too_many_requests (back-pressure to the sender). The consumer is called from the queue's
// own thread(s) with batches; one conversation's messages reach it in publish order.
#pragma once

#include <functional>
#include <vector>

#include "common/error.hpp"
#include "domain/model.hpp"

namespace imd {

class Queue {
 public:
  using Consumer = std::function<void(std::vector<NewMessage>& batch)>;
  virtual ~Queue() = default;
  virtual Result<void> publish(NewMessage msg) = 0;
  // Starts delivering batches to `consumer`; returns at once.
  virtual void start(Consumer consumer) = 0;
  // Stops after the consumer has finished the batches already published.
  virtual void stop() = 0;
};

}  // namespace imd
