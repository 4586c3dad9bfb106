// REST API against the real binary.
#include <gtest/gtest.h>

#include "support/client.hpp"
#include "support/server_process.hpp"

namespace imd::test {
namespace {

class Api : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess();
    server_->start();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  Http http() { return Http(server_->host(), server_->port()); }
  static ServerProcess* server_;
};
ServerProcess* Api::server_ = nullptr;

TEST_F(Api, Healthz) {
  auto r = http().get("/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.str("status"), "ok");
}

}  // namespace
}  // namespace imd::test
