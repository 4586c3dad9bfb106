// Keep-alive HTTP/1.1 client connections and a pool that keeps many requests in flight.
//
// HttpConn: one TCP connection, one request in flight, reconnects (and retries once) when
// the server has closed an idle keep-alive connection. Responses are read when the socket is
// readable and fed to Beast's parser. HttpPool: N connections sharing a FIFO of requests.
//
// Threading: all calls and callbacks on the io_context's thread. Ownership: objects must
// outlive their outstanding operations (close() then let the io_context drain).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

namespace imbench {

struct HttpRequest {
  std::string method = "GET";
  std::string target;
  std::string body;    // JSON; empty: none
  std::string bearer;  // access token; empty: none
};

struct HttpResult {
  int status = 0;  // 0: transport error, see `error`
  std::string body;
  std::string error;
  std::int64_t latency_ns = 0;  // request written .. response complete
};

class HttpConn {
 public:
  using Callback = std::function<void(HttpResult&&)>;

  HttpConn(boost::asio::io_context& io, boost::asio::ip::tcp::endpoint server, std::string host);
  HttpConn(const HttpConn&) = delete;
  HttpConn& operator=(const HttpConn&) = delete;

  // At most one request at a time (busy() tells).
  void request(const HttpRequest& req, Callback cb);
  bool busy() const { return busy_; }
  void close();

 private:
  void start(bool retry);
  void write();
  void read();
  void wait_readable();
  bool feed();
  void read_failed(const boost::system::error_code& ec);
  void complete();
  void finish(HttpResult&& r);

  boost::asio::ip::tcp::socket sock_;
  boost::asio::ip::tcp::endpoint server_;
  std::string host_;
  bool connected_ = false;
  bool busy_ = false;
  bool closed_ = false;
  bool fresh_ = false;  // connection opened for this request: no retry on failure
  bool retried_ = false;
  std::string wbuf_;
  boost::beast::flat_buffer rbuf_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::string_body>> parser_;
  Callback cb_;
  std::int64_t started_ns_ = 0;
};

class HttpPool {
 public:
  HttpPool(boost::asio::io_context& io, boost::asio::ip::tcp::endpoint server, std::string host,
           std::size_t connections);
  void submit(HttpRequest req, HttpConn::Callback cb);
  std::size_t in_flight() const { return in_flight_; }
  void close();

 private:
  void pump(HttpConn& c);

  std::vector<std::unique_ptr<HttpConn>> conns_;
  std::deque<std::pair<HttpRequest, HttpConn::Callback>> queue_;
  std::size_t in_flight_ = 0;
};

}  // namespace imbench
