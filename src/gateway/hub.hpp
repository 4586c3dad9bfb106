// The gateway's local connection table and the in-process Pusher adapter.
//
// Connections attach with their user id and get a ConnRef (node, conn id). push() resolves
// each target to a live connection and hands it a ready frame: a pushed message is
// serialized once per push for all its recipients (twice at most: the sender's devices see
// their cid). The frames of one push() call are grouped per connection and handed over in
// one go, so a batch fanned out to a channel costs one hand-off per member connection, not
// one per message. Thread-safe; push never blocks (connections queue frames on their own
// strands).
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "domain/ports/pusher.hpp"
#include "wire/frames.hpp"

namespace imd::gateway {

using wire::Frame;

// A frame for one connection. Message frames carry their conversation and seq, change frames
// their conversation and rev, so that the connection can order them against a running backfill
// and drop duplicates.
struct OutFrame {
  Frame text;
  bool is_message = false;
  bool is_change = false;
  ConvKey conv;
  std::uint64_t seq = 0;
  std::uint64_t rev = 0;
  // What the connection may see shrank (`removed`: now), or a watched user's presence arrived
  // (`when_due`): its presence watch list is checked again (WsSession::recheck_presence).
  enum class PresenceCheck : std::uint8_t { none, when_due, now };
  PresenceCheck presence_check = PresenceCheck::none;
};

class Connection {
 public:
  virtual ~Connection() = default;
  // Thread-safe; returns at once. The frames of one call arrive in order, in one hand-off.
  virtual void deliver(std::vector<OutFrame> frames) = 0;
  // The user's sessions ended: close (thread-safe, returns at once).
  virtual void end_session() = 0;
  // The login session whose token opened (or last renewed) the connection; 0: a token from
  // before sessions. Thread-safe.
  virtual Id login_session() const { return 0; }
};

class Hub final : public Pusher {
 public:
  explicit Hub(std::uint32_t node) : node_(node) {}

  ConnRef attach(Id user, std::weak_ptr<Connection> conn);
  void detach(ConnRef ref);
  std::size_t size() const { return size_.load(std::memory_order_relaxed); }
  // This process's connections of `user` (the per-user bound of the upgrade).
  std::size_t connections_of(Id user) const;
  std::uint32_t node() const { return node_; }

  void push(std::vector<Push> pushes) override;
  // Closes every connection of `user` on this process (Connection::end_session).
  void end_sessions_of(Id user);
  // Closes the connections of `user` on this process that belong to that login session.
  void end_session(Id user, Id login_session);
  // Every live connection with its user (to refresh routes kept elsewhere).
  std::vector<std::pair<Id, ConnRef>> snapshot();

 private:
  struct Entry {
    Id user;
    std::weak_ptr<Connection> conn;
  };
  static constexpr std::size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::uint64_t, Entry> conns;
  };
  Shard& shard(std::uint64_t conn) { return shards_[conn % kShards]; }
  // Turns user-addressed pushes (Push::users) into targets: this node's connections of those
  // users but Push::except, found in one pass over the shards (a fallback while the routes
  // cannot be read: its cost is this process's connection count, once per push() call).
  void resolve_users(std::vector<Push>& pushes);
  // The live connections of `user` (copied out of the shards' locks).
  std::vector<std::shared_ptr<Connection>> connections_of_user(Id user);

  const std::uint32_t node_;
  std::atomic<std::uint64_t> next_{1};
  std::atomic<std::size_t> size_{0};
  std::array<Shard, kShards> shards_;
  mutable std::mutex users_mu_;  // taken after a shard's mutex, never before
  std::unordered_map<Id, std::uint32_t> per_user_;
};

}  // namespace imd::gateway
