#include "gateway/hub.hpp"

namespace imd::gateway {

ConnRef Hub::attach(Id user, std::weak_ptr<Connection> conn) {
  ConnRef ref{node_, next_.fetch_add(1)};
  Shard& s = shard(ref.conn);
  std::lock_guard lock(s.mu);
  s.conns.emplace(ref.conn, Entry{user, std::move(conn)});
  size_.fetch_add(1, std::memory_order_relaxed);
  return ref;
}

void Hub::detach(ConnRef ref) {
  Shard& s = shard(ref.conn);
  std::lock_guard lock(s.mu);
  if (s.conns.erase(ref.conn)) size_.fetch_sub(1, std::memory_order_relaxed);
}

void Hub::push(std::vector<Push> pushes) {
  for (auto& p : pushes) {
    const auto* msg = std::get_if<MessageEvent>(p.event.get());
    Frame for_sender, for_others;  // message frames, built on first use
    for (ConnRef target : p.targets) {
      if (target.node != node_) continue;
      std::shared_ptr<Connection> conn;
      Id user = 0;
      {
        Shard& s = shard(target.conn);
        std::lock_guard lock(s.mu);
        auto it = s.conns.find(target.conn);
        if (it == s.conns.end()) continue;
        conn = it->second.conn.lock();
        user = it->second.user;
      }
      if (!conn) continue;
      OutFrame out;
      if (msg) {
        bool sender = user == msg->msg.from;
        Frame& f = sender ? for_sender : for_others;
        if (!f) f = msg_frame(msg->msg, user);
        out.text = f;
        out.is_message = true;
        out.conv = msg->msg.conv;
        out.seq = msg->msg.seq;
      } else {
        out.text = event_frame(*p.event, user);
      }
      conn->deliver(std::move(out));
    }
  }
}

}  // namespace imd::gateway
