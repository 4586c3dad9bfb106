// Scenario set-up through imd's REST API: users (register + login), spaces, channels and
// memberships, with many requests in flight on keep-alive connections. Runs worker 0's
// io_context until each phase is done; any failure throws Failure with the server's answer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "context.hpp"
#include "http_client.hpp"

namespace imbench {

struct Account {
  std::string id;     // user id (decimal string)
  std::string token;  // access token
  std::string phone;
  std::string refresh_token;  // for POST /api/v1/auth/refresh (long runs: `soak`)
  std::int64_t expires_in_s = 0;
};

// Takes the tokens of a Session answer (login, refresh) into `a`; throws on a bad answer.
void read_session(const std::string& body, Account& a);

class Rest {
 public:
  Rest(Context& ctx, Workers& workers, std::size_t connections = 64);
  ~Rest();

  // Registers and logs in n users with phones unique to this run.
  std::vector<Account> create_accounts(std::size_t n);
  std::string create_space(const Account& owner, const std::string& name);
  std::string create_channel(const Account& owner, const std::string& space_id,
                             const std::string& name);
  // Each user joins the (private) space through an invitation of `owner`, then the channel.
  void join(const Account& owner, const std::vector<Account>& users, const std::string& space_id,
            const std::string& channel_id);
  // Each user (already in the channel's space) joins the channel.
  void join_channel(const std::vector<Account>& users, const std::string& channel_id);
  void close();  // closes the keep-alive connections

 private:
  // Runs the requests, n at a time through the pool; on_ok gets (index, body).
  void batch(std::size_t n, const std::function<HttpRequest(std::size_t)>& make, int want_status,
             const std::function<void(std::size_t, const std::string&)>& on_ok, const char* what);

  Context& ctx_;
  Workers& workers_;
  HttpPool pool_;
};

}  // namespace imbench
