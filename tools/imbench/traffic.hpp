// The open-loop message traffic of `pairs`, `group` and `soak` (traffic.cpp): what one
// measured step gives, and what `soak` (soak.cpp) drives of it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "accounts.hpp"
#include "context.hpp"
#include "histogram.hpp"
#include "monitor.hpp"

namespace imbench {

// One measured step: a fixed run, a find-max step or a soak window.
struct StepResult {
  double rate = 0, seconds = 0;
  std::uint64_t planned = 0, sent = 0, acked = 0, rejected = 0, unacked = 0, delivered = 0;
  std::uint64_t expected = 0, lost_msgs = 0, lost_deliveries = 0, dup = 0, ooo = 0, stale = 0;
  std::uint64_t dup_acks = 0, closed = 0, skipped = 0;
  // soak only: connections replaced on purpose, seqs they were sent again (not failures),
  // own messages echoed to the sender's new connection, sends still queued at the end.
  std::uint64_t reconnects = 0, redelivered = 0, echoes = 0, queued = 0;
  std::map<std::string, std::uint64_t> errors;
  Histogram ack_lat, del_lat;
  double elapsed = 0, deliveries_per_s = 0, acked_per_s = 0;
  Monitor::Summary mon;
  bool pass = false;
  std::string reason;
};

// The pairs traffic as `soak` runs it: C connections in pairs, each sending DMs to its
// partner, with clients that replace their connection now and then (--reconnects-per-s),
// resume with their cursors and send what was due meanwhile after `synced`.
// Threading: every call on the main thread (worker 0's), between steps.
class SoakTraffic {
 public:
  virtual ~SoakTraffic() = default;
  // Creates the accounts, opens every connection and waits for `synced`; throws Failure.
  virtual void setup() = 0;
  // R msgs/s for `seconds`, then up to --grace for the last ACKs and deliveries.
  virtual StepResult run_step(double rate, double seconds) = 0;
  // Worker 0 runs on the main thread during run_step(): side load may live on io(0).
  virtual Workers& workers() = 0;
  // The accounts as created (tokens of that moment); index i is connection i, partner i ^ 1.
  virtual const std::vector<Account>& accounts() const = 0;
  // A refreshed access token for connection i's next connect.
  virtual void set_token(std::size_t i, std::string token) = 0;
};

// A step as JSON (the fields every scenario's report shares); `group` names the delivered rate
// deliveries_s instead of throughput_msgs_s.
boost::json::object step_json(const StepResult& r, bool group);

// Reads --conns, --body-bytes, --grace, --p99-ms and --reconnects-per-s.
std::unique_ptr<SoakTraffic> make_soak_traffic(Context& ctx);

}  // namespace imbench
