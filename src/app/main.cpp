// imd: the instant-messaging server. Parses the configuration and runs the App.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>

#include "app/admin_command.hpp"
#include "app/app.hpp"
#include "common/config.hpp"
#include "common/log.hpp"

int main(int argc, char** argv) {
  // Everything imd creates (the data directory, the database and its WAL, jwt.secret) is the
  // service user's alone: phone numbers, password hashes and every DM live there.
  ::umask(077);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (auto status = imd::run_admin_command(args)) return *status;
  auto cl = imd::parse_command_line(args, [](const char* name) { return std::getenv(name); });
  if (!cl) {
    std::cerr << "imd: " << cl.error().message << "\n";
    return 2;
  }
  if (cl->help) {
    std::cout << imd::help_text();
    return 0;
  }
  if (cl->print_config) {
    std::cout << imd::to_toml(cl->config);
    return 0;
  }
  imd::log::Level level;
  imd::log::parse_level(cl->config.log_level, level);
  imd::log::set_level(level);
  try {
    imd::App app(cl->config);
    std::string bound = app.start();
    LOG_INFO("imd listening on http://" << bound << " (data dir " << cl->config.data_dir << ")");
    app.run_until_signal();
  } catch (const std::exception& e) {
    LOG_ERROR("fatal: " << e.what());
    return 1;
  }
  return 0;
}
