// Spaces (workspaces) and their channels, with authorization on every call:
// - a space is readable by its members only; joining is open to anyone who knows its id;
//   only the owner may update it; the owner cannot leave it;
// - channels are created and listed by space members; a channel's metadata is readable by
//   members of its space, its member list by channel members only; joining a channel
//   requires membership of its space; leaving a space leaves its channels.
// Membership checks read the user cache (each user's space and channel ids); membership
// changes write the Store first, then invalidate the member cache of the channels touched and
// the user cache of the user, so a stale list lives at most until the next read.
// Thread-safe; blocking (Store, caches): run on the pool.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/id_generator.hpp"
#include "domain/ports/member_cache.hpp"
#include "domain/ports/store.hpp"
#include "domain/ports/user_cache.hpp"

namespace imd {

// A page of a keyset-paged list (by id, ascending; members by user id).
template <class T>
struct Page {
  std::vector<T> items;
  std::optional<Id> next_after;  // pass as `after` for the next page; none at the end
};
using MemberPage = Page<Member>;

inline constexpr std::uint32_t kMaxPageSize = 100;

// Quotas (docs/security.md); over one, forbidden naming the limit. Checked before the write:
// requests racing each other may pass a quota by the few in flight.
struct SpaceQuotas {
  std::uint64_t spaces_per_user = 100;  // spaces a user owns
  std::uint64_t channels_per_space = 500;
  std::uint64_t members_per_space = 10000;
};

class SpaceService {
 public:
  SpaceService(Store& store, MemberCache& cache, UserCache& users, IdGenerator& ids, Clock& clock,
               SpaceQuotas quotas = {});

  Result<Space> create_space(Id user, const std::string& name, const std::string& avatar);
  Result<Space> get_space(Id user, Id space_id);
  Result<Page<Space>> my_spaces(Id user, Id after, std::uint32_t limit);
  Result<Space> update_space(Id user, Id space_id, const std::optional<std::string>& name,
                             const std::optional<std::string>& avatar);
  Result<Space> join_space(Id user, Id space_id);
  Result<void> leave_space(Id user, Id space_id);
  Result<MemberPage> space_members(Id user, Id space_id, Id after, std::uint32_t limit);

  Result<Channel> create_channel(Id user, Id space_id, const std::string& name,
                                 const std::string& avatar);
  Result<Page<Channel>> space_channels(Id user, Id space_id, Id after, std::uint32_t limit);
  Result<Channel> get_channel(Id user, Id channel_id);
  Result<Channel> join_channel(Id user, Id channel_id);
  Result<void> leave_channel(Id user, Id channel_id);
  Result<MemberPage> channel_members(Id user, Id channel_id, Id after, std::uint32_t limit);

 private:
  Result<bool> in_space(Id user, Id space_id);
  Result<bool> in_channel(Id user, Id channel_id);
  Result<Space> space_for_member(Id user, Id space_id);
  Result<void> check_space_member(Id user, Id space_id);
  Result<Channel> channel_for_space_member(Id user, Id channel_id);

  Store& store_;
  MemberCache& cache_;
  UserCache& users_;
  IdGenerator& ids_;
  Clock& clock_;
  SpaceQuotas quotas_;
};

}  // namespace imd
