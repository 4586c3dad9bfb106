#include "store/sqlite_migrations.hpp"

#include <string>

namespace imd {

namespace {

// docs/schema.md explains every table, column and index below; keep the two in step.
// Foreign keys guard the membership tables (a member of a missing space is an error the caller
// should see as not_found). The message path (channel_message, message, message_cid, dm,
// dm_user) has none on purpose: the caller validated the conversation, and a constraint
// failure there would abort a whole group-commit batch for one bad item.
constexpr std::string_view kV1Store = R"sql(
CREATE TABLE "user" (
  id         INTEGER PRIMARY KEY,
  name       TEXT    NOT NULL,
  avatar     TEXT    NOT NULL DEFAULT '',
  password   TEXT    NOT NULL,
  phone      TEXT    UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE INDEX user_name_nocase ON "user"(name COLLATE NOCASE);

CREATE TABLE refresh_token (
  token_hash TEXT    PRIMARY KEY,
  user_id    INTEGER NOT NULL REFERENCES "user"(id),
  expires_at INTEGER NOT NULL,
  revoked    INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE space (
  id         INTEGER PRIMARY KEY,
  name       TEXT    NOT NULL,
  avatar     TEXT    NOT NULL DEFAULT '',
  owner_id   INTEGER NOT NULL REFERENCES "user"(id),
  created_at INTEGER NOT NULL
);

CREATE TABLE space_user (
  space_id   INTEGER NOT NULL REFERENCES space(id),
  user_id    INTEGER NOT NULL REFERENCES "user"(id),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (space_id, user_id)
) WITHOUT ROWID;
CREATE INDEX space_user_by_user ON space_user(user_id);

CREATE TABLE channel (
  id              INTEGER PRIMARY KEY,
  name            TEXT    NOT NULL,
  avatar          TEXT    NOT NULL DEFAULT '',
  owner_id        INTEGER NOT NULL REFERENCES "user"(id),
  created_at      INTEGER NOT NULL,
  last_seq        INTEGER NOT NULL DEFAULT 0,
  last_message_id INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE space_channel (
  space_id   INTEGER NOT NULL REFERENCES space(id),
  channel_id INTEGER NOT NULL UNIQUE REFERENCES channel(id),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (space_id, channel_id)
) WITHOUT ROWID;

CREATE TABLE channel_user (
  channel_id          INTEGER NOT NULL REFERENCES channel(id),
  user_id             INTEGER NOT NULL REFERENCES "user"(id),
  last_ack_message_id INTEGER NOT NULL DEFAULT 0,
  last_ack_seq        INTEGER NOT NULL DEFAULT 0,
  read_seq            INTEGER NOT NULL DEFAULT 0,
  created_at          INTEGER NOT NULL,
  PRIMARY KEY (channel_id, user_id)
) WITHOUT ROWID;
CREATE INDEX channel_user_by_user ON channel_user(user_id);

CREATE TABLE channel_message (
  channel_id INTEGER NOT NULL,
  message_id INTEGER NOT NULL UNIQUE,
  seq        INTEGER NOT NULL,
  "from"     INTEGER NOT NULL,
  type       TEXT    NOT NULL,
  body       TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  cid        TEXT,
  PRIMARY KEY (channel_id, seq)
) WITHOUT ROWID;

CREATE TABLE dm (
  user_a          INTEGER NOT NULL,
  user_b          INTEGER NOT NULL,
  last_seq        INTEGER NOT NULL DEFAULT 0,
  last_message_id INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL,
  PRIMARY KEY (user_a, user_b),
  CHECK (user_a < user_b)
) WITHOUT ROWID;

CREATE TABLE dm_user (
  user_id             INTEGER NOT NULL,
  peer_id             INTEGER NOT NULL,
  last_ack_message_id INTEGER NOT NULL DEFAULT 0,
  last_ack_seq        INTEGER NOT NULL DEFAULT 0,
  read_seq            INTEGER NOT NULL DEFAULT 0,
  created_at          INTEGER NOT NULL,
  PRIMARY KEY (user_id, peer_id)
) WITHOUT ROWID;

CREATE TABLE message (
  id         INTEGER PRIMARY KEY,
  "from"     INTEGER NOT NULL,
  "to"       INTEGER NOT NULL,
  type       TEXT    NOT NULL,
  body       TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  user_a     INTEGER NOT NULL,
  user_b     INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  cid        TEXT,
  UNIQUE (user_a, user_b, seq)
);

CREATE TABLE message_cid (
  sender_id  INTEGER NOT NULL,
  cid        TEXT    NOT NULL,
  message_id INTEGER NOT NULL,
  PRIMARY KEY (sender_id, cid)
) WITHOUT ROWID;
)sql";

// The standalone Inbox adapter's table: its own version, so the store schema can evolve
// without touching it (and the cluster, whose inbox is in Redis, never needs it).
constexpr std::string_view kV2Inbox = R"sql(
CREATE TABLE inbox (
  user_id    INTEGER NOT NULL,
  user_a     INTEGER NOT NULL,
  user_b     INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  message_id INTEGER NOT NULL,
  PRIMARY KEY (user_id, user_a, user_b, seq)
) WITHOUT ROWID;
)sql";

// Changes of stored messages (edit, delete, reactions) and replies: each conversation counts
// its changes (last_rev); a message keeps its last change's rev, kind and id, so a device
// fetches what changed after its rev cursor through the (conversation, rev) indexes.
constexpr std::string_view kV3Changes = R"sql(
ALTER TABLE channel ADD COLUMN last_rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE dm ADD COLUMN last_rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channel_message ADD COLUMN reply_to INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channel_message ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channel_message ADD COLUMN change_kind INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channel_message ADD COLUMN change_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channel_message ADD COLUMN edited_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channel_message ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channel_message ADD COLUMN reactions TEXT NOT NULL DEFAULT '';
CREATE INDEX channel_message_by_rev ON channel_message(channel_id, rev) WHERE rev > 0;
ALTER TABLE message ADD COLUMN reply_to INTEGER NOT NULL DEFAULT 0;
ALTER TABLE message ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE message ADD COLUMN change_kind INTEGER NOT NULL DEFAULT 0;
ALTER TABLE message ADD COLUMN change_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE message ADD COLUMN edited_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE message ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE message ADD COLUMN reactions TEXT NOT NULL DEFAULT '';
CREATE INDEX message_by_rev ON message(user_a, user_b, rev) WHERE rev > 0;
CREATE TABLE mention (
  user_id INTEGER NOT NULL,
  kind    INTEGER NOT NULL,
  conv_a  INTEGER NOT NULL,
  conv_b  INTEGER NOT NULL,
  seq     INTEGER NOT NULL,
  PRIMARY KEY (user_id, kind, conv_a, conv_b, seq)
) WITHOUT ROWID;
)sql";

// Access control (docs/security.md): discoverable spaces, roles (0 member, 1 admin, 2 owner;
// the owner's row says 2, as space.owner_id does), private channels, invitations, bans and
// blocks between users. Existing spaces stay private; their owners get role 2.
constexpr std::string_view kV4Access = R"sql(
ALTER TABLE space ADD COLUMN discoverable INTEGER NOT NULL DEFAULT 0;
CREATE INDEX space_discoverable ON space(id) WHERE discoverable = 1;
ALTER TABLE space_user ADD COLUMN role INTEGER NOT NULL DEFAULT 0;
UPDATE space_user SET role = 2
  WHERE user_id = (SELECT owner_id FROM space WHERE space.id = space_user.space_id);
ALTER TABLE channel ADD COLUMN is_private INTEGER NOT NULL DEFAULT 0;
CREATE TABLE space_invite (
  code       TEXT    PRIMARY KEY,
  space_id   INTEGER NOT NULL REFERENCES space(id),
  created_by INTEGER NOT NULL REFERENCES "user"(id),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  max_uses   INTEGER NOT NULL,
  uses       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX space_invite_by_space ON space_invite(space_id, created_at);
CREATE TABLE space_ban (
  space_id   INTEGER NOT NULL REFERENCES space(id),
  user_id    INTEGER NOT NULL REFERENCES "user"(id),
  banned_by  INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (space_id, user_id)
) WITHOUT ROWID;
CREATE TABLE user_block (
  user_id    INTEGER NOT NULL REFERENCES "user"(id),
  blocked_id INTEGER NOT NULL REFERENCES "user"(id),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, blocked_id)
) WITHOUT ROWID;
)sql";

// Uploaded files (SqlFileStore, src/store_sql/sql_file_store.hpp): one row per file, kept
// (deleted_at set) after its bytes are removed; and the messages that shared each file.
constexpr std::string_view kV5Files = R"sql(
CREATE TABLE upload (
  id         TEXT    PRIMARY KEY,
  uploader   INTEGER NOT NULL,
  name       TEXT    NOT NULL,
  size       INTEGER NOT NULL,
  type       TEXT    NOT NULL,
  sha256     TEXT    NOT NULL,
  width      INTEGER NOT NULL DEFAULT 0,
  height     INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  deleted_at INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX upload_by_uploader ON upload(uploader, deleted_at);
CREATE INDEX upload_live_by_created ON upload(created_at) WHERE deleted_at = 0;
CREATE TABLE upload_share (
  file_id    TEXT    NOT NULL,
  message_id INTEGER NOT NULL,
  kind       INTEGER NOT NULL,
  conv_a     INTEGER NOT NULL,
  conv_b     INTEGER NOT NULL,
  PRIMARY KEY (file_id, message_id)
) WITHOUT ROWID;
)sql";

// Account state: ended sessions and deactivation, read by every process (AccountWatch polls
// by changed_at) so that a revoked token is refused cluster-wide and after a restart.
constexpr std::string_view kV7AccountState = R"sql(
CREATE TABLE account_state (
  user_id         INTEGER PRIMARY KEY REFERENCES "user"(id),
  sessions_before INTEGER NOT NULL,
  deactivated     INTEGER NOT NULL DEFAULT 0,
  changed_at      INTEGER NOT NULL
);
CREATE INDEX account_state_by_change ON account_state(changed_at);
)sql";

// Full-text search (docs/schema.md "Search"): an FTS5 trigram index of the text of every
// message that is not deleted, keyed by message id (snowflake ids are unique across both
// message tables). The metadata columns are not indexed: they filter the candidates (access,
// in/from/before/after) and answer a hit without reading the message tables. search_state
// says whether the index is kept in step (enabled) and which ids the back-fill still has to
// index ([pending_lo, pending_hi)); enabling search queues the whole history (SqliteSearch).
// detail = none: which messages hold a trigram, not where (a smaller, cheaper index; a longer
// term is matched by all its trigrams and checked with LIKE, docs/schema.md "Search").
constexpr std::string_view kV6Search = R"sql(
CREATE VIRTUAL TABLE message_fts USING fts5(
  body, kind UNINDEXED, conv_a UNINDEXED, conv_b UNINDEXED, seq UNINDEXED, sender UNINDEXED,
  type UNINDEXED, created_at UNINDEXED, edited_at UNINDEXED,
  tokenize = 'trigram', detail = none
);
CREATE TABLE search_state (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  enabled    INTEGER NOT NULL,
  pending_lo INTEGER NOT NULL,
  pending_hi INTEGER NOT NULL
);
INSERT INTO search_state (id, enabled, pending_lo, pending_hi) VALUES (1, 0, 0, 0);
)sql";

// Channel lifecycle (docs/security.md "Archived and deleted channels"): an archived channel
// refuses sends and edits; history_from_join makes a member's history start at joined_seq, the
// channel's last_seq when they joined (0 for members from before: they keep all of it).
constexpr std::string_view kV8ChannelLifecycle = R"sql(
ALTER TABLE channel ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channel ADD COLUMN history_from_join INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channel_user ADD COLUMN joined_seq INTEGER NOT NULL DEFAULT 0;
)sql";

// Issue 15, "messages people work with": whether a user sends and
// sees DM read receipts (docs/protocol.md "Read receipts").
constexpr std::string_view kV9People = R"sql(
ALTER TABLE "user" ADD COLUMN read_receipts INTEGER NOT NULL DEFAULT 1;
)sql";

// Images (docs/schema.md "Files"): an upload's thumbnail type (its bytes are the blob
// FileService::thumb_key; '' when it has none), and the avatars uploaded for users, spaces and
// channels: the blob holding each one's square image (kind 1 user, 2 space, 3 channel).
constexpr std::string_view kV10Images = R"sql(
ALTER TABLE upload ADD COLUMN thumb_type TEXT NOT NULL DEFAULT '';
CREATE TABLE avatar (
  kind       INTEGER NOT NULL,
  owner_id   INTEGER NOT NULL,
  blob_key   TEXT    NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (kind, owner_id)
) WITHOUT ROWID;
)sql";

// The search indexer's queue (SqliteSearch): ids of messages stored but not yet in
// message_fts, appended by the storing transaction and drained in large batches, so the send
// path no longer pays for FTS5's per-transaction work. kind: 1 channel_message, 2 message.
constexpr std::string_view kV11SearchQueue = R"sql(
CREATE TABLE search_queue (
  id   INTEGER PRIMARY KEY,
  kind INTEGER NOT NULL
);
)sql";

// The inbox rows go: SqliteInbox now reads a user's inbox from the stored DMs above their
// delivery cursors (sqlite_inbox.hpp), which is what the rows said, one write less per DM. Any
// row left here was such a DM: nothing is lost with the table.
constexpr std::string_view kV12NoInboxRows = R"sql(
DROP TABLE IF EXISTS inbox;
)sql";

// Sessions (docs/security.md "Sessions"): one row per login on a device, carried by every
// refresh token rotated from it (refresh_token.session_id; 0 for tokens from before) and by the
// access tokens and WebSocket tickets issued from it (claim "sid"). ended_at is 0 while the
// session lives; every process polls the ended ones by ended_at (AccountWatch), so an ended
// session's access tokens are refused cluster-wide. expires_at: its newest refresh token's.
constexpr std::string_view kV13Sessions = R"sql(
CREATE TABLE login_session (
  id           INTEGER PRIMARY KEY,
  user_id      INTEGER NOT NULL REFERENCES "user"(id),
  created_at   INTEGER NOT NULL,
  last_used_at INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  ended_at     INTEGER NOT NULL DEFAULT 0,
  user_agent   TEXT    NOT NULL DEFAULT '',
  ip           TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX login_session_by_user ON login_session(user_id, ended_at, last_used_at);
CREATE INDEX login_session_by_end ON login_session(ended_at);
ALTER TABLE refresh_token ADD COLUMN session_id INTEGER NOT NULL DEFAULT 0;
CREATE INDEX refresh_token_by_session ON refresh_token(session_id);
)sql";

// Phones stored before normalization (as typed): the usual old form, the digits without the
// '+' (5..19 of them, no leading 0), becomes the normalized '+' and the digits, unless another
// account holds that already (a pair from before: both stay, login tells them apart by the
// password, AuthService::login). Other old forms stay as typed.
constexpr std::string_view kV14NormalizedPhones = R"sql(
UPDATE "user" SET phone = '+' || phone
 WHERE phone NOT GLOB '*[^0-9]*' AND length(phone) BETWEEN 5 AND 19 AND phone NOT GLOB '0*'
   AND NOT EXISTS (SELECT 1 FROM "user" AS other WHERE other.phone = '+' || "user".phone);
)sql";

// The search index moves to its own file, search.db (sqlite_search_migrations; issue 12: its
// writes no longer share imd.db's writer, WAL and checkpoints with the messages). What stays
// here is the queue, now also of edits and removals (op: 1 index, 2 reindex, 3 remove), keyed
// by seq, which AUTOINCREMENT never hands out twice: search.db records the last seq it applied,
// so a seq must not come back after the rows below it are deleted. The rows queued before are
// dropped with the old table: a search.db that does not exist yet is filled from the messages by
// the back-fill (SqliteSearch). search_state keeps `enabled`; its pending_* columns are unused.
constexpr std::string_view kV15SearchFile = R"sql(
DROP TABLE IF EXISTS message_fts;
DROP TABLE IF EXISTS search_queue;
CREATE TABLE search_queue (
  seq  INTEGER PRIMARY KEY AUTOINCREMENT,
  id   INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  op   INTEGER NOT NULL
);
)sql";

// search.db (SqliteSearch): version 1 is imd.db's version 6 (message_fts and search_state, whose
// `enabled` is unused there); version 2 adds `applied`, the last imd.db search_queue seq written
// into message_fts (updated in the transaction that writes them), and makes the back-fill's
// range the whole history, so a new (or deleted) search.db is rebuilt from the messages.
constexpr std::string_view kSearchV2Progress = R"sql(
ALTER TABLE search_state ADD COLUMN applied INTEGER NOT NULL DEFAULT 0;
UPDATE search_state SET pending_lo = 0, pending_hi = 9223372036854775807;
)sql";

constexpr SqliteMigration kSearchMigrations[] = {
    {1, kV6Search},
    {2, kSearchV2Progress},
};

constexpr SqliteMigration kMigrations[] = {
    {1, kV1Store},         {2, kV2Inbox},
    {3, kV3Changes},       {4, kV4Access},
    {5, kV5Files},         {6, kV6Search},
    {7, kV7AccountState},  {8, kV8ChannelLifecycle},
    {9, kV9People},        {10, kV10Images},
    {11, kV11SearchQueue}, {12, kV12NoInboxRows},
    {13, kV13Sessions},    {14, kV14NormalizedPhones},
    {15, kV15SearchFile},
};

constexpr std::string_view kCreateVersionTable =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL DEFAULT (strftime('%s','now')))";

Result<bool> is_applied(SqliteConnection& conn, int version) {
  auto stmt = conn.prepare("SELECT 1 FROM schema_version WHERE version = ?");
  if (!stmt.ok()) return stmt.error();
  stmt->bind(1, std::int64_t{version});
  return stmt->step();
}

// One migration in one transaction. Re-checks the version inside the write lock, so a second
// process that opened the file concurrently skips what the first one applied.
Result<bool> apply_one(SqliteConnection& conn, const SqliteMigration& m) {
  IMD_TRY(conn.exec("BEGIN IMMEDIATE"));
  auto run = [&]() -> Result<bool> {
    auto applied = is_applied(conn, m.version);
    if (!applied.ok()) return applied.error();
    if (*applied) return false;
    IMD_TRY(conn.exec_script(std::string(m.sql)));
    auto insert = conn.prepare("INSERT INTO schema_version(version) VALUES (?)");
    if (!insert.ok()) return insert.error();
    insert->bind(1, std::int64_t{m.version});
    IMD_TRY(insert->run());
    return true;
  };
  auto result = run();
  if (!result.ok()) {
    (void)conn.exec("ROLLBACK");
    Error err = result.error();
    err.message = "version " + std::to_string(m.version) + ": " + err.message;
    return err;
  }
  IMD_TRY(conn.exec("COMMIT"));
  return result;
}

}  // namespace

std::span<const SqliteMigration> sqlite_migrations() {
  return kMigrations;
}

std::span<const SqliteMigration> sqlite_search_migrations() {
  return kSearchMigrations;
}

Result<int> sqlite_schema_version(SqliteConnection& conn) {
  IMD_TRY(conn.exec(kCreateVersionTable));
  auto stmt = conn.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version");
  if (!stmt.ok()) return stmt.error();
  auto row = stmt->step();
  if (!row.ok()) return row.error();
  return static_cast<int>(stmt->column_int64(0));
}

Result<int> apply_sqlite_migrations(SqliteConnection& writer,
                                    std::span<const SqliteMigration> migrations) {
  for (std::size_t i = 1; i < migrations.size(); ++i) {
    if (migrations[i].version <= migrations[i - 1].version) {
      return make_error(Errc::invalid_argument, "migrations must be strictly ascending");
    }
  }
  // Every version not recorded yet, not only those above the highest: versions are reserved
  // per branch of work, so a database may have a higher one before a lower one lands.
  // (apply_one checks and records each in its own transaction.)
  if (auto table = sqlite_schema_version(writer); !table.ok()) return table.error();  // creates it
  int applied = 0;
  for (const SqliteMigration& m : migrations) {
    auto done = apply_one(writer, m);
    if (!done.ok()) return done.error();
    if (*done) ++applied;
  }
  return applied;
}

}  // namespace imd
