// What a well-behaved imd client does besides its scenario's own traffic, shared by every
// scenario: cumulative delivery ACKs (AckPolicy: one per conversation after 100 ms or 50
// messages, whichever comes first; `soak`: 100 ms only, like the web client), a ping every
// heartbeat_s, and in-order checks per conversation, which know what a reconnect may
// legitimately send again (on_reconnect()). It answers nothing else.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "clock.hpp"
#include "context.hpp"
#include "scan.hpp"
#include "ws_client.hpp"

namespace imbench {

struct ConvState {
  std::string name;  // "dm:<id>" / "channel:<id>"
  // Every seq up to last_seq was seen, as a `msg` or as the `sent` of one's own message (a
  // conversation's seqs count both directions); `ahead` holds seqs seen beyond a gap.
  std::uint64_t last_seq = 0;
  std::vector<std::uint64_t> ahead;
  std::uint64_t acked_seq = 0;
  std::uint32_t since_ack = 0;  // messages received since the last ack
  std::int64_t last_ack_ns = 0;
  // Since the last reconnect: the server resumes from its last delivery ACK, so every seq
  // held when the connection was replaced (up to redeliver_upto) may come once more, in seq
  // order; redeliver_seen is the highest that did.
  std::uint64_t redeliver_upto = 0;
  std::uint64_t redeliver_seen = 0;
  // Own sends whose `sent` was lost with a closed connection: if they were stored, their seqs
  // are taken but unknown until the `sent` of the retry, so a gap of this many is expected.
  std::uint32_t own_unknown = 0;
};

// How a seq fits its conversation (ClientState::note, on_message). Negative: nothing new.
enum Order : int {
  kRedelivered = -2,  // held before the reconnect and sent again by the resume: not a failure
  kDuplicate = -1,    // already seen on this connection (or a late copy)
  kInOrder = 0,
  kGap = 1,  // arrived after a gap: out of order
};

struct ClientState {
  AckPolicy ack;
  bool hello = false;
  bool synced = false;
  bool dirty = false;  // some conversation has unacked messages
  std::int64_t heartbeat_ns = 30 * kSec;
  std::int64_t next_ping_ns = 0;
  std::vector<ConvState> convs;
  std::string closed_why;
  std::uint64_t pongs = 0;

  ConvState& conv(std::string_view name) {
    for (auto& c : convs) {
      if (c.name == name) return c;
    }
    convs.emplace_back();
    convs.back().name = std::string(name);
    return convs.back();
  }

  // `hello`: schedules pings from now.
  void on_hello(std::string_view frame, std::int64_t now) {
    hello = true;
    std::uint64_t hb = 0;
    if (scan::num(frame, "\"heartbeat_s\":", hb) && hb > 0)
      heartbeat_ns = static_cast<std::int64_t>(hb) * kSec;
    next_ping_ns = now + heartbeat_ns;
  }

  void send_ack(WsClient& ws, ConvState& c, std::int64_t now) {
    char buf[160];
    int n = std::snprintf(buf, sizeof buf, "{\"op\":\"ack\",\"conversation\":\"%s\",\"seq\":%llu}",
                          c.name.c_str(), static_cast<unsigned long long>(c.last_seq));
    ws.send_text(std::string_view(buf, static_cast<std::size_t>(n)));
    c.acked_seq = c.last_seq;
    c.since_ack = 0;
    c.last_ack_ns = now;
  }

  // A `msg` of conversation `c` with `seq` arrived. Returns how it fits the order (Order).
  int on_message(WsClient& ws, ConvState& c, std::uint64_t seq, std::int64_t now) {
    int order = note(c, seq);
    // A redelivered seq is held already, but the server keeps it until it is ACKed again.
    if (order >= 0 || order == kRedelivered) {
      ++c.since_ack;
      if (ack.every && c.since_ack >= ack.every) {
        send_ack(ws, c, now);
      } else {
        dirty = true;
      }
    }
    return order;
  }

  // The `sent` of one's own message: its seq is known too.
  void on_sent(ConvState& c, std::uint64_t seq) { note(c, seq); }

  // The connection is being replaced by a new one. Cursors stay, as a client keeps the
  // messages it has; what it held may be delivered once more (see ConvState).
  void on_reconnect() {
    hello = synced = false;
    closed_why.clear();
    for (auto& c : convs) {
      c.redeliver_upto = c.last_seq;
      for (auto s : c.ahead) c.redeliver_upto = std::max(c.redeliver_upto, s);
      c.redeliver_seen = 0;
    }
  }

  static int note(ConvState& c, std::uint64_t seq) {
    if (seq == c.last_seq + 1) {
      c.last_seq = seq;
      if (!c.ahead.empty()) absorb(c);
      return kInOrder;
    }
    if (seq <= c.last_seq) return seen_again(c, seq);
    std::uint64_t missing = seq - c.last_seq - 1;
    for (auto s : c.ahead) {
      if (s == seq) return seen_again(c, seq);
      if (s < seq) --missing;
    }
    c.ahead.push_back(seq);
    if (c.ahead.size() > 4096) {
      // A real gap: give up on it, as a client would after a resync.
      c.last_seq = *std::max_element(c.ahead.begin(), c.ahead.end());
      c.ahead.clear();
    }
    return missing <= c.own_unknown ? kInOrder : kGap;
  }

  // Each held seq may come once more after a reconnect, in order; anything else is a duplicate.
  static int seen_again(ConvState& c, std::uint64_t seq) {
    if (seq <= c.redeliver_upto && seq > c.redeliver_seen) {
      c.redeliver_seen = seq;
      return kRedelivered;
    }
    return kDuplicate;
  }

  static void absorb(ConvState& c) {
    bool moved = true;
    while (moved && !c.ahead.empty()) {
      moved = false;
      for (std::size_t i = 0; i < c.ahead.size(); ++i) {
        if (c.ahead[i] == c.last_seq + 1) {
          c.last_seq = c.ahead[i];
          c.ahead[i] = c.ahead.back();
          c.ahead.pop_back();
          moved = true;
          break;
        }
      }
    }
  }

  // Every second or so: a ping when one is due.
  void maybe_ping(WsClient& ws, std::int64_t now) {
    if (hello && ws.is_open() && now >= next_ping_ns) {
      ws.send_text("{\"op\":\"ping\"}");
      next_ping_ns = now + heartbeat_ns;
    }
  }

  // Every few ms for dirty clients: ACKs the conversations whose last ack is 100 ms old.
  // Returns true while something stays unacked.
  bool flush_acks(WsClient& ws, std::int64_t now) {
    if (!dirty || !ws.is_open()) return dirty = false;
    bool still = false;
    for (auto& c : convs) {
      if (c.since_ack == 0) continue;
      if (now - c.last_ack_ns >= ack.interval_ns) {
        send_ack(ws, c, now);
      } else {
        still = true;
      }
    }
    dirty = still;
    return still;
  }
};

}  // namespace imbench
