// SqlStore<D>'s methods (see sql_store.hpp). Included by the one .cpp of each dialect that
// instantiates SqlStore<D> (store/sqlite_store.cpp, store_mysql/mysql_store.cpp); everyone
// else sees only the declarations.
#pragma once

#include <algorithm>
#include <chrono>
#include <utility>

#include "store_sql/row_mappers.hpp"
#include "store_sql/sql_store.hpp"

namespace imd {

namespace sql {

// directory_users reads the viewer's co-members and sorts them when they are fewer than this
// (a sort of at most this many rows); from it on, the name index's walk finds `limit` of them
// sooner. Measured in docs/benchmarks.md ("User directory").
inline constexpr std::uint64_t kDirectoryByMembersBelow = 5000;

// A LIKE pattern matching what starts with `prefix`: its own wildcards escaped with '!' (the
// statement says ESCAPE '!').
inline std::string like_prefix(std::string_view prefix) {
  std::string pattern;
  for (char ch : prefix) {
    if (ch == '%' || ch == '_' || ch == '!') pattern += '!';
    pattern += ch;
  }
  pattern += '%';
  return pattern;
}

inline Millis wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// History pages, indexed by shape: 0 before a seq, 1 after a seq, 2 newest. Arguments: the
// conversation (channel_id, or user_a and user_b), the bound seq (not for newest), the limit.
// Each is a range read of the (conversation, seq) key: channel_message's primary key; message's
// UNIQUE(user_a, user_b, seq) in SQLite, its clustered primary key in MariaDB. DESC pages are
// reversed by the caller.
inline constexpr std::string_view kChannelHistory[] = {
    "SELECT channel_id, message_id, seq, `from`, type, body, created_at, cid, reply_to,"
    " rev, change_kind, edited_at, deleted, reactions FROM channel_message WHERE channel_id = ? "
    "AND seq < ? "
    "ORDER BY seq DESC LIMIT ?",
    "SELECT channel_id, message_id, seq, `from`, type, body, created_at, cid, reply_to,"
    " rev, change_kind, edited_at, deleted, reactions FROM channel_message WHERE channel_id = ? "
    "AND seq > ? "
    "ORDER BY seq ASC LIMIT ?",
    "SELECT channel_id, message_id, seq, `from`, type, body, created_at, cid, reply_to,"
    " rev, change_kind, edited_at, deleted, reactions FROM channel_message WHERE channel_id = ? "
    "ORDER BY seq "
    "DESC LIMIT ?",
};
inline constexpr std::string_view kDmHistory[] = {
    "SELECT id, `from`, `to`, type, body, created_at, user_a, user_b, seq, cid, reply_to, rev,"
    " change_kind, edited_at, deleted, reactions FROM message"
    " WHERE user_a = ? AND user_b = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
    "SELECT id, `from`, `to`, type, body, created_at, user_a, user_b, seq, cid, reply_to, rev,"
    " change_kind, edited_at, deleted, reactions FROM message"
    " WHERE user_a = ? AND user_b = ? AND seq > ? ORDER BY seq ASC LIMIT ?",
    "SELECT id, `from`, `to`, type, body, created_at, user_a, user_b, seq, cid, reply_to, rev,"
    " change_kind, edited_at, deleted, reactions FROM message"
    " WHERE user_a = ? AND user_b = ? ORDER BY seq DESC LIMIT ?",
};

constexpr auto kUser = [](const auto& r) { return rows::user(r); };
constexpr auto kCredentials = [](const auto& r) { return rows::credentials(r); };
inline constexpr std::string_view kCredentialsByPhone =
    "SELECT id, name, avatar, COALESCE(phone, ''), created_at, password FROM `user` WHERE phone = "
    "?";
inline constexpr std::string_view kCredentialsById =
    "SELECT id, name, avatar, COALESCE(phone, ''), created_at, password FROM `user` WHERE id = ?";
constexpr auto kSpace = [](const auto& r) { return rows::space(r); };
constexpr auto kChannel = [](const auto& r) { return rows::channel(r); };
constexpr auto kMember = [](const auto& r) { return rows::member(r); };
constexpr auto kFirstId = [](const auto& r) { return r.column_id(0); };
// token_hash, user_id, expires_at, session_id
constexpr auto kRefreshToken = [](const auto& r) {
  return RefreshToken{.token_hash = r.column_text(0),
                      .user_id = r.column_id(1),
                      .expires_at = r.column_int64(2),
                      .session_id = r.column_id(3)};
};

// A conversation of conversations(): its state (7 columns), then the last message's columns
// (NULL when it has none), mapped by `message`, then the conversation's last_rev at `rev_col`
// and the user's mentions after it, and for a DM the peer's read_seq.
template <class Rows, class F>
ConversationState conversation_row(const Rows& r, ConvKey conv, Id space_id, int rev_col,
                                   F&& message) {
  ConversationState st{.conv = conv,
                       .space_id = space_id,
                       .name = r.column_text(2),
                       .avatar = r.column_text(3),
                       .last_seq = r.column_id(4),
                       .read_seq = r.column_id(5),
                       .ack_seq = r.column_id(6),
                       .last_rev = r.column_id(rev_col),
                       .mentions = r.column_id(rev_col + 1),
                       .last = std::nullopt};
  if (!r.column_is_null(7)) st.last = message(r, 7);
  if (conv.is_dm() && !r.column_is_null(rev_col + 2)) st.peer_read_seq = r.column_id(rev_col + 2);
  return st;
}

template <SqlDialect D>
Result<Message> message_by_id_in(typename D::Connection& c, Id id, ConvKind hint) {
  for (ConvKind kind : {hint, hint == ConvKind::dm ? ConvKind::channel : ConvKind::dm}) {
    auto found =
        kind == ConvKind::dm
            ? one<Message>(
                  D::query(
                      c,
                      "SELECT id, `from`, `to`, type, body, created_at, user_a,"
                      " user_b, seq, cid, reply_to, rev, change_kind, edited_at, deleted, reactions"
                      " FROM message WHERE id = ?",
                      id),
                  [](const auto& r) { return rows::dm_message(r); }, "message")
            : one<Message>(
                  D::query(
                      c,
                      "SELECT channel_id, message_id, seq, `from`, type, body,"
                      " created_at, cid, reply_to, rev, change_kind, edited_at, deleted, reactions"
                      " FROM channel_message WHERE message_id = ?",
                      id),
                  [](const auto& r) { return rows::channel_message(r); }, "message");
    if (found.ok() || found.error().code != Errc::not_found) return found;
  }
  return make_error(Errc::not_found, "message not found");
}

template <SqlDialect D>
Result<Result<Appended>> stored_duplicate(typename D::Connection& c, Id original_id,
                                          ConvKind hint) {
  auto found = message_by_id_in<D>(c, original_id, hint);
  if (found.ok()) return Result<Appended>(Appended{.msg = std::move(*found), .duplicate = true});
  if (found.error().code != Errc::not_found) return found.error();
  return Result<Appended>(make_error(Errc::internal, "message_cid points to a missing message"));
}

// Adds (`on`) or takes back `user`'s `emoji` reaction in `reactions`, within the bounds
// (payload_too_large past them). Whether anything changed.
inline Result<bool> toggle_reaction(std::vector<Reaction>& reactions, const std::string& emoji,
                                    Id user, bool on) {
  auto it = std::find_if(reactions.begin(), reactions.end(),
                         [&](const Reaction& r) { return r.emoji == emoji; });
  if (!on) {
    if (it == reactions.end()) return false;
    auto u = std::lower_bound(it->users.begin(), it->users.end(), user);
    if (u == it->users.end() || *u != user) return false;
    it->users.erase(u);
    if (it->users.empty()) reactions.erase(it);
    return true;
  }
  if (it == reactions.end()) {
    if (reactions.size() >= kMaxReactionEmoji) {
      return make_error(Errc::payload_too_large,
                        "a message has at most " + std::to_string(kMaxReactionEmoji) + " emoji");
    }
    reactions.push_back(Reaction{emoji, {user}});
    return true;
  }
  auto u = std::lower_bound(it->users.begin(), it->users.end(), user);
  if (u != it->users.end() && *u == user) return false;
  if (it->users.size() >= kMaxReactionUsers) {
    return make_error(Errc::payload_too_large, "this emoji has its most reactions");
  }
  it->users.insert(u, user);
  return true;
}

// Changes of a conversation by rev (ChangeQuery); `rev > 0` lets SQLite use its partial index.
inline constexpr std::string_view kChannelChanges =
    "SELECT channel_id, message_id, seq, `from`, type, body, created_at, cid, reply_to, rev,"
    " change_kind, edited_at, deleted, reactions FROM channel_message WHERE channel_id = ? AND rev "
    "> 0"
    " AND rev > ? AND rev <= ? AND seq > ? AND seq <= ? ORDER BY rev LIMIT ?";
inline constexpr std::string_view kDmChanges =
    "SELECT id, `from`, `to`, type, body, created_at, user_a, user_b, seq, cid, reply_to, rev,"
    " change_kind, edited_at, deleted, reactions FROM message WHERE user_a = ? AND user_b = ? AND "
    "rev > 0"
    " AND rev > ? AND rev <= ? AND seq > ? AND seq <= ? ORDER BY rev LIMIT ?";

}  // namespace sql

// --- users and sessions

template <SqlDialect D>
Result<void> SqlStore<D>::create_user(const User& user, const std::string& password_hash) {
  auto r = db_->write([&](Connection& c) -> Result<void> {
    IMD_TRY(D::change(c,
                      "INSERT INTO `user` (id, name, avatar, password, phone, created_at)"
                      " VALUES (?, ?, ?, ?, ?, ?)",
                      user.id, user.name, user.avatar, password_hash,
                      sql::null_if_empty(user.phone), user.created_at));
    return {};
  });
  if (!r.ok() && r.error().code == Errc::conflict) {
    // The phone is the only unique key besides the id (generated, so never reused).
    const bool phone = r.error().message.find(D::sql.phone_key) != std::string::npos;
    return make_error(Errc::conflict,
                      phone ? "phone already registered" : "user id already exists");
  }
  return r;
}

template <SqlDialect D>
Result<UserCredentials> SqlStore<D>::user_by_phone(std::string_view phone) {
  return db_->read([&](Connection& c) {
    return sql::one<UserCredentials>(D::query(c, sql::kCredentialsByPhone, phone),
                                     sql::kCredentials, "user");
  });
}

template <SqlDialect D>
Result<User> SqlStore<D>::user_by_id(Id id) {
  return db_->read([&](Connection& c) { return user_by_id_in(c, id); });
}

template <SqlDialect D>
Result<std::vector<User>> SqlStore<D>::users_by_name(std::string_view name, std::uint32_t limit) {
  return db_->read([&](Connection& c) {
    return sql::all<User>(D::query(c, D::sql.users_by_name, name, limit), sql::kUser);
  });
}

template <SqlDialect D>
Result<User> SqlStore<D>::update_user(Id id, const std::optional<std::string>& name,
                                      const std::optional<std::string>& avatar) {
  return update_profile(
      "UPDATE `user` SET name = COALESCE(?, name), avatar = COALESCE(?, avatar) WHERE id = ?", id,
      name, avatar, "user not found", &SqlStore::user_by_id_in);
}

template <SqlDialect D>
Result<void> SqlStore<D>::save_refresh_token(const RefreshToken& token) {
  return db_->write([&](Connection& c) -> Result<void> {
    // created_at is bookkeeping only (never compared with a caller's clock), so wall time.
    IMD_TRY(D::change(c,
                      "INSERT INTO refresh_token"
                      " (token_hash, user_id, expires_at, revoked, created_at, session_id)"
                      " VALUES (?, ?, ?, 0, ?, ?)",
                      token.token_hash, token.user_id, token.expires_at, sql::wall_clock_ms(),
                      token.session_id));
    return {};
  });
}

template <SqlDialect D>
Result<RefreshToken> SqlStore<D>::take_refresh_token(std::string_view token_hash, Millis now,
                                                     Millis reuse_until) {
  return db_->write([&](Connection& c) -> Result<RefreshToken> {
    // Found and its life shortened in one transaction (D::sql.take_refresh_token says how).
    auto token = sql::one<RefreshToken>(D::query(c, D::sql.take_refresh_token, token_hash, now),
                                        sql::kRefreshToken, "valid refresh token");
    if (!token.ok()) return token.error();
    IMD_TRY(D::change(
        c, "UPDATE refresh_token SET expires_at = ? WHERE token_hash = ? AND expires_at > ?",
        reuse_until, token_hash, reuse_until));
    return token;
  });
}

template <SqlDialect D>
Result<RefreshToken> SqlStore<D>::revoke_refresh_token(std::string_view token_hash) {
  return db_->write([&](Connection& c) -> Result<RefreshToken> {
    // A revoked token's row still matches: revoking it again is ok.
    auto revoked =
        D::change(c, "UPDATE refresh_token SET revoked = 1 WHERE token_hash = ?", token_hash);
    if (!revoked.ok()) return revoked.error();
    if (*revoked == 0) return make_error(Errc::not_found, "refresh token not found");
    return sql::one<RefreshToken>(
        D::query(c,
                 "SELECT token_hash, user_id, expires_at, session_id FROM refresh_token"
                 " WHERE token_hash = ?",
                 token_hash),
        sql::kRefreshToken, "refresh token");
  });
}

// --- sessions

namespace sql {
// id, user_id, created_at, last_used_at, expires_at, ended_at, user_agent, ip
constexpr auto kLoginSession = [](const auto& r) {
  return LoginSession{.id = r.column_id(0),
                      .user_id = r.column_id(1),
                      .created_at = r.column_int64(2),
                      .last_used_at = r.column_int64(3),
                      .expires_at = r.column_int64(4),
                      .ended_at = r.column_int64(5),
                      .user_agent = r.column_text(6),
                      .ip = r.column_text(7)};
};
}  // namespace sql

template <SqlDialect D>
Result<void> SqlStore<D>::end_session_in(Connection& c, Id user_id, Id session_id, Millis now) {
  auto n = D::change(c,
                     "UPDATE login_session SET ended_at = ?"
                     " WHERE id = ? AND user_id = ? AND ended_at = 0",
                     now, session_id, user_id);
  if (!n.ok()) return n.error();
  if (*n == 0) return make_error(Errc::not_found, "session not found");
  IMD_TRY(D::change(c, "UPDATE refresh_token SET revoked = 1 WHERE session_id = ? AND revoked = 0",
                    session_id));
  return {};
}

template <SqlDialect D>
Result<std::vector<Id>> SqlStore<D>::create_session(const LoginSession& session,
                                                    std::uint32_t max_live) {
  return db_->write([&](Connection& c) -> Result<std::vector<Id>> {
    const Millis now = session.created_at;
    IMD_TRY(D::change(c,
                      "INSERT INTO login_session (id, user_id, created_at, last_used_at,"
                      " expires_at, ended_at, user_agent, ip) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
                      session.id, session.user_id, session.created_at, session.last_used_at,
                      session.expires_at, session.user_agent, session.ip));
    // The user's rows that no poll needs any more (ended or expired a day ago) go.
    const Millis old = now - kSessionRowsKeptMs;
    IMD_TRY(D::change(c,
                      "DELETE FROM login_session WHERE user_id = ?"
                      " AND ((ended_at > 0 AND ended_at < ?) OR (ended_at = 0 AND expires_at < ?))",
                      session.user_id, old, old));
    auto beyond = sql::all<Id>(D::query(c,
                                        "SELECT id FROM login_session"
                                        " WHERE user_id = ? AND ended_at = 0 AND expires_at > ?"
                                        " ORDER BY last_used_at DESC, id DESC LIMIT 1000 OFFSET ?",
                                        session.user_id, now, max_live),
                               sql::kFirstId);
    if (!beyond.ok()) return beyond.error();
    for (Id id : *beyond) IMD_TRY(end_session_in(c, session.user_id, id, now));
    return beyond;
  });
}

template <SqlDialect D>
Result<void> SqlStore<D>::touch_session(Id session_id, Millis now, Millis expires_at,
                                        std::string_view ip) {
  return db_->write([&](Connection& c) -> Result<void> {
    auto n = D::change(c,
                       "UPDATE login_session SET last_used_at = ?, expires_at = ?, ip = ?"
                       " WHERE id = ? AND ended_at = 0",
                       now, expires_at, std::string(ip), session_id);
    if (!n.ok()) return n.error();
    if (*n == 0) return make_error(Errc::not_found, "session not found");
    return {};
  });
}

template <SqlDialect D>
Result<std::vector<LoginSession>> SqlStore<D>::sessions_of(Id user_id, Millis now,
                                                           std::uint32_t limit) {
  return db_->read([&](Connection& c) {
    return sql::all<LoginSession>(
        D::query(c,
                 "SELECT id, user_id, created_at, last_used_at, expires_at, ended_at, user_agent,"
                 " ip FROM login_session WHERE user_id = ? AND ended_at = 0 AND expires_at > ?"
                 " ORDER BY last_used_at DESC, id DESC LIMIT ?",
                 user_id, now, limit),
        sql::kLoginSession);
  });
}

template <SqlDialect D>
Result<void> SqlStore<D>::end_session(Id user_id, Id session_id, Millis now) {
  return db_->write(
      [&](Connection& c) -> Result<void> { return end_session_in(c, user_id, session_id, now); });
}

template <SqlDialect D>
Result<std::uint64_t> SqlStore<D>::end_sessions_of(Id user_id, Millis now) {
  return db_->write([&](Connection& c) -> Result<std::uint64_t> {
    return D::change(c, "UPDATE login_session SET ended_at = ? WHERE user_id = ? AND ended_at = 0",
                     now, user_id);
  });
}

template <SqlDialect D>
Result<std::vector<EndedSession>> SqlStore<D>::sessions_ended(Millis since, std::uint32_t limit) {
  return db_->read([&](Connection& c) {
    return sql::all<EndedSession>(
        D::query(c,
                 "SELECT id, user_id, ended_at FROM login_session WHERE ended_at >= ?"
                 " ORDER BY ended_at, id LIMIT ?",
                 std::max<Millis>(since, 1), limit),
        [](const auto& r) {
          return EndedSession{
              .id = r.column_id(0), .user_id = r.column_id(1), .ended_at = r.column_int64(2)};
        });
  });
}

template <SqlDialect D>
Result<std::uint64_t> SqlStore<D>::revoke_refresh_tokens_of(Id user_id) {
  return db_->write([&](Connection& c) -> Result<std::uint64_t> {
    auto n = D::change(c, "UPDATE refresh_token SET revoked = 1 WHERE user_id = ? AND revoked = 0",
                       user_id);
    if (!n.ok()) return n.error();
    return static_cast<std::uint64_t>(*n);
  });
}

template <SqlDialect D>
Result<UserCredentials> SqlStore<D>::credentials_by_id(Id id) {
  return db_->read([&](Connection& c) {
    return sql::one<UserCredentials>(D::query(c, sql::kCredentialsById, id), sql::kCredentials,
                                     "user");
  });
}

// --- account state and administration

namespace sql {
// user_id, sessions_before, deactivated, changed_at
constexpr auto kAccountState = [](const auto& r) {
  return AccountState{.user_id = r.column_id(0),
                      .sessions_before = r.column_int64(1),
                      .deactivated = r.column_int64(2) != 0,
                      .changed_at = r.column_int64(3)};
};
constexpr std::string_view kAccountStateColumns =
    "SELECT user_id, sessions_before, deactivated, changed_at FROM account_state";
}  // namespace sql

template <SqlDialect D>
Result<AccountState> SqlStore<D>::set_account_state(Id user_id, Millis sessions_before,
                                                    std::optional<bool> deactivated,
                                                    Millis changed_at) {
  const std::int64_t flag = deactivated ? (*deactivated ? 1 : 0) : -1;  // -1: unchanged
  return db_->write([&](Connection& c) -> Result<AccountState> {
    // An update, else an insert: the same two statements in both dialects. (Two processes
    // inserting the first state of one user at once: one gets `conflict` and the caller's
    // retry updates.)
    auto n = D::change(c,
                       "UPDATE account_state SET"
                       " sessions_before = CASE WHEN sessions_before > ? THEN sessions_before"
                       " ELSE ? END,"
                       " deactivated = CASE WHEN ? < 0 THEN deactivated ELSE ? END,"
                       " changed_at = ? WHERE user_id = ?",
                       sessions_before, sessions_before, flag, flag, changed_at, user_id);
    if (!n.ok()) return n.error();
    if (*n == 0) {
      IMD_TRY(D::change(c,
                        "INSERT INTO account_state (user_id, sessions_before, deactivated,"
                        " changed_at) VALUES (?, ?, ?, ?)",
                        user_id, sessions_before, std::int64_t{flag > 0 ? 1 : 0}, changed_at));
    }
    return sql::one<AccountState>(
        D::query(c, std::string(sql::kAccountStateColumns) + " WHERE user_id = ?", user_id),
        sql::kAccountState, "account state");
  });
}

template <SqlDialect D>
Result<AccountState> SqlStore<D>::account_state(Id user_id) {
  return db_->read([&](Connection& c) {
    return sql::one<AccountState>(
        D::query(c, std::string(sql::kAccountStateColumns) + " WHERE user_id = ?", user_id),
        sql::kAccountState, "account state");
  });
}

template <SqlDialect D>
Result<std::vector<AccountState>> SqlStore<D>::account_states_changed(Millis since,
                                                                      std::uint32_t limit) {
  return db_->read([&](Connection& c) {
    return sql::all<AccountState>(
        D::query(c,
                 std::string(sql::kAccountStateColumns) +
                     " WHERE changed_at >= ? ORDER BY changed_at, user_id LIMIT ?",
                 since, limit),
        sql::kAccountState);
  });
}

template <SqlDialect D>
Result<std::vector<User>> SqlStore<D>::directory_users(Id viewer, std::string_view prefix,
                                                       std::string_view after_name, Id after_id,
                                                       bool shared_space_only,
                                                       std::uint32_t limit) {
  // Two plans, the cheaper one by the viewer's co-memberships (the members of their spaces,
  // with repeats), counted up to sql::kDirectoryByMembersBelow:
  // - fewer: read those members by the space_user keys, check each, sort them by name;
  // - else (or any user may be listed): walk the name index from the cursor. A LIKE with a
  //   constant prefix is a range of it (SQLite: user_name_nocase, the LIKE optimization;
  //   MariaDB: user_name_ci), read in (name, id) order, so no sort, and the walk stops after
  //   `limit` rows that pass the checks.
  const std::string ci(D::sql.name_ci);
  const std::string checks = " u.name LIKE ? ESCAPE '!' AND (u.name > ?" + ci + " OR (u.name = ?" +
                             ci + " AND u.id > ?)) AND u.id <> ?" +
                             " AND NOT EXISTS (SELECT 1 FROM account_state a"
                             "  WHERE a.user_id = u.id AND a.deactivated <> 0)";
  const std::string order = " ORDER BY u.name" + ci + ", u.id LIMIT ?";
  constexpr std::string_view co_members =
      "SELECT them.user_id FROM space_user me JOIN space_user them"
      " ON them.space_id = me.space_id WHERE me.user_id = ?";
  const std::string by_members =
      "SELECT u.id, u.name, u.avatar, '', u.created_at FROM (SELECT DISTINCT m.user_id AS id FROM "
      "(" +
      std::string(co_members) + ") m) cm " + std::string(D::sql.join_in_order) +
      " `user` u ON u.id = cm.id WHERE" + checks + order;
  const std::string by_name =
      "SELECT u.id, u.name, u.avatar, '', u.created_at FROM `user` u WHERE" + checks +
      " AND (? = 0 OR EXISTS (" + std::string(co_members) + " AND them.user_id = u.id))" + order;
  const std::string count = "SELECT COUNT(*) FROM (" + std::string(co_members) + " LIMIT ?) x";
  const std::string pattern = sql::like_prefix(prefix);
  return db_->read([&](Connection& c) -> Result<std::vector<User>> {
    if (shared_space_only) {
      auto n = sql::one<Id>(
          D::query(c, count, viewer, Id{sql::kDirectoryByMembersBelow}),
          [](const auto& r) { return r.column_id(0); }, "count");
      if (!n) return n.error();
      if (*n < sql::kDirectoryByMembersBelow) {
        return sql::all<User>(D::query(c, by_members, viewer, pattern, after_name, after_name,
                                       after_id, viewer, limit),
                              sql::kUser);
      }
    }
    return sql::all<User>(D::query(c, by_name, pattern, after_name, after_name, after_id, viewer,
                                   Id{shared_space_only ? 1u : 0u}, viewer, limit),
                          sql::kUser);
  });
}

template <SqlDialect D>
Result<std::vector<UserStatus>> SqlStore<D>::list_users(std::string_view name_prefix,
                                                        std::string_view phone, Id after_id,
                                                        std::uint32_t limit) {
  // A name prefix: LIKE with the pattern's own wildcards escaped, on lower() of both sides
  // (the MariaDB collation is binary). A scan in id order that stops at `limit` matches: the
  // admin API's search, not a hot path.
  const std::string pattern = sql::like_prefix(name_prefix);
  return db_->read([&](Connection& c) {
    return sql::all<UserStatus>(
        D::query(c,
                 "SELECT u.id, u.name, u.avatar, COALESCE(u.phone, ''), u.created_at,"
                 " COALESCE(a.deactivated, 0)"
                 " FROM `user` u LEFT JOIN account_state a ON a.user_id = u.id"
                 " WHERE u.id > ? AND (? = '' OR lower(u.name) LIKE lower(?) ESCAPE '!'"
                 " OR u.phone = ?) ORDER BY u.id LIMIT ?",
                 after_id, name_prefix, pattern, phone, limit),
        [](const auto& r) {
          return UserStatus{.user = rows::user(r), .deactivated = r.column_int64(5) != 0};
        });
  });
}

template <SqlDialect D>
Result<Id> SqlStore<D>::first_user_id() {
  return db_->read([&](Connection& c) {
    return sql::one<Id>(
        D::query(c, "SELECT id FROM `user` ORDER BY id LIMIT 1"),
        [](const auto& r) { return r.column_id(0); }, "user");
  });
}

template <SqlDialect D>
Result<void> SqlStore<D>::set_password_hash(Id user_id, const std::string& password_hash) {
  return db_->write([&](Connection& c) -> Result<void> {
    auto n = D::change(c, "UPDATE `user` SET password = ? WHERE id = ?", password_hash, user_id);
    if (!n.ok()) return n.error();
    if (*n == 0) return make_error(Errc::not_found, "user not found");
    return {};
  });
}

// --- spaces

template <SqlDialect D>
Result<void> SqlStore<D>::create_space(const Space& space) {
  return db_->write([&](Connection& c) -> Result<void> {
    IMD_TRY(D::change(c,
                      "INSERT INTO space (id, name, avatar, owner_id, created_at, discoverable)"
                      " VALUES (?, ?, ?, ?, ?, ?)",
                      space.id, space.name, space.avatar, space.owner_id, space.created_at,
                      Id{space.discoverable ? 1u : 0u}));
    IMD_TRY(D::change(c,
                      "INSERT INTO space_user (space_id, user_id, created_at, role)"
                      " VALUES (?, ?, ?, 2)",
                      space.id, space.owner_id, space.created_at));
    return {};
  });
}

template <SqlDialect D>
Result<Space> SqlStore<D>::space_by_id(Id id) {
  return db_->read([&](Connection& c) { return space_by_id_in(c, id); });
}

template <SqlDialect D>
Result<std::vector<Space>> SqlStore<D>::spaces_of_user(Id user_id, Id after_space_id,
                                                       std::uint32_t limit) {
  return db_->read([&](Connection& c) {
    return sql::all<Space>(
        D::query(c,
                 "SELECT s.id, s.name, s.avatar, s.owner_id, s.created_at, s.discoverable"
                 " FROM space_user su JOIN space s ON s.id = su.space_id"
                 " WHERE su.user_id = ? AND su.space_id > ? ORDER BY su.space_id LIMIT ?",
                 user_id, after_space_id, limit),
        sql::kSpace);
  });
}

template <SqlDialect D>
Result<std::uint64_t> SqlStore<D>::count(Counted what, Id id) {
  std::string_view sql;
  switch (what) {
    case Counted::spaces_owned_by:
      sql = "SELECT COUNT(*) FROM space WHERE owner_id = ?";
      break;
    case Counted::channels_in_space:
      sql = "SELECT COUNT(*) FROM space_channel WHERE space_id = ?";
      break;
    case Counted::members_in_space:
      sql = "SELECT COUNT(*) FROM space_user WHERE space_id = ?";
      break;
  }
  return db_->read([&](Connection& c) {
    return sql::one<std::uint64_t>(D::query(c, sql, id), sql::kFirstId, "count");
  });
}

template <SqlDialect D>
Result<Space> SqlStore<D>::update_space(Id id, const std::optional<std::string>& name,
                                        const std::optional<std::string>& avatar) {
  return update_profile(
      "UPDATE space SET name = COALESCE(?, name), avatar = COALESCE(?, avatar) WHERE id = ?", id,
      name, avatar, "space not found", &SqlStore::space_by_id_in);
}

template <SqlDialect D>
Result<bool> SqlStore<D>::is_space_member(Id space_id, Id user_id) {
  return db_->read([&](Connection& c) {
    return sql::exists(D::query(c, "SELECT 1 FROM space_user WHERE space_id = ? AND user_id = ?",
                                space_id, user_id));
  });
}

template <SqlDialect D>
Result<bool> SqlStore<D>::add_space_member(Id space_id, Id user_id, Millis now) {
  return db_->write([&](Connection& c) -> Result<bool> {
    auto inserted = D::change(c, D::sql.add_space_member, space_id, user_id, now);
    if (!inserted.ok()) {
      if (inserted.error().code == Errc::conflict) return false;  // already a member
      return inserted.error();
    }
    return *inserted > 0;
  });
}

template <SqlDialect D>
Result<bool> SqlStore<D>::remove_space_member(Id space_id, Id user_id) {
  return db_->write([&](Connection& c) -> Result<bool> {
    IMD_TRY(D::change(c, D::sql.leave_space_channels, space_id, user_id));
    auto removed = D::change(c, "DELETE FROM space_user WHERE space_id = ? AND user_id = ?",
                             space_id, user_id);
    if (!removed.ok()) return removed.error();
    return *removed > 0;
  });
}

template <SqlDialect D>
Result<std::vector<Member>> SqlStore<D>::space_members(Id space_id, Id after_user_id,
                                                       std::uint32_t limit) {
  return members(
      "SELECT su.user_id, u.name, u.avatar, su.created_at, su.role"
      " FROM space_user su JOIN `user` u ON u.id = su.user_id"
      " WHERE su.space_id = ? AND su.user_id > ? ORDER BY su.user_id LIMIT ?",
      space_id, after_user_id, limit);
}

// --- channels

template <SqlDialect D>
Result<void> SqlStore<D>::create_channel(const Channel& channel) {
  return db_->write([&](Connection& c) -> Result<void> {
    // The owner's space membership is checked in the same transaction as the insert: a
    // concurrent leave cannot slip between the service's check and the write.
    auto member =
        sql::exists(D::query(c, D::sql.owner_in_space, channel.space_id, channel.owner_id));
    if (!member.ok()) return member.error();
    if (!*member) {
      auto known = sql::exists(D::query(c, "SELECT 1 FROM space WHERE id = ?", channel.space_id));
      if (!known.ok()) return known.error();
      if (!*known) return make_error(Errc::not_found, "space not found");
      return make_error(Errc::forbidden, "not a member of this space");
    }
    IMD_TRY(D::change(c,
                      "INSERT INTO channel (id, name, avatar, owner_id, created_at, last_seq,"
                      " last_message_id, is_private) VALUES (?, ?, ?, ?, ?, 0, 0, ?)",
                      channel.id, channel.name, channel.avatar, channel.owner_id,
                      channel.created_at, Id{channel.is_private ? 1u : 0u}));
    IMD_TRY(D::change(c,
                      "INSERT INTO space_channel (space_id, channel_id, created_at)"
                      " VALUES (?, ?, ?)",
                      channel.space_id, channel.id, channel.created_at));
    IMD_TRY(D::change(c,
                      "INSERT INTO channel_user (channel_id, user_id, created_at) VALUES (?, ?, ?)",
                      channel.id, channel.owner_id, channel.created_at));
    return {};
  });
}

template <SqlDialect D>
Result<Channel> SqlStore<D>::channel_by_id(Id id) {
  return db_->read([&](Connection& c) { return channel_by_id_in(c, id); });
}

template <SqlDialect D>
Result<Channel> SqlStore<D>::channel_by_id_in(Connection& c, Id id) {
  return sql::one<Channel>(
      D::query(c,
               "SELECT ch.id, COALESCE(sc.space_id, 0), ch.name, ch.avatar, ch.owner_id,"
               " ch.created_at, ch.last_seq, ch.last_message_id, ch.is_private, ch.archived,"
               " ch.history_from_join"
               " FROM channel ch LEFT JOIN space_channel sc ON sc.channel_id = ch.id"
               " WHERE ch.id = ?",
               id),
      sql::kChannel, "channel");
}

template <SqlDialect D>
Result<Channel> SqlStore<D>::update_channel(Id id, const std::optional<std::string>& name,
                                            const std::optional<std::string>& avatar) {
  return update_profile(
      "UPDATE channel SET name = COALESCE(?, name), avatar = COALESCE(?, avatar) WHERE id = ?", id,
      name, avatar, "channel not found", &SqlStore::channel_by_id_in);
}

template <SqlDialect D>
Result<Channel> SqlStore<D>::set_channel_settings(Id id, std::optional<bool> archived,
                                                  std::optional<bool> history_from_join) {
  return db_->write([&](Connection& c) -> Result<Channel> {
    auto channel = channel_by_id_in(c, id);
    if (!channel.ok()) return channel;
    const bool a = archived.value_or(channel->archived);
    const bool h = history_from_join.value_or(channel->history_from_join);
    IMD_TRY(D::change(c, "UPDATE channel SET archived = ?, history_from_join = ? WHERE id = ?",
                      Id{a ? 1u : 0u}, Id{h ? 1u : 0u}, id));
    channel->archived = a;
    channel->history_from_join = h;
    return channel;
  });
}

template <SqlDialect D>
Result<DeletedChannel> SqlStore<D>::delete_channel(Id id) {
  return db_->write([&](Connection& c) -> Result<DeletedChannel> {
    auto locked = sql::exists(D::query(c, D::sql.lock_channel, id));
    if (!locked.ok()) return locked.error();
    if (!*locked) return make_error(Errc::not_found, "channel not found");
    auto channel = channel_by_id_in(c, id);
    if (!channel.ok()) return channel.error();
    auto members = sql::all<Id>(
        D::query(c, "SELECT user_id FROM channel_user WHERE channel_id = ? ORDER BY user_id", id),
        sql::kFirstId);
    if (!members.ok()) return members.error();
    // The types is_file_type (domain/attachments.hpp) names.
    auto files = sql::all<Message>(
        D::query(c,
                 "SELECT channel_id, message_id, seq, `from`, type, body, created_at, cid,"
                 " reply_to, rev, change_kind, edited_at, deleted, reactions FROM channel_message"
                 " WHERE channel_id = ? AND deleted = 0 AND type IN ('file', 'image')",
                 id),
        [](const auto& r) { return rows::channel_message(r); });
    if (!files.ok()) return files.error();
    // Mentions by their key's prefix, member by member (kind 1: a channel); a former member's
    // few rows name seqs that no longer exist.
    for (Id user : *members) {
      IMD_TRY(D::change(c, "DELETE FROM mention WHERE user_id = ? AND kind = 1 AND conv_a = ?",
                        user, id));
    }
    IMD_TRY(D::change(c, D::sql.delete_channel_cids, id));
    IMD_TRY(D::change(c, "DELETE FROM channel_message WHERE channel_id = ?", id));
    IMD_TRY(D::change(c, "DELETE FROM channel_user WHERE channel_id = ?", id));
    IMD_TRY(D::change(c, "DELETE FROM space_channel WHERE channel_id = ?", id));
    IMD_TRY(D::change(c, "DELETE FROM channel WHERE id = ?", id));
    return DeletedChannel{std::move(*channel), std::move(*members), std::move(*files)};
  });
}

template <SqlDialect D>
Result<std::vector<Channel>> SqlStore<D>::channels_of_space(Id space_id, Id after_channel_id,
                                                            std::uint32_t limit) {
  return db_->read([&](Connection& c) {
    return sql::all<Channel>(
        D::query(c,
                 "SELECT ch.id, sc.space_id, ch.name, ch.avatar, ch.owner_id,"
                 " ch.created_at, ch.last_seq, ch.last_message_id, ch.is_private, ch.archived,"
                 " ch.history_from_join"
                 " FROM space_channel sc JOIN channel ch ON ch.id = sc.channel_id"
                 " WHERE sc.space_id = ? AND sc.channel_id > ? ORDER BY sc.channel_id LIMIT ?",
                 space_id, after_channel_id, limit),
        sql::kChannel);
  });
}

template <SqlDialect D>
Result<bool> SqlStore<D>::is_channel_member(Id channel_id, Id user_id) {
  return db_->read([&](Connection& c) { return is_channel_member_in(c, channel_id, user_id); });
}

template <SqlDialect D>
Result<bool> SqlStore<D>::add_channel_member(Id channel_id, Id user_id, Millis now) {
  return db_->write([&](Connection& c) -> Result<bool> {
    // Cursors start at the channel's last_seq, read in the same statement as the insert, and
    // space membership is its condition (D::sql.add_channel_member says why that is enough).
    auto inserted = D::change(c, D::sql.add_channel_member, now, user_id, channel_id);
    if (!inserted.ok()) {
      if (inserted.error().code == Errc::conflict) return false;  // already a member
      return inserted.error();
    }
    if (*inserted > 0) return true;
    auto known = sql::exists(D::query(c, "SELECT 1 FROM channel WHERE id = ?", channel_id));
    if (!known.ok()) return known.error();
    if (!*known) return make_error(Errc::not_found, "channel not found");
    auto already = is_channel_member_in(c, channel_id, user_id);
    if (!already.ok()) return already.error();
    if (*already) return false;
    return make_error(Errc::forbidden, "not a member of the channel's space");
  });
}

template <SqlDialect D>
Result<bool> SqlStore<D>::remove_channel_member(Id channel_id, Id user_id) {
  return db_->write([&](Connection& c) -> Result<bool> {
    auto removed = D::change(c, "DELETE FROM channel_user WHERE channel_id = ? AND user_id = ?",
                             channel_id, user_id);
    if (!removed.ok()) return removed.error();
    return *removed > 0;
  });
}

template <SqlDialect D>
Result<std::vector<Member>> SqlStore<D>::channel_members(Id channel_id, Id after_user_id,
                                                         std::uint32_t limit) {
  return members(
      "SELECT cu.user_id, u.name, u.avatar, cu.created_at, NULL"
      " FROM channel_user cu JOIN `user` u ON u.id = cu.user_id"
      " WHERE cu.channel_id = ? AND cu.user_id > ? ORDER BY cu.user_id LIMIT ?",
      channel_id, after_user_id, limit);
}

template <SqlDialect D>
Result<std::uint64_t> SqlStore<D>::history_floor(Id channel_id, Id user_id) {
  return db_->read([&](Connection& c) {
    return sql::one<std::uint64_t>(
        D::query(c,
                 "SELECT CASE WHEN ch.history_from_join <> 0 THEN cu.joined_seq ELSE 0 END"
                 " FROM channel_user cu JOIN channel ch ON ch.id = cu.channel_id"
                 " WHERE cu.channel_id = ? AND cu.user_id = ?",
                 channel_id, user_id),
        sql::kFirstId, "channel member");
  });
}

template <SqlDialect D>
Result<std::vector<Id>> SqlStore<D>::channel_member_ids(Id channel_id) {
  return db_->read([&](Connection& c) {
    return sql::all<Id>(
        D::query(c, "SELECT user_id FROM channel_user WHERE channel_id = ? ORDER BY user_id",
                 channel_id),
        sql::kFirstId);
  });
}

template <SqlDialect D>
Result<void> SqlStore<D>::ping() {
  auto one = db_->read([&](Connection& c) { return sql::exists(D::query(c, "SELECT 1")); });
  if (!one) return one.error();
  return {};
}

template <SqlDialect D>
Result<Memberships> SqlStore<D>::memberships_of_user(Id user_id) {
  return db_->read([&](Connection& c) -> Result<Memberships> {
    auto known = sql::exists(D::query(c, "SELECT 1 FROM `user` WHERE id = ?", user_id));
    if (!known.ok()) return known.error();
    if (!*known) return make_error(Errc::not_found, "no such user");
    auto spaces = sql::all<Id>(
        D::query(c, "SELECT space_id FROM space_user WHERE user_id = ? ORDER BY space_id", user_id),
        sql::kFirstId);
    if (!spaces.ok()) return spaces.error();
    auto channels = sql::all<Id>(
        D::query(c, "SELECT channel_id FROM channel_user WHERE user_id = ? ORDER BY channel_id",
                 user_id),
        sql::kFirstId);
    if (!channels.ok()) return channels.error();
    return Memberships{std::move(*spaces), std::move(*channels)};
  });
}

// --- messages

template <SqlDialect D>
Result<std::vector<Result<Appended>>> SqlStore<D>::append_messages(
    std::span<const NewMessage> batch) {
  using Out = std::vector<Result<Appended>>;
  if (batch.empty()) return Out{};
  // The group commit is the dialect's own: see D::append_batch. The mentions of what it stored
  // are written in the same transaction.
  auto r = db_->write([&](Connection& c) -> Result<std::vector<Result<Appended>>> {
    auto appended = D::append_batch(c, batch);
    if (!appended.ok()) return appended;
    for (std::size_t i = 0; i < batch.size() && i < appended->size(); ++i) {
      const auto& a = (*appended)[i];
      if (!a.ok() || a->duplicate) continue;
      const ConvKey& conv = a->msg.conv;
      for (Id user : batch[i].mentions) {
        IMD_TRY(D::change(c,
                          "INSERT INTO mention (user_id, kind, conv_a, conv_b, seq)"
                          " VALUES (?, ?, ?, ?, ?)",
                          user, static_cast<Id>(conv.kind), conv.a, conv.b, a->msg.seq));
      }
    }
    return appended;
  });
  if (!r.ok()) {
    // The batch was rolled back as a whole; the queue may redeliver it.
    Error err = r.error();
    err.code = Errc::unavailable;
    return err;
  }
  return r;
}

template <SqlDialect D>
Result<std::vector<Message>> SqlStore<D>::messages(const ConvKey& conv, const HistoryQuery& q) {
  if (q.before_seq && q.after_seq) {
    return make_error(Errc::invalid_argument, "before_seq and after_seq are exclusive");
  }
  if (!conv.is_channel() && !sql::valid_dm(conv)) return sql::bad_conv();
  const std::uint32_t limit = std::clamp<std::uint32_t>(q.limit, 1, sql::kMaxHistoryPage);
  const int shape = q.before_seq ? 0 : q.after_seq ? 1 : 2;
  const sql::Bound bound{q.before_seq ? *q.before_seq : q.after_seq.value_or(0)};
  return db_->read([&](Connection& c) -> Result<std::vector<Message>> {
    auto found =
        conv.is_channel()
            ? (shape == 2 ? D::query(c, sql::kChannelHistory[2], conv.a, limit)
                          : D::query(c, sql::kChannelHistory[shape], conv.a, bound, limit))
            : (shape == 2 ? D::query(c, sql::kDmHistory[2], conv.a, conv.b, limit)
                          : D::query(c, sql::kDmHistory[shape], conv.a, conv.b, bound, limit));
    auto page = sql::all<Message>(
        std::move(found),
        [&](const auto& r) {
          return conv.is_channel() ? rows::channel_message(r) : rows::dm_message(r);
        },
        limit);
    if (page.ok() && !q.after_seq) std::reverse(page->begin(), page->end());
    return page;
  });
}

template <SqlDialect D>
Result<Message> SqlStore<D>::message_by_id(Id id) {
  return db_->read(
      [&](Connection& c) { return sql::message_by_id_in<D>(c, id, ConvKind::channel); });
}

template <SqlDialect D>
Result<std::vector<Result<Changed>>> SqlStore<D>::change_messages(
    std::span<const NewMessage> batch) {
  std::vector<Result<Changed>> out;
  out.reserve(batch.size());
  for (const NewMessage& nm : batch) {
    auto r = db_->write([&](Connection& c) { return change_in(c, nm); });
    if (!r.ok()) {
      Error err = r.error();
      err.code = Errc::unavailable;
      return err;
    }
    out.push_back(std::move(*r));
  }
  return out;
}

template <SqlDialect D>
Result<Result<Changed>> SqlStore<D>::change_in(Connection& c, const NewMessage& nm) {
  using Out = Result<Changed>;
  const Message& in = nm.msg;
  const bool channel = in.conv.is_channel();
  if (nm.change != Change::edit && nm.change != Change::erase && nm.change != Change::react) {
    return Out(make_error(Errc::invalid_argument, "not a message change"));
  }
  if (!channel && !sql::valid_dm(in.conv)) return Out(sql::bad_conv());
  auto found = sql::message_by_id_in<D>(c, in.id, in.conv.kind);
  if (!found.ok()) {
    if (found.error().code != Errc::not_found) return found.error();
    return Out(found.error());
  }
  Message m = std::move(*found);
  if (m.conv != in.conv) return Out(make_error(Errc::not_found, "message not found"));
  auto last_change = sql::one<Id>(
      channel
          ? D::query(c, "SELECT change_id FROM channel_message WHERE channel_id = ? AND seq = ?",
                     m.conv.a, m.seq)
          : D::query(c, "SELECT change_id FROM message WHERE user_a = ? AND user_b = ? AND seq = ?",
                     m.conv.a, m.conv.b, m.seq),
      sql::kFirstId, "message");
  if (!last_change.ok()) return last_change.error();
  if (nm.change_id != 0 && *last_change == nm.change_id) {
    return Out(Changed{.msg = std::move(m), .duplicate = true});
  }
  if (m.deleted) return Out(make_error(Errc::not_found, "message deleted"));
  // An archived channel is read-only; a delete still goes (its sender's, or moderation).
  if (channel && nm.change != Change::erase) {
    auto archived =
        sql::exists(D::query(c, "SELECT 1 FROM channel WHERE id = ? AND archived <> 0", m.conv.a));
    if (!archived.ok()) return archived.error();
    if (*archived) return Out(sql::archived_channel());
  }
  if (nm.change == Change::react) {
    // Read again, locked (D::sql says how): another writer's reaction is not lost.
    auto text = sql::one<std::string>(
        channel ? D::query(c, D::sql.channel_reactions, m.conv.a, m.seq)
                : D::query(c, D::sql.dm_reactions, m.conv.a, m.conv.b, m.seq),
        [](const auto& r) { return r.column_text(0); }, "message");
    if (!text.ok()) return text.error();
    m.reactions = rows::reactions_from_text(*text);
    auto toggled = sql::toggle_reaction(m.reactions, in.body, in.from, nm.react_on);
    if (!toggled.ok()) return Out(toggled.error());
    // Nothing to change (already there, or not there to take back): nothing written.
    if (!*toggled) return Out(Changed{.msg = std::move(m), .duplicate = true});
  } else if (m.from != in.from) {
    // Someone else's message: only an erase in a channel, by an owner or admin of its space,
    // checked in this transaction (a role taken away meanwhile counts).
    bool moderator = false;
    if (nm.change == Change::erase && channel) {
      auto role = sql::one<std::int64_t>(
          D::query(c,
                   "SELECT su.role FROM space_channel sc JOIN space_user su"
                   " ON su.space_id = sc.space_id AND su.user_id = ? WHERE sc.channel_id = ?",
                   in.from, m.conv.a),
          [](const auto& r) { return r.column_int64(0); }, "member");
      if (!role.ok() && role.error().code != Errc::not_found) return role.error();
      moderator = role.ok() && *role >= static_cast<std::int64_t>(SpaceRole::admin);
    }
    if (!moderator) return Out(make_error(Errc::forbidden, "not your message"));
  }

  // The conversation's row is locked by its UPDATE until the commit: revs are handed out in
  // commit order.
  IMD_TRY(channel
              ? D::change(c, "UPDATE channel SET last_rev = last_rev + 1 WHERE id = ?", m.conv.a)
              : D::change(c,
                          "UPDATE dm SET last_rev = last_rev + 1 WHERE user_a = ? AND user_b = ?",
                          m.conv.a, m.conv.b));
  auto rev =
      sql::one<Id>(channel ? D::query(c, "SELECT last_rev FROM channel WHERE id = ?", m.conv.a)
                           : D::query(c, "SELECT last_rev FROM dm WHERE user_a = ? AND user_b = ?",
                                      m.conv.a, m.conv.b),
                   sql::kFirstId, "conversation");
  if (!rev.ok()) return rev.error();
  m.rev = *rev;
  m.change = nm.change;
  if (nm.change == Change::edit) {
    m.body = in.body;
    m.edited_at = in.created_at;
  } else if (nm.change == Change::erase) {
    // A tombstone: the text and the reactions go.
    m.body.clear();
    m.reactions.clear();
    m.deleted = true;
  }
  const Id kind = static_cast<Id>(m.change);
  const Id deleted = m.deleted ? 1 : 0;
  const std::string reactions = rows::reactions_to_text(m.reactions);
  IMD_TRY(channel ? D::change(c,
                              "UPDATE channel_message SET body = ?, edited_at = ?, deleted = ?,"
                              " reactions = ?, rev = ?, change_kind = ?, change_id = ?"
                              " WHERE channel_id = ? AND seq = ?",
                              m.body, m.edited_at, deleted, reactions, m.rev, kind, nm.change_id,
                              m.conv.a, m.seq)
                  : D::change(c,
                              "UPDATE message SET body = ?, edited_at = ?, deleted = ?,"
                              " reactions = ?, rev = ?, change_kind = ?, change_id = ?"
                              " WHERE user_a = ? AND user_b = ? AND seq = ?",
                              m.body, m.edited_at, deleted, reactions, m.rev, kind, nm.change_id,
                              m.conv.a, m.conv.b, m.seq));
  return Out(Changed{.msg = std::move(m), .duplicate = false});
}

template <SqlDialect D>
Result<std::vector<Message>> SqlStore<D>::changes(const ConvKey& conv, const ChangeQuery& q) {
  if (!conv.is_channel() && !sql::valid_dm(conv)) return sql::bad_conv();
  const std::uint32_t limit = std::clamp<std::uint32_t>(q.limit, 1, sql::kMaxHistoryPage);
  const sql::Bound after_rev{q.after_rev}, up_to_rev{q.up_to_rev}, after_seq{q.after_seq},
      up_to_seq{q.up_to_seq};
  return db_->read([&](Connection& c) {
    return sql::all<Message>(
        conv.is_channel() ? D::query(c, sql::kChannelChanges, conv.a, after_rev, up_to_rev,
                                     after_seq, up_to_seq, limit)
                          : D::query(c, sql::kDmChanges, conv.a, conv.b, after_rev, up_to_rev,
                                     after_seq, up_to_seq, limit),
        [&](const auto& r) {
          return conv.is_channel() ? rows::channel_message(r) : rows::dm_message(r);
        },
        limit);
  });
}

template <SqlDialect D>
Result<std::uint64_t> SqlStore<D>::advance_delivery(Id user_id, const ConvKey& conv,
                                                    std::uint64_t seq) {
  return db_->write([&](Connection& c) {
    return advance_cursor(c, user_id, conv, seq, sql::CursorKind::delivery);
  });
}

template <SqlDialect D>
Result<std::uint64_t> SqlStore<D>::advance_read(Id user_id, const ConvKey& conv,
                                                std::uint64_t seq) {
  return db_->write(
      [&](Connection& c) { return advance_cursor(c, user_id, conv, seq, sql::CursorKind::read); });
}

template <SqlDialect D>
Result<std::uint64_t> SqlStore<D>::advance_cursor(Connection& c, Id user_id, const ConvKey& conv,
                                                  std::uint64_t seq, sql::CursorKind kind) {
  const bool channel = conv.is_channel();
  if (!channel && !sql::valid_dm(conv)) return sql::bad_conv();
  if (!channel && !conv.has_participant(user_id)) {
    return make_error(Errc::forbidden, "not a participant of this conversation");
  }
  const Id peer_id = channel ? 0 : conv.peer_of(user_id);
  struct Row {
    std::uint64_t ack, read, last;
  };
  auto map = [](const auto& r) { return Row{r.column_id(0), r.column_id(1), r.column_id(2)}; };
  // The conversation's row is read without a lock (D::write_cursor says why that is safe).
  auto row = channel ? sql::one<Row>(D::query(c,
                                              "SELECT cu.last_ack_seq, cu.read_seq, ch.last_seq"
                                              " FROM channel_user cu"
                                              " JOIN channel ch ON ch.id = cu.channel_id"
                                              " WHERE cu.channel_id = ? AND cu.user_id = ?",
                                              conv.a, user_id),
                                     map, "member")
                     : sql::one<Row>(D::query(c,
                                              "SELECT du.last_ack_seq, du.read_seq, d.last_seq"
                                              " FROM dm_user du"
                                              " JOIN dm d ON d.user_a = ? AND d.user_b = ?"
                                              " WHERE du.user_id = ? AND du.peer_id = ?",
                                              conv.a, conv.b, user_id, peer_id),
                                     map, "member");
  if (!row.ok()) {
    if (row.error().code != Errc::not_found) return row.error();
    return make_error(Errc::forbidden, channel ? "not a member of this channel"
                                               : "no message exchanged in this conversation yet");
  }
  const std::uint64_t before = kind == sql::CursorKind::delivery ? row->ack : row->read;
  const std::uint64_t target = std::min(seq, row->last);
  if (target <= before) return before;
  if (kind == sql::CursorKind::read) {
    // Mentions up to the read marker no longer count: they go (a range of the key).
    IMD_TRY(D::change(c,
                      "DELETE FROM mention WHERE user_id = ? AND kind = ? AND conv_a = ?"
                      " AND conv_b = ? AND seq <= ?",
                      user_id, static_cast<Id>(conv.kind), conv.a, conv.b, sql::Bound{target}));
  }
  return D::write_cursor(
      c, sql::CursorWrite{
             .conv = conv, .user = user_id, .peer = peer_id, .kind = kind, .target = target});
}

template <SqlDialect D>
Result<std::vector<ConversationState>> SqlStore<D>::conversations(Id user_id) {
  return db_->read([&](Connection& c) -> Result<std::vector<ConversationState>> {
    // The last message is the row at seq = last_seq: one primary-key probe per conversation.
    auto out = sql::all<ConversationState>(
        D::query(c,
                 "SELECT ch.id, COALESCE(sc.space_id, 0), ch.name, ch.avatar, ch.last_seq,"
                 " cu.read_seq, cu.last_ack_seq,"
                 " m.channel_id, m.message_id, m.seq, m.`from`, m.type, m.body, m.created_at,"
                 " m.cid, m.reply_to, m.rev, m.change_kind, m.edited_at, m.deleted, m.reactions, "
                 "ch.last_rev,"
                 // The member's own rows plus the channel's @channel rows (user 0): two
                 // ranges of the key (an IN of both reads as a scan to MariaDB's planner).
                 " (SELECT COUNT(*) FROM mention mn WHERE mn.user_id = cu.user_id"
                 "  AND mn.kind = 1 AND mn.conv_a = cu.channel_id AND mn.conv_b = 0"
                 "  AND mn.seq > cu.read_seq)"
                 " + (SELECT COUNT(*) FROM mention ma WHERE ma.user_id = 0"
                 "  AND ma.kind = 1 AND ma.conv_a = cu.channel_id AND ma.conv_b = 0"
                 "  AND ma.seq > cu.read_seq),"
                 " CASE WHEN ch.history_from_join <> 0 THEN cu.joined_seq ELSE 0 END"
                 " FROM channel_user cu"
                 " JOIN channel ch ON ch.id = cu.channel_id"
                 " LEFT JOIN space_channel sc ON sc.channel_id = ch.id"
                 " LEFT JOIN channel_message m ON m.channel_id = ch.id AND m.seq = ch.last_seq"
                 " WHERE cu.user_id = ? ORDER BY cu.channel_id",
                 user_id),
        [](const auto& r) {
          auto st = sql::conversation_row(
              r, ConvKey::channel(r.column_id(0)), r.column_id(1), 21,
              [](const auto& m, int col) { return rows::channel_message(m, col); });
          st.history_floor = r.column_id(23);
          // Nothing after the member's floor yet: no last message to show them.
          if (st.last && st.last->seq <= st.history_floor) st.last.reset();
          return st;
        });
    if (!out.ok()) return out.error();
    auto dms = sql::all<ConversationState>(
        D::query(c, D::sql.dm_conversations, user_id), [](const auto& r) {
          return sql::conversation_row(
              r, ConvKey{ConvKind::dm, r.column_id(0), r.column_id(1)}, 0, 23,
              [](const auto& m, int col) { return rows::dm_message(m, col); });
        });
    if (!dms.ok()) return dms.error();
    for (auto& st : *dms) out->push_back(std::move(st));
    return out;
  });
}

// --- access: roles, discoverable spaces, invitations, bans, blocks

namespace sql {
// (space_id, now, limit): the space's usable invitations, newest first.
inline constexpr std::string_view kSpaceInvites =
    "SELECT code, space_id, created_by, created_at, expires_at, max_uses, uses FROM space_invite"
    " WHERE space_id = ? AND expires_at > ? AND uses < max_uses ORDER BY created_at DESC LIMIT ?";
// (code, now): the invitation while it is usable.
inline constexpr std::string_view kUsableInvite =
    "SELECT code, space_id, created_by, created_at, expires_at, max_uses, uses FROM space_invite"
    " WHERE code = ? AND expires_at > ? AND uses < max_uses";
constexpr auto kInvite = [](const auto& r) { return rows::invite(r); };
}  // namespace sql

template <SqlDialect D>
Result<SpaceRole> SqlStore<D>::space_role(Id space_id, Id user_id) {
  return db_->read([&](Connection& c) {
    return sql::one<SpaceRole>(
        D::query(c, "SELECT role FROM space_user WHERE space_id = ? AND user_id = ?", space_id,
                 user_id),
        [](const auto& r) { return rows::space_role(r.column_int64(0)); }, "member");
  });
}

template <SqlDialect D>
Result<bool> SqlStore<D>::set_space_role(Id space_id, Id user_id, SpaceRole role) {
  if (role == SpaceRole::owner) {
    return make_error(Errc::invalid_argument, "ownership moves by transfer_space only");
  }
  return write_changed(
      "UPDATE space_user SET role = ? WHERE space_id = ? AND user_id = ? AND role <> 2",
      static_cast<Id>(role), space_id, user_id);
}

template <SqlDialect D>
Result<Space> SqlStore<D>::transfer_space(Id space_id, Id from, Id to) {
  return db_->write([&](Connection& c) -> Result<Space> {
    // The new owner's row is locked by its update: a concurrent removal waits for the commit.
    auto promoted = changed_any(
        c, "UPDATE space_user SET role = 2 WHERE space_id = ? AND user_id = ?", space_id, to);
    if (!promoted.ok()) return promoted.error();
    if (!*promoted) return make_error(Errc::forbidden, "the new owner must be a member");
    auto moved = changed_any(c, "UPDATE space SET owner_id = ? WHERE id = ? AND owner_id = ?", to,
                             space_id, from);
    if (!moved.ok()) return moved.error();
    if (!*moved) return make_error(Errc::conflict, "not the owner of this space");
    IMD_TRY(D::change(c, "UPDATE space_user SET role = 1 WHERE space_id = ? AND user_id = ?",
                      space_id, from));
    return space_by_id_in(c, space_id);
  });
}

template <SqlDialect D>
Result<Space> SqlStore<D>::set_space_discoverable(Id space_id, bool discoverable) {
  return db_->write([&](Connection& c) -> Result<Space> {
    auto updated = changed_any(c, "UPDATE space SET discoverable = ? WHERE id = ?",
                               Id{discoverable ? 1u : 0u}, space_id);
    if (!updated.ok()) return updated.error();
    if (!*updated) return make_error(Errc::not_found, "space not found");
    return space_by_id_in(c, space_id);
  });
}

// A page of spaces in id order; `sql` selects them (the columns kSpace reads, `id > ?` and
// `LIMIT ?` as its two parameters).
template <SqlDialect D>
Result<std::vector<Space>> SqlStore<D>::space_page(std::string_view sql, Id after_space_id,
                                                   std::uint32_t limit) {
  return db_->read([&](Connection& c) {
    return sql::all<Space>(D::query(c, sql, sql::Bound{after_space_id}, limit), sql::kSpace, limit);
  });
}

template <SqlDialect D>
Result<std::vector<Space>> SqlStore<D>::discoverable_spaces(Id after_space_id,
                                                            std::uint32_t limit) {
  return space_page(
      "SELECT id, name, avatar, owner_id, created_at, discoverable FROM space"
      " WHERE discoverable = 1 AND id > ? ORDER BY id LIMIT ?",
      after_space_id, limit);
}

template <SqlDialect D>
Result<std::vector<Space>> SqlStore<D>::all_spaces(Id after_space_id, std::uint32_t limit) {
  return space_page(
      "SELECT id, name, avatar, owner_id, created_at, discoverable FROM space"
      " WHERE id > ? ORDER BY id LIMIT ?",
      after_space_id, limit);
}

template <SqlDialect D>
Result<InviteOutcome> SqlStore<D>::join_unless_banned(Id space_id, Id user_id, Millis now) {
  return db_->write([&](Connection& c) -> Result<InviteOutcome> {
    auto banned = is_banned_in(c, space_id, user_id);
    if (!banned.ok()) return banned.error();
    if (*banned) return InviteOutcome::banned;
    auto inserted = D::change(c, D::sql.add_space_member, space_id, user_id, now);
    if (!inserted.ok()) {
      if (inserted.error().code == Errc::conflict) return InviteOutcome::already_member;
      return inserted.error();
    }
    return *inserted > 0 ? InviteOutcome::joined : InviteOutcome::already_member;
  });
}

template <SqlDialect D>
Result<void> SqlStore<D>::create_invite(const Invite& invite) {
  return db_->write([&](Connection& c) -> Result<void> {
    IMD_TRY(D::change(c,
                      "INSERT INTO space_invite"
                      " (code, space_id, created_by, created_at, expires_at, max_uses, uses)"
                      " VALUES (?, ?, ?, ?, ?, ?, 0)",
                      invite.code, invite.space_id, invite.created_by, invite.created_at,
                      invite.expires_at, invite.max_uses));
    return {};
  });
}

template <SqlDialect D>
Result<std::vector<Invite>> SqlStore<D>::invites_of_space(Id space_id, Millis now,
                                                          std::uint32_t limit) {
  return db_->read([&](Connection& c) {
    return sql::all<Invite>(D::query(c, sql::kSpaceInvites, space_id, now, limit), sql::kInvite);
  });
}

template <SqlDialect D>
Result<Invite> SqlStore<D>::usable_invite(std::string_view code, Millis now) {
  return db_->read([&](Connection& c) {
    return sql::one<Invite>(D::query(c, sql::kUsableInvite, code, now), sql::kInvite, "invitation");
  });
}

template <SqlDialect D>
Result<bool> SqlStore<D>::revoke_invite(Id space_id, std::string_view code) {
  return write_changed("DELETE FROM space_invite WHERE space_id = ? AND code = ?", space_id, code);
}

template <SqlDialect D>
Result<AcceptedInvite> SqlStore<D>::accept_invite(std::string_view code, Id user_id, Millis now) {
  return db_->write([&](Connection& c) -> Result<AcceptedInvite> {
    auto invite =
        sql::one<Invite>(D::query(c, sql::kUsableInvite, code, now), sql::kInvite, "invitation");
    if (!invite.ok()) return invite.error();
    AcceptedInvite out{.space_id = invite->space_id, .outcome = InviteOutcome::already_member};
    auto member = is_space_member_in(c, out.space_id, user_id);
    if (!member.ok()) return member.error();
    if (*member) return out;
    auto banned = is_banned_in(c, out.space_id, user_id);
    if (!banned.ok()) return banned.error();
    if (*banned) {
      out.outcome = InviteOutcome::banned;
      return out;
    }
    // The use is taken by a conditional update of the latest row version: of two accepts of a
    // last use, the second matches nothing.
    auto used = changed_any(
        c, "UPDATE space_invite SET uses = uses + 1 WHERE code = ? AND uses < max_uses", code);
    if (!used.ok()) return used.error();
    if (!*used) return make_error(Errc::not_found, "invitation not found");
    auto inserted = D::change(c, D::sql.add_space_member, out.space_id, user_id, now);
    if (!inserted.ok() || *inserted == 0) {
      // A concurrent join won: roll the use back with the rest (conflict), the caller retries.
      return inserted.ok() ? make_error(Errc::conflict, "joined meanwhile") : inserted.error();
    }
    out.outcome = InviteOutcome::joined;
    return out;
  });
}

template <SqlDialect D>
Result<bool> SqlStore<D>::ban_space_member(Id space_id, Id user_id, Id by, Millis now) {
  return db_->write([&](Connection& c) -> Result<bool> {
    auto ban = D::change(c,
                         "INSERT INTO space_ban (space_id, user_id, banned_by, created_at)"
                         " VALUES (?, ?, ?, ?)",
                         space_id, user_id, by, now);
    if (!ban.ok() && ban.error().code != Errc::conflict) return ban.error();  // conflict: banned
    IMD_TRY(D::change(c, D::sql.leave_space_channels, space_id, user_id));
    return changed_any(c, "DELETE FROM space_user WHERE space_id = ? AND user_id = ?", space_id,
                       user_id);
  });
}

template <SqlDialect D>
Result<bool> SqlStore<D>::unban_space_member(Id space_id, Id user_id) {
  return write_changed("DELETE FROM space_ban WHERE space_id = ? AND user_id = ?", space_id,
                       user_id);
}

template <SqlDialect D>
Result<std::vector<Member>> SqlStore<D>::space_bans(Id space_id, Id after_user_id,
                                                    std::uint32_t limit) {
  return members(
      "SELECT b.user_id, u.name, u.avatar, b.created_at, NULL"
      " FROM space_ban b JOIN `user` u ON u.id = b.user_id"
      " WHERE b.space_id = ? AND b.user_id > ? ORDER BY b.user_id LIMIT ?",
      space_id, after_user_id, limit);
}

template <SqlDialect D>
Result<bool> SqlStore<D>::block_user(Id user_id, Id blocked_id, Millis now) {
  return insert_new("INSERT INTO user_block (user_id, blocked_id, created_at) VALUES (?, ?, ?)",
                    user_id, blocked_id, now);
}

template <SqlDialect D>
Result<bool> SqlStore<D>::unblock_user(Id user_id, Id blocked_id) {
  return write_changed("DELETE FROM user_block WHERE user_id = ? AND blocked_id = ?", user_id,
                       blocked_id);
}

template <SqlDialect D>
Result<std::vector<Blocked>> SqlStore<D>::blocks_of(Id user_id, Id after_user_id,
                                                    std::uint32_t limit) {
  return db_->read([&](Connection& c) {
    return sql::all<Blocked>(
        D::query(c,
                 "SELECT b.blocked_id, u.name, b.created_at"
                 " FROM user_block b JOIN `user` u ON u.id = b.blocked_id"
                 " WHERE b.user_id = ? AND b.blocked_id > ? ORDER BY b.blocked_id LIMIT ?",
                 user_id, sql::Bound{after_user_id}, limit),
        [](const auto& r) {
          return Blocked{
              .user_id = r.column_id(0), .name = r.column_text(1), .blocked_at = r.column_int64(2)};
        },
        limit);
  });
}

template <SqlDialect D>
Result<DmPolicy> SqlStore<D>::dm_policy(Id from, Id to) {
  const ConvKey dm = ConvKey::dm(from, to);
  return db_->read([&](Connection& c) {
    // Four primary-key probes; the shared space walks `from`'s spaces (space_user_by_user).
    return sql::one<DmPolicy>(
        D::query(c,
                 "SELECT EXISTS (SELECT 1 FROM user_block WHERE user_id = ? AND blocked_id = ?),"
                 " EXISTS (SELECT 1 FROM user_block WHERE user_id = ? AND blocked_id = ?),"
                 " EXISTS (SELECT 1 FROM space_user a JOIN space_user b"
                 "  ON b.space_id = a.space_id AND b.user_id = ? WHERE a.user_id = ?),"
                 " EXISTS (SELECT 1 FROM dm WHERE user_a = ? AND user_b = ?)",
                 to, from, from, to, to, from, dm.a, dm.b),
        [](const auto& r) {
          return DmPolicy{.blocked_by_peer = r.column_int64(0) != 0,
                          .blocked_peer = r.column_int64(1) != 0,
                          .shares_space = r.column_int64(2) != 0,
                          .has_conversation = r.column_int64(3) != 0};
        },
        "policy");
  });
}

template <SqlDialect D>
Result<std::vector<Id>> SqlStore<D>::visible_users(Id viewer, std::span<const Id> users) {
  return db_->read([&](Connection& c) -> Result<std::vector<Id>> {
    std::vector<Id> out;
    for (Id u : users) {
      if (u == viewer) {
        out.push_back(u);
        continue;
      }
      const ConvKey dm = ConvKey::dm(viewer, u);
      auto seen = sql::one<bool>(
          D::query(c,
                   "SELECT EXISTS (SELECT 1 FROM space_user a JOIN space_user b"
                   "  ON b.space_id = a.space_id AND b.user_id = ? WHERE a.user_id = ?)"
                   " OR EXISTS (SELECT 1 FROM dm WHERE user_a = ? AND user_b = ?)",
                   u, viewer, dm.a, dm.b),
          [](const auto& r) { return r.column_int64(0) != 0; }, "visibility");
      if (!seen) return seen.error();
      if (*seen) out.push_back(u);
    }
    return out;
  });
}

template <SqlDialect D>
Result<bool> SqlStore<D>::read_receipts(Id user_id) {
  return db_->read([&](Connection& c) {
    return sql::one<bool>(
        D::query(c, "SELECT read_receipts FROM `user` WHERE id = ?", user_id),
        [](const auto& r) { return r.column_int64(0) != 0; }, "user");
  });
}

template <SqlDialect D>
Result<void> SqlStore<D>::set_read_receipts(Id user_id, bool on) {
  return db_->write([&](Connection& c) -> Result<void> {
    IMD_TRY(D::change(c, "UPDATE `user` SET read_receipts = ? WHERE id = ?",
                      std::int64_t{on ? 1 : 0}, user_id));
    auto known = sql::exists(D::query(c, "SELECT 1 FROM `user` WHERE id = ?", user_id));
    if (!known.ok()) return known.error();
    if (!*known) return make_error(Errc::not_found, "user not found");
    return {};
  });
}

template <SqlDialect D>
Result<bool> SqlStore<D>::receipts_between(Id a, Id b) {
  return db_->read([&](Connection& c) {
    return sql::one<bool>(
        D::query(c, "SELECT COUNT(*) FROM `user` WHERE id IN (?, ?) AND read_receipts <> 0", a, b),
        [a, b](const auto& r) { return r.column_int64(0) == (a == b ? 1 : 2); }, "users");
  });
}

template <SqlDialect D>
Result<std::vector<Channel>> SqlStore<D>::visible_channels_of_space(Id space_id, Id viewer,
                                                                    Id after_channel_id,
                                                                    std::uint32_t limit) {
  return db_->read([&](Connection& c) {
    return sql::all<Channel>(
        D::query(c,
                 "SELECT ch.id, sc.space_id, ch.name, ch.avatar, ch.owner_id,"
                 " ch.created_at, ch.last_seq, ch.last_message_id, ch.is_private, ch.archived,"
                 " ch.history_from_join"
                 " FROM space_channel sc JOIN channel ch ON ch.id = sc.channel_id"
                 " WHERE sc.space_id = ? AND sc.channel_id > ? AND (ch.is_private = 0 OR EXISTS"
                 " (SELECT 1 FROM channel_user cu WHERE cu.channel_id = ch.id AND cu.user_id = ?))"
                 " ORDER BY sc.channel_id LIMIT ?",
                 space_id, after_channel_id, viewer, limit),
        sql::kChannel);
  });
}

template <SqlDialect D>
Result<bool> SqlStore<D>::is_space_member_in(Connection& c, Id space_id, Id user_id) {
  return sql::exists(D::query(c, "SELECT 1 FROM space_user WHERE space_id = ? AND user_id = ?",
                              space_id, user_id));
}

template <SqlDialect D>
Result<bool> SqlStore<D>::is_banned_in(Connection& c, Id space_id, Id user_id) {
  return sql::exists(D::query(c, D::sql.banned_from_space, space_id, user_id));
}

template <SqlDialect D>
template <class... Args>
Result<bool> SqlStore<D>::changed_any(Connection& c, std::string_view text, const Args&... args) {
  auto n = D::change(c, text, args...);
  if (!n.ok()) return n.error();
  return *n > 0;
}

template <SqlDialect D>
template <class... Args>
Result<bool> SqlStore<D>::write_changed(std::string_view text, const Args&... args) {
  return db_->write([&](Connection& c) { return changed_any(c, text, args...); });
}

template <SqlDialect D>
template <class... Args>
Result<bool> SqlStore<D>::insert_new(std::string_view text, const Args&... args) {
  return db_->write([&](Connection& c) -> Result<bool> {
    auto n = D::change(c, text, args...);
    if (!n.ok()) {
      if (n.error().code == Errc::conflict) return false;
      return n.error();
    }
    return *n > 0;
  });
}

// --- shared pieces of the methods above

template <SqlDialect D>
Result<User> SqlStore<D>::user_by_id_in(Connection& c, Id id) {
  return sql::one<User>(
      D::query(c,
               "SELECT id, name, avatar, COALESCE(phone, ''), created_at FROM `user` WHERE id = ?",
               id),
      sql::kUser, "user");
}

template <SqlDialect D>
Result<Space> SqlStore<D>::space_by_id_in(Connection& c, Id id) {
  return sql::one<Space>(
      D::query(
          c, "SELECT id, name, avatar, owner_id, created_at, discoverable FROM space WHERE id = ?",
          id),
      sql::kSpace, "space");
}

template <SqlDialect D>
Result<bool> SqlStore<D>::is_channel_member_in(Connection& c, Id channel_id, Id user_id) {
  return sql::exists(D::query(c, "SELECT 1 FROM channel_user WHERE channel_id = ? AND user_id = ?",
                              channel_id, user_id));
}

template <SqlDialect D>
template <class T>
Result<T> SqlStore<D>::update_profile(std::string_view update, Id id,
                                      const std::optional<std::string>& name,
                                      const std::optional<std::string>& avatar,
                                      std::string_view missing,
                                      Result<T> (*read_back)(Connection&, Id)) {
  return db_->write([&](Connection& c) -> Result<T> {
    // The row is read back in the same transaction (MariaDB has no UPDATE ... RETURNING).
    auto updated = D::change(c, update, name, avatar, id);
    if (!updated.ok()) return updated.error();
    if (*updated == 0) return make_error(Errc::not_found, std::string(missing));
    return read_back(c, id);
  });
}

template <SqlDialect D>
Result<std::vector<Member>> SqlStore<D>::members(std::string_view text, Id group_id,
                                                 Id after_user_id, std::uint32_t limit) {
  return db_->read([&](Connection& c) {
    return sql::all<Member>(D::query(c, text, group_id, sql::Bound{after_user_id}, limit),
                            sql::kMember);
  });
}

}  // namespace imd
