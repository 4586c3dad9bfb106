// SqliteStore: the standalone Store adapter (see domain/ports/store.hpp for the contract).
//
// Thread-safe, blocking. Writes serialize on the database's writer connection; reads run on
// its reader pool. Errors: not_found, conflict, forbidden as the port says; unavailable for an
// engine failure (busy beyond busy_timeout_ms, I/O). Never throws.
//
// Choices the port leaves open:
// - An empty phone is stored as NULL: several users may have none, user_by_phone("") finds no
//   one. An empty cid opts a message out of de-duplication.
// - create_channel ignores Channel::last_seq/last_message_id: a new channel starts at 0.
// - revoke_refresh_token of an unknown hash is not_found; of a revoked one, ok.
// - messages() with both before_seq and after_seq is invalid_argument; an unknown
//   conversation has no messages (an empty page, not not_found).
#pragma once

#include <memory>
#include <optional>

#include "domain/ports/store.hpp"
#include "store/message_row_cache.hpp"
#include "store/sqlite_db.hpp"

namespace imd {

class SqliteStore final : public Store {
 public:
  // History pages are served from `row_cache_bytes` of remembered rows where they can be
  // (store/message_row_cache.hpp; 0: always from the database).
  static constexpr std::size_t kDefaultRowCacheBytes = 64u << 20;
  explicit SqliteStore(std::shared_ptr<SqliteDatabase> db,
                       std::size_t row_cache_bytes = kDefaultRowCacheBytes);

  Result<void> create_user(const User& user, const std::string& password_hash) override;
  Result<UserCredentials> user_by_phone(std::string_view phone) override;
  Result<User> user_by_id(Id id) override;
  Result<std::vector<User>> users_by_name(std::string_view name, std::uint32_t limit) override;
  Result<User> update_user(Id id, const std::optional<std::string>& name,
                           const std::optional<std::string>& avatar) override;

  Result<void> save_refresh_token(const RefreshToken& token) override;
  Result<RefreshToken> take_refresh_token(std::string_view token_hash, Millis now) override;
  Result<void> revoke_refresh_token(std::string_view token_hash) override;

  Result<void> create_space(const Space& space) override;
  Result<Space> space_by_id(Id id) override;
  Result<std::vector<Space>> spaces_of_user(Id user_id) override;
  Result<Space> update_space(Id id, const std::optional<std::string>& name,
                             const std::optional<std::string>& avatar) override;
  Result<bool> is_space_member(Id space_id, Id user_id) override;
  Result<bool> add_space_member(Id space_id, Id user_id, Millis now) override;
  Result<bool> remove_space_member(Id space_id, Id user_id) override;
  Result<std::vector<Member>> space_members(Id space_id, Id after_user_id,
                                            std::uint32_t limit) override;

  Result<void> create_channel(const Channel& channel) override;
  Result<Channel> channel_by_id(Id id) override;
  Result<std::vector<Channel>> channels_of_space(Id space_id) override;
  Result<bool> is_channel_member(Id channel_id, Id user_id) override;
  Result<bool> add_channel_member(Id channel_id, Id user_id, Millis now) override;
  Result<bool> remove_channel_member(Id channel_id, Id user_id) override;
  Result<std::vector<Member>> channel_members(Id channel_id, Id after_user_id,
                                              std::uint32_t limit) override;
  Result<std::vector<Id>> channel_member_ids(Id channel_id) override;
  Result<Memberships> memberships_of_user(Id user_id) override;

  Result<std::vector<Result<Appended>>> append_messages(std::span<const NewMessage> batch) override;
  Result<std::vector<Message>> messages(const ConvKey& conv, const HistoryQuery& q) override;
  // From the row cache: a before_seq/after_seq page whose every row is remembered.
  std::optional<std::vector<Message>> cached_messages(const ConvKey& conv,
                                                      const HistoryQuery& q) override;
  Result<std::uint64_t> advance_delivery(Id user_id, const ConvKey& conv,
                                         std::uint64_t seq) override;
  Result<std::vector<DeliveryUpdate>> advance_deliveries(
      std::span<const DeliveryUpdate> updates) override;
  Result<std::uint64_t> advance_read(Id user_id, const ConvKey& conv, std::uint64_t seq) override;
  Result<std::vector<ConversationState>> conversations(Id user_id) override;

 private:
  std::shared_ptr<SqliteDatabase> db_;
  std::optional<MessageRowCache> rows_;
};

}  // namespace imd
