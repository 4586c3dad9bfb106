// Queue port: the send pipeline between gateways and the consumers that store messages
// (in-process in standalone mode, NATS JetStream in a cluster).
//
// Contract:
// - publish is thread-safe and never blocks; when the queue is full it fails at once with
//   too_many_requests (back-pressure to the sender). A publish that was accepted but that the
//   broker later fails to confirm is reported to the Failed handler, never dropped silently.
// - The consumer is called from the queue's own thread(s) with batches; one conversation's
//   messages reach it in publish order (a queue may split conversations over partitions, each
//   consumed by one thread of one process at a time).
// - The consumer's Outcome decides what happens to the batch: `done` acknowledges it; `retry`
//   (an engine failure, nothing may be assumed stored) asks for redelivery. A queue that
//   redelivers() hands the batch's messages again later, with NewMessage::attempt counting
//   up; after its attempt limit it moves a message aside (dead letter), counts it and reports
//   it to the Failed handler. A queue that does not redeliver treats `retry` as `done`: the
//   consumer must then have told the senders itself.
#pragma once

#include <functional>
#include <vector>

#include "common/error.hpp"
#include "domain/model.hpp"

namespace imd {

class Queue {
 public:
  enum class Outcome { done, retry };
  using Consumer = std::function<Outcome(std::vector<NewMessage>& batch)>;
  // A message the queue gave up on (unconfirmed publish, dead letter). Called from a queue
  // thread; must not block.
  using Failed = std::function<void(const NewMessage& msg, const Error& why)>;

  virtual ~Queue() = default;
  virtual Result<void> publish(NewMessage msg) = 0;
  // Set once, before the first publish or start.
  virtual void on_failed(Failed handler) = 0;
  // True when a `retry` outcome leads to a redelivery.
  virtual bool redelivers() const = 0;
  // Starts delivering batches to `consumer`; returns at once.
  virtual void start(Consumer consumer) = 0;
  // Stops after the consumer has finished the batch in hand (LocalQueue: every batch already
  // published, so standalone shutdown stores everything it accepted).
  virtual void stop() = 0;
};

}  // namespace imd
