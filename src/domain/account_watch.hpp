// Applies the store's account states (ended sessions, deactivation: Store::set_account_state)
// and its ended login sessions (Store::sessions_ended) to this process: its TokenIssuer refuses
// the access tokens they cover and the WebSockets here are closed (the `ended` and
// `session_ended` callbacks). The process that makes a change applies
// it at once (apply()); every process polls the store (poll(), from a thread of the
// composition root, every auth.account_poll_ms), so a change made on another process of a
// cluster takes effect here within one period, and a restarted process starts with them all.
// Thread-safe.
#pragma once

#include <functional>
#include <mutex>
#include <unordered_map>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "domain/model.hpp"
#include "domain/ports/store.hpp"
#include "domain/tokens.hpp"

namespace imd {

class AccountWatch {
 public:
  // `ended(user)`: the user's sessions ended (or the account was deactivated) after this
  // process last looked; `session_ended(user, session)`: that one session ended. Neither is
  // called for what the first poll loads.
  AccountWatch(Store& store, TokenIssuer& tokens, Clock& clock, std::function<void(Id)> ended,
               std::function<void(Id, Id)> session_ended);

  // Reads the states changed and the sessions ended since the last poll, less kSkewMs
  // (processes' clocks differ; a state read twice is applied once), and applies them. The
  // first call reads every state, and the sessions ended within an access token's lifetime.
  Result<void> poll();
  void apply(const AccountState& state);
  void apply(const EndedSession& session) { apply(session, true); }

  static constexpr Millis kSkewMs = 10'000;
  static constexpr std::uint32_t kBatch = 1000;

 private:
  // True when `state` ends something the known state did not (newer sessions_before, or a
  // deactivation).
  bool record(const AccountState& state);  // mu_ held
  // Refuses what `state` covers; `tell`: call `ended` when it ends something new.
  void apply(const AccountState& state, bool tell);
  void apply(const EndedSession& session, bool tell);
  Result<void> poll_states(bool first);
  Result<void> poll_sessions(bool first);

  Store& store_;
  TokenIssuer& tokens_;
  Clock& clock_;
  std::function<void(Id)> ended_;
  std::function<void(Id, Id)> session_ended_;
  std::mutex mu_;
  std::unordered_map<Id, AccountState> known_;
  Millis newest_ = 0;
  Millis newest_session_end_ = 0;
  bool loaded_ = false;
};

}  // namespace imd
