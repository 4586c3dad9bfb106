#include "domain/tokens.hpp"

#include <gtest/gtest.h>

#include <jwt/jwt.hpp>

#include "domain/password.hpp"

namespace imd {
namespace {

class FakeClock : public Clock {
 public:
  Millis now_ms() override { return t; }
  Millis t = SystemClock().now_ms();
};

const std::string kKey(40, 'a');

TEST(Tokens, IssuedTokenVerifies) {
  FakeClock clock;
  TokenIssuer t(clock, kKey, 900);
  auto id = t.verify(t.issue(42));
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(*id, 42u);
}

TEST(Tokens, ExpiredTokenIsRejected) {
  FakeClock clock;
  TokenIssuer t(clock, kKey, 60);
  std::string tok = t.issue(42);
  clock.t += 61'000;
  auto id = t.verify(tok);
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code, Errc::unauthenticated);
}

TEST(Tokens, ARememberedTokenStillExpires) {
  FakeClock clock;
  TokenIssuer t(clock, kKey, 60);
  std::string tok = t.issue(42);
  ASSERT_TRUE(t.verify(tok));  // verified once: remembered
  ASSERT_TRUE(t.verify(tok));
  clock.t += 61'000;
  auto id = t.verify(tok);
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code, Errc::unauthenticated);
}

TEST(Tokens, WrongKeyIsRejected) {
  FakeClock clock;
  TokenIssuer mine(clock, kKey, 900), theirs(clock, std::string(40, 'b'), 900);
  EXPECT_FALSE(mine.verify(theirs.issue(42)));
}

TEST(Tokens, AlgNoneIsRejected) {
  FakeClock clock;
  TokenIssuer t(clock, kKey, 900);
  // {"alg":"none","typ":"JWT"} . {"sub":"42","typ":"access","exp":<far future>} . (empty)
  using namespace jwt::params;
  jwt::jwt_object obj{algorithm("none"), payload({{"sub", "42"}, {"typ", "access"}})};
  obj.add_claim("exp", clock.t / 1000 + 3600);
  std::string forged = obj.signature();
  auto id = t.verify(forged);
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code, Errc::unauthenticated);
}

TEST(Tokens, TamperedPayloadIsRejected) {
  FakeClock clock;
  TokenIssuer t(clock, kKey, 900);
  std::string tok = t.issue(42);
  auto d1 = tok.find('.'), d2 = tok.rfind('.');
  std::string payload = tok.substr(d1 + 1, d2 - d1 - 1);
  payload[payload.size() / 2] = payload[payload.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(t.verify(tok.substr(0, d1 + 1) + payload + tok.substr(d2)));
}

TEST(Tokens, GarbageIsRejected) {
  FakeClock clock;
  TokenIssuer t(clock, kKey, 900);
  for (const std::string& bad : std::vector<std::string>{
           "", "a", "a.b", "a.b.c", "..", "eyJhbGciOiJIUzI1NiJ9..", std::string(5000, 'x')}) {
    EXPECT_FALSE(t.verify(bad)) << bad;
  }
}

TEST(Password, HashVerifiesAndRejectsWrongPassword) {
  PasswordHasher h("min");
  auto hash = h.hash("correct horse");
  ASSERT_TRUE(hash);
  EXPECT_NE(*hash, "correct horse");
  EXPECT_EQ(hash->rfind("$argon2id$", 0), 0u);
  EXPECT_TRUE(h.verify(*hash, "correct horse"));
  EXPECT_FALSE(h.verify(*hash, "correct horsE"));
  EXPECT_FALSE(h.verify("not a hash", "correct horse"));
  auto again = h.hash("correct horse");
  ASSERT_TRUE(again);
  EXPECT_NE(*hash, *again);  // salted
}

TEST(Password, RandomTokensAndDigests) {
  auto a = random_token(32), b = random_token(32);
  EXPECT_EQ(a.size(), 43u);
  EXPECT_NE(a, b);
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// A WebSocket ticket works once, within kWsTicketTtlS, and never beyond the access token it
// was made from; it is not an access token, nor an access token a ticket; revoking the session
// (or deactivating the user) refuses it.
TEST(Tokens, WsTicketsWorkOnceAndCarryTheSession) {
  FakeClock clock;
  TokenIssuer t(clock, kKey, 900);
  auto access = t.claims(t.issue(42));
  ASSERT_TRUE(access);
  const std::string ticket = t.issue_ws_ticket(*access);
  EXPECT_FALSE(t.claims(ticket));                 // not an access token
  EXPECT_FALSE(t.redeem_ws_ticket(t.issue(42)));  // and an access token is not a ticket
  auto redeemed = t.redeem_ws_ticket(ticket);
  ASSERT_TRUE(redeemed) << redeemed.error().message;
  EXPECT_EQ(redeemed->user, 42u);
  EXPECT_EQ(redeemed->exp_s, access->exp_s);
  EXPECT_EQ(redeemed->iat_ms, access->iat_ms);
  auto again = t.redeem_ws_ticket(ticket);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, "ticket already used");

  const std::string late = t.issue_ws_ticket(*access);
  clock.t += TokenIssuer::kWsTicketTtlS * 1000;
  EXPECT_EQ(t.redeem_ws_ticket(late).error().message, "ticket expired");

  // Made from a token that ends sooner: it ends with it.
  TokenIssuer brief(clock, kKey, 10);
  auto short_lived = brief.claims(brief.issue(7));
  ASSERT_TRUE(short_lived);
  const std::string capped = brief.issue_ws_ticket(*short_lived);
  clock.t += 10'000;
  EXPECT_FALSE(brief.redeem_ws_ticket(capped));

  auto fresh = t.claims(t.issue(42));
  ASSERT_TRUE(fresh);
  const std::string before_logout = t.issue_ws_ticket(*fresh);
  clock.t += 1;
  t.revoke_before_now(42);
  EXPECT_EQ(t.redeem_ws_ticket(before_logout).error().message, "session ended");
  auto other = t.claims(t.issue(43));
  ASSERT_TRUE(other);
  const std::string of_deactivated = t.issue_ws_ticket(*other);
  t.set_deactivated(43, true);
  EXPECT_EQ(t.redeem_ws_ticket(of_deactivated).error().message, "account deactivated");

  TokenIssuer other_key(clock, std::string(40, 'b'), 900);
  EXPECT_FALSE(other_key.redeem_ws_ticket(t.issue_ws_ticket(*fresh)));
  EXPECT_FALSE(t.redeem_ws_ticket(""));
  EXPECT_FALSE(t.redeem_ws_ticket(std::string(5000, 'x')));
}

// An ended login session refuses its access tokens (cached or not) and its tickets, and
// nothing else: the user's other sessions and tokens from before sessions (no `sid`) work on.
TEST(Tokens, EndingASessionRefusesOnlyItsTokens) {
  FakeClock clock;
  TokenIssuer t(clock, kKey, 900);
  const std::string mine = t.issue(42, 1001);
  const std::string other = t.issue(42, 1002);
  const std::string legacy = t.issue(42);
  auto claims = t.claims(mine);  // remembered as verified
  ASSERT_TRUE(claims) << claims.error().message;
  EXPECT_EQ(claims->session, 1001u);
  EXPECT_EQ(t.claims(legacy)->session, 0u);
  const std::string ticket = t.issue_ws_ticket(*claims);
  const std::string other_ticket = t.issue_ws_ticket(*t.claims(other));

  EXPECT_TRUE(t.end_session(1001, clock.t));
  EXPECT_FALSE(t.end_session(1001, clock.t));  // known already
  EXPECT_EQ(t.claims(mine).error().message, "session ended");
  EXPECT_EQ(t.redeem_ws_ticket(ticket).error().message, "session ended");
  EXPECT_TRUE(t.claims(other));
  EXPECT_TRUE(t.claims(legacy));
  auto redeemed = t.redeem_ws_ticket(other_ticket);
  ASSERT_TRUE(redeemed) << redeemed.error().message;
  EXPECT_EQ(redeemed->session, 1002u);
  // A fresh token of the ended session (issued by a process that had not heard yet) too.
  EXPECT_FALSE(t.claims(t.issue(42, 1001)));
}

}  // namespace
}  // namespace imd
