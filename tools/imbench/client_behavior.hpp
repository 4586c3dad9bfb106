// What a well-behaved imd client does besides its scenario's own traffic, shared by every
// scenario: cumulative delivery ACKs (AckPolicy: one per conversation after 100 ms or 50
// messages, whichever comes first), a ping every heartbeat_s, and in-order checks per
// conversation. It answers nothing else.
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

  // A `msg` of conversation `c` with `seq` arrived. Returns how it fits the order:
  // 0 in order, 1 after a gap (out of order), -1 already seen (duplicate or late).
  int on_message(WsClient& ws, ConvState& c, std::uint64_t seq, std::int64_t now) {
    int order = note(c, seq);
    if (order >= 0 && ++c.since_ack >= ack.every) {
      send_ack(ws, c, now);
    } else if (order >= 0) {
      dirty = true;
    }
    return order;
  }

  // The `sent` of one's own message: its seq is known too.
  void on_sent(ConvState& c, std::uint64_t seq) { note(c, seq); }

  static int note(ConvState& c, std::uint64_t seq) {
    if (seq == c.last_seq + 1) {
      c.last_seq = seq;
      if (!c.ahead.empty()) absorb(c);
      return 0;
    }
    if (seq <= c.last_seq) return -1;
    for (auto s : c.ahead) {
      if (s == seq) return -1;
    }
    c.ahead.push_back(seq);
    if (c.ahead.size() > 4096) {
      // A real gap: give up on it, as a client would after a resync.
      c.last_seq = *std::max_element(c.ahead.begin(), c.ahead.end());
      c.ahead.clear();
    }
    return 1;
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
