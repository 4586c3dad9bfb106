// The composition root of the `imd` binary: builds every adapter from the Config, hands
// them to the services, and wires the transports. Nothing else constructs adapters.
#pragma once

#include <memory>
#include <string>

#include "common/config.hpp"

namespace imd {

class App {
 public:
  // Throws std::runtime_error on start-up failures (data dir, database, bind).
  explicit App(Config config);
  ~App();
  // Starts listening; returns the bound "host:port".
  std::string start();
  // Runs until SIGINT/SIGTERM, then shuts down gracefully.
  void run_until_signal();

 private:
  struct Parts;
  std::unique_ptr<Parts> p_;
};

}  // namespace imd
