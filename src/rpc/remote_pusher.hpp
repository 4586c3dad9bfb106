// The Pusher of logic and api processes (and of gateways, for connections held by other
// gateways): events for connections of this node go to `local` directly; the rest go to the
// gateway that holds them, one batched imd.rpc.Gateway/Push call per gateway at a time.
//
// push() never blocks: it splits the targets by node and appends one entry per event and
// node to that node's bounded outbox. Each node has at most one call in flight; when it ends,
// everything queued meanwhile (up to max_call_events / max_call_bytes) goes out as the next
// call. So the events of one caller reach a connection in call order, as the Pusher port
// requires. The senders are gRPC's callback API, not threads of ours: an idle or dead node
// costs nothing but its (small) entry, a stalled one an outstanding call, and there is no
// thread per node to create and reap as gateways come and go.
//
// Delivery policy (at most `max_attempts` tries, then the client resyncs on reconnect):
//  - UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED: the same batch is retried after an
//    exponential, jittered backoff, up to max_attempts calls in all; then it is dropped and
//    counted (events_dropped_failed). Later events wait behind it, never overtake it. A call
//    that timed out may still have been applied by the gateway (the server skips calls whose
//    deadline has passed, but a handler already past that check finishes): a retry can then
//    deliver twice, and in that narrow window a late copy can land after the next batch.
//    Message frames carry conv+seq and connections drop duplicates; ACK and read events are
//    idempotent.
//  - any other error (INVALID_ARGUMENT, ...): dropped and counted at once, no retry.
//  - the resolver says nullopt (the node's lease is gone: a stale route): that batch and the
//    node's whole outbox are dropped and counted (events_dropped_unknown_node), no call.
//  - outbox full (events or bytes): the newest event is dropped and counted
//    (events_dropped_full), with a rate-limited warning.
//  - an event a gateway of an older version would misread (push_codec.hpp
//    misread_by_unversioned_gateways: a removal from one channel) is not sent to a gateway that
//    registered no version; dropped and counted (events_dropped_old_gateway), so that the
//    mixed-version cluster of a rolling upgrade does not tell a client it left a whole space.
//    A gateway whose version the registry has not read yet counts as older: the event is
//    withheld (the client learns at its next read), never misread.
// "Events" count one event per node: an event for 3 connections of one gateway is 1.
// Node entries are kept per node id once used (an outbox and a channel, the channel released
// when the resolver says the node is gone).
//
// User-addressed pushes (Push::users: the caller could not read the routes) go to `local` and
// to every node `user_push_nodes` names, one Delivery per event and node in that node's
// outbox, so the usual batching holds: one call per gateway per batch, not one per user. It
// names the live gateways that declared they resolve users (docs/operations.md, "Versions and
// rolling upgrades"); older gateways get nothing, their users get the message at their next
// sync. Each such event counts once in fallback_broadcasts.
//
// push() of an idle node starts its call on the calling thread: resolver lookup, channel
// creation on first use or a new address, an asynchronous call start; no network wait.
//
// Resolver: called on the sending path (from push() for an idle node, else from gRPC
// threads) before every call attempt, so it must be thread-safe and cheap (a lookup in the
// registry's watched map, no I/O). A changed address gets a new channel; channels are kept
// per node and reused.
//
// stop() (also from the destructor): further remote pushes are dropped (counted as failed),
// queued events get until `stop_deadline` to go out, then calls and backoffs are cancelled and
// the rest is dropped; returns when no gRPC callback can touch this object any more. `local`
// must outlive this object. Thread-safe otherwise.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "domain/ports/pusher.hpp"

namespace imd::rpc {

// A gateway as the registry shows it: its Push address ("host:port") and the version it
// registered (empty: a build from before versions, which predates channel removals).
struct PushPeer {
  std::string address;
  std::string version;
};

// The entry in a gateway's registry roles (NodeInfo::roles) that says its Push service takes
// user-addressed deliveries. A role rather than a field: older nodes read roles as an open
// list and ignore names they do not know, while they refuse unknown fields of the entry.
inline constexpr const char* kUserPushRole = "push-users";

// The gateway `node`, or nullopt when the node is not alive.
using PushResolver = std::function<std::optional<PushPeer>(std::uint32_t node)>;
// The live gateways that take user-addressed deliveries (this node may be among them). Called
// from push() on a fallback only; thread-safe and cheap like the resolver.
using UserPushNodes = std::function<std::vector<std::uint32_t>()>;

struct RemotePusherOptions {
  std::chrono::milliseconds call_deadline{2000};
  int max_attempts = 3;                            // calls per batch, the first one included
  std::chrono::milliseconds backoff_initial{100};  // doubles per retry, +-20% jitter
  std::chrono::milliseconds backoff_max{1000};
  std::size_t max_outbox_events = 10000;            // per node
  std::size_t max_outbox_bytes = 16 * 1024 * 1024;  // per node (estimated wire size)
  std::size_t max_call_events = 1000;
  std::size_t max_call_bytes = 3 * 1024 * 1024;           // below the server's max_receive_bytes
  std::chrono::milliseconds reconnect_backoff_max{1000};  // gRPC channel reconnects
  std::chrono::milliseconds stop_deadline{2000};
};

struct RemotePusherStats {
  std::uint64_t calls = 0;  // call attempts started, retries included
  std::uint64_t events_sent = 0;
  std::uint64_t events_dropped_unknown_node = 0;
  std::uint64_t events_dropped_full = 0;
  std::uint64_t events_dropped_failed = 0;
  std::uint64_t events_dropped_old_gateway = 0;
  std::uint64_t retries = 0;
  std::uint64_t fallback_broadcasts = 0;  // user-addressed events sent to every gateway
};

class RemotePusher final : public Pusher {
 public:
  // `local` may be null (no connections in this process).
  RemotePusher(std::uint32_t self, Pusher* local, PushResolver resolver,
               RemotePusherOptions options = {}, UserPushNodes user_push_nodes = {});
  ~RemotePusher() override;
  RemotePusher(const RemotePusher&) = delete;
  RemotePusher& operator=(const RemotePusher&) = delete;

  void push(std::vector<Push> pushes) override;
  void stop();
  RemotePusherStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imd::rpc
