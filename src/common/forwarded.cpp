#include "common/forwarded.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <optional>
#include <stdexcept>

namespace imd {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The canonical text of an IPv4 or IPv6 address, or nullopt if `s` is not one.
std::optional<std::string> normalize(std::string_view s) {
  if (s.empty() || s.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string text(s);
  char out[INET6_ADDRSTRLEN];
  unsigned char raw[sizeof(in6_addr)];
  if (inet_pton(AF_INET, text.c_str(), raw) == 1) {
    return std::string(inet_ntop(AF_INET, raw, out, sizeof out));
  }
  if (inet_pton(AF_INET6, text.c_str(), raw) == 1) {
    return std::string(inet_ntop(AF_INET6, raw, out, sizeof out));
  }
  return std::nullopt;
}

}  // namespace

TrustedProxies::TrustedProxies(std::string_view list) {
  std::size_t start = 0;
  while (start < list.size()) {
    auto end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    auto item = trim(list.substr(start, end - start));
    if (!item.empty()) {
      auto ip = normalize(item);
      if (!ip) {
        throw std::invalid_argument("trusted_proxies: '" + std::string(item) +
                                    "' is not an IP address");
      }
      addrs_.push_back(*ip);
    }
    start = end + 1;
  }
}

bool TrustedProxies::contains(std::string_view ip) const {
  auto n = normalize(ip);
  return n && std::find(addrs_.begin(), addrs_.end(), *n) != addrs_.end();
}

std::string TrustedProxies::client_ip(std::string_view peer, std::string_view xff) const {
  std::string client(peer);
  if (!contains(peer)) return client;
  // Right to left: the nearest hop first.
  while (!xff.empty()) {
    auto comma = xff.rfind(',');
    auto item = trim(comma == std::string_view::npos ? xff : xff.substr(comma + 1));
    xff = comma == std::string_view::npos ? std::string_view{} : xff.substr(0, comma);
    auto ip = normalize(item);
    if (!ip) break;  // malformed: trust nothing further left
    client = *ip;
    if (!contains(client)) break;  // the first untrusted address is the client
  }
  return client;
}

}  // namespace imd
