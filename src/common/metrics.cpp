#include "common/metrics.hpp"

#include <algorithm>
#include <chrono>

namespace imd::metrics {

const Buckets& latency_buckets() {
  static const Buckets b{{500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
                          1000000, 2500000, 5000000, 10000000},
                         1e6};
  return b;
}

const Buckets& size_buckets() {
  static const Buckets b{{0, 1, 10, 100, 1000, 10000, 100000}, 1};
  return b;
}

Histogram::Histogram(const Buckets& buckets)
    : buckets_(buckets),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(buckets.raw_bounds.size() + 1)) {}

void Histogram::observe(std::uint64_t raw) noexcept {
  const auto& b = buckets_.raw_bounds;
  // Fourteen bounds at most: a linear scan beats a binary search at this size.
  std::size_t i = 0;
  while (i < b.size() && raw > b[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(raw, std::memory_order_relaxed);
}

std::uint64_t Histogram::count() const noexcept {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i <= buckets_.raw_bounds.size(); ++i) {
    n += counts_[i].load(std::memory_order_relaxed);
  }
  return n;
}

void Histogram::write(MetricsText& out, std::string_view name,
                      std::span<const MetricLabel> labels) const {
  const std::size_t n = buckets_.raw_bounds.size();
  std::vector<double> bounds(n);
  std::vector<std::uint64_t> counts(n + 1);
  for (std::size_t i = 0; i < n; ++i) {
    bounds[i] = static_cast<double>(buckets_.raw_bounds[i]) / buckets_.per_unit;
  }
  for (std::size_t i = 0; i <= n; ++i) counts[i] = counts_[i].load(std::memory_order_relaxed);
  const double sum = static_cast<double>(sum_.load(std::memory_order_relaxed)) / buckets_.per_unit;
  out.histogram(name, labels, bounds, counts, sum);
}

std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::uint64_t micros_since(std::int64_t start_ns) noexcept {
  const std::int64_t d = steady_ns() - start_ns;
  return d > 0 ? static_cast<std::uint64_t>(d / 1000) : 0;
}

void observe_call(LabeledHistogram& seconds, LabeledCounter& errors, std::string_view operation,
                  std::int64_t start_ns, bool ok) {
  seconds.at(operation).observe(micros_since(start_ns));
  auto& failed = errors.at(operation);  // exported at 0 until a call fails
  if (!ok) failed.inc();
}

namespace {

std::function<std::unique_ptr<Counter>()> counters() {
  return [] { return std::make_unique<Counter>(); };
}
std::function<std::unique_ptr<Histogram>()> latencies() {
  return [] { return std::make_unique<Histogram>(latency_buckets()); };
}

void labeled_counter(MetricsText& out, std::string_view name, std::string_view help,
                     std::string_view label, const LabeledCounter& c,
                     std::span<const MetricLabel> fixed = {}) {
  out.family(name, help, "counter");
  c.each([&](std::string_view v, const Counter& x) {
    std::vector<MetricLabel> ls(fixed.begin(), fixed.end());
    ls.push_back({label, v});
    out.sample(name, ls, static_cast<double>(x.value()));
  });
}

void labeled_histogram(MetricsText& out, std::string_view name, std::string_view help,
                       std::string_view label, const LabeledHistogram& h,
                       std::span<const MetricLabel> fixed) {
  out.family(name, help, "histogram");
  h.each([&](std::string_view v, const Histogram& x) {
    std::vector<MetricLabel> ls(fixed.begin(), fixed.end());
    ls.push_back({label, v});
    x.write(out, name, ls);
  });
}

}  // namespace

ImdMetrics::ImdMetrics()
    : ws_frames_received(counters()),
      ws_frames_sent(counters()),
      rate_limited(counters()),
      quota_refused(counters()),
      backfill_messages(size_buckets()),
      messages_refused(counters()),
      send_to_sent_seconds(latency_buckets()),
      send_to_deliver_seconds(latency_buckets()),
      store_call_seconds(latencies()),
      store_errors(counters()),
      inbox_call_seconds(latencies()),
      inbox_errors(counters()),
      cache_requests(counters()),
      redis_call_seconds(latencies()),
      redis_errors(counters()),
      registry_call_seconds(latencies()),
      registry_errors(counters()),
      rpc_client_call_seconds(latencies()),
      rpc_client_errors(counters()),
      rpc_server_call_seconds(latencies()),
      rpc_server_errors(counters()) {
  // Series that alerts and rate() read exist from the start at 0: a counter that first
  // appears at 5 loses those 5 to rate(). Other values register on first use.
  for (const char* r : {"unavailable", "internal", "too_many_requests"}) messages_refused.at(r);
  for (const char* w : {"ws_frame", "http", "http_auth"}) rate_limited.at(w);
  for (const char* q :
       {"spaces_per_user", "channels_per_space", "members_per_space", "upload_bytes"}) {
    quota_refused.at(q);
  }
  for (const char* op : {"append_messages", "advance_deliveries"}) {
    store_call_seconds.at(op);
    store_errors.at(op);
  }
  for (const char* op : {"push", "ack_many"}) {
    inbox_call_seconds.at(op);
    inbox_errors.at(op);
  }
  cache_requests.at("hit");
  cache_requests.at("miss");
}

void ImdMetrics::set_engines(std::string store, std::string inbox, std::string cache) {
  store_engine = std::move(store);
  inbox_engine = std::move(inbox);
  cache_engine = std::move(cache);
}

ImdMetrics& imd() {
  static ImdMetrics m;
  return m;
}

void write_imd_metrics(MetricsText& out) {
  const ImdMetrics& m = imd();
  auto counter = [&](std::string_view name, std::string_view help, const Counter& c) {
    out.counter(name, help, static_cast<double>(c.value()));
  };
  counter("imd_ws_connections_opened_total", "WebSocket sessions opened.", m.ws_connections_opened);
  labeled_counter(out, "imd_ws_frames_received_total", "WebSocket text frames received, by op.",
                  "op", m.ws_frames_received);
  labeled_counter(out, "imd_ws_frames_sent_total", "WebSocket frames queued to clients, by op.",
                  "op", m.ws_frames_sent);
  labeled_counter(out, "imd_rate_limited_total", "Requests refused by a rate limit, by what.",
                  "what", m.rate_limited);
  labeled_counter(out, "imd_quota_refused_total",
                  "Requests refused by a per-user or per-space quota, by quota.", "what",
                  m.quota_refused);
  out.family("imd_backfill_messages", "Messages sent by one backfill (connect or sync).",
             "histogram");
  m.backfill_messages.write(out, "imd_backfill_messages", {});

  counter("imd_messages_accepted_total", "Sends validated and handed to the queue.",
          m.messages_accepted);
  labeled_counter(out, "imd_messages_refused_total",
                  "Sends refused before the queue or by it, by error code.", "reason",
                  m.messages_refused);
  counter("imd_messages_stored_total", "Messages stored for the first time.", m.messages_stored);
  counter("imd_messages_duplicate_total",
          "Sends of a (sender, cid) already stored, answered with the original.",
          m.messages_duplicate);
  counter("imd_messages_delivered_total",
          "Message frames handed to a recipient's connection (live pushes).", m.messages_delivered);
  out.family("imd_send_to_sent_seconds",
             "From a send's acceptance to its `sent` ACK being pushed (stored, inbox written).",
             "histogram");
  m.send_to_sent_seconds.write(out, "imd_send_to_sent_seconds", {});
  out.family("imd_send_to_deliver_seconds",
             "From a send's acceptance to the message being handed to a recipient's connection.",
             "histogram");
  m.send_to_deliver_seconds.write(out, "imd_send_to_deliver_seconds", {});

  const MetricLabel store[] = {{"engine", m.store_engine}};
  const MetricLabel inbox[] = {{"engine", m.inbox_engine}};
  const MetricLabel cache[] = {{"engine", m.cache_engine}};
  labeled_histogram(out, "imd_store_call_seconds", "Store calls' duration, by operation.",
                    "operation", m.store_call_seconds, store);
  labeled_counter(out, "imd_store_errors_total", "Store calls that failed, by operation.",
                  "operation", m.store_errors, store);
  labeled_histogram(out, "imd_inbox_call_seconds", "Inbox calls' duration, by operation.",
                    "operation", m.inbox_call_seconds, inbox);
  labeled_counter(out, "imd_inbox_errors_total", "Inbox calls that failed, by operation.",
                  "operation", m.inbox_errors, inbox);
  labeled_counter(out, "imd_cache_requests_total",
                  "Cache lookups of member lists and memberships, by result (hit, miss).", "result",
                  m.cache_requests, cache);
  if (!m.redis_call_seconds.empty()) {  // only where Redis is used
    const MetricLabel redis[] = {{"engine", "redis"}};
    labeled_histogram(out, "imd_redis_call_seconds",
                      "Redis calls' duration (redirects and retries included), by command.",
                      "operation", m.redis_call_seconds, redis);
    labeled_counter(out, "imd_redis_errors_total",
                    "Redis calls that failed (no connection, cluster down), by command.",
                    "operation", m.redis_errors, redis);
  }
  if (!m.registry_call_seconds.empty()) {  // only where etcd is the registry
    const MetricLabel etcd[] = {{"engine", "etcd"}};
    labeled_histogram(out, "imd_registry_call_seconds",
                      "Service registry calls' duration (unary calls with every endpoint tried, "
                      "lease keep-alive round trips, watch creations), by operation.",
                      "operation", m.registry_call_seconds, etcd);
    labeled_counter(out, "imd_registry_errors_total",
                    "Service registry calls that failed (no answer in time, stream broken), by "
                    "operation.",
                    "operation", m.registry_errors, etcd);
  }
  if (!m.rpc_client_call_seconds.empty()) {  // processes that push to gateways over gRPC
    labeled_histogram(out, "imd_rpc_client_call_seconds",
                      "gRPC calls made, each attempt to its status, by method.", "method",
                      m.rpc_client_call_seconds, {});
    labeled_counter(out, "imd_rpc_client_errors_total",
                    "gRPC call attempts that ended in an error status, by method.", "method",
                    m.rpc_client_errors);
  }
  if (!m.rpc_server_call_seconds.empty()) {  // gateways
    labeled_histogram(out, "imd_rpc_server_call_seconds",
                      "gRPC calls served (the handler's time), by method.", "method",
                      m.rpc_server_call_seconds, {});
    labeled_counter(out, "imd_rpc_server_errors_total",
                    "gRPC calls answered with an error status, by method.", "method",
                    m.rpc_server_errors);
  }
}

}  // namespace imd::metrics
