// SqlStore<D>: the Store port (domain/ports/store.hpp) written once for both SQL engines.
// SqliteStore (src/store) is SqlStore<SqliteDialect> plus its history row cache and its
// one-transaction delivery ACKs; MysqlStore (src/store_mysql) is SqlStore<MysqlDialect>.
//
// Where a method's SQL is: in its body (sql_store_impl.hpp) when both engines take the same
// text, else in the dialect's table (D::sql, dialect_sql.hpp, both dialects side by side).
// What the engines do differently beyond SQL text is the dialect's own code, behind the
// SqlDialect concept below: the group commit of append_messages and the cursor write.
//
// Thread-safe and blocking, as the port says: every write is one transaction of the engine
// (D::Database::write), every read runs on a read connection (D::Database::read). Errors:
// not_found, conflict, forbidden, invalid_argument as the port says; unavailable for an engine
// failure. Never throws.
//
// Choices the port leaves open, the same on both engines:
// - An empty phone is stored as NULL: several users may have none, user_by_phone("") finds no
//   one. An empty cid opts a message out of de-duplication.
// - create_channel ignores Channel::last_seq/last_message_id: a new channel starts at 0.
// - revoke_refresh_token of an unknown hash is not_found; of a revoked one, ok.
// - messages() with both before_seq and after_seq is invalid_argument; an unknown
//   conversation has no messages (an empty page, not not_found).
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/ports/store.hpp"
#include "store_sql/dialect_sql.hpp"

namespace imd {

namespace sql {

constexpr std::uint32_t kMaxHistoryPage = 100;

// A range bound to bind (a seq, a keyset cursor): SQLite clamps it to its int64 maximum
// ("above everything"), MariaDB binds the unsigned value as it is.
struct Bound {
  std::uint64_t value = 0;
};

enum class CursorKind { delivery, read };

// The update that advance_cursor leaves to the dialect: the member's cursor row exists and
// `target` is above the cursor read in this transaction and at most the conversation's
// last_seq. The dialect returns the cursor as stored after its update.
struct CursorWrite {
  ConvKey conv;
  Id user = 0;
  Id peer = 0;  // a DM's other participant
  CursorKind kind = CursorKind::delivery;
  std::uint64_t target = 0;
};

inline bool valid_dm(const ConvKey& conv) {
  return conv.is_dm() && conv.a != 0 && conv.a < conv.b;
}

// A message append_messages may store: a channel message, or a DM of one of its participants.
inline bool valid_target(const Message& m) {
  return m.conv.is_dm() ? valid_dm(m.conv) && m.conv.has_participant(m.from)
                        : m.conv.is_channel() && m.conv.a != 0;
}

inline Error bad_conv() {
  return make_error(Errc::invalid_argument, "invalid conversation key");
}

// A send or an edit into an archived channel (append_messages, change_messages).
inline Error archived_channel() {
  return make_error(Errc::forbidden, "this channel is archived: it is read-only");
}

inline std::optional<std::string> null_if_empty(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

// --- reading the rows of a query: `rows` is what D::query returned

// Every row mapped by map; `expected` rows (e.g. a page's limit) are reserved up front.
template <class T, class Rows, class F>
Result<std::vector<T>> all(Result<Rows>&& rows, F&& map, std::size_t expected = 0) {
  if (!rows.ok()) return rows.error();
  Rows& r = *rows;
  std::vector<T> out;
  out.reserve(expected);
  for (;;) {
    auto row = r.step();
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back(map(std::as_const(r)));
  }
}

// The first row mapped by map, or not_found with `what`.
template <class T, class Rows, class F>
Result<T> one(Result<Rows>&& rows, F&& map, std::string_view what) {
  if (!rows.ok()) return rows.error();
  auto row = rows->step();
  if (!row.ok()) return row.error();
  if (!*row) return make_error(Errc::not_found, std::string(what) + " not found");
  return map(std::as_const(*rows));
}

template <class Rows>
Result<bool> exists(Result<Rows>&& rows) {
  if (!rows.ok()) return rows.error();
  return rows->step();
}

}  // namespace sql

// What SqlStore needs of an engine (SqliteDialect in src/store/sqlite_store.hpp, MysqlDialect in
// src/store_mysql/mysql_store.hpp):
// - Database: read(fn) runs fn(Connection&) -> Result<T> on a read connection, write(fn) in
//   one transaction (committed when fn returns ok, rolled back otherwise).
// - query(c, sql, args...): the connection's prepared statement for `sql` (prepared once per
//   connection and reused) with args bound in order, run: Rows to step() through, with
//   column_id / column_int64 / column_text / column_is_null. change(c, sql, args...): a
//   statement without rows; the rows it inserted, updated (matched) or deleted.
//   Arguments: Id, Millis, std::uint32_t, sql::Bound, text (string_view, std::string,
//   std::optional<std::string> for NULL).
// - sql: the dialect's SQL table (dialect_sql.hpp).
// - append_batch(c, batch): append_messages' group commit inside the write transaction; an
//   error fails the whole batch.
// - write_cursor(c, w): the last step of advance_cursor (sql::CursorWrite).
template <class D>
concept SqlDialect = requires(typename D::Connection& c, typename D::Rows& rows,
                              std::span<const NewMessage> batch, const sql::CursorWrite& w) {
  typename D::Database;
  { D::sql } -> std::convertible_to<const DialectSql&>;
  { D::query(c, std::string_view(), Id{}) } -> std::same_as<Result<typename D::Rows>>;
  { D::change(c, std::string_view(), Id{}) } -> std::same_as<Result<std::uint64_t>>;
  { rows.step() } -> std::same_as<Result<bool>>;
  { D::append_batch(c, batch) } -> std::same_as<Result<std::vector<Result<Appended>>>>;
  { D::write_cursor(c, w) } -> std::same_as<Result<std::uint64_t>>;
};

template <SqlDialect D>
class SqlStore : public Store {
 public:
  Result<void> create_user(const User& user, const std::string& password_hash) override;
  Result<UserCredentials> user_by_phone(std::string_view phone) override;
  Result<User> user_by_id(Id id) override;
  Result<std::vector<User>> users_by_name(std::string_view name, std::uint32_t limit) override;
  Result<std::vector<User>> directory_users(Id viewer, std::string_view prefix,
                                            std::string_view after_name, Id after_id,
                                            bool shared_space_only, std::uint32_t limit) override;
  Result<User> update_user(Id id, const std::optional<std::string>& name,
                           const std::optional<std::string>& avatar) override;

  Result<void> save_refresh_token(const RefreshToken& token) override;
  Result<RefreshToken> take_refresh_token(std::string_view token_hash, Millis now,
                                          Millis reuse_until) override;
  Result<std::vector<Id>> create_session(const LoginSession& session,
                                         std::uint32_t max_live) override;
  Result<void> touch_session(Id session_id, Millis now, Millis expires_at,
                             std::string_view ip) override;
  Result<std::vector<LoginSession>> sessions_of(Id user_id, Millis now,
                                                std::uint32_t limit) override;
  Result<void> end_session(Id user_id, Id session_id, Millis now) override;
  Result<std::uint64_t> end_sessions_of(Id user_id, Millis now) override;
  Result<std::vector<EndedSession>> sessions_ended(Millis since, std::uint32_t limit) override;
  Result<AccountState> set_account_state(Id user_id, Millis sessions_before,
                                         std::optional<bool> deactivated,
                                         Millis changed_at) override;
  Result<AccountState> account_state(Id user_id) override;
  Result<std::vector<AccountState>> account_states_changed(Millis since,
                                                           std::uint32_t limit) override;
  Result<std::vector<UserStatus>> list_users(std::string_view name_prefix, std::string_view phone,
                                             Id after_id, std::uint32_t limit) override;
  Result<Id> first_user_id() override;
  Result<RefreshToken> revoke_refresh_token(std::string_view token_hash) override;
  Result<std::uint64_t> revoke_refresh_tokens_of(Id user_id) override;
  Result<UserCredentials> credentials_by_id(Id id) override;
  Result<void> set_password_hash(Id user_id, const std::string& password_hash) override;

  Result<void> create_space(const Space& space) override;
  Result<Space> space_by_id(Id id) override;
  Result<std::vector<Space>> spaces_of_user(Id user_id, Id after_space_id,
                                            std::uint32_t limit) override;
  Result<Space> update_space(Id id, const std::optional<std::string>& name,
                             const std::optional<std::string>& avatar) override;
  Result<bool> is_space_member(Id space_id, Id user_id) override;
  Result<bool> add_space_member(Id space_id, Id user_id, Millis now) override;
  Result<bool> remove_space_member(Id space_id, Id user_id) override;
  Result<std::vector<Member>> space_members(Id space_id, Id after_user_id,
                                            std::uint32_t limit) override;

  Result<SpaceRole> space_role(Id space_id, Id user_id) override;
  Result<bool> set_space_role(Id space_id, Id user_id, SpaceRole role) override;
  Result<Space> transfer_space(Id space_id, Id from, Id to) override;
  Result<Space> set_space_discoverable(Id space_id, bool discoverable) override;
  Result<std::vector<Space>> discoverable_spaces(Id after_space_id, std::uint32_t limit) override;
  Result<std::vector<Space>> all_spaces(Id after_space_id, std::uint32_t limit) override;
  Result<InviteOutcome> join_unless_banned(Id space_id, Id user_id, Millis now) override;
  Result<void> create_invite(const Invite& invite) override;
  Result<std::vector<Invite>> invites_of_space(Id space_id, Millis now,
                                               std::uint32_t limit) override;
  Result<Invite> usable_invite(std::string_view code, Millis now) override;
  Result<bool> revoke_invite(Id space_id, std::string_view code) override;
  Result<AcceptedInvite> accept_invite(std::string_view code, Id user_id, Millis now) override;
  Result<bool> ban_space_member(Id space_id, Id user_id, Id by, Millis now) override;
  Result<bool> unban_space_member(Id space_id, Id user_id) override;
  Result<std::vector<Member>> space_bans(Id space_id, Id after_user_id,
                                         std::uint32_t limit) override;
  Result<bool> block_user(Id user_id, Id blocked_id, Millis now) override;
  Result<bool> unblock_user(Id user_id, Id blocked_id) override;
  Result<std::vector<Blocked>> blocks_of(Id user_id, Id after_user_id,
                                         std::uint32_t limit) override;
  Result<DmPolicy> dm_policy(Id from, Id to) override;
  Result<std::vector<Id>> visible_users(Id viewer, std::span<const Id> users) override;
  Result<bool> read_receipts(Id user_id) override;
  Result<void> set_read_receipts(Id user_id, bool on) override;
  Result<bool> receipts_between(Id a, Id b) override;

  Result<void> create_channel(const Channel& channel) override;
  Result<Channel> channel_by_id(Id id) override;
  Result<Channel> update_channel(Id id, const std::optional<std::string>& name,
                                 const std::optional<std::string>& avatar) override;
  Result<Channel> set_channel_settings(Id id, std::optional<bool> archived,
                                       std::optional<bool> history_from_join) override;
  Result<DeletedChannel> delete_channel(Id id) override;
  Result<std::vector<Channel>> channels_of_space(Id space_id, Id after_channel_id,
                                                 std::uint32_t limit) override;
  Result<std::vector<Channel>> visible_channels_of_space(Id space_id, Id viewer,
                                                         Id after_channel_id,
                                                         std::uint32_t limit) override;
  Result<std::uint64_t> count(Counted what, Id id) override;
  Result<bool> is_channel_member(Id channel_id, Id user_id) override;
  Result<bool> add_channel_member(Id channel_id, Id user_id, Millis now) override;
  Result<bool> remove_channel_member(Id channel_id, Id user_id) override;
  Result<std::vector<Member>> channel_members(Id channel_id, Id after_user_id,
                                              std::uint32_t limit) override;
  Result<std::vector<Id>> channel_member_ids(Id channel_id) override;
  Result<std::uint64_t> history_floor(Id channel_id, Id user_id) override;
  Result<Memberships> memberships_of_user(Id user_id) override;
  Result<void> ping() override;

  Result<std::vector<Result<Appended>>> append_messages(std::span<const NewMessage> batch) override;
  Result<std::vector<Message>> messages(const ConvKey& conv, const HistoryQuery& q) override;
  Result<Message> message_by_id(Id id) override;
  // Each item in its own write transaction (a change is rare; its locks stay short and never
  // span conversations): an engine failure fails the call, and the items before it stay
  // applied (retried, their change_id makes them duplicates).
  Result<std::vector<Result<Changed>>> change_messages(std::span<const NewMessage> batch) override;
  Result<std::vector<Message>> changes(const ConvKey& conv, const ChangeQuery& q) override;
  Result<std::uint64_t> advance_delivery(Id user_id, const ConvKey& conv,
                                         std::uint64_t seq) override;
  Result<std::uint64_t> advance_read(Id user_id, const ConvKey& conv, std::uint64_t seq) override;
  Result<std::vector<ConversationState>> conversations(Id user_id) override;

 protected:
  using Database = typename D::Database;
  using Connection = typename D::Connection;

  explicit SqlStore(std::shared_ptr<Database> db) : db_(std::move(db)) {}

  // Moves one member cursor forward, clamped to the conversation's last_seq, inside the
  // caller's write transaction; returns the cursor after the update. forbidden when the user
  // has no cursor row (not a member; a DM pair that exchanged no message yet).
  static Result<std::uint64_t> advance_cursor(Connection& c, Id user_id, const ConvKey& conv,
                                              std::uint64_t seq, sql::CursorKind kind);

  const std::shared_ptr<Database> db_;

 private:
  // One change_messages item inside its write transaction; the outer Result is an engine failure.
  static Result<Result<Changed>> change_in(Connection& c, const NewMessage& nm);
  // Statements that more than one method runs.
  static Result<User> user_by_id_in(Connection& c, Id id);
  // end_session in the caller's transaction.
  static Result<void> end_session_in(Connection& c, Id user_id, Id session_id, Millis now);
  // How long a session's row stays after it ended or expired (create_session removes the
  // user's older ones): far longer than any poll of sessions_ended looks back.
  static constexpr Millis kSessionRowsKeptMs = 24 * 3600 * 1000;
  static Result<Space> space_by_id_in(Connection& c, Id id);
  Result<std::vector<Space>> space_page(std::string_view sql, Id after_space_id,
                                        std::uint32_t limit);
  static Result<Channel> channel_by_id_in(Connection& c, Id id);
  static Result<bool> is_channel_member_in(Connection& c, Id channel_id, Id user_id);
  // Whether the user is a member / banned (share-locked, D::sql.banned_from_space) of the space.
  static Result<bool> is_space_member_in(Connection& c, Id space_id, Id user_id);
  static Result<bool> is_banned_in(Connection& c, Id space_id, Id user_id);
  // A statement without rows that changed (matched) no row or some: whether it did.
  template <class... Args>
  static Result<bool> changed_any(Connection& c, std::string_view text, const Args&... args);
  // Runs a statement without rows in its own write transaction: whether it changed a row.
  template <class... Args>
  Result<bool> write_changed(std::string_view text, const Args&... args);
  // An insert whose unique violation means "exists already": false then.
  template <class... Args>
  Result<bool> insert_new(std::string_view text, const Args&... args);
  // update_user and update_space: `update` (name, avatar, id) sets the fields that are given;
  // then the row as stored, or not_found with `missing`.
  template <class T>
  Result<T> update_profile(std::string_view update, Id id, const std::optional<std::string>& name,
                           const std::optional<std::string>& avatar, std::string_view missing,
                           Result<T> (*read_back)(Connection&, Id));
  // A page of a space's or a channel's members (the same shape, another membership table).
  Result<std::vector<Member>> members(std::string_view text, Id group_id, Id after_user_id,
                                      std::uint32_t limit);
};

namespace sql {

// For a group commit: the outcome of an item whose (from, cid) is already stored as message
// `original_id`: that message, marked duplicate, or internal when it is missing. Looks in the
// table of `hint` first (a retry normally names the same conversation), then in the other.
// The outer Result is an engine failure.
template <SqlDialect D>
Result<Result<Appended>> stored_duplicate(typename D::Connection& c, Id original_id, ConvKind hint);

// The message with this id in either table (that of `hint` first); not_found when neither has
// it.
template <SqlDialect D>
Result<Message> message_by_id_in(typename D::Connection& c, Id id, ConvKind hint);

}  // namespace sql

}  // namespace imd
