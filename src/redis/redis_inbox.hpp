// RedisInbox: the cluster Inbox adapter (see domain/ports/inbox.hpp for the contract): each
// user's 1:1 inbox in Redis, write diffusion, whole messages stored (list() needs no Store).
//
// Keys (all of one user share the hash tag {u:<id>}, so every script touches one slot):
//   <prefix>:{u:<id>}:ib      ZSET, all scores 0, member = hex16(a) hex16(b) hex16(seq): the
//                             lexicographic order is (conversation, seq), which list() pages
//                             with ZRANGEBYLEX and ack() removes by range
//   <prefix>:{u:<id>}:ib:age  ZSET, member as above, score = created_at (ms): eviction order
//   <prefix>:{u:<id>}:ib:msg  HASH member -> the encoded Message (message_codec.hpp)
//   <prefix>:{u:<id>}:ib:ack  HASH hex16(a) hex16(b) -> hex16(delivery cursor)
//   <prefix>:{u:<id>}:ib:over STRING, entries dropped by the bound since last take_overflow()
//
// push / ack / list are Lua scripts, so check-and-insert against the cursor is atomic with
// respect to ack: an entry at or below the user's delivery cursor of its conversation is
// skipped, and an entry already present is not added twice. The cursor lives here (advanced by
// ack), not only in the Store, so that the check runs inside the same script.
//
// Bounded: at most max_entries per user. A push beyond it drops that user's oldest entries (by
// created_at) and adds their number to the :over counter. The dropped messages are still in the
// Store, behind the user's delivery cursors; since the connect backfill of DMs reads the inbox,
// the WebSocket resume reads overflowed() first and, when it is not 0, backfills that user's
// DMs from the Store by delivery cursor instead, then clear_overflow() (Inbox port).
//
// Only DM conversations have inbox entries: a channel message in push is invalid_argument and
// nothing is written. Redis failures are unavailable. Thread-safe, blocking.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "domain/ports/inbox.hpp"
#include "redis/redis_client.hpp"

namespace imd {

struct RedisInboxOptions {
  std::string prefix = "im";          // key namespace (tests use one per case)
  std::uint32_t max_entries = 10000;  // per user; config redis.inbox_max
};

class RedisInbox final : public Inbox {
 public:
  RedisInbox(std::shared_ptr<redis::RedisClient> client, RedisInboxOptions options = {});

  // One script call per recipient, all pipelined (grouped by node in a cluster).
  Result<void> push(std::span<const InboxItem> items) override;
  // Ordered by (user_a, user_b, seq), strictly after `after`; at most `limit`, capped at 1000.
  Result<std::vector<Message>> list(Id user_id, const std::optional<InboxCursor>& after,
                                    std::uint32_t limit) override;
  // Advances the cursor to up_to_seq (never back) and removes the entries at or below it.
  Result<void> ack(Id user_id, const ConvKey& conv, std::uint64_t up_to_seq) override;

  // How many of the user's entries the bound dropped since the signal was last cleared.
  Result<std::uint64_t> overflowed(Id user_id) override;
  // Subtracts `seen` (what overflowed() said before the backfill) from the counter, deleting it
  // at 0, in one script: drops counted after `seen` was read stay signalled.
  Result<void> clear_overflow(Id user_id, std::uint64_t seen) override;
  // Returns the counter and resets it (GETDEL).
  Result<std::uint64_t> take_overflow(Id user_id);

 private:
  std::string key(Id user, std::string_view suffix) const;

  std::shared_ptr<redis::RedisClient> client_;
  const RedisInboxOptions options_;
  std::string push_sha_, ack_sha_, list_sha_, clear_overflow_sha_;
};

}  // namespace imd
