// The gateway side of gRPC Push: a server for imd.rpc.Gateway/Push that decodes each batch
// and hands it, as one push() call, to the Pusher given in the constructor (on a gateway:
// the Hub, which never blocks). Deliveries are applied in batch order.
//
// Validation (see README.md): an invalid delivery (no event, unknown enum, no targets, a
// field beyond the limits) is skipped and counted; the call fails with INVALID_ARGUMENT only
// when the batch has deliveries and none of them is valid. A request that does not parse or
// exceeds max_receive_bytes is refused by gRPC itself; the server stays up.
//
// Bounded: requests up to max_receive_bytes; handler threads capped through a gRPC
// ResourceQuota (max_threads), calls beyond it fail with RESOURCE_EXHAUSTED (the sender
// retries). Plaintext: cluster-internal network only.
//
// A call whose sender already gave up (deadline passed) is not applied: the sender retries it,
// and a late copy could land after the next batch.
//
// Lifecycle: start() once (throws std::runtime_error if the address cannot be bound; no
// SO_REUSEPORT, so a port in use is an error), then stop() (also from the destructor) waits
// for running handlers up to `stop_deadline`, then cancels what is left. The Pusher must
// outlive the server. start/stop are not meant to be called concurrently with each other;
// stats() is thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "domain/ports/pusher.hpp"

namespace imd::rpc {

struct PushServerOptions {
  std::string address = "127.0.0.1:0";  // host:port; port 0 picks a free one
  std::size_t max_receive_bytes = 4 * 1024 * 1024;
  int max_threads = 4;  // gRPC sync-server threads, pollers included (ResourceQuota; min 2)
  std::size_t max_body_bytes = 64 * 1024;  // per message body; >= limits.max_message_bytes
  std::size_t max_text_bytes = 4 * 1024;   // type, cid, error message
  std::chrono::milliseconds stop_deadline{2000};
};

struct PushServerStats {
  std::uint64_t calls = 0;
  std::uint64_t deliveries_accepted = 0;
  std::uint64_t deliveries_rejected = 0;
  std::uint64_t calls_rejected = 0;  // INVALID_ARGUMENT: nothing valid in a non-empty batch
};

class PushServer {
 public:
  // `node`: this gateway's node id (targets become ConnRef{node, conn}).
  PushServer(std::uint32_t node, Pusher& local, PushServerOptions options = {});
  ~PushServer();
  PushServer(const PushServer&) = delete;
  PushServer& operator=(const PushServer&) = delete;

  // Binds and starts serving; returns the bound "host:port" (the real port for port 0).
  std::string start();
  void stop();
  PushServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imd::rpc
