// Caps on open TCP connections, in total and per client address, checked when a connection is
// accepted (before a byte is read), so that a flood of idle sockets cannot take every file
// descriptor: the process keeps headroom for its store, its engines and the clients that are
// already in, and `/healthz` and logins keep answering.
//
// A connection over a cap is closed at once (the kernel's RST tells the client; no answer is
// written, so refusing costs no more than accepting). Loopback peers are exempt from the per-
// address cap (a reverse proxy on the same machine brings every client from 127.0.0.1; the
// total cap still counts them), and so are the configured trusted proxies.
// Thread-safe: admit() from any accept loop, tickets released on any thread.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <boost/asio/ip/address.hpp>

namespace imd::net {

class ConnectionLimits : public std::enable_shared_from_this<ConnectionLimits> {
 public:
  // One admitted connection; the slot is released when the last copy is destroyed.
  using Ticket = std::shared_ptr<void>;

  enum class Refusal { none, total, per_address };

  ConnectionLimits(std::size_t total, std::size_t per_address);

  // A ticket, or null with `why` set. `exempt`: not counted per address (a trusted proxy).
  Ticket admit(const boost::asio::ip::address& peer, bool exempt, Refusal& why);

  std::size_t open() const;
  std::size_t open_from(const boost::asio::ip::address& peer) const;

  // The total cap a process with `fd_limit` descriptors can afford: `wanted`, or less so that
  // `reserve` descriptors stay for everything that is not a client connection.
  static std::size_t affordable(std::size_t wanted, std::size_t fd_limit, std::size_t reserve);

 private:
  void release(const std::string& key);

  const std::size_t total_cap_;
  const std::size_t per_address_cap_;
  mutable std::mutex mu_;
  std::size_t open_ = 0;
  std::unordered_map<std::string, std::size_t> by_address_;  // only addresses with a count > 0
};

}  // namespace imd::net
