#include "gateway/hub.hpp"

#include <algorithm>

#include "common/clock.hpp"
#include "common/metrics.hpp"

namespace imd::gateway {

ConnRef Hub::attach(Id user, std::weak_ptr<Connection> conn) {
  ConnRef ref{node_, next_.fetch_add(1)};
  Shard& s = shard(ref.conn);
  std::lock_guard lock(s.mu);
  s.conns.emplace(ref.conn, Entry{user, std::move(conn)});
  size_.fetch_add(1, std::memory_order_relaxed);
  metrics::imd().ws_connections_opened.inc();
  {
    std::lock_guard users(users_mu_);
    ++per_user_[user];
  }
  return ref;
}

void Hub::detach(ConnRef ref) {
  Shard& s = shard(ref.conn);
  std::lock_guard lock(s.mu);
  auto it = s.conns.find(ref.conn);
  if (it == s.conns.end()) return;
  const Id user = it->second.user;
  s.conns.erase(it);
  size_.fetch_sub(1, std::memory_order_relaxed);
  std::lock_guard users(users_mu_);
  if (auto u = per_user_.find(user); u != per_user_.end() && --u->second == 0) per_user_.erase(u);
}

std::size_t Hub::connections_of(Id user) const {
  std::lock_guard users(users_mu_);
  auto it = per_user_.find(user);
  return it == per_user_.end() ? 0 : it->second;
}

void Hub::end_sessions_of(Id user) {
  for (auto& c : connections_of_user(user)) c->end_session();
}

void Hub::end_session(Id user, Id login_session) {
  for (auto& c : connections_of_user(user)) {
    if (c->login_session() == login_session) c->end_session();
  }
}

std::vector<std::shared_ptr<Connection>> Hub::connections_of_user(Id user) {
  std::vector<std::shared_ptr<Connection>> out;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& [conn, e] : s.conns) {
      if (e.user != user) continue;
      if (auto c = e.conn.lock()) out.push_back(std::move(c));
    }
  }
  return out;
}

std::vector<std::pair<Id, ConnRef>> Hub::snapshot() {
  std::vector<std::pair<Id, ConnRef>> out;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& [conn, e] : s.conns) out.emplace_back(e.user, ConnRef{node_, conn});
  }
  return out;
}

void Hub::resolve_users(std::vector<Push>& pushes) {
  std::unordered_map<Id, std::vector<std::uint64_t>> conns_of;
  for (const auto& p : pushes) {
    for (Id u : p.users) conns_of.try_emplace(u);
  }
  if (conns_of.empty()) return;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& [conn, e] : s.conns) {
      if (auto it = conns_of.find(e.user); it != conns_of.end()) it->second.push_back(conn);
    }
  }
  for (auto& p : pushes) {
    if (p.users.empty()) continue;
    std::sort(p.users.begin(), p.users.end());
    p.users.erase(std::unique(p.users.begin(), p.users.end()), p.users.end());
    for (Id u : p.users) {
      for (std::uint64_t conn : conns_of[u]) {
        const ConnRef ref{node_, conn};
        if (ref != p.except) p.targets.push_back(ref);
      }
    }
    p.users.clear();
  }
}

void Hub::push(std::vector<Push> pushes) {
  resolve_users(pushes);
  struct Target {
    std::shared_ptr<Connection> conn;
    Id user = 0;
    std::vector<OutFrame> frames;
  };
  // Targets in order of first appearance, so each connection's frames keep the push order.
  std::unordered_map<std::uint64_t, std::size_t> index;
  std::vector<Target> targets;
  auto& metric = metrics::imd();
  static metrics::Counter* const kSent[] = {
      &metric.ws_frames_sent.at("msg"),     &metric.ws_frames_sent.at("sent"),
      &metric.ws_frames_sent.at("error"),   &metric.ws_frames_sent.at("read"),
      &metric.ws_frames_sent.at("typing"),  &metric.ws_frames_sent.at("removed"),
      &metric.ws_frames_sent.at("presence")};
  static_assert(std::variant_size_v<Event> == std::size(kSent), "a label per event kind");
  const Millis now = SystemClock{}.now_ms();
  for (auto& p : pushes) {
    const auto* msg = std::get_if<MessageEvent>(p.event.get());
    Frame for_sender, for_others;  // message frames, built on first use
    for (ConnRef ref : p.targets) {
      if (ref.node != node_) continue;
      auto [it, fresh] = index.try_emplace(ref.conn, targets.size());
      if (fresh) {
        Target t;
        Shard& s = shard(ref.conn);
        {
          std::lock_guard lock(s.mu);
          auto e = s.conns.find(ref.conn);
          if (e != s.conns.end()) {
            t.conn = e->second.conn.lock();
            t.user = e->second.user;
          }
        }
        targets.push_back(std::move(t));
      }
      Target& t = targets[it->second];
      if (!t.conn) continue;
      OutFrame out;
      if (msg) {
        Frame& f = t.user == msg->msg.from ? for_sender : for_others;
        if (!f) {
          f = msg->changed ? wire::change_frame(msg->msg, t.user)
                           : wire::msg_frame(msg->msg, t.user);
        }
        out.text = f;
        out.is_message = !msg->changed;
        out.is_change = msg->changed;
        out.conv = msg->msg.conv;
        out.seq = msg->msg.seq;
        out.rev = msg->msg.rev;
        if (!msg->changed && t.user != msg->msg.from) {
          metric.messages_delivered.inc();
          metric.send_to_deliver_seconds.observe(metrics::elapsed_us(msg->msg.created_at, now));
        }
      } else {
        out.text = wire::event_frame(*p.event, t.user);
        if (std::holds_alternative<RemovedEvent>(*p.event)) {
          out.presence_check = OutFrame::PresenceCheck::now;
        } else if (std::holds_alternative<PresenceEvent>(*p.event)) {
          out.presence_check = OutFrame::PresenceCheck::when_due;
        }
      }
      kSent[p.event->index()]->inc();
      t.frames.push_back(std::move(out));
    }
  }
  for (auto& t : targets) {
    if (t.conn && !t.frames.empty()) t.conn->deliver(std::move(t.frames));
  }
}

}  // namespace imd::gateway
