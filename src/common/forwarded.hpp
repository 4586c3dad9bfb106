// The client's address behind trusted proxies (load balancers), from X-Forwarded-For.
//
// Only a peer in `trusted` may speak for someone else: then the header is read from the right
// (each proxy appends the address it saw), trusted hops are skipped, and the first address
// that is not a trusted proxy is the client. Anything malformed stops the walk: the last
// trustworthy address is used, so a client cannot forge its way past the per-IP limits by
// sending its own X-Forwarded-For.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace imd {

class TrustedProxies {
 public:
  // `list`: comma-separated IPv4/IPv6 addresses; invalid_argument-style failures throw
  // std::invalid_argument (start-up configuration).
  explicit TrustedProxies(std::string_view list);
  bool empty() const { return addrs_.empty(); }
  bool contains(std::string_view ip) const;
  // The client's address for a request from `peer` carrying `x_forwarded_for` (may be empty).
  std::string client_ip(std::string_view peer, std::string_view x_forwarded_for) const;

 private:
  std::vector<std::string> addrs_;  // normalized (inet_ntop) forms
};

}  // namespace imd
