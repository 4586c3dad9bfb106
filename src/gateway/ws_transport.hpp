// A WebSocket connection's transport as its WsSession sees it: queue frames, pause reading,
// wait for the client to read. net::WsConnection implements it (framing, the bounded write
// queue, the closing handshake); the session holds the protocol. Every call on the
// connection's strand.
#pragma once

#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "wire/frames.hpp"

namespace imd::gateway {

class WsTransport {
 public:
  virtual ~WsTransport() = default;

  // The connection's strand.
  virtual boost::asio::any_io_executor executor() = 0;
  // Queues a text frame. `exempt` (replies, backfill): it always fits; the caller bounds it by
  // waiting for writable(). A live push over the queue's bound drops the slow client instead.
  virtual void send(wire::Frame frame, bool exempt) = 0;
  // Frames sent between cork() and uncork() go out together, in one write.
  virtual void cork() = 0;
  virtual void uncork() = 0;
  // Completes once at most ws.sync_page frames wait (or the connection closed). A client that
  // reads nothing for 30 s meanwhile is dropped.
  virtual boost::asio::awaitable<void> writable() = 0;
  // While paused, frames that arrive wait in the socket: the ops of one connection are handled
  // one after the other, in order.
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;
  virtual bool closed() const = 0;
  // Keeps the connection (and its session) alive while work for it runs elsewhere.
  virtual std::shared_ptr<void> hold() = 0;
};

}  // namespace imd::gateway
