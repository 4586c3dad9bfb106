// SpaceService (domain/space_service.hpp) in process, on the standalone adapters: who may create,
// read, join, leave and list what, member lists paged, and the cache invalidations that make a
// membership change visible to MessagingService at once (a member who left cannot send).
#include <gtest/gtest.h>

#include <vector>

#include "support/in_process.hpp"

namespace imd {
namespace {

using testing::error_of;

constexpr Id kAlice = 1, kBob = 2, kCarol = 3, kDave = 4;

class Spaces : public ::testing::Test, protected testing::InProcess<> {
 protected:
  // Alice owns a space with one channel; Bob is in both, Carol only in the space, Dave nowhere.
  void SetUp() override {
    add_users({kAlice, kBob, kCarol, kDave, 5, 6, 7});
    auto s = spaces.create_space(kAlice, "team", "t.png");
    ASSERT_TRUE(s.ok()) << s.error().message;
    space_ = *s;
    auto c = spaces.create_channel(kAlice, space_.id, "general", "");
    ASSERT_TRUE(c.ok()) << c.error().message;
    channel_ = *c;
    ASSERT_TRUE(spaces.set_discoverable(kAlice, space_.id, true).ok());  // joinable by id
    for (Id u : {kBob, kCarol}) ASSERT_TRUE(spaces.join_space(u, space_.id).ok());
    ASSERT_TRUE(spaces.join_channel(kBob, channel_.id).ok());
  }

  static std::vector<Id> ids(const MemberPage& page) {
    std::vector<Id> out;
    for (const auto& m : page.items) out.push_back(m.user_id);
    return out;
  }
  Result<void> post(Id user) {
    return messaging.submit(
        user, testing::text_to_channel(channel_.id, "c" + std::to_string(++cids_)), {});
  }

  Space space_;
  Channel channel_;
  int cids_ = 0;
};

TEST_F(Spaces, CreatingASpaceAndAChannelMakesTheOwnerAMember) {
  EXPECT_EQ(space_.owner_id, kAlice);
  EXPECT_EQ(space_.name, "team");
  EXPECT_EQ(space_.created_at, clock.now_ms());
  EXPECT_EQ(channel_.space_id, space_.id);
  auto mine = spaces.my_spaces(kAlice, 0, 100);
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->items.size(), 1u);
  EXPECT_EQ(mine->items.front().id, space_.id);
  EXPECT_FALSE(mine->next_after);
  auto members = spaces.channel_members(kAlice, channel_.id, 0, 10);
  ASSERT_TRUE(members.ok());
  EXPECT_EQ(ids(*members), (std::vector<Id>{kAlice, kBob}));
  auto listed = spaces.space_channels(kCarol, space_.id, 0, 100);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->items.size(), 1u);
  EXPECT_EQ(listed->items.front().name, "general");

  EXPECT_EQ(error_of(spaces.create_space(kAlice, "", "")), Errc::invalid_argument);
  EXPECT_EQ(error_of(spaces.create_space(kAlice, std::string(65, 'n'), "")),
            Errc::invalid_argument);
  EXPECT_EQ(error_of(spaces.create_channel(kAlice, space_.id, " ", "")), Errc::invalid_argument);
}

// A space is readable by its members (to others it does not exist); anyone may join a
// discoverable one; only admins change it, and the owner cannot leave it.
TEST_F(Spaces, SpaceRules) {
  EXPECT_TRUE(spaces.get_space(kCarol, space_.id).ok());
  EXPECT_EQ(error_of(spaces.get_space(kDave, space_.id)), Errc::not_found);
  EXPECT_EQ(error_of(spaces.get_space(kDave, 999)), Errc::not_found);
  EXPECT_EQ(error_of(spaces.space_members(kDave, space_.id, 0, 10)), Errc::not_found);

  EXPECT_EQ(error_of(spaces.update_space(kBob, space_.id, "mine", std::nullopt)), Errc::forbidden);
  EXPECT_EQ(error_of(spaces.update_space(kDave, space_.id, "mine", std::nullopt)), Errc::not_found);
  auto renamed = spaces.update_space(kAlice, space_.id, "renamed", std::nullopt);
  ASSERT_TRUE(renamed.ok());
  EXPECT_EQ(renamed->name, "renamed");
  EXPECT_EQ(renamed->avatar, "t.png");
  EXPECT_EQ(spaces.get_space(kBob, space_.id)->name, "renamed");

  EXPECT_EQ(error_of(spaces.join_space(kDave, 999)), Errc::not_found);
  ASSERT_TRUE(spaces.join_space(kDave, space_.id).ok());
  ASSERT_TRUE(spaces.join_space(kDave, space_.id).ok());  // twice: still one membership
  EXPECT_TRUE(spaces.get_space(kDave, space_.id).ok());
  EXPECT_EQ(spaces.space_members(kAlice, space_.id, 0, 10)->items.size(), 4u);

  EXPECT_EQ(error_of(spaces.leave_space(kAlice, space_.id)), Errc::conflict);
  ASSERT_TRUE(spaces.leave_space(kDave, space_.id).ok());
  EXPECT_EQ(error_of(spaces.leave_space(kDave, space_.id)), Errc::not_found);
  EXPECT_EQ(error_of(spaces.get_space(kDave, space_.id)), Errc::not_found);
}

// Channels: created and listed by members of the space; their metadata readable by the space,
// their member list by the channel; joining needs the space.
TEST_F(Spaces, ChannelRules) {
  EXPECT_EQ(error_of(spaces.create_channel(kDave, space_.id, "mine", "")), Errc::not_found);
  EXPECT_EQ(error_of(spaces.create_channel(kDave, 999, "mine", "")), Errc::not_found);
  EXPECT_EQ(error_of(spaces.space_channels(kDave, space_.id, 0, 100)), Errc::not_found);
  auto carols = spaces.create_channel(kCarol, space_.id, "carols", "");  // any member may
  ASSERT_TRUE(carols.ok());
  EXPECT_EQ(carols->owner_id, kCarol);
  EXPECT_EQ(spaces.space_channels(kBob, space_.id, 0, 100)->items.size(), 2u);

  EXPECT_TRUE(spaces.get_channel(kCarol, channel_.id).ok());  // in the space, not the channel
  EXPECT_EQ(error_of(spaces.get_channel(kDave, channel_.id)), Errc::not_found);
  EXPECT_EQ(error_of(spaces.get_channel(kDave, 999)), Errc::not_found);
  EXPECT_EQ(error_of(spaces.channel_members(kCarol, channel_.id, 0, 10)), Errc::forbidden);
  EXPECT_EQ(error_of(spaces.channel_members(kCarol, 999, 0, 10)), Errc::not_found);

  EXPECT_EQ(error_of(spaces.join_channel(kDave, channel_.id)), Errc::not_found);
  EXPECT_EQ(error_of(spaces.join_channel(kCarol, 999)), Errc::not_found);
  ASSERT_TRUE(spaces.join_channel(kCarol, channel_.id).ok());
  EXPECT_EQ(ids(*spaces.channel_members(kCarol, channel_.id, 0, 10)),
            (std::vector<Id>{kAlice, kBob, kCarol}));

  ASSERT_TRUE(spaces.leave_channel(kCarol, channel_.id).ok());
  EXPECT_EQ(error_of(spaces.leave_channel(kCarol, channel_.id)), Errc::forbidden);
  EXPECT_EQ(error_of(spaces.leave_channel(kCarol, 999)), Errc::not_found);
  EXPECT_EQ(error_of(spaces.channel_members(kCarol, channel_.id, 0, 10)), Errc::forbidden);
}

// Member lists come in pages by user id: a full page names where the next one starts.
TEST_F(Spaces, MemberListsArePaged) {
  for (Id u : {kDave, Id{5}, Id{6}, Id{7}}) ASSERT_TRUE(spaces.join_space(u, space_.id).ok());
  std::vector<Id> all;
  std::vector<std::size_t> sizes;
  Id after = 0;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = spaces.space_members(kBob, space_.id, after, 3);
    ASSERT_TRUE(page.ok());
    sizes.push_back(page->items.size());
    for (Id u : ids(*page)) all.push_back(u);
    if (!page->next_after) break;
    EXPECT_EQ(*page->next_after, page->items.back().user_id);
    after = *page->next_after;
  }
  EXPECT_EQ(all, (std::vector<Id>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 3, 1}));
  // The page size is clamped to 1..100.
  EXPECT_EQ(spaces.space_members(kBob, space_.id, 0, 0)->items.size(), 1u);
  EXPECT_EQ(spaces.space_members(kBob, space_.id, 0, 1000)->items.size(), 7u);

  ASSERT_TRUE(spaces.join_channel(kCarol, channel_.id).ok());
  auto first = spaces.channel_members(kBob, channel_.id, 0, 2);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(ids(*first), (std::vector<Id>{kAlice, kBob}));
  ASSERT_TRUE(first->next_after.has_value());
  auto rest = spaces.channel_members(kBob, channel_.id, *first->next_after, 2);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(ids(*rest), std::vector<Id>{kCarol});
  EXPECT_FALSE(rest->next_after.has_value());
}

// Membership changes invalidate the caches MessagingService reads: with its member list and
// the users' memberships warm, a join lets the new member send and receive at once, a leave
// stops both, and the conversation list follows.
TEST_F(Spaces, MembershipChangesReachMessagingAtOnce) {
  ASSERT_TRUE(post(kBob).ok());                       // warms the channel's member list
  ASSERT_TRUE(messaging.conversations(kCarol).ok());  // and Carol's memberships
  EXPECT_EQ(error_of(post(kCarol)), Errc::not_found);

  ASSERT_TRUE(spaces.join_channel(kCarol, channel_.id).ok());
  EXPECT_TRUE(post(kCarol).ok());
  EXPECT_TRUE(messaging.check_access(kCarol, ConvKey::channel(channel_.id)).ok());
  EXPECT_EQ(messaging.conversations(kCarol)->conversations.size(), 1u);

  ASSERT_TRUE(spaces.leave_channel(kBob, channel_.id).ok());
  EXPECT_EQ(error_of(post(kBob)), Errc::not_found);
  EXPECT_EQ(error_of(messaging.history(kBob, ConvKey::channel(channel_.id), {})), Errc::not_found);

  // Leaving the space leaves its channels too.
  ASSERT_TRUE(spaces.leave_space(kCarol, space_.id).ok());
  EXPECT_EQ(error_of(post(kCarol)), Errc::not_found);
  auto carol = messaging.conversations(kCarol);
  ASSERT_TRUE(carol.ok());
  EXPECT_TRUE(carol->conversations.empty());
  EXPECT_TRUE(carol->spaces.empty());
  auto left = spaces.channel_members(kAlice, channel_.id, 0, 10);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(ids(*left), std::vector<Id>{kAlice});
}

// Fan-out follows the member list: who left gets nothing more, who joined gets what follows.
TEST_F(Spaces, FanOutFollowsJoinsAndLeaves) {
  start_queue();
  ConnRef a1 = connect(kAlice), b1 = connect(kBob), c1 = connect(kCarol);
  auto send_and_wait = [&](const std::string& body) {
    ASSERT_TRUE(send(kAlice, testing::text_to_channel(channel_.id, body, body), a1));
  };
  send_and_wait("one");
  ASSERT_TRUE(spaces.join_channel(kCarol, channel_.id).ok());
  ASSERT_TRUE(spaces.leave_channel(kBob, channel_.id).ok());
  send_and_wait("two");
  auto to_bob = pusher.events<MessageEvent>(b1);
  ASSERT_EQ(to_bob.size(), 1u);
  EXPECT_EQ(to_bob[0].msg.body, "one");
  auto to_carol = pusher.events<MessageEvent>(c1);
  ASSERT_EQ(to_carol.size(), 1u);
  EXPECT_EQ(to_carol[0].msg.body, "two");
  EXPECT_EQ(to_carol[0].msg.seq, 2u);
}

}  // namespace
}  // namespace imd

namespace imd {
namespace {

// Quotas: spaces a user owns, channels in a space, members of a space; each refusal names its
// limit; joining twice costs nothing.
TEST_F(Spaces, QuotasBoundSpacesChannelsAndMembers) {
  SpaceService small{store, members, users, testing::InProcess<>::ids, clock, SpaceQuotas{2, 2, 3}};
  ASSERT_TRUE(small.create_space(kBob, "b1", "").ok());
  auto b2 = small.create_space(kBob, "b2", "");
  ASSERT_TRUE(b2.ok());
  auto third = small.create_space(kBob, "b3", "");
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, Errc::forbidden);
  EXPECT_NE(third.error().message.find("limits.spaces_per_user"), std::string::npos);

  ASSERT_TRUE(small.create_channel(kBob, b2->id, "c1", "").ok());
  ASSERT_TRUE(small.create_channel(kBob, b2->id, "c2", "").ok());
  auto c3 = small.create_channel(kBob, b2->id, "c3", "");
  ASSERT_FALSE(c3.ok());
  EXPECT_NE(c3.error().message.find("limits.channels_per_space"), std::string::npos);

  ASSERT_TRUE(small.set_discoverable(kBob, b2->id, true).ok());
  ASSERT_TRUE(small.join_space(kCarol, b2->id).ok());
  ASSERT_TRUE(small.join_space(kDave, b2->id).ok());
  EXPECT_TRUE(small.join_space(kDave, b2->id).ok());  // already a member: no quota
  auto fourth = small.join_space(5, b2->id);
  ASSERT_FALSE(fourth.ok());
  EXPECT_NE(fourth.error().message.find("limits.members_per_space"), std::string::npos);
}

// An invitation ends at its expiry (the injected clock), after its last use, or when revoked;
// accepting as a member consumes nothing; a ban outlives any invitation.
TEST_F(Spaces, InvitationsExpireRunOutAndStopBannedUsers) {
  const Space priv = *spaces.create_space(kAlice, "private", "");
  EXPECT_EQ(error_of(spaces.join_space(kDave, priv.id)), Errc::not_found);
  auto inv = spaces.create_invite(kAlice, priv.id, 2, 3600);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->expires_at, clock.now_ms() + 3600 * 1000);
  EXPECT_EQ(error_of(spaces.create_invite(kBob, priv.id, 1, 3600)), Errc::not_found);

  ASSERT_TRUE(spaces.accept_invite(kBob, inv->code).ok());
  ASSERT_TRUE(spaces.accept_invite(kBob, inv->code).ok());  // a member: no use consumed
  EXPECT_EQ(spaces.preview_invite(inv->code)->members, 2u);
  EXPECT_EQ(error_of(spaces.create_invite(kBob, priv.id, 1, 3600)), Errc::forbidden);

  clock.advance(std::chrono::seconds(3600));
  EXPECT_EQ(error_of(spaces.preview_invite(inv->code)), Errc::not_found);
  EXPECT_EQ(error_of(spaces.accept_invite(kCarol, inv->code)), Errc::not_found);

  auto once = spaces.create_invite(kAlice, priv.id, 1, 60);
  ASSERT_TRUE(once.ok());
  ASSERT_TRUE(spaces.accept_invite(kCarol, once->code).ok());
  EXPECT_EQ(error_of(spaces.accept_invite(kDave, once->code)), Errc::not_found);

  auto revoked = spaces.create_invite(kAlice, priv.id, std::nullopt, std::nullopt);
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->max_uses, kInviteDefaultUses);
  EXPECT_EQ(revoked->expires_at, clock.now_ms() + kInviteDefaultTtlS * 1000);
  ASSERT_TRUE(spaces.revoke_invite(kAlice, priv.id, revoked->code).ok());
  EXPECT_EQ(error_of(spaces.accept_invite(kDave, revoked->code)), Errc::not_found);
  EXPECT_EQ(error_of(spaces.revoke_invite(kAlice, priv.id, revoked->code)), Errc::not_found);

  ASSERT_TRUE(spaces.ban(kAlice, priv.id, kCarol).ok());
  auto again = spaces.create_invite(kAlice, priv.id, 5, 60);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(error_of(spaces.accept_invite(kCarol, again->code)), Errc::forbidden);
  EXPECT_EQ(error_of(spaces.get_space(kCarol, priv.id)), Errc::not_found);
  ASSERT_TRUE(spaces.unban(kAlice, priv.id, kCarol).ok());
  EXPECT_TRUE(spaces.accept_invite(kCarol, again->code).ok());
}

// A removal reaches the removed user's connections as a RemovedEvent; leaving does not.
TEST_F(Spaces, RemovalIsPushedToTheRemovedUser) {
  SpaceService told{store,
                    members,
                    users,
                    testing::InProcess<>::ids,
                    clock,
                    SpaceQuotas{},
                    SpaceEvents{&routes, &pusher}};
  ConnRef bob = connect(kBob), carol = connect(kCarol);
  ASSERT_TRUE(told.remove_member(kAlice, space_.id, kBob).ok());
  auto removed = pusher.events<RemovedEvent>(bob);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].space_id, space_.id);
  EXPECT_EQ(removed[0].reason, "removed");
  EXPECT_EQ(error_of(post(kBob)), Errc::not_found);
  ASSERT_TRUE(told.leave_space(kCarol, space_.id).ok());
  EXPECT_TRUE(pusher.events<RemovedEvent>(carol).empty());
}

// Space and channel lists are keyset-paged like member lists.
TEST_F(Spaces, SpaceAndChannelListsArePaged) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(spaces.create_channel(kAlice, space_.id, "x", "").ok());
  std::vector<Id> seen;
  for (Id after = 0;;) {
    auto page = spaces.space_channels(kAlice, space_.id, after, 2);
    ASSERT_TRUE(page.ok());
    for (const auto& c : page->items) seen.push_back(c.id);
    if (!page->next_after) break;
    after = *page->next_after;
  }
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  ASSERT_TRUE(spaces.create_space(kAlice, "second", "").ok());
  auto first = spaces.my_spaces(kAlice, 0, 1);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->next_after);
  auto rest = spaces.my_spaces(kAlice, *first->next_after, 1);
  ASSERT_EQ(rest->items.size(), 1u);
  EXPECT_NE(rest->items.front().id, first->items.front().id);
}

}  // namespace
}  // namespace imd
