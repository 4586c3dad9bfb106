// The instruments behind `GET /metrics` (docs/operations.md lists every series): counters,
// gauges and fixed-bucket histograms that any thread updates with relaxed atomic adds (no
// lock, no allocation), and the one catalogue of imd's series, ImdMetrics.
//
// Why one process-wide catalogue rather than instruments handed through constructors: the
// counters are facts about the process, like /proc/self, and a hot path reaches them with one
// reference; the catalogue also keeps every name in one place for the docs and the alerts.
// Tests that run many services in one process therefore see shared totals: assert on deltas.
//
// Labels are bounded: a LabeledCounter/LabeledHistogram takes at most kMaxLabelValues values
// (first come, first kept); any value after that is counted under "other". Looking a value up
// is a scan of the values seen so far with no lock; only the first use of a value locks.
// Hot paths look their series up once (a function-local static reference).
//
// Thread-safety: every member function is thread-safe. set_const_label() is for start-up,
// before traffic (App::Parts sets the engine names once).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics_text.hpp"

namespace imd::metrics {

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  alignas(64) std::atomic<std::uint64_t> v_{0};
};

class Gauge {
 public:
  void set(std::int64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t n) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  alignas(64) std::atomic<std::int64_t> v_{0};
};

// Upper bounds in integer raw units, and how many raw units make one base unit (1e6 for
// latencies observed in microseconds and exposed in seconds; 1 for sizes). Dividing, not
// multiplying by 1e-6, keeps 500 us exactly "0.0005" in the text.
struct Buckets {
  std::vector<std::uint64_t> raw_bounds;  // ascending
  double per_unit = 1;
};
// 0.5 ms .. 10 s, for latencies observed in microseconds.
const Buckets& latency_buckets();
// 0, 1, 10, 100, 1000, 10000, 100000, for counts of things (messages in a backfill).
const Buckets& size_buckets();

class Histogram {
 public:
  explicit Histogram(const Buckets& buckets);
  void observe(std::uint64_t raw) noexcept;
  void write(MetricsText& out, std::string_view name, std::span<const MetricLabel> labels) const;
  std::uint64_t count() const noexcept;

 private:
  const Buckets& buckets_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // one per bound, then +Inf
  alignas(64) std::atomic<std::uint64_t> sum_{0};
};

// Microseconds since `start` on the steady clock: what a call took.
std::uint64_t micros_since(std::int64_t start_ns) noexcept;
std::int64_t steady_ns() noexcept;
// Microseconds from `from_ms` to `to_ms` (wall-clock ms, as Message::created_at); 0 if negative.
inline std::uint64_t elapsed_us(std::int64_t from_ms, std::int64_t to_ms) noexcept {
  return to_ms > from_ms ? static_cast<std::uint64_t>(to_ms - from_ms) * 1000 : 0;
}

// Observes, when it goes out of scope, the microseconds since it was made.
class Timer {
 public:
  explicit Timer(Histogram& h) noexcept : h_(h), start_(steady_ns()) {}
  ~Timer() { h_.observe(micros_since(start_)); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

 private:
  Histogram& h_;
  std::int64_t start_;
};

// Values of one label, each with its own instrument, bounded (see the file comment).
template <class M>
class Labeled {
 public:
  static constexpr std::size_t kMaxLabelValues = 32;
  explicit Labeled(std::function<std::unique_ptr<M>()> make) : make_(std::move(make)) {}

  M& at(std::string_view value);
  bool empty() const { return size_.load(std::memory_order_acquire) == 0; }
  // Calls fn(value, instrument) for each value seen so far, in order of first use.
  template <class Fn>
  void each(Fn&& fn) const {
    const std::size_t n = size_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i) fn(std::string_view(values_[i]), *items_[i]);
  }

 private:
  std::function<std::unique_ptr<M>()> make_;
  std::array<std::string, kMaxLabelValues> values_;
  std::array<std::unique_ptr<M>, kMaxLabelValues> items_;
  std::atomic<std::size_t> size_{0};
  std::mutex mu_;  // only to add a value
};

using LabeledCounter = Labeled<Counter>;
using LabeledHistogram = Labeled<Histogram>;

// Observes one call of `operation` that started at `start_ns` (steady_ns()) in `seconds`, and
// counts it in `errors` when it failed.
void observe_call(LabeledHistogram& seconds, LabeledCounter& errors, std::string_view operation,
                  std::int64_t start_ns, bool ok);

// Every series imd exports, besides the process_* ones and the components' own sources.
struct ImdMetrics {
  ImdMetrics();

  // Gateway (src/gateway, src/net).
  Counter ws_connections_opened;
  LabeledCounter ws_frames_received;  // op (client ops; "unknown" for anything else)
  LabeledCounter ws_frames_sent;      // op of the frame sent
  LabeledCounter rate_limited;        // what: ws_frame
  // what: spaces_per_user | channels_per_space | members_per_space | upload_bytes
  LabeledCounter quota_refused;
  Histogram backfill_messages;  // messages sent by one backfill (sync)

  // The send path (src/domain).
  Counter messages_accepted;          // published to the queue
  LabeledCounter messages_refused;    // reason: the error code a send was refused with
  Counter messages_stored;            // stored for the first time
  Counter messages_duplicate;         // a (sender, cid) already stored: answered with the original
  Counter messages_delivered;         // message frames handed to recipients' connections
  Histogram send_to_sent_seconds;     // created_at -> the `sent` ACK pushed (the consumer)
  Histogram send_to_deliver_seconds;  // created_at -> handed to a recipient's connection

  // Engine calls by operation (engine: a constant label per family).
  LabeledHistogram store_call_seconds;  // operation
  LabeledCounter store_errors;          // operation
  LabeledHistogram inbox_call_seconds;  // operation
  LabeledCounter inbox_errors;          // operation
  LabeledCounter cache_requests;        // result: hit | miss
  LabeledHistogram redis_call_seconds;  // operation: the command, or "pipeline"
  LabeledCounter redis_errors;          // operation: calls that failed (connection, cluster)

  // The service registry (src/registry, engine etcd; registered by EtcdClient) and gRPC
  // between processes (src/rpc; registered by RemotePusher and PushServer). Exported only
  // where used. Operations and methods are fixed sets named in the code, not taken from input.
  // operation: range, put, delete, txn, lease_grant, lease_revoke (unary calls, every endpoint
  // tried), keep_alive (a lease keep-alive's round trip), watch (a watch stream's creation)
  LabeledHistogram registry_call_seconds;
  LabeledCounter registry_errors;            // operation
  LabeledHistogram rpc_client_call_seconds;  // method: each attempt of a call, to its status
  LabeledCounter rpc_client_errors;          // method: attempts that ended in an error status
  LabeledHistogram rpc_server_call_seconds;  // method: the handler's time
  LabeledCounter rpc_server_errors;          // method: calls answered with an error status

  std::string store_engine = "sqlite";
  std::string inbox_engine = "sqlite";
  std::string cache_engine = "memory";
  void set_engines(std::string store, std::string inbox, std::string cache);
};

ImdMetrics& imd();

// Writes ImdMetrics in the text format.
void write_imd_metrics(MetricsText& out);

// --- template members

template <class M>
M& Labeled<M>::at(std::string_view value) {
  std::size_t n = size_.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < n; ++i) {
    if (values_[i] == value) return *items_[i];
  }
  std::lock_guard lock(mu_);
  n = size_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < n; ++i) {
    if (values_[i] == value) return *items_[i];
  }
  // The last slot is kept for "other": the label set stays bounded whatever callers pass.
  if (n + 1 >= kMaxLabelValues) {
    if (n == kMaxLabelValues - 1) {
      values_[n] = "other";
      items_[n] = make_();
      size_.store(n + 1, std::memory_order_release);
      return *items_[n];
    }
    return *items_[kMaxLabelValues - 1];
  }
  values_[n] = std::string(value);
  items_[n] = make_();
  size_.store(n + 1, std::memory_order_release);
  return *items_[n];
}

}  // namespace imd::metrics
