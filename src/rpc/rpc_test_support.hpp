// Test helpers for src/rpc: sample events with every field set, field-wise equality, and a
// recording Pusher (the real seam a gateway's Hub sits behind). Test-only.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "domain/ports/pusher.hpp"

namespace imd::rpc_test {

inline Message sample_message(std::uint64_t seq = 42) {
  Message m;
  m.id = 0x1234567890abcdefull;
  m.conv = ConvKey::dm(7, 9);
  m.seq = seq;
  m.from = 7;
  m.to = 9;
  m.type = "text";
  m.body = std::string("{\"text\":\"h\xc3\xa9llo\"}") + std::string(1, '\0') + "\xff";
  m.created_at = 1700000000123;
  m.cid = "c-1";
  return m;
}

inline std::vector<Event> sample_events() {
  // The first four in this order (tests index them); then the changes of issue 15.
  return {
      MessageEvent{sample_message()},
      SentEvent{"c-2", 555, 17, ConvKey::channel(88), 7, 1700000000999},
      SendFailedEvent{"c-3", Error{Errc::payload_too_large, "body is larger than 16384 bytes"}},
      ReadEvent{7, ConvKey::dm(3, 7), 99},
      MessageEvent{[] {
                     Message m = sample_message();
                     m.reply_to = 42;
                     m.rev = 7;
                     m.change = Change::erase;
                     m.edited_at = 1700000000500;
                     m.deleted = true;
                     m.body.clear();
                     return m;
                   }(),
                   true},
      MessageEvent{[] {
                     Message m = sample_message();
                     m.rev = 8;
                     m.change = Change::react;
                     m.reactions = {Reaction{"\xf0\x9f\x91\x8d", {7, 9}}, Reaction{"ok", {9}}};
                     return m;
                   }(),
                   true},
      SendFailedEvent{"", Error{Errc::forbidden, "not your message"}, Change::edit, 321},
      TypingEvent{7, ConvKey::channel(88)},
      RemovedEvent{99, "banned"},
      RemovedEvent{99, "deleted", 77},
      PresenceEvent{7, PresenceStatus::away},
  };
}

inline bool same(const ConvKey& a, const ConvKey& b) {
  return a == b;
}

inline bool same(const Event& a, const Event& b) {
  if (a.index() != b.index()) return false;
  if (auto* x = std::get_if<MessageEvent>(&a)) {
    const auto& y = std::get<MessageEvent>(b);
    const Message &m = x->msg, &n = y.msg;
    return m.id == n.id && m.conv == n.conv && m.seq == n.seq && m.from == n.from && m.to == n.to &&
           m.type == n.type && m.body == n.body && m.created_at == n.created_at && m.cid == n.cid &&
           m.reply_to == n.reply_to && m.rev == n.rev && m.change == n.change &&
           m.edited_at == n.edited_at && m.deleted == n.deleted && m.reactions == n.reactions &&
           x->changed == y.changed;
  }
  if (auto* x = std::get_if<SentEvent>(&a)) {
    const auto& y = std::get<SentEvent>(b);
    return x->cid == y.cid && x->id == y.id && x->seq == y.seq && x->conv == y.conv &&
           x->sender == y.sender && x->created_at == y.created_at;
  }
  if (auto* x = std::get_if<SendFailedEvent>(&a)) {
    const auto& y = std::get<SendFailedEvent>(b);
    return x->cid == y.cid && x->error.code == y.error.code &&
           x->error.message == y.error.message && x->change == y.change && x->id == y.id;
  }
  if (auto* x = std::get_if<TypingEvent>(&a)) {
    const auto& y = std::get<TypingEvent>(b);
    return x->user_id == y.user_id && x->conv == y.conv;
  }
  if (auto* x = std::get_if<RemovedEvent>(&a)) {
    const auto& y = std::get<RemovedEvent>(b);
    return x->space_id == y.space_id && x->reason == y.reason && x->channel_id == y.channel_id;
  }
  if (auto* x = std::get_if<PresenceEvent>(&a)) {
    const auto& y = std::get<PresenceEvent>(b);
    return x->user_id == y.user_id && x->status == y.status;
  }
  const auto& x = std::get<ReadEvent>(a);
  const auto& y = std::get<ReadEvent>(b);
  return x.user_id == y.user_id && x.conv == y.conv && x.seq == y.seq;
}

// Records the events each connection receives, in order. Optionally stalls push() until
// release() (a gateway whose handler hangs).
class RecordingPusher final : public Pusher {
 public:
  void push(std::vector<Push> pushes) override {
    std::unique_lock lock(mu_);
    ++calls_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !stalled_; });
    for (auto& p : pushes) {
      for (ConnRef ref : p.targets) {
        got_[ref].push_back(p.event);
        ++total_;
      }
      for (Id user : p.users) {
        by_user_[user].push_back({p.event, p.except});
        ++total_;
      }
    }
    cv_.notify_all();
  }

  // The user-addressed events for `user`, each with the connection it excepted.
  std::vector<std::pair<std::shared_ptr<const Event>, ConnRef>> events_of_user(Id user) {
    std::lock_guard lock(mu_);
    auto it = by_user_.find(user);
    return it == by_user_.end() ? decltype(it->second){} : it->second;
  }

  void stall() {
    std::lock_guard lock(mu_);
    stalled_ = true;
  }
  void release() {
    std::lock_guard lock(mu_);
    stalled_ = false;
    cv_.notify_all();
  }

  // Waits until `total() >= n`; false on timeout.
  bool wait_total(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return total_ >= n; });
  }
  bool wait_calls(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return calls_ >= n; });
  }

  std::vector<std::shared_ptr<const Event>> events(ConnRef ref) {
    std::lock_guard lock(mu_);
    auto it = got_.find(ref);
    return it == got_.end() ? std::vector<std::shared_ptr<const Event>>{} : it->second;
  }
  std::size_t total() {
    std::lock_guard lock(mu_);
    return total_;
  }
  std::size_t calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stalled_ = false;
  std::size_t calls_ = 0;
  std::size_t total_ = 0;
  std::map<ConnRef, std::vector<std::shared_ptr<const Event>>> got_;
  std::map<Id, std::vector<std::pair<std::shared_ptr<const Event>, ConnRef>>> by_user_;
};

// Polls `pred` until it holds or `timeout` passes.
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace imd::rpc_test
