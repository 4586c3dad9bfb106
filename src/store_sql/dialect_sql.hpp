// The SQL of SqlStore (sql_store.hpp) that is not the same text in SQLite and MariaDB: one
// table per dialect, side by side. Every other statement is written once, in the method that
// runs it (sql_store_impl.hpp): both engines accept the same text there (identifiers quoted
// with backticks, which SQLite accepts too; parameters are '?' bound in order).
//
// Both versions of a field take the same arguments in the same order, listed on the field;
// SQLite's ?N names the Nth argument (where one is used twice or out of order).
#pragma once

#include <string_view>

namespace imd {

struct DialectSql {
  // users_by_name (name, limit): a case-insensitive equality that the name index serves.
  std::string_view users_by_name;
  // What follows a comparison of user.name to make it case-insensitive in the order of the
  // name index (directory_users' cursor and ORDER BY).
  std::string_view name_ci;
  // A join whose left side is read first, whatever the planner would choose (directory_users
  // drives from the viewer's few co-members).
  std::string_view join_in_order;
  // What create_user's unique-violation message contains when the phone's key was hit.
  std::string_view phone_key;
  // take_refresh_token (token_hash, now): the valid token's token_hash, user_id, expires_at,
  // session_id, read in the transaction that then shortens its life (MariaDB locks the row
  // until the commit; SQLite has one writer), so a concurrent take sees the shortened life.
  std::string_view take_refresh_token;
  // add_space_member (space_id, user_id, now): the insert; "already a member" is 0 rows or a
  // duplicate-key error (conflict), whichever the dialect gives.
  std::string_view add_space_member;
  // remove_space_member (space_id, user_id): the user's memberships of the space's channels.
  std::string_view leave_space_channels;
  // create_channel (space_id, owner_id): the owner's space membership, share-locked until the
  // commit where the engine has row locks.
  std::string_view owner_in_space;
  // join_unless_banned, accept_invite (space_id, user_id): the ban's row, share-locked until the
  // commit where the engine has row locks (a concurrent ban's insert is waited for).
  std::string_view banned_from_space;
  // add_channel_member (now, user_id, channel_id): one INSERT ... SELECT that starts the cursors
  // at the channel's last_seq and inserts only a member of the channel's space; "already a
  // member" as in add_space_member.
  std::string_view add_channel_member;
  // conversations (user_id): every DM of the user, with its last message (the dm row is found
  // by the ordered pair).
  std::string_view dm_conversations;
  // change_messages, a reaction: the message's reactions, read to be rewritten, locked until the
  // commit where the engine has row locks. (channel_id, seq) / (user_a, user_b, seq).
  std::string_view channel_reactions;
  std::string_view dm_reactions;
  // delete_channel (channel_id): the channel's row, read first and locked until the commit
  // where the engine has row locks, so a batch storing into it is wholly before or after.
  std::string_view lock_channel;
  // delete_channel (channel_id): the message_cid rows of the channel's messages, found by
  // their (sender, cid) key from the messages' side.
  std::string_view delete_channel_cids;
};

inline constexpr DialectSql kSqliteSql{
    // COLLATE NOCASE on the comparison is what lets user_name_nocase serve it.
    .users_by_name =
        "SELECT id, name, avatar, COALESCE(phone, ''), created_at FROM `user`"
        " WHERE name = ? COLLATE NOCASE ORDER BY id LIMIT ?",
    .name_ci = " COLLATE NOCASE",
    .join_in_order = "CROSS JOIN",
    .phone_key = "user.phone",
    .take_refresh_token =
        "SELECT token_hash, user_id, expires_at, session_id FROM refresh_token"
        " WHERE token_hash = ? AND revoked = 0 AND expires_at > ?",
    // ON CONFLICT names the key: a missing space or user still fails (foreign key, not_found).
    .add_space_member =
        "INSERT INTO space_user (space_id, user_id, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT(space_id, user_id) DO NOTHING",
    .leave_space_channels =
        "DELETE FROM channel_user WHERE user_id = ?2 AND channel_id IN"
        " (SELECT channel_id FROM space_channel WHERE space_id = ?1)",
    .owner_in_space = "SELECT 1 FROM space_user WHERE space_id = ? AND user_id = ?",
    .banned_from_space = "SELECT 1 FROM space_ban WHERE space_id = ? AND user_id = ?",
    .add_channel_member =
        "INSERT INTO channel_user"
        " (channel_id, user_id, last_ack_message_id, last_ack_seq, read_seq, joined_seq,"
        " created_at)"
        " SELECT ch.id, ?2, ch.last_message_id, ch.last_seq, ch.last_seq, ch.last_seq, ?1"
        " FROM channel ch"
        " JOIN space_channel sc ON sc.channel_id = ch.id"
        " JOIN space_user su ON su.space_id = sc.space_id AND su.user_id = ?2"
        " WHERE ch.id = ?3"
        " ON CONFLICT(channel_id, user_id) DO NOTHING",
    .dm_conversations =
        "SELECT d.user_a, d.user_b, COALESCE(u.name, ''), COALESCE(u.avatar, ''), d.last_seq,"
        " du.read_seq, du.last_ack_seq,"
        " m.id, m.`from`, m.`to`, m.type, m.body, m.created_at, m.user_a, m.user_b, m.seq, m.cid,"
        " m.reply_to, m.rev, m.change_kind, m.edited_at, m.deleted, m.reactions, d.last_rev,"
        " (SELECT COUNT(*) FROM mention mn WHERE mn.user_id = du.user_id AND mn.kind = 2"
        "  AND mn.conv_a = d.user_a AND mn.conv_b = d.user_b AND mn.seq > du.read_seq),"
        // The peer's read marker, unless either of them turned read receipts off.
        " (SELECT pu.read_seq FROM dm_user pu JOIN `user` pr ON pr.id = pu.user_id"
        "  JOIN `user` mr ON mr.id = pu.peer_id WHERE pu.user_id = du.peer_id"
        "  AND pu.peer_id = du.user_id AND pr.read_receipts <> 0 AND mr.read_receipts <> 0)"
        " FROM dm_user du"
        " JOIN dm d ON d.user_a = MIN(du.user_id, du.peer_id)"
        "  AND d.user_b = MAX(du.user_id, du.peer_id)"
        " LEFT JOIN `user` u ON u.id = du.peer_id"
        " LEFT JOIN message m ON m.user_a = d.user_a AND m.user_b = d.user_b"
        "  AND m.seq = d.last_seq"
        " WHERE du.user_id = ? ORDER BY du.peer_id",
    // The single writer holds the database: nothing can change the row meanwhile.
    .channel_reactions = "SELECT reactions FROM channel_message WHERE channel_id = ? AND seq = ?",
    .dm_reactions = "SELECT reactions FROM message WHERE user_a = ? AND user_b = ? AND seq = ?",
    .lock_channel = "SELECT 1 FROM channel WHERE id = ?",
    .delete_channel_cids =
        "DELETE FROM message_cid WHERE (sender_id, cid) IN"
        " (SELECT `from`, cid FROM channel_message WHERE channel_id = ? AND cid IS NOT NULL)",
};

inline constexpr DialectSql kMysqlSql{
    // name's column collation (case-insensitive) decides the comparison; user_name_ci serves
    // it, and its entries are ordered by (name, id), so ORDER BY id needs no sort.
    .users_by_name =
        "SELECT id, name, avatar, COALESCE(phone, ''), created_at FROM `user`"
        " WHERE name = ? ORDER BY id LIMIT ?",
    // The column's own collation (utf8mb4_uca1400_nopad_as_ci) is case-insensitive.
    .name_ci = "",
    .join_in_order = "STRAIGHT_JOIN",
    .phone_key = "'user_phone'",
    // The locking read holds the row until COMMIT: a concurrent take of the same token waits,
    // then reads its shortened life.
    .take_refresh_token =
        "SELECT token_hash, user_id, expires_at, session_id FROM refresh_token"
        " WHERE token_hash = ? AND revoked = 0 AND expires_at > ? FOR UPDATE",
    // A plain INSERT: a duplicate key is "already a member", a missing space or user fails its
    // foreign key (not_found). (INSERT IGNORE would turn the latter into a warning.)
    .add_space_member = "INSERT INTO space_user (space_id, user_id, created_at) VALUES (?, ?, ?)",
    .leave_space_channels =
        "DELETE cu FROM channel_user cu"
        " JOIN space_channel sc ON sc.channel_id = cu.channel_id"
        " WHERE sc.space_id = ? AND cu.user_id = ?",
    // A concurrent leave of the space waits for the commit (and then removes the owner from the
    // new channel too); it cannot slip in between.
    .owner_in_space =
        "SELECT 1 FROM space_user WHERE space_id = ? AND user_id = ? LOCK IN SHARE MODE",
    .banned_from_space =
        "SELECT 1 FROM space_ban WHERE space_id = ? AND user_id = ? LOCK IN SHARE MODE",
    // INSERT ... SELECT share-locks the rows it reads (channel, space_channel, space_user), so
    // a batch storing into the channel is either wholly before the join or unread after it,
    // and a concurrent leave of the space either waits for this commit (and removes the new
    // membership) or has already removed the space membership.
    .add_channel_member =
        "INSERT INTO channel_user"
        " (channel_id, user_id, last_ack_message_id, last_ack_seq, read_seq, joined_seq,"
        " created_at)"
        " SELECT ch.id, su.user_id, ch.last_message_id, ch.last_seq,"
        " ch.last_seq, ch.last_seq, CAST(? AS SIGNED) FROM channel ch"
        " JOIN space_channel sc ON sc.channel_id = ch.id"
        " JOIN space_user su ON su.space_id = sc.space_id AND su.user_id = ?"
        " WHERE ch.id = ?",
    .dm_conversations =
        "SELECT d.user_a, d.user_b, COALESCE(u.name, ''), COALESCE(u.avatar, ''), d.last_seq,"
        " du.read_seq, du.last_ack_seq,"
        " m.id, m.`from`, m.`to`, m.type, m.body, m.created_at, m.user_a, m.user_b, m.seq, m.cid,"
        " m.reply_to, m.rev, m.change_kind, m.edited_at, m.deleted, m.reactions, d.last_rev,"
        " (SELECT COUNT(*) FROM mention mn WHERE mn.user_id = du.user_id AND mn.kind = 2"
        "  AND mn.conv_a = d.user_a AND mn.conv_b = d.user_b AND mn.seq > du.read_seq),"
        // The peer's read marker, unless either of them turned read receipts off.
        " (SELECT pu.read_seq FROM dm_user pu JOIN `user` pr ON pr.id = pu.user_id"
        "  JOIN `user` mr ON mr.id = pu.peer_id WHERE pu.user_id = du.peer_id"
        "  AND pu.peer_id = du.user_id AND pr.read_receipts <> 0 AND mr.read_receipts <> 0)"
        " FROM dm_user du"
        " JOIN dm d ON d.user_a = LEAST(du.user_id, du.peer_id)"
        "  AND d.user_b = GREATEST(du.user_id, du.peer_id)"
        " LEFT JOIN `user` u ON u.id = du.peer_id"
        " LEFT JOIN message m ON m.user_a = d.user_a AND m.user_b = d.user_b"
        "  AND m.seq = d.last_seq"
        " WHERE du.user_id = ? ORDER BY du.peer_id",
    // A locking read: the latest committed reactions, and no other writer until the commit.
    .channel_reactions =
        "SELECT reactions FROM channel_message WHERE channel_id = ? AND seq = ? FOR UPDATE",
    .dm_reactions =
        "SELECT reactions FROM message WHERE user_a = ? AND user_b = ? AND seq = ? FOR UPDATE",
    .lock_channel = "SELECT 1 FROM channel WHERE id = ? FOR UPDATE",
    // A join on message_cid's primary key (a row-value IN would scan it).
    .delete_channel_cids =
        "DELETE mc FROM message_cid mc"
        " JOIN channel_message cm ON mc.sender_id = cm.`from` AND mc.cid = cm.cid"
        " WHERE cm.channel_id = ?",
};

}  // namespace imd
