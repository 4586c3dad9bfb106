#include "net/conn_limits.hpp"

#include <algorithm>

namespace imd::net {

ConnectionLimits::ConnectionLimits(std::size_t total, std::size_t per_address)
    : total_cap_(total), per_address_cap_(per_address) {}

std::size_t ConnectionLimits::affordable(std::size_t wanted, std::size_t fd_limit,
                                         std::size_t reserve) {
  if (fd_limit <= reserve) return std::min<std::size_t>(wanted, 1);
  return std::max<std::size_t>(1, std::min(wanted, fd_limit - reserve));
}

ConnectionLimits::Ticket ConnectionLimits::admit(const boost::asio::ip::address& peer, bool exempt,
                                                 Refusal& why) {
  // An IPv4 client seen through a dual-stack socket counts as its IPv4 address.
  auto addr = peer;
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    addr = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, addr.to_v6());
  }
  const bool counted = !exempt && !addr.is_loopback();
  std::string key = counted ? addr.to_string() : std::string();
  {
    std::lock_guard lock(mu_);
    if (open_ >= total_cap_) {
      why = Refusal::total;
      return nullptr;
    }
    if (counted) {
      auto& n = by_address_[key];
      if (n >= per_address_cap_) {
        why = Refusal::per_address;
        return nullptr;
      }
      ++n;
    }
    ++open_;
  }
  why = Refusal::none;
  // The ticket keeps the limits alive; its deleter gives the slot back.
  auto self = shared_from_this();
  return Ticket(static_cast<void*>(this),
                [self, key = std::move(key)](void*) { self->release(key); });
}

void ConnectionLimits::release(const std::string& key) {
  std::lock_guard lock(mu_);
  --open_;
  if (key.empty()) return;
  auto it = by_address_.find(key);
  if (it != by_address_.end() && --it->second == 0) by_address_.erase(it);
}

std::size_t ConnectionLimits::open() const {
  std::lock_guard lock(mu_);
  return open_;
}

std::size_t ConnectionLimits::open_from(const boost::asio::ip::address& peer) const {
  std::lock_guard lock(mu_);
  auto it = by_address_.find(peer.to_string());
  return it == by_address_.end() ? 0 : it->second;
}

}  // namespace imd::net
