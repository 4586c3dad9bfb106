#include "http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>

#include "clock.hpp"

namespace imbench {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

HttpConn::HttpConn(asio::io_context& io, tcp::endpoint server, std::string host)
    : sock_(io), server_(server), host_(std::move(host)) {}

void HttpConn::request(const HttpRequest& req, Callback cb) {
  busy_ = true;
  cb_ = std::move(cb);
  wbuf_.clear();
  wbuf_ += req.method;
  wbuf_ += ' ';
  wbuf_ += req.target;
  wbuf_ += " HTTP/1.1\r\nHost: ";
  wbuf_ += host_;
  wbuf_ += "\r\n";
  if (!req.bearer.empty()) {
    wbuf_ += "Authorization: Bearer ";
    wbuf_ += req.bearer;
    wbuf_ += "\r\n";
  }
  if (!req.body.empty() || req.method == "POST") {
    wbuf_ += "Content-Type: application/json\r\nContent-Length: ";
    wbuf_ += std::to_string(req.body.size());
    wbuf_ += "\r\n";
  }
  wbuf_ += "\r\n";
  wbuf_ += req.body;
  retried_ = false;
  start(false);
}

void HttpConn::start(bool retry) {
  started_ns_ = now_ns();
  if (connected_) {
    fresh_ = false;
    return write();
  }
  fresh_ = true;
  boost::system::error_code ec;
  if (sock_.is_open()) sock_.close(ec);
  rbuf_.clear();
  sock_.async_connect(server_, [this](const boost::system::error_code& ec) {
    if (closed_) return;
    if (ec) {
      HttpResult r;
      r.error = "connect: " + ec.message();
      return finish(std::move(r));
    }
    sock_.set_option(tcp::no_delay(true));
    boost::system::error_code nb;
    sock_.non_blocking(true, nb);  // reads are tried when the socket is readable
    connected_ = true;
    write();
  });
}

void HttpConn::write() {
  asio::async_write(sock_, asio::buffer(wbuf_),
                    [this](const boost::system::error_code& ec, std::size_t) {
                      if (closed_) return;
                      if (ec) {
                        connected_ = false;
                        if (!fresh_ && !retried_) {
                          retried_ = true;
                          return start(true);
                        }
                        HttpResult r;
                        r.error = "write: " + ec.message();
                        return finish(std::move(r));
                      }
                      read();
                    });
}

// Waits until the socket is readable, then reads what is there and feeds it to the parser:
// no read is tried before the response can have arrived (a wasted syscall per request), and
// one read usually takes the whole response.
void HttpConn::read() {
  parser_.emplace();
  parser_->body_limit(64 * 1024 * 1024);
  parser_->eager(true);
  if (rbuf_.size() > 0 && feed()) return;
  wait_readable();
}

void HttpConn::wait_readable() {
  sock_.async_wait(tcp::socket::wait_read, [this](const boost::system::error_code& ec) {
    if (closed_) return;
    if (ec) return read_failed(ec);
    for (;;) {
      boost::system::error_code rec;
      std::size_t n = sock_.read_some(rbuf_.prepare(64 * 1024), rec);
      if (rec == asio::error::would_block || rec == asio::error::try_again) break;
      if (rec == asio::error::eof) {
        // A response delimited by the end of the connection is complete now.
        if (parser_->got_some()) {
          boost::system::error_code eof_ec;
          parser_->put_eof(eof_ec);
          if (!eof_ec && parser_->is_done()) return complete();
        }
        return read_failed(http::error::end_of_stream);
      }
      if (rec) return read_failed(rec);
      rbuf_.commit(n);
      if (feed()) return;
    }
    wait_readable();
  });
}

// Parses what rbuf_ holds; true when the response is complete or failed (and handled).
bool HttpConn::feed() {
  while (rbuf_.size() > 0 && !parser_->is_done()) {
    boost::system::error_code ec;
    std::size_t used = parser_->put(rbuf_.data(), ec);
    rbuf_.consume(used);
    if (ec == http::error::need_more) break;
    if (ec) {
      read_failed(ec);
      return true;
    }
    if (used == 0) break;
  }
  if (!parser_->is_done()) return false;
  complete();
  return true;
}

void HttpConn::read_failed(const boost::system::error_code& ec) {
  connected_ = false;
  // A keep-alive connection the server closed while idle: reconnect and send again.
  if (!fresh_ && !retried_ &&
      (ec == http::error::end_of_stream || ec == asio::error::eof ||
       ec == asio::error::connection_reset)) {
    retried_ = true;
    return start(true);
  }
  HttpResult r;
  r.error = "read: " + ec.message();
  finish(std::move(r));
}

void HttpConn::complete() {
  auto res = parser_->release();
  HttpResult r;
  r.status = static_cast<int>(res.result_int());
  r.body = std::move(res.body());
  if (!res.keep_alive()) {
    connected_ = false;
    boost::system::error_code ignored;
    sock_.close(ignored);
  }
  finish(std::move(r));
}

void HttpConn::finish(HttpResult&& r) {
  r.latency_ns = now_ns() - started_ns_;
  busy_ = false;
  auto cb = std::move(cb_);
  cb_ = nullptr;
  cb(std::move(r));
}

void HttpConn::close() {
  closed_ = true;
  connected_ = false;
  boost::system::error_code ignored;
  sock_.close(ignored);
}

HttpPool::HttpPool(asio::io_context& io, tcp::endpoint server, std::string host,
                   std::size_t connections) {
  for (std::size_t i = 0; i < connections; ++i) {
    conns_.push_back(std::make_unique<HttpConn>(io, server, host));
  }
}

void HttpPool::submit(HttpRequest req, HttpConn::Callback cb) {
  ++in_flight_;
  queue_.emplace_back(std::move(req), std::move(cb));
  for (auto& c : conns_) {
    if (queue_.empty()) break;
    if (!c->busy()) pump(*c);
  }
}

void HttpPool::pump(HttpConn& c) {
  if (queue_.empty()) return;
  auto [req, cb] = std::move(queue_.front());
  queue_.pop_front();
  c.request(req, [this, &c, cb = std::move(cb)](HttpResult&& r) {
    --in_flight_;
    cb(std::move(r));
    if (!c.busy()) pump(c);
  });
}

void HttpPool::close() {
  for (auto& c : conns_) c->close();
}

}  // namespace imbench
