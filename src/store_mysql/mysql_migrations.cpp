#include "store_mysql/mysql_migrations.hpp"

#include <chrono>
#include <set>
#include <string>

namespace imd {

namespace {

// docs/schema.md ("MySQL / MariaDB") explains every table, key and dialect choice below; keep
// the two in step. The tables and columns are those of the SQLite schema (sqlite_migrations.cpp).
// - Ids and seqs are BIGINT UNSIGNED, times BIGINT (ms since the epoch).
// - The table default collation is utf8mb4_nopad_bin: phone, cid and token_hash compare byte
//   for byte, and 'a' and 'a ' differ (PAD SPACE collations, the server default, treat them as
//   equal, even in unique keys). Only user.name is case-insensitive (its lookup index).
// - InnoDB clusters rows by primary key: channel_message by (channel_id, seq) and message by
//   (user_a, user_b, seq), so a history page is one range read of the clustered index.
// - Foreign keys guard the membership and session tables, as in SQLite; the message path has
//   none (the caller validated the conversation; one bad item must not abort a batch).
constexpr std::string_view kV1Store[] = {
    "CREATE TABLE IF NOT EXISTS `user` ("
    " id         BIGINT UNSIGNED NOT NULL,"
    " name       VARCHAR(255) COLLATE utf8mb4_uca1400_nopad_as_ci NOT NULL,"
    " avatar     VARCHAR(1024) NOT NULL DEFAULT '',"
    " password   VARCHAR(255) NOT NULL,"
    " phone      VARCHAR(64) NULL,"
    " created_at BIGINT NOT NULL,"
    " PRIMARY KEY (id),"
    " UNIQUE KEY user_phone (phone),"
    " KEY user_name_ci (name)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",

    "CREATE TABLE IF NOT EXISTS refresh_token ("
    " token_hash VARCHAR(128) NOT NULL,"
    " user_id    BIGINT UNSIGNED NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " revoked    TINYINT NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL,"
    " PRIMARY KEY (token_hash),"
    " KEY refresh_token_by_user (user_id),"
    " CONSTRAINT refresh_token_user FOREIGN KEY (user_id) REFERENCES `user` (id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",

    "CREATE TABLE IF NOT EXISTS space ("
    " id         BIGINT UNSIGNED NOT NULL,"
    " name       VARCHAR(255) NOT NULL,"
    " avatar     VARCHAR(1024) NOT NULL DEFAULT '',"
    " owner_id   BIGINT UNSIGNED NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " PRIMARY KEY (id),"
    " KEY space_by_owner (owner_id),"
    " CONSTRAINT space_owner FOREIGN KEY (owner_id) REFERENCES `user` (id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",

    "CREATE TABLE IF NOT EXISTS space_user ("
    " space_id   BIGINT UNSIGNED NOT NULL,"
    " user_id    BIGINT UNSIGNED NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " PRIMARY KEY (space_id, user_id),"
    " KEY space_user_by_user (user_id),"
    " CONSTRAINT space_user_space FOREIGN KEY (space_id) REFERENCES space (id),"
    " CONSTRAINT space_user_user FOREIGN KEY (user_id) REFERENCES `user` (id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",

    "CREATE TABLE IF NOT EXISTS channel ("
    " id              BIGINT UNSIGNED NOT NULL,"
    " name            VARCHAR(255) NOT NULL,"
    " avatar          VARCHAR(1024) NOT NULL DEFAULT '',"
    " owner_id        BIGINT UNSIGNED NOT NULL,"
    " created_at      BIGINT NOT NULL,"
    " last_seq        BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " last_message_id BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " PRIMARY KEY (id),"
    " KEY channel_by_owner (owner_id),"
    " CONSTRAINT channel_owner FOREIGN KEY (owner_id) REFERENCES `user` (id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",

    "CREATE TABLE IF NOT EXISTS space_channel ("
    " space_id   BIGINT UNSIGNED NOT NULL,"
    " channel_id BIGINT UNSIGNED NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " PRIMARY KEY (space_id, channel_id),"
    " UNIQUE KEY space_channel_by_channel (channel_id),"
    " CONSTRAINT space_channel_space FOREIGN KEY (space_id) REFERENCES space (id),"
    " CONSTRAINT space_channel_channel FOREIGN KEY (channel_id) REFERENCES channel (id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",

    "CREATE TABLE IF NOT EXISTS channel_user ("
    " channel_id          BIGINT UNSIGNED NOT NULL,"
    " user_id             BIGINT UNSIGNED NOT NULL,"
    " last_ack_message_id BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " last_ack_seq        BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " read_seq            BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " created_at          BIGINT NOT NULL,"
    " PRIMARY KEY (channel_id, user_id),"
    " KEY channel_user_by_user (user_id),"
    " CONSTRAINT channel_user_channel FOREIGN KEY (channel_id) REFERENCES channel (id),"
    " CONSTRAINT channel_user_user FOREIGN KEY (user_id) REFERENCES `user` (id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",

    "CREATE TABLE IF NOT EXISTS channel_message ("
    " channel_id BIGINT UNSIGNED NOT NULL,"
    " message_id BIGINT UNSIGNED NOT NULL,"
    " seq        BIGINT UNSIGNED NOT NULL,"
    " `from`     BIGINT UNSIGNED NOT NULL,"
    " type       VARCHAR(32) NOT NULL,"
    " body       MEDIUMTEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " cid        VARCHAR(255) NULL,"
    " PRIMARY KEY (channel_id, seq),"
    " UNIQUE KEY channel_message_by_id (message_id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",

    "CREATE TABLE IF NOT EXISTS dm ("
    " user_a          BIGINT UNSIGNED NOT NULL,"
    " user_b          BIGINT UNSIGNED NOT NULL,"
    " last_seq        BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " last_message_id BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " created_at      BIGINT NOT NULL,"
    " PRIMARY KEY (user_a, user_b),"
    " CONSTRAINT dm_ordered CHECK (user_a < user_b)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",

    "CREATE TABLE IF NOT EXISTS dm_user ("
    " user_id             BIGINT UNSIGNED NOT NULL,"
    " peer_id             BIGINT UNSIGNED NOT NULL,"
    " last_ack_message_id BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " last_ack_seq        BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " read_seq            BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " created_at          BIGINT NOT NULL,"
    " PRIMARY KEY (user_id, peer_id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",

    "CREATE TABLE IF NOT EXISTS message ("
    " id         BIGINT UNSIGNED NOT NULL,"
    " `from`     BIGINT UNSIGNED NOT NULL,"
    " `to`       BIGINT UNSIGNED NOT NULL,"
    " type       VARCHAR(32) NOT NULL,"
    " body       MEDIUMTEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " user_a     BIGINT UNSIGNED NOT NULL,"
    " user_b     BIGINT UNSIGNED NOT NULL,"
    " seq        BIGINT UNSIGNED NOT NULL,"
    " cid        VARCHAR(255) NULL,"
    " PRIMARY KEY (user_a, user_b, seq),"
    " UNIQUE KEY message_by_id (id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",

    "CREATE TABLE IF NOT EXISTS message_cid ("
    " sender_id  BIGINT UNSIGNED NOT NULL,"
    " cid        VARCHAR(255) NOT NULL,"
    " message_id BIGINT UNSIGNED NOT NULL,"
    " PRIMARY KEY (sender_id, cid)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",
};

// Changes of stored messages and replies (the SQLite migration 3 says what the columns are).
// DDL is not transactional in MariaDB: every statement may be run again after a partial run.
constexpr std::string_view kV2Changes[] = {
    "ALTER TABLE channel ADD COLUMN IF NOT EXISTS last_rev BIGINT UNSIGNED NOT NULL DEFAULT 0",
    "ALTER TABLE dm ADD COLUMN IF NOT EXISTS last_rev BIGINT UNSIGNED NOT NULL DEFAULT 0",
    "ALTER TABLE channel_message"
    " ADD COLUMN IF NOT EXISTS reply_to BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS rev BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS change_kind TINYINT UNSIGNED NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS change_id BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS edited_at BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS deleted TINYINT UNSIGNED NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS reactions TEXT NOT NULL DEFAULT '',"
    " ADD INDEX IF NOT EXISTS channel_message_by_rev (channel_id, rev)",
    "ALTER TABLE message"
    " ADD COLUMN IF NOT EXISTS reply_to BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS rev BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS change_kind TINYINT UNSIGNED NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS change_id BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS edited_at BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS deleted TINYINT UNSIGNED NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS reactions TEXT NOT NULL DEFAULT '',"
    " ADD INDEX IF NOT EXISTS message_by_rev (user_a, user_b, rev)",
    "CREATE TABLE IF NOT EXISTS mention ("
    " user_id BIGINT UNSIGNED NOT NULL,"
    " kind    TINYINT UNSIGNED NOT NULL,"
    " conv_a  BIGINT UNSIGNED NOT NULL,"
    " conv_b  BIGINT UNSIGNED NOT NULL,"
    " seq     BIGINT UNSIGNED NOT NULL,"
    " PRIMARY KEY (user_id, kind, conv_a, conv_b, seq)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",
};

// Access control (the SQLite migration 4 says what the columns and tables are). Every
// statement may be run again after a partial run.
constexpr std::string_view kV3Access[] = {
    "ALTER TABLE space ADD COLUMN IF NOT EXISTS discoverable TINYINT UNSIGNED NOT NULL DEFAULT 0,"
    " ADD INDEX IF NOT EXISTS space_discoverable (discoverable, id)",
    "ALTER TABLE space_user ADD COLUMN IF NOT EXISTS role TINYINT UNSIGNED NOT NULL DEFAULT 0",
    "UPDATE space_user su JOIN space s ON s.id = su.space_id AND s.owner_id = su.user_id"
    " SET su.role = 2",
    "ALTER TABLE channel ADD COLUMN IF NOT EXISTS is_private TINYINT UNSIGNED NOT NULL DEFAULT 0",
    "CREATE TABLE IF NOT EXISTS space_invite ("
    " code       VARCHAR(64) NOT NULL,"
    " space_id   BIGINT UNSIGNED NOT NULL,"
    " created_by BIGINT UNSIGNED NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " max_uses   INT UNSIGNED NOT NULL,"
    " uses       INT UNSIGNED NOT NULL DEFAULT 0,"
    " PRIMARY KEY (code),"
    " KEY space_invite_by_space (space_id, created_at),"
    " CONSTRAINT space_invite_space FOREIGN KEY (space_id) REFERENCES space (id),"
    " CONSTRAINT space_invite_user FOREIGN KEY (created_by) REFERENCES `user` (id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",
    "CREATE TABLE IF NOT EXISTS space_ban ("
    " space_id   BIGINT UNSIGNED NOT NULL,"
    " user_id    BIGINT UNSIGNED NOT NULL,"
    " banned_by  BIGINT UNSIGNED NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " PRIMARY KEY (space_id, user_id),"
    " CONSTRAINT space_ban_space FOREIGN KEY (space_id) REFERENCES space (id),"
    " CONSTRAINT space_ban_user FOREIGN KEY (user_id) REFERENCES `user` (id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",
    "CREATE TABLE IF NOT EXISTS user_block ("
    " user_id    BIGINT UNSIGNED NOT NULL,"
    " blocked_id BIGINT UNSIGNED NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " PRIMARY KEY (user_id, blocked_id),"
    " CONSTRAINT user_block_user FOREIGN KEY (user_id) REFERENCES `user` (id),"
    " CONSTRAINT user_block_blocked FOREIGN KEY (blocked_id) REFERENCES `user` (id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",
};

// Uploaded files (the SQLite migration 5 says what the tables are).
constexpr std::string_view kV4Files[] = {
    "CREATE TABLE IF NOT EXISTS upload ("
    " id         CHAR(32) NOT NULL,"
    " uploader   BIGINT UNSIGNED NOT NULL,"
    " name       VARCHAR(1024) NOT NULL,"
    " size       BIGINT UNSIGNED NOT NULL,"
    " type       VARCHAR(64) NOT NULL,"
    " sha256     CHAR(64) NOT NULL,"
    " width      INT UNSIGNED NOT NULL DEFAULT 0,"
    " height     INT UNSIGNED NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL,"
    " deleted_at BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (id),"
    " KEY upload_by_uploader (uploader, deleted_at),"
    " KEY upload_by_created (deleted_at, created_at)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",
    "CREATE TABLE IF NOT EXISTS upload_share ("
    " file_id    CHAR(32) NOT NULL,"
    " message_id BIGINT UNSIGNED NOT NULL,"
    " kind       TINYINT UNSIGNED NOT NULL,"
    " conv_a     BIGINT UNSIGNED NOT NULL,"
    " conv_b     BIGINT UNSIGNED NOT NULL,"
    " PRIMARY KEY (file_id, message_id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",
};

// Account state (the SQLite migration 7 says what it is for).
constexpr std::string_view kV6AccountState[] = {
    "CREATE TABLE IF NOT EXISTS account_state ("
    " user_id         BIGINT UNSIGNED NOT NULL,"
    " sessions_before BIGINT NOT NULL,"
    " deactivated     TINYINT UNSIGNED NOT NULL DEFAULT 0,"
    " changed_at      BIGINT NOT NULL,"
    " PRIMARY KEY (user_id),"
    " KEY account_state_by_change (changed_at),"
    " CONSTRAINT account_state_user FOREIGN KEY (user_id) REFERENCES `user` (id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",
};

// Full-text search (docs/schema.md "Search on MariaDB"): a Mroonga table with a bigram index
// over every script (TokenBigramSplitSymbolAlphaDigit: Latin, digits and symbols are split into
// bigrams too, so any substring matches as in SQLite's trigram index; NormalizerAuto folds
// case and width). Mroonga needs the plugin (mariadb-plugin-mroonga, mariadbd
// --plugin-load-add=ha_mroonga.so); without it NO_ENGINE_SUBSTITUTION makes this fail with
// "Unknown storage engine 'Mroonga'" instead of silently creating an InnoDB table.
// Triggers keep it in step with the message tables; Mroonga is not transactional, so a
// rolled-back transaction may leave an index row behind: queries join the message tables and
// check the text there (MysqlSearch). The triggers come before search_state: a message stored
// before them has an id below the back-fill's upper bound.
constexpr std::string_view kV5Search[] = {
    "CREATE TABLE IF NOT EXISTS message_fts ("
    " id         BIGINT UNSIGNED NOT NULL,"
    " body       MEDIUMTEXT NOT NULL,"
    " kind       TINYINT UNSIGNED NOT NULL,"
    " conv_a     BIGINT UNSIGNED NOT NULL,"
    " conv_b     BIGINT UNSIGNED NOT NULL,"
    " seq        BIGINT UNSIGNED NOT NULL,"
    " sender     BIGINT UNSIGNED NOT NULL,"
    " type       VARCHAR(32) NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " edited_at  BIGINT NOT NULL,"
    " PRIMARY KEY (id),"
    " FULLTEXT INDEX message_fts_body (body)"
    "  COMMENT 'tokenizer \"TokenBigramSplitSymbolAlphaDigit\", normalizer \"NormalizerAuto\"'"
    ") ENGINE=Mroonga DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci",
    "CREATE TRIGGER IF NOT EXISTS search_channel_insert AFTER INSERT ON channel_message"
    " FOR EACH ROW BEGIN IF NEW.deleted = 0 THEN"
    "  REPLACE INTO message_fts (id, body, kind, conv_a, conv_b, seq, sender, type, created_at,"
    "  edited_at) VALUES (NEW.message_id, NEW.body, 1, NEW.channel_id, 0, NEW.seq, NEW.`from`,"
    "  NEW.type, NEW.created_at, NEW.edited_at);"
    " END IF; END",
    "CREATE TRIGGER IF NOT EXISTS search_channel_change AFTER UPDATE ON channel_message"
    " FOR EACH ROW BEGIN"
    " IF NEW.deleted <> 0 THEN DELETE FROM message_fts WHERE id = OLD.message_id;"
    " ELSEIF NOT (NEW.body <=> OLD.body) OR OLD.deleted <> 0 THEN"
    "  REPLACE INTO message_fts (id, body, kind, conv_a, conv_b, seq, sender, type, created_at,"
    "  edited_at) VALUES (NEW.message_id, NEW.body, 1, NEW.channel_id, 0, NEW.seq, NEW.`from`,"
    "  NEW.type, NEW.created_at, NEW.edited_at);"
    " END IF; END",
    "CREATE TRIGGER IF NOT EXISTS search_channel_delete AFTER DELETE ON channel_message"
    " FOR EACH ROW DELETE FROM message_fts WHERE id = OLD.message_id",
    "CREATE TRIGGER IF NOT EXISTS search_dm_insert AFTER INSERT ON message"
    " FOR EACH ROW BEGIN IF NEW.deleted = 0 THEN"
    "  REPLACE INTO message_fts (id, body, kind, conv_a, conv_b, seq, sender, type, created_at,"
    "  edited_at) VALUES (NEW.id, NEW.body, 2, NEW.user_a, NEW.user_b, NEW.seq, NEW.`from`,"
    "  NEW.type, NEW.created_at, NEW.edited_at);"
    " END IF; END",
    "CREATE TRIGGER IF NOT EXISTS search_dm_change AFTER UPDATE ON message"
    " FOR EACH ROW BEGIN"
    " IF NEW.deleted <> 0 THEN DELETE FROM message_fts WHERE id = OLD.id;"
    " ELSEIF NOT (NEW.body <=> OLD.body) OR OLD.deleted <> 0 THEN"
    "  REPLACE INTO message_fts (id, body, kind, conv_a, conv_b, seq, sender, type, created_at,"
    "  edited_at) VALUES (NEW.id, NEW.body, 2, NEW.user_a, NEW.user_b, NEW.seq, NEW.`from`,"
    "  NEW.type, NEW.created_at, NEW.edited_at);"
    " END IF; END",
    "CREATE TRIGGER IF NOT EXISTS search_dm_delete AFTER DELETE ON message"
    " FOR EACH ROW DELETE FROM message_fts WHERE id = OLD.id",
    "CREATE TABLE IF NOT EXISTS search_state ("
    " id         TINYINT UNSIGNED NOT NULL,"
    " pending_lo BIGINT UNSIGNED NOT NULL,"
    " pending_hi BIGINT UNSIGNED NOT NULL,"
    " PRIMARY KEY (id)"
    ") ENGINE=InnoDB",
    // The one row, once: a re-run after a partial run leaves an existing row alone.
    "INSERT INTO search_state (id, pending_lo, pending_hi)"
    " SELECT 1, 0, GREATEST(COALESCE((SELECT MAX(message_id) FROM channel_message), 0),"
    " COALESCE((SELECT MAX(id) FROM message), 0)) + 1 FROM DUAL"
    " WHERE NOT EXISTS (SELECT 1 FROM search_state WHERE id = 1)",
};

// Channel lifecycle (the SQLite migration 8 says what the columns are for).
constexpr std::string_view kV7ChannelLifecycle[] = {
    "ALTER TABLE channel ADD COLUMN IF NOT EXISTS archived TINYINT UNSIGNED NOT NULL DEFAULT 0,"
    " ADD COLUMN IF NOT EXISTS history_from_join TINYINT UNSIGNED NOT NULL DEFAULT 0",
    "ALTER TABLE channel_user"
    " ADD COLUMN IF NOT EXISTS joined_seq BIGINT UNSIGNED NOT NULL DEFAULT 0",
};

// Issue 15 (the SQLite migration 9 says what it is for).
constexpr std::string_view kV8People[] = {
    "ALTER TABLE `user` ADD COLUMN IF NOT EXISTS read_receipts TINYINT UNSIGNED NOT NULL DEFAULT 1",
};

// Images (the SQLite migration 10 says what they are).
constexpr std::string_view kV9Images[] = {
    "ALTER TABLE upload ADD COLUMN IF NOT EXISTS thumb_type VARCHAR(32) NOT NULL DEFAULT ''",
    "CREATE TABLE IF NOT EXISTS avatar ("
    " kind       TINYINT UNSIGNED NOT NULL,"
    " owner_id   BIGINT UNSIGNED NOT NULL,"
    " blob_key   VARCHAR(64) NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " PRIMARY KEY (kind, owner_id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin",
};

// Sessions (the SQLite migration 13 says what they are).
constexpr std::string_view kV10Sessions[] = {
    "CREATE TABLE IF NOT EXISTS login_session ("
    " id           BIGINT UNSIGNED NOT NULL,"
    " user_id      BIGINT UNSIGNED NOT NULL,"
    " created_at   BIGINT NOT NULL,"
    " last_used_at BIGINT NOT NULL,"
    " expires_at   BIGINT NOT NULL,"
    " ended_at     BIGINT NOT NULL DEFAULT 0,"
    " user_agent   VARCHAR(512) NOT NULL DEFAULT '',"
    " ip           VARCHAR(64) NOT NULL DEFAULT '',"
    " PRIMARY KEY (id),"
    " KEY login_session_by_user (user_id, ended_at, last_used_at),"
    " KEY login_session_by_end (ended_at),"
    " CONSTRAINT login_session_user FOREIGN KEY (user_id) REFERENCES `user` (id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin",
    "ALTER TABLE refresh_token"
    " ADD COLUMN IF NOT EXISTS session_id BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " ADD KEY IF NOT EXISTS refresh_token_by_session (session_id)",
};

// Phones stored before normalization (the SQLite migration 14 says which change).
constexpr std::string_view kV11NormalizedPhones[] = {
    "UPDATE `user` AS u LEFT JOIN `user` AS other ON other.phone = CONCAT('+', u.phone)"
    " SET u.phone = CONCAT('+', u.phone)"
    " WHERE other.id IS NULL AND u.phone REGEXP '^[1-9][0-9]{4,18}$'",
};

constexpr MysqlMigration kMigrations[] = {
    {1, kV1Store},
    {2, kV2Changes},
    {3, kV3Access},
    {4, kV4Files},
    {5, kV5Search},
    {6, kV6AccountState},
    {7, kV7ChannelLifecycle},
    {8, kV8People},
    {9, kV9Images},
    {10, kV10Sessions},
    {11, kV11NormalizedPhones},
};

constexpr std::string_view kCreateVersionTable =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version    INT NOT NULL,"
    " applied_at BIGINT NOT NULL,"
    " PRIMARY KEY (version)"
    ") ENGINE=InnoDB";

std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The named lock is per database: two databases on one server migrate independently.
Result<void> take_lock(MysqlConnection& conn, int timeout_s) {
  auto stmt =
      conn.run("SELECT GET_LOCK(CONCAT('imd.schema.', DATABASE()), ?)", std::int64_t{timeout_s});
  if (!stmt.ok()) return stmt.error();
  auto row = (*stmt)->fetch();
  if (!row.ok()) return row.error();
  if (!*row || (*stmt)->column_is_null(0) || (*stmt)->column_int64(0) != 1) {
    return make_error(Errc::unavailable, "another process kept the schema migration lock for " +
                                             std::to_string(timeout_s) + " s");
  }
  return {};
}

void release_lock(MysqlConnection& conn) {
  auto stmt = conn.run("SELECT RELEASE_LOCK(CONCAT('imd.schema.', DATABASE()))");
  if (stmt.ok()) {
    while (true) {
      auto row = (*stmt)->fetch();
      if (!row.ok() || !*row) break;
    }
  }
}

Result<void> apply_one(MysqlConnection& conn, const MysqlMigration& m) {
  for (std::string_view sql : m.statements) IMD_TRY(conn.execute_text(sql));
  IMD_TRY(conn.execute_text("START TRANSACTION"));
  auto inserted = conn.run("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                           std::int64_t{m.version}, unix_seconds());
  if (!inserted.ok()) {
    (void)conn.execute_text("ROLLBACK");
    return inserted.error();
  }
  return conn.execute_text("COMMIT");
}

}  // namespace

std::span<const MysqlMigration> mysql_migrations() {
  return kMigrations;
}

Result<int> mysql_schema_version(MysqlConnection& conn) {
  IMD_TRY(conn.execute_text(kCreateVersionTable));
  auto stmt = conn.run("SELECT COALESCE(MAX(version), 0) FROM schema_version");
  if (!stmt.ok()) return stmt.error();
  auto row = (*stmt)->fetch();
  if (!row.ok()) return row.error();
  if (!*row) return 0;
  return static_cast<int>((*stmt)->column_int64(0));
}

Result<int> apply_mysql_migrations(MysqlConnection& conn,
                                   std::span<const MysqlMigration> migrations, int lock_timeout_s) {
  for (std::size_t i = 1; i < migrations.size(); ++i) {
    if (migrations[i].version <= migrations[i - 1].version) {
      return make_error(Errc::invalid_argument, "migrations must be strictly ascending");
    }
  }
  IMD_TRY(take_lock(conn, lock_timeout_s));
  auto run = [&]() -> Result<int> {
    // Every version not recorded yet, not only those above the highest (versions are reserved
    // per branch of work: a lower one may land after a higher one).
    if (auto table = mysql_schema_version(conn); !table.ok()) return table.error();  // creates it
    std::set<int> recorded;
    {
      auto stmt = conn.run("SELECT version FROM schema_version");
      if (!stmt.ok()) return stmt.error();
      for (;;) {
        auto row = (*stmt)->fetch();
        if (!row.ok()) return row.error();
        if (!*row) break;
        recorded.insert(static_cast<int>((*stmt)->column_int64(0)));
      }
    }
    int applied = 0;
    for (const MysqlMigration& m : migrations) {
      if (recorded.contains(m.version)) continue;
      if (auto done = apply_one(conn, m); !done.ok()) {
        Error err = done.error();
        err.message = "version " + std::to_string(m.version) + ": " + err.message;
        return err;
      }
      ++applied;
    }
    return applied;
  };
  auto result = run();
  release_lock(conn);
  return result;
}

}  // namespace imd
