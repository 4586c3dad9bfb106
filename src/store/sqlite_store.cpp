#include "store/sqlite_store.hpp"

#include "store_sql/row_mappers.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace imd {

namespace {

constexpr std::uint32_t kMaxHistoryPage = 100;

// History pages, indexed by shape: 0 before ?2, 1 after ?2, 2 newest. ?1 (and ?4) is the
// conversation, ?3 the limit. Each is a range scan of the conversation's (key, seq) index:
// channel_message's primary key, message's UNIQUE(user_a, user_b, seq). DESC pages are
// reversed by the caller.
constexpr std::string_view kChannelHistory[] = {
    "SELECT channel_id, message_id, seq, \"from\", type, body, created_at, cid"
    " FROM channel_message WHERE channel_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
    "SELECT channel_id, message_id, seq, \"from\", type, body, created_at, cid"
    " FROM channel_message WHERE channel_id = ?1 AND seq > ?2 ORDER BY seq ASC LIMIT ?3",
    "SELECT channel_id, message_id, seq, \"from\", type, body, created_at, cid"
    " FROM channel_message WHERE channel_id = ?1 ORDER BY seq DESC LIMIT ?3",
};
constexpr std::string_view kDmHistory[] = {
    "SELECT id, \"from\", \"to\", type, body, created_at, user_a, user_b, seq, cid"
    " FROM message WHERE user_a = ?1 AND user_b = ?4 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
    "SELECT id, \"from\", \"to\", type, body, created_at, user_a, user_b, seq, cid"
    " FROM message WHERE user_a = ?1 AND user_b = ?4 AND seq > ?2 ORDER BY seq ASC LIMIT ?3",
    "SELECT id, \"from\", \"to\", type, body, created_at, user_a, user_b, seq, cid"
    " FROM message WHERE user_a = ?1 AND user_b = ?4 ORDER BY seq DESC LIMIT ?3",
};

// --- row mappers (store_sql/row_mappers.hpp documents the column lists they expect)

User read_user(const SqliteStatement& s, int c = 0) {
  return rows::user(s, c);
}
Space read_space(const SqliteStatement& s) {
  return rows::space(s);
}
Channel read_channel(const SqliteStatement& s) {
  return rows::channel(s);
}
Member read_member(const SqliteStatement& s) {
  return rows::member(s);
}
Message read_channel_message(const SqliteStatement& s, int c = 0) {
  return rows::channel_message(s, c);
}
Message read_dm_message(const SqliteStatement& s, int c = 0) {
  return rows::dm_message(s, c);
}

// --- small helpers over a prepared statement

// All rows, each mapped by fn; `expected` rows (e.g. a page's limit) are reserved up front.
template <class T, class F>
Result<std::vector<T>> collect(SqliteStatement& s, F&& fn, std::size_t expected = 0) {
  std::vector<T> out;
  out.reserve(expected);
  for (;;) {
    auto row = s.step();
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back(fn(s));
  }
}

// The first row mapped by fn, or not_found with `what`.
template <class T, class F>
Result<T> one(SqliteStatement& s, F&& fn, std::string_view what) {
  std::optional<T> value;
  auto row = s.step_once([&](const SqliteStatement& st) { value = fn(st); });
  if (!row.ok()) return row.error();
  if (!value) return make_error(Errc::not_found, std::string(what) + " not found");
  return std::move(*value);
}

Result<bool> exists(SqliteStatement& s) {
  auto row = s.step();
  if (!row.ok()) return row.error();
  return *row;
}

bool valid_dm(const ConvKey& conv) {
  return conv.is_dm() && conv.a != 0 && conv.a < conv.b;
}

Error bad_conv() {
  return make_error(Errc::invalid_argument, "invalid conversation key");
}

Millis wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// --- cursors

enum class CursorKind { delivery, read };

// Moves one member cursor forward, clamped to the conversation's last_seq. Runs inside a
// write transaction. Returns the cursor after the update.
Result<std::uint64_t> advance_cursor(SqliteConnection& c, Id user_id, const ConvKey& conv,
                                     std::uint64_t seq, CursorKind kind) {
  const bool channel = conv.is_channel();
  if (!channel && !valid_dm(conv)) return bad_conv();
  if (!channel && !conv.has_participant(user_id)) {
    return make_error(Errc::forbidden, "not a participant of this conversation");
  }
  const Id peer_id = channel ? 0 : conv.peer_of(user_id);

  auto current = channel ? c.prepare(
                               "SELECT cu.last_ack_seq, cu.read_seq, ch.last_seq"
                               " FROM channel_user cu JOIN channel ch ON ch.id = cu.channel_id"
                               " WHERE cu.channel_id = ?1 AND cu.user_id = ?2")
                         : c.prepare(
                               "SELECT du.last_ack_seq, du.read_seq, d.last_seq"
                               " FROM dm_user du JOIN dm d ON d.user_a = ?3 AND d.user_b = ?4"
                               " WHERE du.user_id = ?1 AND du.peer_id = ?2");
  if (!current.ok()) return current.error();
  if (channel) {
    current->bind_all(to_db(conv.a), to_db(user_id));
  } else {
    current->bind_all(to_db(user_id), to_db(peer_id), to_db(conv.a), to_db(conv.b));
  }
  struct Row {
    std::uint64_t ack, read, last;
  };
  auto row = one<Row>(
      *current,
      [](const SqliteStatement& s) {
        return Row{s.column_id(0), s.column_id(1), s.column_id(2)};
      },
      "member");
  if (!row.ok()) {
    if (row.error().code != Errc::not_found) return row.error();
    return make_error(Errc::forbidden, channel ? "not a member of this channel"
                                               : "no message exchanged in this conversation yet");
  }
  const std::uint64_t before = kind == CursorKind::delivery ? row->ack : row->read;
  const std::uint64_t target = std::min(seq, row->last);
  if (target <= before) return before;

  Result<SqliteStatement> update = make_error(Errc::internal, "unreachable");
  if (kind == CursorKind::read) {
    update =
        channel ? c.prepare(
                      "UPDATE channel_user SET read_seq = ?3"
                      " WHERE channel_id = ?1 AND user_id = ?2")
                : c.prepare("UPDATE dm_user SET read_seq = ?3 WHERE user_id = ?1 AND peer_id = ?2");
  } else if (channel) {
    update = c.prepare(
        "UPDATE channel_user SET last_ack_seq = ?3, last_ack_message_id = COALESCE("
        "(SELECT message_id FROM channel_message WHERE channel_id = ?1 AND seq = ?3),"
        " last_ack_message_id) WHERE channel_id = ?1 AND user_id = ?2");
  } else {
    update = c.prepare(
        "UPDATE dm_user SET last_ack_seq = ?3, last_ack_message_id = COALESCE("
        "(SELECT id FROM message WHERE user_a = ?4 AND user_b = ?5 AND seq = ?3),"
        " last_ack_message_id) WHERE user_id = ?1 AND peer_id = ?2");
  }
  if (!update.ok()) return update.error();
  if (channel) {
    update->bind_all(to_db(conv.a), to_db(user_id), to_db(target));
  } else {
    update->bind_all(to_db(user_id), to_db(peer_id), to_db(target));
    if (kind == CursorKind::delivery) update->bind(4, to_db(conv.a)).bind(5, to_db(conv.b));
  }
  IMD_TRY(update->run());
  return target;
}

// --- the group commit

// Stores the items of one batch inside the caller's write transaction, with every statement
// prepared once for the whole batch.
class BatchAppender {
 public:
  explicit BatchAppender(SqliteConnection& c) : c_(c) {}

  Result<void> prepare() {
    IMD_TRY(prep(find_cid_, "SELECT message_id FROM message_cid WHERE sender_id = ? AND cid = ?"));
    IMD_TRY(prep(load_dm_,
                 "SELECT id, \"from\", \"to\", type, body, created_at, user_a, user_b, seq, cid"
                 " FROM message WHERE id = ?"));
    IMD_TRY(prep(load_channel_,
                 "SELECT channel_id, message_id, seq, \"from\", type, body, created_at, cid"
                 " FROM channel_message WHERE message_id = ?"));
    IMD_TRY(prep(bump_channel_,
                 "UPDATE channel SET last_seq = last_seq + 1, last_message_id = ?2"
                 " WHERE id = ?1 RETURNING last_seq"));
    IMD_TRY(prep(insert_channel_,
                 "INSERT INTO channel_message"
                 "(channel_id, message_id, seq, \"from\", type, body, created_at, cid)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
    IMD_TRY(prep(cursor_channel_,
                 "UPDATE channel_user SET read_seq = MAX(read_seq, ?3)"
                 " WHERE channel_id = ?1 AND user_id = ?2"));
    IMD_TRY(prep(insert_dm_,
                 "INSERT INTO dm(user_a, user_b, created_at) VALUES (?, ?, ?)"
                 " ON CONFLICT(user_a, user_b) DO NOTHING"));
    IMD_TRY(prep(insert_dm_user_,
                 "INSERT INTO dm_user(user_id, peer_id, created_at) VALUES (?, ?, ?)"
                 " ON CONFLICT(user_id, peer_id) DO NOTHING"));
    IMD_TRY(prep(bump_dm_,
                 "UPDATE dm SET last_seq = last_seq + 1, last_message_id = ?3"
                 " WHERE user_a = ?1 AND user_b = ?2 RETURNING last_seq"));
    IMD_TRY(prep(insert_dm_message_,
                 "INSERT INTO message"
                 "(id, \"from\", \"to\", type, body, created_at, user_a, user_b, seq, cid)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    IMD_TRY(prep(cursor_dm_,
                 "UPDATE dm_user SET read_seq = MAX(read_seq, ?3)"
                 " WHERE user_id = ?1 AND peer_id = ?2"));
    IMD_TRY(
        prep(insert_cid_, "INSERT INTO message_cid(sender_id, cid, message_id) VALUES (?, ?, ?)"));
    return {};
  }

  // Appends the item's outcome to `out`; an error return is an engine failure (abort).
  Result<void> append(const Message& in, std::vector<Result<Appended>>& out) {
    if (in.conv.is_dm() ? !valid_dm(in.conv) || !in.conv.has_participant(in.from)
                        : in.conv.a == 0 || !in.conv.is_channel()) {
      out.push_back(bad_conv());
      return {};
    }
    std::optional<std::string> cid;
    if (!in.cid.empty()) {
      cid = in.cid;
      std::optional<Id> original_id;
      find_cid_.bind_all(to_db(in.from), in.cid);
      auto found =
          find_cid_.step_once([&](const SqliteStatement& s) { original_id = s.column_id(0); });
      find_cid_.reset();
      if (!found.ok()) return found.error();
      if (original_id) {
        auto original = load(*original_id, in.conv.kind);
        if (!original.ok()) return original.error();
        if (!*original) {
          out.push_back(make_error(Errc::internal, "message_cid points to a missing message"));
        } else {
          out.push_back(Appended{.msg = std::move(**original), .duplicate = true});
        }
        return {};
      }
    }

    Message m = in;
    std::optional<std::uint64_t> seq;
    auto take_seq = [&](const SqliteStatement& s) { seq = s.column_id(0); };
    if (m.conv.is_channel()) {
      m.conv = ConvKey::channel(in.conv.a);
      m.to = 0;
      bump_channel_.bind_all(to_db(m.conv.a), to_db(m.id));
      auto bumped = bump_channel_.step_once(take_seq);
      bump_channel_.reset();
      if (!bumped.ok()) return bumped.error();
      if (!seq) {
        out.push_back(make_error(Errc::not_found, "channel not found"));
        return {};
      }
      m.seq = *seq;
      IMD_TRY(exec(insert_channel_, to_db(m.conv.a), to_db(m.id), to_db(m.seq), to_db(m.from),
                   m.type, m.body, m.created_at, cid));
      // Only when the sender has a member row: membership is the caller's check, not ours.
      IMD_TRY(exec(cursor_channel_, to_db(m.conv.a), to_db(m.from), to_db(m.seq)));
    } else {
      const Id a = m.conv.a, b = m.conv.b;
      m.to = m.conv.peer_of(m.from);
      // Bump first: the conversation almost always exists, and then the three inserts that
      // create it and both cursor rows (with its first message) are skipped.
      for (int attempt = 0; attempt < 2 && !seq; ++attempt) {
        if (attempt == 1) {
          IMD_TRY(exec(insert_dm_, to_db(a), to_db(b), m.created_at));
          IMD_TRY(exec(insert_dm_user_, to_db(a), to_db(b), m.created_at));
          IMD_TRY(exec(insert_dm_user_, to_db(b), to_db(a), m.created_at));
        }
        bump_dm_.bind_all(to_db(a), to_db(b), to_db(m.id));
        auto bumped = bump_dm_.step_once(take_seq);
        bump_dm_.reset();
        if (!bumped.ok()) return bumped.error();
      }
      if (!seq) return make_error(Errc::internal, "dm row missing right after its insert");
      m.seq = *seq;
      IMD_TRY(exec(insert_dm_message_, to_db(m.id), to_db(m.from), to_db(m.to), m.type, m.body,
                   m.created_at, to_db(a), to_db(b), to_db(m.seq), cid));
      IMD_TRY(exec(cursor_dm_, to_db(m.from), to_db(m.to), to_db(m.seq)));
    }
    if (cid) IMD_TRY(exec(insert_cid_, to_db(m.from), *cid, to_db(m.id)));
    out.push_back(Appended{.msg = std::move(m), .duplicate = false});
    return {};
  }

 private:
  Result<void> prep(SqliteStatement& s, std::string_view sql) {
    auto r = c_.prepare(sql);
    if (!r.ok()) return r.error();
    s = std::move(*r);
    return {};
  }

  template <class... Args>
  static Result<void> exec(SqliteStatement& s, const Args&... args) {
    s.bind_all(args...);
    auto r = s.run();
    s.reset();
    return r;
  }

  // The stored message `id`, looked up first in the table of `hint` (a retry normally names
  // the same conversation), then in the other one.
  Result<std::optional<Message>> load(Id id, ConvKind hint) {
    for (ConvKind kind : {hint, hint == ConvKind::dm ? ConvKind::channel : ConvKind::dm}) {
      SqliteStatement& s = kind == ConvKind::dm ? load_dm_ : load_channel_;
      std::optional<Message> msg;
      s.bind(1, to_db(id));
      auto row = s.step_once([&](const SqliteStatement& st) {
        msg = kind == ConvKind::dm ? read_dm_message(st) : read_channel_message(st);
      });
      s.reset();
      if (!row.ok()) return row.error();
      if (msg) return msg;
    }
    return std::optional<Message>();
  }

  SqliteConnection& c_;
  SqliteStatement find_cid_, load_dm_, load_channel_;
  SqliteStatement bump_channel_, insert_channel_, cursor_channel_;
  SqliteStatement insert_dm_, insert_dm_user_, bump_dm_, insert_dm_message_, cursor_dm_;
  SqliteStatement insert_cid_;
};

// Member listing shared by spaces and channels (same shape, different membership table).
Result<std::vector<Member>> list_members(SqliteDatabase& db, std::string_view sql, Id group_id,
                                         Id after_user_id, std::uint32_t limit) {
  return db.read([&](SqliteConnection& c) -> Result<std::vector<Member>> {
    auto s = c.prepare(sql);
    if (!s.ok()) return s.error();
    s->bind_all(to_db(group_id), to_db_bound(after_user_id), std::int64_t{limit});
    return collect<Member>(*s, read_member);
  });
}

}  // namespace

SqliteStore::SqliteStore(std::shared_ptr<SqliteDatabase> db, std::size_t row_cache_bytes)
    : db_(std::move(db)) {
  if (row_cache_bytes > 0) rows_.emplace(row_cache_bytes);
}

// --- users and sessions

Result<void> SqliteStore::create_user(const User& user, const std::string& password_hash) {
  auto r = db_->write([&](SqliteConnection& c) -> Result<void> {
    auto s = c.prepare(
        "INSERT INTO \"user\"(id, name, avatar, password, phone, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)");
    if (!s.ok()) return s.error();
    std::optional<std::string> phone;
    if (!user.phone.empty()) phone = user.phone;
    s->bind_all(to_db(user.id), user.name, user.avatar, password_hash, phone, user.created_at);
    return s->run();
  });
  if (!r.ok() && r.error().code == Errc::conflict) {
    // The phone is the only UNIQUE column besides the id (generated, so never reused).
    const bool phone = r.error().message.find("user.phone") != std::string::npos;
    return make_error(Errc::conflict,
                      phone ? "phone already registered" : "user id already exists");
  }
  return r;
}

Result<UserCredentials> SqliteStore::user_by_phone(std::string_view phone) {
  return db_->read([&](SqliteConnection& c) -> Result<UserCredentials> {
    auto s = c.prepare(
        "SELECT id, name, avatar, COALESCE(phone, ''), created_at, password"
        " FROM \"user\" WHERE phone = ?");
    if (!s.ok()) return s.error();
    s->bind(1, phone);
    return one<UserCredentials>(
        *s,
        [](const SqliteStatement& st) {
          return UserCredentials{.user = read_user(st), .password_hash = st.column_text(5)};
        },
        "user");
  });
}

Result<User> SqliteStore::user_by_id(Id id) {
  return db_->read([&](SqliteConnection& c) -> Result<User> {
    auto s = c.prepare(
        "SELECT id, name, avatar, COALESCE(phone, ''), created_at FROM \"user\" WHERE id = ?");
    if (!s.ok()) return s.error();
    s->bind(1, to_db(id));
    return one<User>(
        *s, [](const SqliteStatement& st) { return read_user(st); }, "user");
  });
}

Result<std::vector<User>> SqliteStore::users_by_name(std::string_view name, std::uint32_t limit) {
  return db_->read([&](SqliteConnection& c) -> Result<std::vector<User>> {
    // COLLATE NOCASE on the comparison is what lets user_name_nocase serve it.
    auto s = c.prepare(
        "SELECT id, name, avatar, COALESCE(phone, ''), created_at FROM \"user\""
        " WHERE name = ?1 COLLATE NOCASE ORDER BY id LIMIT ?2");
    if (!s.ok()) return s.error();
    s->bind_all(name, std::int64_t{limit});
    return collect<User>(*s, [](const SqliteStatement& st) { return read_user(st); });
  });
}

Result<User> SqliteStore::update_user(Id id, const std::optional<std::string>& name,
                                      const std::optional<std::string>& avatar) {
  return db_->write([&](SqliteConnection& c) -> Result<User> {
    auto s = c.prepare(
        "UPDATE \"user\" SET name = COALESCE(?2, name), avatar = COALESCE(?3, avatar)"
        " WHERE id = ?1 RETURNING id, name, avatar, COALESCE(phone, ''), created_at");
    if (!s.ok()) return s.error();
    s->bind_all(to_db(id), name, avatar);
    return one<User>(
        *s, [](const SqliteStatement& st) { return read_user(st); }, "user");
  });
}

Result<void> SqliteStore::save_refresh_token(const RefreshToken& token) {
  return db_->write([&](SqliteConnection& c) -> Result<void> {
    auto s = c.prepare(
        "INSERT INTO refresh_token(token_hash, user_id, expires_at, revoked, created_at)"
        " VALUES (?, ?, ?, 0, ?)");
    if (!s.ok()) return s.error();
    // created_at is bookkeeping only (never compared with a caller's clock), so wall time.
    s->bind_all(token.token_hash, to_db(token.user_id), token.expires_at, wall_clock_ms());
    return s->run();
  });
}

Result<RefreshToken> SqliteStore::take_refresh_token(std::string_view token_hash, Millis now) {
  return db_->write([&](SqliteConnection& c) -> Result<RefreshToken> {
    // One statement: two concurrent refreshes with the same token cannot both succeed.
    auto s = c.prepare(
        "UPDATE refresh_token SET revoked = 1"
        " WHERE token_hash = ? AND revoked = 0 AND expires_at > ?"
        " RETURNING token_hash, user_id, expires_at");
    if (!s.ok()) return s.error();
    s->bind_all(token_hash, now);
    return one<RefreshToken>(
        *s,
        [](const SqliteStatement& st) {
          return RefreshToken{.token_hash = st.column_text(0),
                              .user_id = st.column_id(1),
                              .expires_at = st.column_int64(2)};
        },
        "valid refresh token");
  });
}

Result<void> SqliteStore::revoke_refresh_token(std::string_view token_hash) {
  return db_->write([&](SqliteConnection& c) -> Result<void> {
    auto s = c.prepare("UPDATE refresh_token SET revoked = 1 WHERE token_hash = ?");
    if (!s.ok()) return s.error();
    s->bind(1, token_hash);
    IMD_TRY(s->run());
    if (c.changes() == 0) return make_error(Errc::not_found, "refresh token not found");
    return {};
  });
}

// --- spaces

Result<void> SqliteStore::create_space(const Space& space) {
  return db_->write([&](SqliteConnection& c) -> Result<void> {
    auto s = c.prepare(
        "INSERT INTO space(id, name, avatar, owner_id, created_at) VALUES (?, ?, ?, ?, ?)");
    if (!s.ok()) return s.error();
    s->bind_all(to_db(space.id), space.name, space.avatar, to_db(space.owner_id), space.created_at);
    IMD_TRY(s->run());
    auto m = c.prepare("INSERT INTO space_user(space_id, user_id, created_at) VALUES (?, ?, ?)");
    if (!m.ok()) return m.error();
    m->bind_all(to_db(space.id), to_db(space.owner_id), space.created_at);
    return m->run();
  });
}

Result<Space> SqliteStore::space_by_id(Id id) {
  return db_->read([&](SqliteConnection& c) -> Result<Space> {
    auto s = c.prepare("SELECT id, name, avatar, owner_id, created_at FROM space WHERE id = ?");
    if (!s.ok()) return s.error();
    s->bind(1, to_db(id));
    return one<Space>(*s, read_space, "space");
  });
}

Result<std::vector<Space>> SqliteStore::spaces_of_user(Id user_id) {
  return db_->read([&](SqliteConnection& c) -> Result<std::vector<Space>> {
    auto s = c.prepare(
        "SELECT s.id, s.name, s.avatar, s.owner_id, s.created_at"
        " FROM space_user su JOIN space s ON s.id = su.space_id"
        " WHERE su.user_id = ? ORDER BY su.space_id");
    if (!s.ok()) return s.error();
    s->bind(1, to_db(user_id));
    return collect<Space>(*s, read_space);
  });
}

Result<Space> SqliteStore::update_space(Id id, const std::optional<std::string>& name,
                                        const std::optional<std::string>& avatar) {
  return db_->write([&](SqliteConnection& c) -> Result<Space> {
    auto s = c.prepare(
        "UPDATE space SET name = COALESCE(?2, name), avatar = COALESCE(?3, avatar)"
        " WHERE id = ?1 RETURNING id, name, avatar, owner_id, created_at");
    if (!s.ok()) return s.error();
    s->bind_all(to_db(id), name, avatar);
    return one<Space>(*s, read_space, "space");
  });
}

Result<bool> SqliteStore::is_space_member(Id space_id, Id user_id) {
  return db_->read([&](SqliteConnection& c) -> Result<bool> {
    auto s = c.prepare("SELECT 1 FROM space_user WHERE space_id = ? AND user_id = ?");
    if (!s.ok()) return s.error();
    s->bind_all(to_db(space_id), to_db(user_id));
    return exists(*s);
  });
}

Result<bool> SqliteStore::add_space_member(Id space_id, Id user_id, Millis now) {
  return db_->write([&](SqliteConnection& c) -> Result<bool> {
    // ON CONFLICT names the key: a missing space or user still fails (foreign key, not_found).
    auto s = c.prepare(
        "INSERT INTO space_user(space_id, user_id, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT(space_id, user_id) DO NOTHING");
    if (!s.ok()) return s.error();
    s->bind_all(to_db(space_id), to_db(user_id), now);
    IMD_TRY(s->run());
    return c.changes() > 0;
  });
}

Result<bool> SqliteStore::remove_space_member(Id space_id, Id user_id) {
  return db_->write([&](SqliteConnection& c) -> Result<bool> {
    auto channels = c.prepare(
        "DELETE FROM channel_user WHERE user_id = ?2 AND channel_id IN"
        " (SELECT channel_id FROM space_channel WHERE space_id = ?1)");
    if (!channels.ok()) return channels.error();
    channels->bind_all(to_db(space_id), to_db(user_id));
    IMD_TRY(channels->run());
    auto s = c.prepare("DELETE FROM space_user WHERE space_id = ? AND user_id = ?");
    if (!s.ok()) return s.error();
    s->bind_all(to_db(space_id), to_db(user_id));
    IMD_TRY(s->run());
    return c.changes() > 0;
  });
}

Result<std::vector<Member>> SqliteStore::space_members(Id space_id, Id after_user_id,
                                                       std::uint32_t limit) {
  return list_members(*db_,
                      "SELECT su.user_id, u.name, u.avatar, su.created_at"
                      " FROM space_user su JOIN \"user\" u ON u.id = su.user_id"
                      " WHERE su.space_id = ? AND su.user_id > ? ORDER BY su.user_id LIMIT ?",
                      space_id, after_user_id, limit);
}

// --- channels

Result<void> SqliteStore::create_channel(const Channel& channel) {
  return db_->write([&](SqliteConnection& c) -> Result<void> {
    // The owner's space membership is checked in the same transaction as the insert: a
    // concurrent leave cannot slip between the service's check and the write.
    auto member = c.prepare("SELECT 1 FROM space_user WHERE space_id = ? AND user_id = ?");
    if (!member.ok()) return member.error();
    member->bind_all(to_db(channel.space_id), to_db(channel.owner_id));
    auto is_member = exists(*member);
    if (!is_member.ok()) return is_member.error();
    if (!*is_member) {
      auto space = c.prepare("SELECT 1 FROM space WHERE id = ?");
      if (!space.ok()) return space.error();
      space->bind(1, to_db(channel.space_id));
      auto known = exists(*space);
      if (!known.ok()) return known.error();
      if (!*known) return make_error(Errc::not_found, "space not found");
      return make_error(Errc::forbidden, "not a member of this space");
    }
    auto s = c.prepare(
        "INSERT INTO channel(id, name, avatar, owner_id, created_at, last_seq, last_message_id)"
        " VALUES (?, ?, ?, ?, ?, 0, 0)");
    if (!s.ok()) return s.error();
    s->bind_all(to_db(channel.id), channel.name, channel.avatar, to_db(channel.owner_id),
                channel.created_at);
    IMD_TRY(s->run());
    auto link =
        c.prepare("INSERT INTO space_channel(space_id, channel_id, created_at) VALUES (?, ?, ?)");
    if (!link.ok()) return link.error();
    link->bind_all(to_db(channel.space_id), to_db(channel.id), channel.created_at);
    IMD_TRY(link->run());
    auto m =
        c.prepare("INSERT INTO channel_user(channel_id, user_id, created_at) VALUES (?, ?, ?)");
    if (!m.ok()) return m.error();
    m->bind_all(to_db(channel.id), to_db(channel.owner_id), channel.created_at);
    return m->run();
  });
}

Result<Channel> SqliteStore::channel_by_id(Id id) {
  return db_->read([&](SqliteConnection& c) -> Result<Channel> {
    auto s = c.prepare(
        "SELECT ch.id, COALESCE(sc.space_id, 0), ch.name, ch.avatar, ch.owner_id, ch.created_at,"
        " ch.last_seq, ch.last_message_id"
        " FROM channel ch LEFT JOIN space_channel sc ON sc.channel_id = ch.id WHERE ch.id = ?");
    if (!s.ok()) return s.error();
    s->bind(1, to_db(id));
    return one<Channel>(*s, read_channel, "channel");
  });
}

Result<std::vector<Channel>> SqliteStore::channels_of_space(Id space_id) {
  return db_->read([&](SqliteConnection& c) -> Result<std::vector<Channel>> {
    auto s = c.prepare(
        "SELECT ch.id, sc.space_id, ch.name, ch.avatar, ch.owner_id, ch.created_at,"
        " ch.last_seq, ch.last_message_id"
        " FROM space_channel sc JOIN channel ch ON ch.id = sc.channel_id"
        " WHERE sc.space_id = ? ORDER BY sc.channel_id");
    if (!s.ok()) return s.error();
    s->bind(1, to_db(space_id));
    return collect<Channel>(*s, read_channel);
  });
}

Result<bool> SqliteStore::is_channel_member(Id channel_id, Id user_id) {
  return db_->read([&](SqliteConnection& c) -> Result<bool> {
    auto s = c.prepare("SELECT 1 FROM channel_user WHERE channel_id = ? AND user_id = ?");
    if (!s.ok()) return s.error();
    s->bind_all(to_db(channel_id), to_db(user_id));
    return exists(*s);
  });
}

Result<bool> SqliteStore::add_channel_member(Id channel_id, Id user_id, Millis now) {
  return db_->write([&](SqliteConnection& c) -> Result<bool> {
    // Cursors start at the channel's last_seq, read in the same transaction as the insert, so
    // a message stored concurrently is either before the join or unread after it.
    // Space membership is a condition of the same statement, so a concurrent leave of the
    // space cannot leave a channel membership behind.
    auto s = c.prepare(
        "INSERT INTO channel_user"
        "(channel_id, user_id, last_ack_message_id, last_ack_seq, read_seq, created_at)"
        " SELECT ch.id, ?2, ch.last_message_id, ch.last_seq, ch.last_seq, ?3 FROM channel ch"
        " JOIN space_channel sc ON sc.channel_id = ch.id"
        " JOIN space_user su ON su.space_id = sc.space_id AND su.user_id = ?2"
        " WHERE ch.id = ?1"
        " ON CONFLICT(channel_id, user_id) DO NOTHING");
    if (!s.ok()) return s.error();
    s->bind_all(to_db(channel_id), to_db(user_id), now);
    IMD_TRY(s->run());
    if (c.changes() > 0) return true;
    auto known = c.prepare("SELECT 1 FROM channel WHERE id = ?");
    if (!known.ok()) return known.error();
    known->bind(1, to_db(channel_id));
    auto found = exists(*known);
    if (!found.ok()) return found.error();
    if (!*found) return make_error(Errc::not_found, "channel not found");
    auto already = c.prepare("SELECT 1 FROM channel_user WHERE channel_id = ? AND user_id = ?");
    if (!already.ok()) return already.error();
    already->bind_all(to_db(channel_id), to_db(user_id));
    auto was = exists(*already);
    if (!was.ok()) return was.error();
    if (!*was) return make_error(Errc::forbidden, "not a member of the channel's space");
    return false;
  });
}

Result<bool> SqliteStore::remove_channel_member(Id channel_id, Id user_id) {
  return db_->write([&](SqliteConnection& c) -> Result<bool> {
    auto s = c.prepare("DELETE FROM channel_user WHERE channel_id = ? AND user_id = ?");
    if (!s.ok()) return s.error();
    s->bind_all(to_db(channel_id), to_db(user_id));
    IMD_TRY(s->run());
    return c.changes() > 0;
  });
}

Result<std::vector<Member>> SqliteStore::channel_members(Id channel_id, Id after_user_id,
                                                         std::uint32_t limit) {
  return list_members(*db_,
                      "SELECT cu.user_id, u.name, u.avatar, cu.created_at"
                      " FROM channel_user cu JOIN \"user\" u ON u.id = cu.user_id"
                      " WHERE cu.channel_id = ? AND cu.user_id > ? ORDER BY cu.user_id LIMIT ?",
                      channel_id, after_user_id, limit);
}

Result<std::vector<Id>> SqliteStore::channel_member_ids(Id channel_id) {
  return db_->read([&](SqliteConnection& c) -> Result<std::vector<Id>> {
    auto s = c.prepare("SELECT user_id FROM channel_user WHERE channel_id = ? ORDER BY user_id");
    if (!s.ok()) return s.error();
    s->bind(1, to_db(channel_id));
    return collect<Id>(*s, [](const SqliteStatement& st) { return st.column_id(0); });
  });
}

Result<Memberships> SqliteStore::memberships_of_user(Id user_id) {
  return db_->read([&](SqliteConnection& c) -> Result<Memberships> {
    auto user = c.prepare("SELECT 1 FROM \"user\" WHERE id = ?");
    if (!user.ok()) return user.error();
    user->bind(1, to_db(user_id));
    auto known = exists(*user);
    if (!known.ok()) return known.error();
    if (!*known) return make_error(Errc::not_found, "no such user");
    auto id_column = [](const SqliteStatement& st) { return st.column_id(0); };
    Memberships m;
    auto spaces = c.prepare("SELECT space_id FROM space_user WHERE user_id = ? ORDER BY space_id");
    if (!spaces.ok()) return spaces.error();
    spaces->bind(1, to_db(user_id));
    auto space_ids = collect<Id>(*spaces, id_column);
    if (!space_ids.ok()) return space_ids.error();
    m.spaces = std::move(*space_ids);
    auto channels =
        c.prepare("SELECT channel_id FROM channel_user WHERE user_id = ? ORDER BY channel_id");
    if (!channels.ok()) return channels.error();
    channels->bind(1, to_db(user_id));
    auto channel_ids = collect<Id>(*channels, id_column);
    if (!channel_ids.ok()) return channel_ids.error();
    m.channels = std::move(*channel_ids);
    return m;
  });
}

// --- messages

Result<std::vector<Result<Appended>>> SqliteStore::append_messages(
    std::span<const NewMessage> batch) {
  using Out = std::vector<Result<Appended>>;
  if (batch.empty()) return Out{};
  auto r = db_->write([&](SqliteConnection& c) -> Result<Out> {
    BatchAppender appender(c);
    IMD_TRY(appender.prepare());
    Out out;
    out.reserve(batch.size());
    for (const NewMessage& item : batch) IMD_TRY(appender.append(item.msg, out));
    return out;
  });
  if (!r.ok()) {
    // The batch was rolled back as a whole; the queue may redeliver it.
    Error err = r.error();
    err.code = Errc::unavailable;
    return err;
  }
  return r;
}

std::optional<std::vector<Message>> SqliteStore::cached_messages(const ConvKey& conv,
                                                                 const HistoryQuery& q) {
  if (!rows_ || (q.before_seq && q.after_seq) || (!conv.is_channel() && !valid_dm(conv))) {
    return std::nullopt;
  }
  const auto count =
      static_cast<std::size_t>(std::clamp<std::uint32_t>(q.limit, 1, kMaxHistoryPage));
  if (q.before_seq && *q.before_seq > count) return rows_->rows(conv, *q.before_seq - count, count);
  if (q.after_seq && *q.after_seq < UINT64_MAX) return rows_->rows(conv, *q.after_seq + 1, count);
  return std::nullopt;
}

Result<std::vector<Message>> SqliteStore::messages(const ConvKey& conv, const HistoryQuery& q) {
  if (q.before_seq && q.after_seq) {
    return make_error(Errc::invalid_argument, "before_seq and after_seq are exclusive");
  }
  if (!conv.is_channel() && !valid_dm(conv)) return bad_conv();
  const std::int64_t limit = std::clamp<std::uint32_t>(q.limit, 1, kMaxHistoryPage);
  const auto count = static_cast<std::size_t>(limit);
  if (auto page = cached_messages(conv, q)) return std::move(*page);
  auto page = db_->read([&](SqliteConnection& c) -> Result<std::vector<Message>> {
    const int shape = q.before_seq ? 0 : q.after_seq ? 1 : 2;
    auto s = c.prepare(conv.is_channel() ? kChannelHistory[shape] : kDmHistory[shape]);
    if (!s.ok()) return s.error();
    s->bind(1, to_db(conv.a));
    if (conv.is_dm()) s->bind(4, to_db(conv.b));
    if (q.before_seq) s->bind(2, to_db_bound(*q.before_seq));
    if (q.after_seq) s->bind(2, to_db_bound(*q.after_seq));
    s->bind(3, limit);
    auto rows = collect<Message>(
        *s,
        [&](const SqliteStatement& st) {
          return conv.is_channel() ? read_channel_message(st) : read_dm_message(st);
        },
        count);
    if (rows.ok() && !q.after_seq) std::reverse(rows->begin(), rows->end());
    return rows;
  });
  if (rows_ && page.ok()) rows_->remember(*page);
  return page;
}

Result<std::vector<DeliveryUpdate>> SqliteStore::advance_deliveries(
    std::span<const DeliveryUpdate> updates) {
  using Out = std::vector<DeliveryUpdate>;
  if (updates.empty()) return Out{};
  return db_->write([&](SqliteConnection& c) -> Result<Out> {
    Out out;
    out.reserve(updates.size());
    for (const auto& u : updates) {
      auto r = advance_cursor(c, u.user, u.conv, u.seq, CursorKind::delivery);
      if (r) {
        out.push_back({u.user, u.conv, *r});
      } else if (r.error().code != Errc::forbidden && r.error().code != Errc::not_found &&
                 r.error().code != Errc::invalid_argument) {
        return r.error();
      }
    }
    return out;
  });
}

Result<std::uint64_t> SqliteStore::advance_delivery(Id user_id, const ConvKey& conv,
                                                    std::uint64_t seq) {
  return db_->write([&](SqliteConnection& c) {
    return advance_cursor(c, user_id, conv, seq, CursorKind::delivery);
  });
}

Result<std::uint64_t> SqliteStore::advance_read(Id user_id, const ConvKey& conv,
                                                std::uint64_t seq) {
  return db_->write(
      [&](SqliteConnection& c) { return advance_cursor(c, user_id, conv, seq, CursorKind::read); });
}

Result<std::vector<ConversationState>> SqliteStore::conversations(Id user_id) {
  return db_->read([&](SqliteConnection& c) -> Result<std::vector<ConversationState>> {
    // The last message is the row at seq = last_seq: one primary-key probe per conversation.
    auto channels = c.prepare(
        "SELECT ch.id, COALESCE(sc.space_id, 0), ch.name, ch.avatar, ch.last_seq,"
        " cu.read_seq, cu.last_ack_seq,"
        " m.channel_id, m.message_id, m.seq, m.\"from\", m.type, m.body, m.created_at, m.cid"
        " FROM channel_user cu"
        " JOIN channel ch ON ch.id = cu.channel_id"
        " LEFT JOIN space_channel sc ON sc.channel_id = ch.id"
        " LEFT JOIN channel_message m ON m.channel_id = ch.id AND m.seq = ch.last_seq"
        " WHERE cu.user_id = ? ORDER BY cu.channel_id");
    if (!channels.ok()) return channels.error();
    channels->bind(1, to_db(user_id));
    auto out = collect<ConversationState>(*channels, [](const SqliteStatement& s) {
      ConversationState st{.conv = ConvKey::channel(s.column_id(0)),
                           .space_id = s.column_id(1),
                           .name = s.column_text(2),
                           .avatar = s.column_text(3),
                           .last_seq = s.column_id(4),
                           .read_seq = s.column_id(5),
                           .ack_seq = s.column_id(6),
                           .last = std::nullopt};
      if (!s.column_is_null(7)) st.last = read_channel_message(s, 7);
      return st;
    });
    if (!out.ok()) return out.error();

    auto dms = c.prepare(
        "SELECT d.user_a, d.user_b, COALESCE(u.name, ''), COALESCE(u.avatar, ''), d.last_seq,"
        " du.read_seq, du.last_ack_seq,"
        " m.id, m.\"from\", m.\"to\", m.type, m.body, m.created_at, m.user_a, m.user_b, m.seq,"
        " m.cid"
        " FROM dm_user du"
        " JOIN dm d ON d.user_a = MIN(du.user_id, du.peer_id)"
        "  AND d.user_b = MAX(du.user_id, du.peer_id)"
        " LEFT JOIN \"user\" u ON u.id = du.peer_id"
        " LEFT JOIN message m ON m.user_a = d.user_a AND m.user_b = d.user_b"
        "  AND m.seq = d.last_seq"
        " WHERE du.user_id = ? ORDER BY du.peer_id");
    if (!dms.ok()) return dms.error();
    dms->bind(1, to_db(user_id));
    auto dm_rows = collect<ConversationState>(*dms, [](const SqliteStatement& s) {
      ConversationState st{.conv = ConvKey{ConvKind::dm, s.column_id(0), s.column_id(1)},
                           .space_id = 0,
                           .name = s.column_text(2),
                           .avatar = s.column_text(3),
                           .last_seq = s.column_id(4),
                           .read_seq = s.column_id(5),
                           .ack_seq = s.column_id(6),
                           .last = std::nullopt};
      if (!s.column_is_null(7)) st.last = read_dm_message(s, 7);
      return st;
    });
    if (!dm_rows.ok()) return dm_rows.error();
    for (auto& st : *dm_rows) out->push_back(std::move(st));
    return out;
  });
}

}  // namespace imd
