// NATS JetStream adapter of the Queue port (cluster mode).
//
// Messages go to the stream `stream` on subjects `<subject_prefix>.<partition>`; the partition
// is a stable hash of the conversation (partition_of), so one conversation stays in one
// partition, in publish order. Each partition owned by this process (assign) is read by one
// thread through a durable pull consumer `<stream>_p<N>` (explicit ACK, ack_wait, MaxAckPending
// = fetch_batch_max); a batch is ACKed only after the consumer returned `done`. The stream is a
// work queue (an ACKed message is removed) bounded by max_bytes. Changing `partitions` of a
// stream in use moves conversations between partitions: drain it first.
//
// Ordering: on `retry` the batch is not NAKed (the next fetch would overtake it): the same
// messages are handed again in-process with exponential backoff (retry_backoff_min..max),
// `attempt` counting up from JetStream's delivery count, and kept alive meanwhile (InProgress).
// A message whose attempt reaches max_attempts (or that JetStream delivered more than
// max_attempts times, e.g. because it crashed its consumers) is published to the dead-letter
// stream `dlq_stream` (subject `<dlq_subject_prefix>.<partition>`, headers Imd-Dlq-Reason,
// -Partition, -Stream, -Seq, -Attempts), terminated, counted and reported to Failed. A record
// that does not decode is dead-lettered the same way (counted in decode_errors; Failed is not
// called: there is no sender to tell). When a partition is taken over while the consumer still
// has messages ACK-pending (a previous owner died or let go with a batch in hand), the new owner
// waits until they are ACKed or up to ack_wait, so JetStream redelivers them before newer ones.
//
// Publishing: async, with header Nats-Msg-Id = "<from>:<cid>" (a retried send within
// duplicate_window is stored once). At most max_pending_publishes may wait for the broker's
// confirmation; beyond that publish() fails at once with too_many_requests. An accepted publish
// that the broker refuses (e.g. the stream is full) or does not confirm within
// publish_confirm_timeout is reported to Failed (unavailable); it may still have been stored
// (a late confirmation): the sender's retry with the same cid is de-duplicated.
//
// Thread-safety: publish, assign and stats may be called from any thread, concurrently (not
// assign from inside the consumer: it waits for the partitions it takes away). on_failed and
// start are called once, before the first publish / assign takes effect. The consumer runs on
// the partition threads: concurrently for different partitions, never for the same partition.
// A call may outlast ack_wait: only the owner fetches, and a copy JetStream later hands this
// owner again is ACKed, not consumed twice (counted in duplicates); should the partition move
// to another process during the call, that one is handed the messages first (the store's
// unique (from, cid) absorbs the duplicate). Failed runs on a partition thread or on the
// client library's thread and must not block.
//
// Errors: the constructor throws std::runtime_error when NATS is unreachable or the streams
// cannot be created (start-up). Afterwards nothing throws: publish returns an Error,
// everything else is logged, counted and retried with bounded waits.
//
// Ownership: the queue owns its connection and threads. stop() (also run by the destructor)
// refuses further publishes (unavailable), stops every partition after the batch in hand
// (fetched but unconsumed messages stay un-ACKed: JetStream redelivers them to the next owner
// after ack_wait), waits up to stop_timeout for outstanding publish confirmations (reporting
// the unconfirmed ones to Failed), then closes the connection.
//
// assign() requires the previous owner of a partition to have let go first (the etcd lease
// guarantees it); it returns once the partitions taken away have stopped.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "domain/ports/queue.hpp"

namespace imd {

struct NatsQueueOptions {
  std::string url = "nats://127.0.0.1:4222";  // comma-separated list for a cluster
  std::string stream = "IMD_MSG";
  std::string subject_prefix = "im.msg";
  std::uint32_t partitions = 16;
  bool file_storage = true;
  int replicas = 1;
  std::chrono::milliseconds duplicate_window{std::chrono::minutes(2)};
  // Stream bound; when full a publish is refused (discard new) and reported to Failed.
  std::int64_t max_bytes = std::int64_t{1} << 30;
  std::chrono::milliseconds ack_wait{std::chrono::seconds(10)};
  std::uint32_t max_attempts = 5;
  std::uint32_t fetch_batch_max = 512;
  std::chrono::milliseconds fetch_wait{100};
  std::chrono::milliseconds retry_backoff_min{100};
  std::chrono::milliseconds retry_backoff_max{2000};
  std::size_t max_pending_publishes = 20000;
  std::chrono::milliseconds publish_confirm_timeout{std::chrono::seconds(5)};
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(2)};
  // JetStream API requests (stream/consumer management, synchronous ACKs, dead letters).
  std::chrono::milliseconds api_timeout{std::chrono::seconds(5)};
  std::chrono::milliseconds stop_timeout{std::chrono::seconds(5)};
  std::string dlq_stream = "IMD_DLQ";
  std::string dlq_subject_prefix = "im.dlq";
  std::chrono::milliseconds dlq_max_age{std::chrono::hours(24 * 7)};
};

// A snapshot of the counters (messages, not batches).
struct NatsQueueStats {
  std::uint64_t published = 0;         // accepted by publish()
  std::uint64_t publish_rejected = 0;  // refused by publish() at once (full, stopped, error)
  std::uint64_t confirmed = 0;         // stored by JetStream (duplicates included)
  std::uint64_t publish_failed = 0;    // accepted but not confirmed: reported to Failed
  std::uint64_t consumed = 0;          // handed to the consumer (each attempt counts)
  std::uint64_t acked = 0;
  std::uint64_t retried = 0;  // handed again after a `retry`
  std::uint64_t dead_lettered = 0;
  std::uint64_t decode_errors = 0;
  std::uint64_t duplicates = 0;  // copies of already consumed messages, ACKed, not handed
};

class NatsQueue final : public Queue {
 public:
  // Connects and creates or updates both streams; throws std::runtime_error on failure.
  explicit NatsQueue(NatsQueueOptions options);
  ~NatsQueue() override;
  NatsQueue(const NatsQueue&) = delete;
  NatsQueue& operator=(const NatsQueue&) = delete;

  Result<void> publish(NewMessage msg) override;
  void on_failed(Failed handler) override;
  bool redelivers() const override { return true; }
  // Records the consumer; partitions are consumed once assigned.
  void start(Consumer consumer) override;
  void stop() override;

  // The partitions this process consumes from now on (replaces the previous set; numbers
  // >= partitions are ignored with a warning). Before start() it is remembered.
  void assign(std::vector<std::uint32_t> partitions);

  NatsQueueStats stats() const;
  // For readiness: the connection is connected and JetStream answers for the stream within
  // `timeout` (unavailable otherwise). Thread-safe.
  Result<void> ping(std::chrono::milliseconds timeout);
  std::uint32_t partition_of(const ConvKey& conv) const;
  const NatsQueueOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imd
