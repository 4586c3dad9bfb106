// AuthService (domain/auth_service.hpp) in process, on the standalone adapters with the fast
// password hashing: registration, login, refresh-token rotation, logout, and access tokens that
// expire with the injected clock (the FakeClock moves; no test waits for real time to pass).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "support/in_process.hpp"

namespace imd {
namespace {

using testing::error_of;

constexpr const char* kPhone = "+15550001";
constexpr const char* kPassword = "correct-horse-7";
constexpr const char* kIp = "203.0.113.5";

class Auth : public ::testing::Test, protected testing::InProcess<> {
 protected:
  // Another process of a cluster: its own tokens and AuthService over the same store.
  struct Process {
    explicit Process(testing::InProcess<>& p, LoginCounters* shared_login_counters = nullptr)
        : tokens{p.clock, testing::kJwtSecret, testing::kAccessTtlS},
          auth{p.store,
               p.ids,
               p.clock,
               p.hasher,
               tokens,
               p.users,
               testing::kRefreshTtlS,
               testing::kRefreshReuseS,
               shared_login_counters} {}
    TokenIssuer tokens;
    AuthService auth;
  };

  void SetUp() override {
    auto u = auth.register_user("alice", kPhone, kPassword);
    ASSERT_TRUE(u.ok()) << u.error().message;
    alice_ = *u;
  }
  Session login() {
    auto s = auth.login(kPhone, kPassword, kIp);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? *s : Session{};
  }
  // The user an access token stands for, or the error code.
  Result<Id> who(const std::string& access_token) { return auth.authenticate(access_token); }

  User alice_;
};

TEST_F(Auth, RegisterValidatesAndKeepsPhonesUnique) {
  EXPECT_NE(alice_.id, 0u);
  EXPECT_EQ(alice_.created_at, clock.now_ms());
  auto me = auth.me(alice_.id);
  ASSERT_TRUE(me.ok());
  EXPECT_EQ(me->phone, kPhone);

  EXPECT_EQ(error_of(auth.register_user("alice2", kPhone, kPassword)), Errc::conflict);
  EXPECT_EQ(error_of(auth.register_user("", "+15550002", kPassword)), Errc::invalid_argument);
  EXPECT_EQ(error_of(auth.register_user("bob", "12", kPassword)), Errc::invalid_argument);
  EXPECT_EQ(error_of(auth.register_user("bob", "+1555x0002", kPassword)), Errc::invalid_argument);
  EXPECT_EQ(error_of(auth.register_user("bob", "+15550002", "short")), Errc::invalid_argument);
  EXPECT_EQ(error_of(auth.register_user("bob", "+15550002", std::string(129, 'p'))),
            Errc::invalid_argument);
  EXPECT_TRUE(auth.register_user("bob", "+15550002", kPassword).ok());
}

// The minimum policy: length, one repeated character, the common list, the name or phone.
TEST_F(Auth, WeakPasswordsAreRefused) {
  for (const char* weak : {"password", "Password1", "12345678", "qwertyuiop", "zzzzzzzzzz",
                           "15550009", "+15550009", "carolcarol"}) {
    auto r = auth.register_user("carolcarol", "+15550009", weak);
    ASSERT_FALSE(r.ok()) << weak;
    EXPECT_EQ(r.error().code, Errc::invalid_argument) << weak;
  }
  EXPECT_TRUE(auth.register_user("carolcarol", "+15550009", "tram-lines-at-dusk").ok());
}

// A session: an access token for the user with its lifetime, a refresh token, and the user's
// memberships warmed in the user cache.
TEST_F(Auth, LoginOpensASession) {
  Session s = login();
  EXPECT_EQ(s.user.id, alice_.id);
  EXPECT_EQ(s.expires_in_s, testing::kAccessTtlS);
  EXPECT_FALSE(s.refresh_token.empty());
  auto id = who(s.access_token);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, alice_.id);
  const auto misses = users.misses();
  ASSERT_TRUE(users.memberships(alice_.id).ok());
  EXPECT_EQ(users.misses(), misses);  // warm
}

// Wrong password and unknown phone are told apart by nothing.
TEST_F(Auth, LoginFailuresLookAlike) {
  auto wrong = auth.login(kPhone, "password2", kIp);
  auto unknown = auth.login("+15559999", kPassword, kIp);
  ASSERT_FALSE(wrong.ok());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(wrong.error().code, Errc::unauthenticated);
  EXPECT_EQ(unknown.error().code, Errc::unauthenticated);
  EXPECT_EQ(wrong.error().message, unknown.error().message);
  EXPECT_EQ(error_of(auth.login(kPhone, std::string(129, 'p'), kIp)), Errc::unauthenticated);
}

// Refresh rotates: each refresh gives a new session with a new refresh token; the used one
// still works for kRefreshReuseS (a retry whose answer was lost), and never after.
TEST_F(Auth, RefreshTokensRotate) {
  Session first = login();
  auto second = auth.refresh(first.refresh_token);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_NE(second->refresh_token, first.refresh_token);
  EXPECT_EQ(second->user.id, alice_.id);
  EXPECT_EQ(*who(second->access_token), alice_.id);

  clock.advance(std::chrono::seconds(testing::kRefreshReuseS - 1));
  auto retried = auth.refresh(first.refresh_token);  // the answer to `second` was lost
  ASSERT_TRUE(retried.ok()) << retried.error().message;
  EXPECT_NE(retried->refresh_token, second->refresh_token);
  clock.advance(std::chrono::seconds(1));
  EXPECT_EQ(error_of(auth.refresh(first.refresh_token)), Errc::unauthenticated);  // used up

  auto third = auth.refresh(second->refresh_token);
  ASSERT_TRUE(third.ok());
  clock.advance(std::chrono::seconds(testing::kRefreshReuseS));
  EXPECT_EQ(error_of(auth.refresh(second->refresh_token)), Errc::unauthenticated);
  EXPECT_TRUE(auth.refresh(retried->refresh_token).ok());  // the retry's session lives on

  EXPECT_EQ(error_of(auth.refresh("")), Errc::unauthenticated);
  EXPECT_EQ(error_of(auth.refresh(std::string(257, 'r'))), Errc::unauthenticated);
  EXPECT_EQ(error_of(auth.refresh("never-issued")), Errc::unauthenticated);
}

// A refresh token lives refresh_ttl on the injected clock.
TEST_F(Auth, RefreshTokensExpire) {
  Session s = login();
  clock.advance(std::chrono::seconds(testing::kRefreshTtlS - 1));
  auto renewed = auth.refresh(s.refresh_token);
  ASSERT_TRUE(renewed.ok());
  clock.advance(std::chrono::seconds(testing::kRefreshTtlS + 1));
  EXPECT_EQ(error_of(auth.refresh(renewed->refresh_token)), Errc::unauthenticated);
}

// Logout revokes the refresh token and ends its session (its access tokens are refused too),
// and is idempotent; the user's other sessions go on.
TEST_F(Auth, LogoutRevokesTheRefreshToken) {
  Session s = login();
  Session other = login();
  ASSERT_TRUE(auth.logout(s.refresh_token).ok());
  EXPECT_EQ(error_of(auth.refresh(s.refresh_token)), Errc::unauthenticated);
  EXPECT_TRUE(auth.logout(s.refresh_token).ok());
  EXPECT_TRUE(auth.logout("never-issued").ok());
  EXPECT_EQ(error_of(auth.logout("")), Errc::invalid_argument);
  EXPECT_EQ(error_of(who(s.access_token)), Errc::unauthenticated);
  EXPECT_TRUE(who(other.access_token).ok());
  auto left = auth.sessions(alice_.id);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(left->front().id, other.session_id);
}

// A login is a session (kept with its client's address and sanitized User-Agent) that every
// refresh rotates within; ending it refuses its refresh and access tokens and no other's;
// only its user can end it.
TEST_F(Auth, SessionsAreListedAndEndedOneByOne) {
  auto phone = auth.login(kPhone, kPassword, kIp,
                          "Phone\x01"
                          "App/1.0 \xc3\xa9");
  ASSERT_TRUE(phone.ok()) << phone.error().message;
  Session laptop = login();
  EXPECT_NE(phone->session_id, laptop.session_id);
  auto listed = auth.sessions(alice_.id);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ(listed->back().id, phone->session_id);
  EXPECT_EQ(listed->back().user_agent, "Phone?App/1.0 ??");
  EXPECT_EQ(listed->back().ip, kIp);

  clock.advance(std::chrono::milliseconds(1000));
  auto rotated = auth.refresh(phone->refresh_token, "198.51.100.7", "ignored");
  ASSERT_TRUE(rotated.ok()) << rotated.error().message;
  EXPECT_EQ(rotated->session_id, phone->session_id);
  listed = auth.sessions(alice_.id);
  EXPECT_EQ(listed->front().id, phone->session_id);  // used last
  EXPECT_EQ(listed->front().ip, "198.51.100.7");
  EXPECT_EQ(listed->front().last_used_at, clock.now_ms());

  auto bob = auth.register_user("bob", "+15550002", kPassword);
  ASSERT_TRUE(bob.ok());
  EXPECT_EQ(error_of(auth.end_session(bob->id, phone->session_id)), Errc::not_found);
  ASSERT_TRUE(auth.end_session(alice_.id, phone->session_id).ok());
  EXPECT_EQ(error_of(auth.end_session(alice_.id, phone->session_id)), Errc::not_found);
  EXPECT_EQ(error_of(auth.refresh(rotated->refresh_token)), Errc::unauthenticated);
  EXPECT_EQ(error_of(who(rotated->access_token)), Errc::unauthenticated);
  EXPECT_EQ(error_of(who(phone->access_token)), Errc::unauthenticated);
  EXPECT_TRUE(who(laptop.access_token).ok());
  EXPECT_TRUE(auth.refresh(laptop.refresh_token).ok());
}

// Another process of a cluster (here: a second AuthService on the same store) refuses an ended
// session's tokens once it has polled, tells its WebSockets to close once (a poll reads its
// last moments again), and a process that starts later refuses them from its first poll.
TEST_F(Auth, AnotherProcessRefusesAnEndedSessionAfterItsPoll) {
  Process other_process(*this);
  AuthService& other = other_process.auth;
  std::vector<std::pair<Id, Id>> told;
  other.on_session_ended([&](Id user, Id session) { told.emplace_back(user, session); });
  ASSERT_TRUE(other.sync_accounts().ok());
  Session phone = login();
  Session laptop = login();
  EXPECT_TRUE(other.authenticate(phone.access_token).ok());

  ASSERT_TRUE(auth.end_session(alice_.id, phone.session_id).ok());
  EXPECT_TRUE(other.authenticate(phone.access_token).ok());  // until it polls
  ASSERT_TRUE(other.sync_accounts().ok());
  EXPECT_EQ(error_of(other.authenticate(phone.access_token)), Errc::unauthenticated);
  EXPECT_TRUE(other.authenticate(laptop.access_token).ok());
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0], std::make_pair(alice_.id, phone.session_id));
  ASSERT_TRUE(other.sync_accounts().ok());
  EXPECT_EQ(told.size(), 1u);

  Process late_process(*this);
  AuthService& late = late_process.auth;
  ASSERT_TRUE(late.sync_accounts().ok());
  EXPECT_EQ(error_of(late.authenticate(phone.access_token)), Errc::unauthenticated);
  EXPECT_TRUE(late.authenticate(laptop.access_token).ok());
}

// Tokens from before sessions keep working: an access token without `sid` until it expires,
// and a refresh token without a session, whose refresh opens one.
TEST_F(Auth, TokensFromBeforeSessionsKeepWorking) {
  const std::string refresh = random_token(32);
  ASSERT_TRUE(
      store.save_refresh_token({sha256_hex(refresh), alice_.id, clock.now_ms() + 60'000}).ok());
  auto adopted = auth.refresh(refresh, kIp, "Old/1");
  ASSERT_TRUE(adopted.ok()) << adopted.error().message;
  EXPECT_NE(adopted->session_id, 0u);
  auto listed = auth.sessions(alice_.id);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().id, adopted->session_id);
  EXPECT_EQ(listed->front().user_agent, "Old/1");
  auto legacy = auth.authenticate_claims(tokens.issue(alice_.id));
  ASSERT_TRUE(legacy.ok()) << legacy.error().message;
  EXPECT_EQ(legacy->session, 0u);
}

TEST(UserAgents, AreTruncatedAndPrintable) {
  EXPECT_EQ(sanitize_user_agent("Mozilla/5.0 (X11)"), "Mozilla/5.0 (X11)");
  EXPECT_EQ(sanitize_user_agent("a\r\nb\x7f"), "a??b?");
  EXPECT_EQ(sanitize_user_agent(std::string(1000, 'x')).size(), kMaxUserAgentBytes);
}

// An access token is accepted until access_ttl has passed on the clock, refused from then on
// (remembered or not), while the refresh token still opens a new session.
TEST_F(Auth, AccessTokensExpireWithTheClock) {
  Session s = login();
  Session other = login();  // never verified before it expires: not remembered
  ASSERT_TRUE(who(s.access_token).ok());
  clock.advance(std::chrono::seconds(testing::kAccessTtlS - 1));
  ASSERT_TRUE(who(s.access_token).ok());
  clock.advance(std::chrono::seconds(1));
  EXPECT_EQ(error_of(who(s.access_token)), Errc::unauthenticated);
  EXPECT_EQ(error_of(who(other.access_token)), Errc::unauthenticated);

  auto renewed = auth.refresh(s.refresh_token);
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(*who(renewed->access_token), alice_.id);
}

// Only tokens this service signed, unaltered, are accepted.
TEST_F(Auth, ForgedTokensAreRefused) {
  Session s = login();
  TokenIssuer other_key(clock, std::string(40, 'x'), testing::kAccessTtlS);
  EXPECT_EQ(error_of(who(other_key.issue(alice_.id))), Errc::unauthenticated);
  std::string tampered = s.access_token;
  char& c = tampered[tampered.rfind('.') + 5];  // in the signature, where every bit counts
  c = c == 'a' ? 'b' : 'a';
  EXPECT_EQ(error_of(who(tampered)), Errc::unauthenticated);
  EXPECT_EQ(error_of(who(s.access_token.substr(0, s.access_token.rfind('.')))),
            Errc::unauthenticated);
  EXPECT_EQ(error_of(who(s.refresh_token)), Errc::unauthenticated);
  EXPECT_EQ(error_of(who("")), Errc::unauthenticated);
  EXPECT_EQ(error_of(who(std::string(5000, 'a'))), Errc::unauthenticated);
  // Signed with the right key but already expired when issued.
  testing::FakeClock past;
  past.advance(-std::chrono::seconds(2 * testing::kAccessTtlS));
  TokenIssuer stale(past, testing::kJwtSecret, testing::kAccessTtlS);
  EXPECT_EQ(error_of(who(stale.issue(alice_.id))), Errc::unauthenticated);
  EXPECT_EQ(*who(s.access_token), alice_.id);  // the genuine one still works
}

// Profiles: the phone number is the user's own business.
TEST_F(Auth, ProfilesShowThePhoneOnlyToItsOwner) {
  auto bob = auth.register_user("bob", "+15550002", kPassword);
  ASSERT_TRUE(bob.ok());
  EXPECT_EQ(auth.get_user(alice_.id, alice_.id)->phone, kPhone);
  auto seen = auth.get_user(bob->id, alice_.id);
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->name, "alice");
  EXPECT_TRUE(seen->phone.empty());
  auto found = auth.find_users(bob->id, "ALICE");
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_TRUE(found->front().phone.empty());
  EXPECT_EQ(error_of(auth.get_user(bob->id, 999)), Errc::not_found);

  auto updated = auth.update_me(alice_.id, {.name = "alicia", .avatar = std::nullopt});
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->name, "alicia");
  EXPECT_EQ(error_of(auth.update_me(alice_.id, {.name = "", .avatar = std::nullopt})),
            Errc::invalid_argument);
  EXPECT_EQ(auth.me(alice_.id)->name, "alicia");
}

}  // namespace
}  // namespace imd

namespace imd {
namespace {

// Past five failures from one address, that address waits, doubling; the owner on a device
// that logged in before is not locked out by failures from other addresses; the throttled
// attempt is refused before any password check (even the right password waits).
TEST_F(Auth, FailedLoginsSlowDownPerAccountAndAddress) {
  ASSERT_TRUE(auth.login(kPhone, kPassword, "198.51.100.1").ok());  // the owner's device
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(error_of(auth.login(kPhone, "wrong-guess-1", kIp)), Errc::unauthenticated);
  }
  auto held = auth.login(kPhone, "wrong-guess-1", kIp);
  ASSERT_FALSE(held.ok());
  EXPECT_EQ(held.error().code, Errc::unauthenticated);  // the sixth is counted...
  auto waiting = auth.login(kPhone, kPassword, kIp);    // ... and now the address waits
  ASSERT_FALSE(waiting.ok());
  EXPECT_EQ(waiting.error().code, Errc::too_many_requests);
  EXPECT_GE(waiting.error().retry_after_s, 1);
  // Another address is not affected; nor is the owner's.
  EXPECT_TRUE(auth.login(kPhone, kPassword, "198.51.100.1").ok());
  clock.advance(std::chrono::milliseconds(2000));
  EXPECT_TRUE(auth.login(kPhone, kPassword, kIp).ok());
}

// Many addresses guessing one account: past 20 failures in all, new addresses wait too, but
// a device the owner logged in from keeps working.
TEST_F(Auth, ADistributedGuessSlowsNewAddressesButNotKnownDevices) {
  ASSERT_TRUE(auth.login(kPhone, kPassword, "198.51.100.1").ok());
  for (int i = 0; i < 21; ++i) {
    (void)auth.login(kPhone, "wrong-guess-2", "192.0.2." + std::to_string(i + 1));
  }
  auto fresh = auth.login(kPhone, kPassword, "192.0.2.200");
  ASSERT_FALSE(fresh.ok());
  EXPECT_EQ(fresh.error().code, Errc::too_many_requests);
  EXPECT_TRUE(auth.login(kPhone, kPassword, "198.51.100.1").ok());
}

// The login brakes' counters as a cluster shares them (Redis there: RedisLoginCounters), here
// a map that can be taken down.
class SharedLoginCounters final : public LoginCounters {
 public:
  bool down = false;

  Result<LoginCounts> read(std::string_view account, std::string_view source, Millis) override {
    if (down) return make_error(Errc::unavailable, "shared counters down");
    return LoginCounts{pairs_[key(account, source)], accounts_[std::string(account)],
                       known_.contains(key(account, source))};
  }
  Result<void> failed(std::string_view account, std::string_view source, Millis now) override {
    if (down) return make_error(Errc::unavailable, "shared counters down");
    for (LoginCount* c : {&pairs_[key(account, source)], &accounts_[std::string(account)]}) {
      ++c->failures;
      c->last_ms = now;
    }
    return {};
  }
  Result<void> succeeded(std::string_view account, std::string_view source, Millis) override {
    if (down) return make_error(Errc::unavailable, "shared counters down");
    pairs_.erase(key(account, source));
    known_.insert(key(account, source));
    return {};
  }

 private:
  static std::string key(std::string_view account, std::string_view source) {
    return std::string(account) + "\n" + std::string(source);
  }
  std::map<std::string, LoginCount> pairs_, accounts_;
  std::set<std::string> known_;
};

// Two processes on shared counters: guesses spread over both brake as if through one, on both;
// with the shared counters down, each process falls back to its own count (three each here).
TEST_F(Auth, ProcessesSharingTheLoginCountersBrakeTogether) {
  SharedLoginCounters shared;
  Process one(*this, &shared), two(*this, &shared);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(error_of((i % 2 == 0 ? one : two).auth.login(kPhone, "wrong-guess-3", kIp)),
              Errc::unauthenticated);
  }
  EXPECT_EQ(error_of(one.auth.login(kPhone, kPassword, kIp)), Errc::too_many_requests);
  EXPECT_EQ(error_of(two.auth.login(kPhone, kPassword, kIp)), Errc::too_many_requests);
  shared.down = true;
  EXPECT_TRUE(one.auth.login(kPhone, kPassword, kIp).ok());
  shared.down = false;
  EXPECT_EQ(error_of(two.auth.login(kPhone, kPassword, kIp)), Errc::too_many_requests);
}

// Accounts from before phone normalization, stored as typed: reachable by either form of their
// number, which new registrations find taken; two such accounts holding forms of one number
// are told apart by the password.
TEST_F(Auth, AccountsFromBeforePhoneNormalizationAreWellDefined) {
  auto old_account = [&](const std::string& phone, const std::string& password) {
    User u{*ids.next(), "old", "", phone, clock.now_ms()};
    EXPECT_TRUE(store.create_user(u, *hasher.hash(password)).ok()) << phone;
    return u;
  };
  const User old = old_account("15550002", "old-password-1");
  for (const char* form : {"15550002", "+15550002"}) {
    auto s = auth.login(form, "old-password-1", kIp);
    ASSERT_TRUE(s.ok()) << form << ": " << s.error().message;
    EXPECT_EQ(s->user.id, old.id) << form;
  }
  for (const char* form : {"15550002", "+15550002"}) {
    EXPECT_EQ(error_of(auth.register_user("new", form, "a-fresh-password-9")), Errc::conflict)
        << form;
  }

  const User plus = old_account("+15550003", "plus-password-1");
  const User bare = old_account("15550003", "bare-password-1");
  for (const char* form : {"+15550003", "15550003"}) {
    auto p = auth.login(form, "plus-password-1", kIp);
    auto b = auth.login(form, "bare-password-1", kIp);
    ASSERT_TRUE(p.ok() && b.ok()) << form;
    EXPECT_EQ(p->user.id, plus.id) << form;
    EXPECT_EQ(b->user.id, bare.id) << form;
  }
  EXPECT_EQ(error_of(auth.login("15550003", "neither-password", kIp)), Errc::unauthenticated);
}

// Changing the password checks the old one, applies the policy, ends every session (refresh
// tokens revoked) and gives the caller a new one.
TEST_F(Auth, ChangingThePasswordEndsEverySession) {
  Session phone = login();
  Session laptop = login();
  EXPECT_EQ(
      error_of(auth.change_password(alice_.id, "not-the-password", "tram-lines-at-dusk", kIp)),
      Errc::forbidden);
  EXPECT_EQ(error_of(auth.change_password(alice_.id, kPassword, "password", kIp)),
            Errc::invalid_argument);
  auto fresh = auth.change_password(alice_.id, kPassword, "tram-lines-at-dusk", kIp);
  ASSERT_TRUE(fresh.ok()) << fresh.error().message;
  EXPECT_EQ(error_of(auth.refresh(phone.refresh_token)), Errc::unauthenticated);
  EXPECT_EQ(error_of(auth.refresh(laptop.refresh_token)), Errc::unauthenticated);
  EXPECT_TRUE(auth.refresh(fresh->refresh_token).ok());
  EXPECT_EQ(error_of(auth.login(kPhone, kPassword, kIp)), Errc::unauthenticated);
  EXPECT_TRUE(auth.login(kPhone, "tram-lines-at-dusk", kIp).ok());
}

TEST_F(Auth, LogoutEverywhereRevokesEveryRefreshToken) {
  Session a = login();
  Session b = login();
  auto n = auth.logout_everywhere(alice_.id);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(error_of(auth.refresh(a.refresh_token)), Errc::unauthenticated);
  EXPECT_EQ(error_of(auth.refresh(b.refresh_token)), Errc::unauthenticated);
}

}  // namespace
}  // namespace imd

namespace imd {
namespace {

// One number, one account: with or without '+', stored '+' first; a national trunk prefix (a
// leading 0) is refused; an account stored as typed before normalization still logs in.
TEST(Phones, AreNormalizedToOneInternationalForm) {
  EXPECT_EQ(*normalize_phone("15551234567"), "+15551234567");
  EXPECT_EQ(*normalize_phone("+15551234567"), "+15551234567");
  for (const char* bad : {"0155512345", "+0155512345", "+1555-1234", "1234", "+", "12345a"}) {
    EXPECT_FALSE(normalize_phone(bad).ok()) << bad;
  }
}

TEST_F(Auth, ALegacyAccountStoredAsTypedStillLogsIn) {
  User legacy{.id = 777, .name = "old", .avatar = "", .phone = "15557770000", .created_at = 1};
  ASSERT_TRUE(store.create_user(legacy, *hasher.hash("tram-lines-at-dusk")).ok());
  EXPECT_TRUE(auth.login("15557770000", "tram-lines-at-dusk", kIp).ok());
  EXPECT_EQ(error_of(auth.register_user("dup", "15550001", "tram-lines-at-dusk")), Errc::conflict)
      << "'15550001' is alice's '+15550001'";
}

// Two processes over one store: sessions ended, or an account deactivated, on one are refused
// by the other once it polls (sync_accounts), which then closes the user's sockets (told once);
// a process that starts later loads them all at its first poll.
TEST_F(Auth, AccountStatesReachAnotherProcessAtItsNextPoll) {
  Process other_process(*this);
  AuthService& other = other_process.auth;
  std::vector<Id> ended;
  other.on_sessions_ended([&](Id user) { ended.push_back(user); });
  ASSERT_TRUE(other.sync_accounts().ok());

  Session s = login();
  clock.advance(std::chrono::milliseconds(1));
  ASSERT_TRUE(other.authenticate(s.access_token).ok());
  ASSERT_TRUE(auth.logout_everywhere(alice_.id).ok());
  EXPECT_FALSE(auth.authenticate(s.access_token).ok());  // this process: at once
  EXPECT_TRUE(other.authenticate(s.access_token).ok());  // the other: not polled yet
  ASSERT_TRUE(other.sync_accounts().ok());
  EXPECT_EQ(error_of(other.authenticate(s.access_token)), Errc::unauthenticated);
  EXPECT_EQ(ended, std::vector<Id>{alice_.id});
  ASSERT_TRUE(other.sync_accounts().ok());  // read again within the skew margin: told once
  EXPECT_EQ(ended.size(), 1u);

  clock.advance(std::chrono::milliseconds(1));
  Session s2 = login();
  clock.advance(std::chrono::milliseconds(1));
  ASSERT_TRUE(auth.set_deactivated(alice_.id, true).ok());
  ASSERT_TRUE(other.sync_accounts().ok());
  auto refused = other.authenticate(s2.access_token);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, "account deactivated");
  EXPECT_EQ(ended.size(), 2u);
  EXPECT_EQ(error_of(other.login(kPhone, kPassword, kIp)), Errc::forbidden);

  // A process started now refuses the same from its first poll.
  Process late_process(*this);
  AuthService& late = late_process.auth;
  EXPECT_TRUE(late.authenticate(s2.access_token).ok());
  ASSERT_TRUE(late.sync_accounts().ok());
  EXPECT_FALSE(late.authenticate(s2.access_token).ok());

  ASSERT_TRUE(auth.set_deactivated(alice_.id, false).ok());
  ASSERT_TRUE(other.sync_accounts().ok());
  auto again = other.login(kPhone, kPassword, kIp);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(other.authenticate(again->access_token).ok());
  EXPECT_TRUE(auth.authenticate(again->access_token).ok());
  EXPECT_FALSE(other.authenticate(s2.access_token).ok());  // ended sessions stay ended
}

}  // namespace
}  // namespace imd
