#include "domain/space_service.hpp"

#include <algorithm>

#include "domain/auth_service.hpp"

namespace imd {
namespace {
Error not_member(const char* what) {
  return make_error(Errc::forbidden, std::string("not a member of this ") + what);
}

Id key_of(const Member& m) {
  return m.user_id;
}
template <class T>
Id key_of(const T& item) {
  return item.id;
}

// A full page has a next one (maybe empty): it starts after this page's last key.
template <class T>
Result<Page<T>> to_page(Result<std::vector<T>> r, std::uint32_t limit) {
  if (!r) return r.error();
  Page<T> page;
  page.items = std::move(*r);
  if (page.items.size() == limit) page.next_after = key_of(page.items.back());
  return page;
}

// forbidden when `what` of `id` already has `quota` rows.
Result<void> within_quota(Store& store, Store::Counted what, Id id, std::uint64_t quota,
                          const char* rule) {
  auto n = store.count(what, id);
  if (!n) return n.error();
  if (*n >= quota) {
    return make_error(Errc::forbidden,
                      std::string("quota reached: ") + rule + " (" + std::to_string(quota) + ")");
  }
  return {};
}
}  // namespace

SpaceService::SpaceService(Store& store, MemberCache& cache, UserCache& users, IdGenerator& ids,
                           Clock& clock, SpaceQuotas quotas)
    : store_(store), cache_(cache), users_(users), ids_(ids), clock_(clock), quotas_(quotas) {}

Result<bool> SpaceService::in_space(Id user, Id space_id) {
  auto m = users_.memberships(user);
  if (!m) return m.error();
  return std::binary_search((*m)->spaces.begin(), (*m)->spaces.end(), space_id);
}

Result<bool> SpaceService::in_channel(Id user, Id channel_id) {
  auto m = users_.memberships(user);
  if (!m) return m.error();
  return std::binary_search((*m)->channels.begin(), (*m)->channels.end(), channel_id);
}

Result<Space> SpaceService::space_for_member(Id user, Id space_id) {
  auto space = store_.space_by_id(space_id);
  if (!space) return space.error();
  auto member = in_space(user, space_id);
  if (!member) return member.error();
  if (!*member) return not_member("space");
  return space;
}

// A member needs no Store read; for anyone else the Store tells not_found from forbidden.
Result<void> SpaceService::check_space_member(Id user, Id space_id) {
  auto member = in_space(user, space_id);
  if (!member) return member.error();
  if (*member) return {};
  auto space = store_.space_by_id(space_id);
  if (!space) return space.error();
  return not_member("space");
}

Result<Space> SpaceService::create_space(Id user, const std::string& name,
                                         const std::string& avatar) {
  IMD_TRY(check_name("name", name));
  IMD_TRY(check_avatar(avatar));
  IMD_TRY(within_quota(store_, Store::Counted::spaces_owned_by, user, quotas_.spaces_per_user,
                       "a user owns at most limits.spaces_per_user spaces"));
  auto id = ids_.next();
  if (!id) return id.error();
  Space s{*id, name, avatar, user, clock_.now_ms()};
  IMD_TRY(store_.create_space(s));
  users_.invalidate(user);
  return s;
}

Result<Space> SpaceService::get_space(Id user, Id space_id) {
  return space_for_member(user, space_id);
}

Result<Page<Space>> SpaceService::my_spaces(Id user, Id after, std::uint32_t limit) {
  limit = std::clamp<std::uint32_t>(limit, 1, kMaxPageSize);
  return to_page(store_.spaces_of_user(user, after, limit), limit);
}

Result<Space> SpaceService::update_space(Id user, Id space_id,
                                         const std::optional<std::string>& name,
                                         const std::optional<std::string>& avatar) {
  if (name) IMD_TRY(check_name("name", *name));
  if (avatar) IMD_TRY(check_avatar(*avatar));
  auto space = space_for_member(user, space_id);
  if (!space) return space;
  if (space->owner_id != user) {
    return make_error(Errc::forbidden, "only the owner may change a space");
  }
  if (!name && !avatar) return space;
  return store_.update_space(space_id, name, avatar);
}

Result<Space> SpaceService::join_space(Id user, Id space_id) {
  auto space = store_.space_by_id(space_id);
  if (!space) return space;
  auto member = in_space(user, space_id);
  if (!member) return member.error();
  if (*member) return space;  // joining twice changes nothing, and counts against nothing
  IMD_TRY(within_quota(store_, Store::Counted::members_in_space, space_id,
                       quotas_.members_per_space,
                       "a space has at most limits.members_per_space members"));
  auto added = store_.add_space_member(space_id, user, clock_.now_ms());
  if (!added) return added.error();
  if (*added) users_.invalidate(user);
  return space;
}

Result<void> SpaceService::leave_space(Id user, Id space_id) {
  auto space = space_for_member(user, space_id);
  if (!space) return space.error();
  if (space->owner_id == user) {
    return make_error(Errc::conflict, "the owner cannot leave their space");
  }
  // Every channel of the space, page by page: their member caches are invalidated below.
  std::vector<Id> channels;
  for (Id after = 0;;) {
    auto page = store_.channels_of_space(space_id, after, kMaxPageSize * 10);
    if (!page) return page.error();
    for (const auto& c : *page) channels.push_back(c.id);
    if (page->size() < kMaxPageSize * 10) break;
    after = page->back().id;
  }
  auto removed = store_.remove_space_member(space_id, user);
  if (!removed) return removed.error();
  for (Id c : channels) cache_.invalidate(c);
  users_.invalidate(user);
  return {};
}

Result<MemberPage> SpaceService::space_members(Id user, Id space_id, Id after,
                                               std::uint32_t limit) {
  limit = std::clamp<std::uint32_t>(limit, 1, kMaxPageSize);
  IMD_TRY(check_space_member(user, space_id));
  return to_page(store_.space_members(space_id, after, limit), limit);
}

Result<Channel> SpaceService::create_channel(Id user, Id space_id, const std::string& name,
                                             const std::string& avatar) {
  IMD_TRY(check_name("name", name));
  IMD_TRY(check_avatar(avatar));
  IMD_TRY(check_space_member(user, space_id));
  IMD_TRY(within_quota(store_, Store::Counted::channels_in_space, space_id,
                       quotas_.channels_per_space,
                       "a space has at most limits.channels_per_space channels"));
  auto id = ids_.next();
  if (!id) return id.error();
  Channel c;
  c.id = *id;
  c.space_id = space_id;
  c.name = name;
  c.avatar = avatar;
  c.owner_id = user;
  c.created_at = clock_.now_ms();
  IMD_TRY(store_.create_channel(c));
  cache_.invalidate(c.id);
  users_.invalidate(user);
  return c;
}

Result<Page<Channel>> SpaceService::space_channels(Id user, Id space_id, Id after,
                                                   std::uint32_t limit) {
  limit = std::clamp<std::uint32_t>(limit, 1, kMaxPageSize);
  IMD_TRY(check_space_member(user, space_id));
  return to_page(store_.channels_of_space(space_id, after, limit), limit);
}

Result<Channel> SpaceService::channel_for_space_member(Id user, Id channel_id) {
  auto channel = store_.channel_by_id(channel_id);
  if (!channel) return channel;
  auto member = in_space(user, channel->space_id);
  if (!member) return member.error();
  if (!*member) return not_member("channel's space");
  return channel;
}

Result<Channel> SpaceService::get_channel(Id user, Id channel_id) {
  return channel_for_space_member(user, channel_id);
}

Result<Channel> SpaceService::join_channel(Id user, Id channel_id) {
  auto channel = channel_for_space_member(user, channel_id);
  if (!channel) return channel;
  auto added = store_.add_channel_member(channel_id, user, clock_.now_ms());
  if (!added) return added.error();
  cache_.invalidate(channel_id);
  users_.invalidate(user);
  return channel;
}

Result<void> SpaceService::leave_channel(Id user, Id channel_id) {
  auto channel = store_.channel_by_id(channel_id);
  if (!channel) return channel.error();
  auto removed = store_.remove_channel_member(channel_id, user);
  if (!removed) return removed.error();
  if (!*removed) return not_member("channel");
  cache_.invalidate(channel_id);
  users_.invalidate(user);
  return {};
}

Result<MemberPage> SpaceService::channel_members(Id user, Id channel_id, Id after,
                                                 std::uint32_t limit) {
  limit = std::clamp<std::uint32_t>(limit, 1, kMaxPageSize);
  auto member = in_channel(user, channel_id);
  if (!member) return member.error();
  if (!*member) {
    auto channel = store_.channel_by_id(channel_id);  // not_found, or not a member
    if (!channel) return channel.error();
    return not_member("channel");
  }
  return to_page(store_.channel_members(channel_id, after, limit), limit);
}

}  // namespace imd
