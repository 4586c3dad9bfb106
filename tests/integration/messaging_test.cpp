// Real-time messaging over real WebSocket connections against the real binary.
#include <gtest/gtest.h>

#include "support/client.hpp"
#include "support/server_process.hpp"

namespace imd::test {
namespace {

TEST(Messaging, HelloOnConnect) {
  ServerProcess server;
  server.start();
  Http http(server.host(), server.port());
  auto a = make_account(http, "alice");
  Ws ws(server.host(), server.port(), a.access);
  auto hello = ws.recv_op("hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(str(*hello, "user"), a.id);
}

}  // namespace
}  // namespace imd::test
