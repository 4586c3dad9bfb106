#include "domain/account_watch.hpp"

#include <algorithm>

namespace imd {

AccountWatch::AccountWatch(Store& store, TokenIssuer& tokens, Clock& clock,
                           std::function<void(Id)> ended, std::function<void(Id, Id)> session_ended)
    : store_(store),
      tokens_(tokens),
      clock_(clock),
      ended_(std::move(ended)),
      session_ended_(std::move(session_ended)) {}

bool AccountWatch::record(const AccountState& state) {
  newest_ = std::max(newest_, state.changed_at);
  auto [it, fresh] = known_.try_emplace(state.user_id, state);
  if (fresh) return state.deactivated || state.sessions_before > 0;
  const AccountState before = it->second;
  it->second.sessions_before = std::max(before.sessions_before, state.sessions_before);
  it->second.changed_at = std::max(before.changed_at, state.changed_at);
  if (state.changed_at >= before.changed_at) it->second.deactivated = state.deactivated;
  return state.sessions_before > before.sessions_before ||
         (it->second.deactivated && !before.deactivated);
}

void AccountWatch::apply(const AccountState& state) {
  apply(state, true);
}

void AccountWatch::apply(const AccountState& state, bool tell) {
  bool ended = false;
  bool deactivated = false;
  {
    std::lock_guard lock(mu_);
    ended = record(state);
    deactivated = known_.at(state.user_id).deactivated;
  }
  tokens_.revoke_before(state.user_id, state.sessions_before);
  tokens_.set_deactivated(state.user_id, deactivated);
  if (tell && ended && ended_) ended_(state.user_id);
}

void AccountWatch::apply(const EndedSession& session, bool tell) {
  {
    std::lock_guard lock(mu_);
    newest_session_end_ = std::max(newest_session_end_, session.ended_at);
  }
  // Known already (applied by the process that ended it, or read again): nothing new to close.
  if (!tokens_.end_session(session.id, session.ended_at)) return;
  if (tell && session_ended_) session_ended_(session.user_id, session.id);
}

Result<void> AccountWatch::poll() {
  bool first = false;
  {
    std::lock_guard lock(mu_);
    first = !loaded_;
  }
  IMD_TRY(poll_states(first));
  IMD_TRY(poll_sessions(first));
  std::lock_guard lock(mu_);
  loaded_ = true;
  return {};
}

Result<void> AccountWatch::poll_sessions(bool first) {
  Millis since = 0;
  {
    std::lock_guard lock(mu_);
    // The first read: a session ended longer than a token's lifetime ago refuses nothing that
    // has not expired.
    since = first ? clock_.now_ms() - tokens_.access_ttl_s() * 1000 - kSkewMs
                  : newest_session_end_ - kSkewMs;
    since = std::max<Millis>(since, 1);
  }
  for (;;) {
    auto batch = store_.sessions_ended(since, kBatch);
    if (!batch) return batch.error();
    for (const EndedSession& s : *batch) apply(s, !first);
    if (batch->size() < kBatch) return {};
    const Millis last = batch->back().ended_at;
    if (last == since) return {};  // a whole batch at one millisecond: the next poll goes on
    since = last;
  }
}

Result<void> AccountWatch::poll_states(bool first) {
  Millis since = 0;
  {
    std::lock_guard lock(mu_);
    since = first ? 0 : std::max<Millis>(0, newest_ - kSkewMs);
  }
  for (;;) {
    auto batch = store_.account_states_changed(since, kBatch);
    if (!batch) return batch.error();
    // The first read: what was ended before this process started is refused, nobody to tell.
    for (const AccountState& s : *batch) apply(s, !first);
    if (batch->size() < kBatch) break;
    // Ties on changed_at at a batch's edge are read again: applying twice is harmless.
    const Millis last = batch->back().changed_at;
    if (last == since) break;  // a whole batch at one millisecond: the next poll goes on
    since = last;
  }
  return {};
}

}  // namespace imd
