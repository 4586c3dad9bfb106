#include "context.hpp"

#include <cstdarg>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>

#include <boost/asio/post.hpp>
#include <boost/json/serialize.hpp>

#include "clock.hpp"
#include "monitor.hpp"

namespace imbench {

namespace asio = boost::asio;

Options::Options(std::vector<std::string> args, std::vector<std::string> flags) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) throw Failure("unexpected argument '" + a + "'");
    std::string key = a.substr(2);
    std::string value;
    auto eq = key.find('=');
    if (eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    } else if (std::find(flags.begin(), flags.end(), key) != flags.end()) {
      value = "1";
    } else {
      if (i + 1 >= args.size()) throw Failure(a + " needs a value");
      value = args[++i];
    }
    values_[key] = value;
    used_[key] = false;
  }
}

std::string Options::str(const std::string& key, const std::string& def) {
  auto it = values_.find(key);
  if (it == values_.end()) return def;
  used_[key] = true;
  return it->second;
}

double Options::num(const std::string& key, double def) {
  auto it = values_.find(key);
  if (it == values_.end()) return def;
  used_[key] = true;
  try {
    std::size_t n = 0;
    double v = std::stod(it->second, &n);
    if (n != it->second.size()) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    throw Failure("--" + key + " must be a number, got '" + it->second + "'");
  }
}

std::int64_t Options::integer(const std::string& key, std::int64_t def) {
  double v = num(key, static_cast<double>(def));
  if (v != static_cast<double>(static_cast<std::int64_t>(v))) {
    throw Failure("--" + key + " must be an integer");
  }
  return static_cast<std::int64_t>(v);
}

bool Options::flag(const std::string& key) {
  auto it = values_.find(key);
  if (it == values_.end()) return false;
  used_[key] = true;
  return it->second != "0" && it->second != "false";
}

void Options::check_unused() const {
  for (const auto& [k, used] : used_) {
    if (!used) throw Failure("unknown option --" + k + " for this scenario (see imbench --help)");
  }
}

Workers::Workers(int n) {
  for (int i = 0; i < n; ++i) {
    ios_.push_back(std::make_unique<asio::io_context>(1));
    guards_.push_back(asio::make_work_guard(*ios_.back()));
  }
  for (int i = 1; i < n; ++i) {
    threads_.emplace_back([this, i] { ios_[static_cast<std::size_t>(i)]->run(); });
  }
}

Workers::~Workers() {
  stop();
}

void Workers::stop() {
  for (std::size_t i = 1; i < ios_.size(); ++i) ios_[i]->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

bool Workers::run_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                        Monitor* monitor) {
  auto& io = *ios_[0];
  if (io.stopped()) io.restart();
  std::int64_t deadline = now_ns() + timeout.count() * kMs;
  while (!pred()) {
    if (now_ns() >= deadline) return false;
    io.run_for(std::chrono::milliseconds(2));
    if (monitor) monitor->tick();
  }
  return true;
}

void Workers::run_for(std::chrono::milliseconds d, Monitor* monitor) {
  std::int64_t end = now_ns() + d.count() * kMs;
  run_until([&] { return now_ns() >= end; }, d + std::chrono::seconds(1), monitor);
}

void Workers::call(int i, const std::function<void()>& fn) {
  if (i == 0 || threads_.empty()) {
    fn();
    return;
  }
  std::promise<void> done;
  asio::post(*ios_[static_cast<std::size_t>(i)], [&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

void Reporter::emit(boost::json::object o) const {
  for (const auto& kv : common_) {
    if (!o.contains(kv.key())) o[kv.key()] = kv.value();
  }
  std::string line = boost::json::serialize(o);
  if (to_stdout_) std::cout << line << std::endl;
  if (!path_.empty()) {
    std::ofstream out(path_, std::ios::app);
    if (!out) throw Failure("cannot write " + path_);
    out << line << "\n";
  }
}

const asio::ip::address* Context::source_for(std::size_t conn_index) const {
  if (sources.empty()) return nullptr;
  std::size_t i = conn_index / per_source;
  if (i >= sources.size()) i = sources.size() - 1;
  return &sources[i];
}

boost::json::object latency_json(const Histogram& h) {
  auto ms = [](std::uint64_t us) { return static_cast<double>(us) / 1000.0; };
  return {{"count", h.count()},
          {"mean_ms", h.mean() / 1000.0},
          {"p50_ms", ms(h.percentile(0.50))},
          {"p90_ms", ms(h.percentile(0.90))},
          {"p99_ms", ms(h.percentile(0.99))},
          {"p999_ms", ms(h.percentile(0.999))},
          {"max_ms", ms(h.max())}};
}

std::string latency_line(const Histogram& h) {
  char buf[256];
  auto ms = [](std::uint64_t us) { return static_cast<double>(us) / 1000.0; };
  std::snprintf(buf, sizeof buf, "p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f ms (n=%llu)",
                ms(h.percentile(0.50)), ms(h.percentile(0.90)), ms(h.percentile(0.99)),
                ms(h.percentile(0.999)), ms(h.max()), static_cast<unsigned long long>(h.count()));
  return buf;
}

void progress(const char* fmt, ...) {
  std::va_list ap;
  va_start(ap, fmt);
  std::fputs("imbench: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
}

}  // namespace imbench
