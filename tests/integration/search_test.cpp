// GET /api/v1/search (docs/api.md "Search") against the real binary: messages sent over
// WebSocket are found by the members who may read them, CJK included; edits and deletes show;
// filters, paging and the errors of bad input.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "support/client.hpp"
#include "support/server_process.hpp"

namespace imd::test {
namespace {

std::string enc(const std::string& s) {
  return boost::urls::encode(s, boost::urls::unreserved_chars);
}

std::vector<std::string> bodies(const HttpResult& r) {
  std::vector<std::string> out;
  if (!r.json.is_object()) return out;
  for (const auto& m : r.json.as_object().at("messages").as_array()) {
    out.emplace_back(m.as_object().at("body").as_string());
  }
  return out;
}

class Search : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ =
        new ServerProcess({"--limits-http-rate-per-s", "100000", "--limits-http-burst", "100000",
                           "--search-rate-per-s", "1000", "--search-burst", "1000"});
    server_->start();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    http_ = std::make_unique<Http>(server_->host(), server_->port());
    alice_ = make_account(*http_, "alice");
    bob_ = make_account(*http_, "bob");
    carol_ = make_account(*http_, "carol");
    channel_ = make_space_channel(*http_, alice_, {&bob_}).channel_id;
    ws_ = std::make_unique<Ws>(server_->host(), server_->port(), alice_.access);
    ASSERT_TRUE(ws_->recv_op("hello"));
  }

  // Sends and waits for the durable ACK: from then on the message is searchable.
  std::string send(const bj::object& frame) {
    ws_->send(frame);
    auto sent = ws_->recv_op("sent", std::chrono::seconds(10));
    EXPECT_TRUE(sent.has_value()) << "no sent for " << bj::serialize(frame);
    return sent ? str(*sent, "id") : std::string();
  }
  std::string say(const std::string& body) {
    return send(send_channel("c" + std::to_string(++cid_), channel_, body));
  }
  HttpResult search(const Account& who, const std::string& params) {
    return http_->get("/api/v1/search?" + params, who.access);
  }

  static ServerProcess* server_;
  std::unique_ptr<Http> http_;
  Account alice_, bob_, carol_;
  std::string channel_;
  std::unique_ptr<Ws> ws_;
  int cid_ = 0;
};
ServerProcess* Search::server_ = nullptr;

TEST_F(Search, AMemberFindsChineseInsideAWordWithTheContractFieldsAndAHighlight) {
  const std::string id = say("离线消息缓存已满");
  auto r = search(bob_, "q=" + enc("消息"));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& hits = r.json.as_object().at("messages").as_array();
  ASSERT_EQ(hits.size(), 1u) << r.body;
  const auto& hit = hits[0].as_object();
  EXPECT_EQ(str(hit, "id"), id);
  EXPECT_EQ(str(hit, "conversation"), "channel:" + channel_);
  EXPECT_EQ(num(hit, "seq"), 1u);
  EXPECT_EQ(str(hit, "body"), "离线消息缓存已满");
  EXPECT_EQ(str(hit, "sender"), alice_.id);
  EXPECT_GT(hit.at("created_at").as_int64(), 0);
  EXPECT_EQ(str(hit, "snippet"), "离线消息缓存已满");
  ASSERT_EQ(hit.at("marks").as_array().size(), 1u);
  EXPECT_EQ(bj::serialize(hit.at("marks")), "[[2,2]]");
  EXPECT_TRUE(r.json.as_object().at("next_cursor").is_null());
  EXPECT_FALSE(r.json.as_object().at("indexing").as_bool());
}

TEST_F(Search, OnlyReadableConversationsAreSearchedAndDmsStayPrivate) {
  say("quarterly budget draft");
  send(send_dm("d1", bob_.id, "budget for bob's eyes"));
  EXPECT_EQ(bodies(search(bob_, "q=budget")),
            (std::vector<std::string>{"budget for bob's eyes", "quarterly budget draft"}));
  EXPECT_TRUE(bodies(search(carol_, "q=budget")).empty());
  // Asking for the channel by name does not get past membership, nor tell that it exists
  // (access control answers a non-member as for a missing channel).
  auto in = search(carol_, "q=budget&in=" + enc("channel:" + channel_));
  EXPECT_EQ(in.status, 404) << in.body;
  // Leaving the channel removes it from bob's results.
  ASSERT_EQ(
      http_->post("/api/v1/channels/" + channel_ + "/leave", bj::object{}, bob_.access).status,
      204);
  EXPECT_EQ(bodies(search(bob_, "q=budget")), (std::vector<std::string>{"budget for bob's eyes"}));
}

TEST_F(Search, EditsAreFoundByTheNewTextAndDeletesNotAtAll) {
  const std::string edited = say("meeting moved to Tuesday");
  const std::string erased = say("meeting notes, secret");
  ws_->send(bj::object{{"op", "edit"}, {"id", edited}, {"body", "meeting moved to Thursday"}});
  ASSERT_TRUE(ws_->recv_op("edited"));
  ws_->send(bj::object{{"op", "delete"}, {"id", erased}});
  ASSERT_TRUE(ws_->recv_op("deleted"));
  EXPECT_EQ(bodies(search(bob_, "q=meeting")),
            (std::vector<std::string>{"meeting moved to Thursday"}));
  EXPECT_TRUE(bodies(search(bob_, "q=tuesday")).empty());
  EXPECT_TRUE(bodies(search(bob_, "q=secret")).empty());
}

TEST_F(Search, FiltersAndPagingWithTheCursor) {
  for (int i = 0; i < 7; ++i) say("standup note " + std::to_string(i));
  send(send_dm("d1", bob_.id, "standup note in a dm"));
  std::vector<std::string> seen;
  std::string params = "q=standup&limit=3&in=" + enc("channel:" + channel_);
  for (int page = 0; page < 5; ++page) {
    auto r = search(bob_, params);
    ASSERT_EQ(r.status, 200) << r.body;
    for (auto& b : bodies(r)) seen.push_back(b);
    const auto& next = r.json.as_object().at("next_cursor");
    if (next.is_null()) break;
    params = "q=standup&limit=3&in=" + enc("channel:" + channel_) +
             "&cursor=" + std::string(next.as_string());
  }
  std::vector<std::string> expected;
  for (int i = 6; i >= 0; --i) expected.push_back("standup note " + std::to_string(i));
  EXPECT_EQ(seen, expected);
  // from=: only bob's side; the DM was alice's.
  EXPECT_TRUE(bodies(search(bob_, "q=standup&from=" + bob_.id)).empty());
  EXPECT_EQ(bodies(search(bob_, "q=standup&from=" + alice_.id)).size(), 8u);
  // A window that ends before everything, or starts after it.
  EXPECT_TRUE(bodies(search(bob_, "q=standup&before=2001-01-01")).empty());
  EXPECT_TRUE(bodies(search(bob_, "q=standup&after=2999-12-31")).empty());
  EXPECT_EQ(bodies(search(bob_, "q=standup&after=2001-01-01")).size(), 8u);
  // A phrase, with a '+' for its space as HTML forms write it.
  EXPECT_EQ(bodies(search(bob_, "q=%22note+3%22")), (std::vector<std::string>{"standup note 3"}));
}

TEST_F(Search, BadInputIsA400WithAReasonNeverA500) {
  auto expect_400 = [&](const std::string& params, const std::string& says) {
    auto r = search(bob_, params);
    EXPECT_EQ(r.status, 400) << params << ": " << r.body;
    EXPECT_NE(r.body.find(says), std::string::npos) << params << ": " << r.body;
  };
  expect_400("", "q is required");
  expect_400("q=", "word");
  expect_400("q=" + std::string(300, 'a'), "longer than 256");
  expect_400("q=" + enc("\"unbalanced"), "unbalanced");
  expect_400("q=a%01b", "control");
  expect_400("q=%FF%FE", "UTF-8");
  expect_400("q=x&before=yesterday", "before");
  expect_400("q=x&after=2026-02-30", "after");
  expect_400("q=x&after=2026-02-01&before=2026-01-01", "earlier");
  expect_400("q=x&from=abc", "from");
  expect_400("q=x&in=nonsense", "conversation");
  // Engine syntax is text: none of these is an error.
  for (const char* q : {"a OR b", "NEAR(a b)", "col:x", "*", "a AND (", "^start", "\"\"\"\""}) {
    auto r = search(bob_, "q=" + enc(q));
    EXPECT_TRUE(r.status == 200 || r.status == 400) << q << ": " << r.body;
    EXPECT_NE(r.status / 100, 5) << q;
  }
  EXPECT_EQ(search(bob_, "q=" + enc("a AND (")).status, 200);
  EXPECT_EQ(http_->get("/api/v1/search?q=x").status, 401);
}

TEST(SearchLimits, SearchesPerUserAreRateLimited) {
  ServerProcess server({"--search-rate-per-s", "1", "--search-burst", "3"});
  server.start();
  Http http(server.host(), server.port());
  Account a = make_account(http, "searcher");
  int limited = 0;
  for (int i = 0; i < 10; ++i) {
    auto r = http.get("/api/v1/search?q=anything", a.access);
    ASSERT_TRUE(r.status == 200 || r.status == 429) << r.body;
    limited += r.status == 429 ? 1 : 0;
  }
  EXPECT_GT(limited, 0);
}

TEST(SearchDisabled, TheEndpointAnswers503AndReEnablingIndexesWhatWasMissed) {
  ServerProcess server({"--search-enabled", "0"});
  server.start();
  Http http(server.host(), server.port());
  Account a = make_account(http, "alice");
  Account b = make_account(http, "bob");
  {
    Ws ws(server.host(), server.port(), a.access);
    ASSERT_TRUE(ws.recv_op("hello"));
    ws.send(send_dm("x1", b.id, "written while search was off"));
    ASSERT_TRUE(ws.recv_op("sent", std::chrono::seconds(10)));
  }
  auto off = http.get("/api/v1/search?q=written", b.access);
  EXPECT_EQ(off.status, 503) << off.body;
  server.stop();
  ServerProcess on({}, server.data_dir());
  on.start();
  Http http2(on.host(), on.port());
  // The back-fill runs in the background: wait for it to say it is done.
  HttpResult r;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    r = http2.get("/api/v1/search?q=written", b.access);
    ASSERT_EQ(r.status, 200) << r.body;
    if (!r.json.as_object().at("indexing").as_bool()) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the back-fill never finished";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(bodies(r), (std::vector<std::string>{"written while search was off"}));
}

}  // namespace
}  // namespace imd::test
