// What every scenario gets: parsed options, the server's address, the worker threads
// (io_contexts), result output, and small helpers to run an io_context until a condition.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/object.hpp>

#include "histogram.hpp"

namespace imbench {

class Monitor;

// The clients' delivery-ACK policy: one cumulative ack per conversation after `every`
// messages or `interval_ns`, whichever comes first; every = 0: after interval_ns only, as the
// web client does (the default of `soak`). Other scenarios default to 50 / 100 ms;
// --ack-every / --ack-interval-ms change it for experiments.
struct AckPolicy {
  std::uint32_t every = 50;
  std::int64_t interval_ns = 100'000'000;
};

// "--key value" options; a key given twice keeps the last. Typed getters record which keys
// a scenario understands, so unknown ones can be reported (check_unused()).
class Options {
 public:
  Options() = default;
  Options(std::vector<std::string> args, std::vector<std::string> flags);
  std::string str(const std::string& key, const std::string& def);
  double num(const std::string& key, double def);
  std::int64_t integer(const std::string& key, std::int64_t def);
  bool flag(const std::string& key);
  void check_unused() const;  // throws naming the first unknown option

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> used_;
};

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Worker io_contexts: worker 0 runs on the calling (main) thread inside run_until(); the
// others on their own threads from start() until stop().
class Workers {
 public:
  explicit Workers(int n);
  ~Workers();
  int size() const { return static_cast<int>(ios_.size()); }
  boost::asio::io_context& io(int i) { return *ios_[static_cast<std::size_t>(i)]; }
  // Runs worker 0 until pred() holds or the timeout passes; ticks the monitor meanwhile.
  bool run_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                 Monitor* monitor = nullptr);
  void run_for(std::chrono::milliseconds d, Monitor* monitor = nullptr);
  // Runs fn on worker i's thread and waits for it.
  void call(int i, const std::function<void()>& fn);
  void stop();  // joins the extra threads; idempotent

 private:
  std::vector<std::unique_ptr<boost::asio::io_context>> ios_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
};

// JSON lines to stdout (--json) and/or appended to a file (--jsonl PATH).
class Reporter {
 public:
  // `common` fields (e.g. the client mode) are added to every line.
  Reporter(bool to_stdout, std::string path, boost::json::object common)
      : to_stdout_(to_stdout), path_(std::move(path)), common_(std::move(common)) {}
  void emit(boost::json::object o) const;

 private:
  bool to_stdout_;
  std::string path_;
  boost::json::object common_;
};

struct Context {
  Options opts;
  std::string scenario;
  boost::asio::ip::tcp::endpoint server;
  std::string host_header;  // host:port
  int server_pid = 0;
  int threads = 1;
  std::string tag;       // unique per run: phones, names
  std::string ws_query;  // extra /ws query parameters ("&batch=1" with --batch)
  AckPolicy ack_policy;
  std::unique_ptr<Reporter> reporter;
  std::vector<boost::asio::ip::address> sources;  // local source addresses for WebSockets
  std::size_t per_source = 15000;                 // connections per source address
  const boost::asio::ip::address* source_for(std::size_t conn_index) const;
};

// Latency percentiles in milliseconds as JSON and as one human-readable line.
boost::json::object latency_json(const Histogram& h);
std::string latency_line(const Histogram& h);

// Progress and summary output (stderr for progress, stdout for results).
void progress(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace imbench
