// Applies the store's account states (ended sessions, deactivation: Store::set_account_state)
// to this process: its TokenIssuer refuses the access tokens they cover and the user's
// WebSockets here are closed (the `ended` callback). The process that makes a change applies
// it at once (apply()); every process polls the store (poll(), from a thread of the
// composition root, every auth.account_poll_ms), so a change made on another process of a
// cluster takes effect here within one period, and a restarted process starts with them all.
// Thread-safe.
#pragma once

#include <functional>
#include <mutex>
#include <unordered_map>

#include "common/error.hpp"
#include "domain/model.hpp"
#include "domain/ports/store.hpp"
#include "domain/tokens.hpp"

namespace imd {

class AccountWatch {
 public:
  // `ended(user)`: the user's sessions ended (or the account was deactivated) after this
  // process last looked; not called for what the first poll loads.
  AccountWatch(Store& store, TokenIssuer& tokens, std::function<void(Id)> ended);

  // Reads the states changed since the last poll, less kSkewMs (processes' clocks differ; a
  // state read twice is applied once), and applies them. The first call reads them all.
  Result<void> poll();
  void apply(const AccountState& state);

  static constexpr Millis kSkewMs = 10'000;
  static constexpr std::uint32_t kBatch = 1000;

 private:
  // True when `state` ends something the known state did not (newer sessions_before, or a
  // deactivation).
  bool record(const AccountState& state);  // mu_ held
  // Refuses what `state` covers; `tell`: call `ended` when it ends something new.
  void apply(const AccountState& state, bool tell);

  Store& store_;
  TokenIssuer& tokens_;
  std::function<void(Id)> ended_;
  std::mutex mu_;
  std::unordered_map<Id, AccountState> known_;
  Millis newest_ = 0;
  bool loaded_ = false;
};

}  // namespace imd
