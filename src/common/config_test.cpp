#include "common/config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

namespace imd {
namespace {

GetEnv env_of(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

TEST(Config, DefaultsAreStandalone) {
  auto cl = parse_command_line({}, env_of({}));
  ASSERT_TRUE(cl) << cl.error().message;
  EXPECT_EQ(cl->config.listen, "127.0.0.1:8080");
  EXPECT_EQ(cl->config.data_dir, "./data");
  EXPECT_EQ(cl->config.store, "sqlite");
}

TEST(Config, FlagsInBothForms) {
  auto cl =
      parse_command_line({"--listen", "0.0.0.0:0", "--data-dir=/tmp/x",
                          "--limits-max-message-bytes", "100", "--limits-max-frame-bytes", "2000"},
                         env_of({}));
  ASSERT_TRUE(cl) << cl.error().message;
  EXPECT_EQ(cl->config.listen, "0.0.0.0:0");
  EXPECT_EQ(cl->config.data_dir, "/tmp/x");
  EXPECT_EQ(cl->config.limits.max_message_bytes, 100);
}

TEST(Config, EnvironmentThenFlagsWin) {
  auto cl = parse_command_line(
      {"--listen", "127.0.0.1:9"},
      env_of({{"IMD_LISTEN", "127.0.0.1:7"}, {"IMD_DATA_DIR", "/d"}, {"IMD_WS_HEARTBEAT_S", "5"}}));
  ASSERT_TRUE(cl) << cl.error().message;
  EXPECT_EQ(cl->config.listen, "127.0.0.1:9");
  EXPECT_EQ(cl->config.data_dir, "/d");
  EXPECT_EQ(cl->config.ws.heartbeat_s, 5);
}

TEST(Config, TomlFileWithSections) {
  std::string path = ::testing::TempDir() + "imd_config_test.toml";
  {
    std::ofstream out(path);
    out << "listen = \"127.0.0.1:0\"\nworker_id = 12\n[auth]\npassword_hash = \"min\"\n"
           "[limits]\nws_rate_per_s = 7\n";
  }
  auto cl = parse_command_line({"--config", path}, env_of({}));
  ASSERT_TRUE(cl) << cl.error().message;
  EXPECT_EQ(cl->config.worker_id, 12);
  EXPECT_EQ(cl->config.auth.password_hash, "min");
  EXPECT_EQ(cl->config.limits.ws_rate_per_s, 7);
  std::remove(path.c_str());
}

TEST(Config, UnknownKeysAreErrorsNamingTheKey) {
  Config c;
  auto r = apply_toml(c, "[limits]\nmax_mesage_bytes = 5\n", "test.toml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("limits.max_mesage_bytes"), std::string::npos);

  auto flag = parse_command_line({"--no-such-flag", "1"}, env_of({}));
  ASSERT_FALSE(flag);
  EXPECT_NE(flag.error().message.find("--no-such-flag"), std::string::npos);
}

TEST(Config, WrongTypesAndRangesAreRejected) {
  Config c;
  EXPECT_FALSE(apply_toml(c, "worker_id = \"twelve\"\n", "t"));
  EXPECT_FALSE(apply_toml(c, "listen = 5\n", "t"));
  EXPECT_FALSE(apply_toml(c, "listen = \n", "t"));  // malformed TOML
  EXPECT_FALSE(parse_command_line({"--worker-id", "1024"}, env_of({})));
  EXPECT_FALSE(parse_command_line({"--worker-id", "abc"}, env_of({})));
  EXPECT_FALSE(parse_command_line({"--listen", "nohost"}, env_of({})));
  EXPECT_FALSE(parse_command_line({"--listen", "h:99999"}, env_of({})));
  EXPECT_FALSE(parse_command_line({"--auth-jwt-secret", "short"}, env_of({})));
  EXPECT_FALSE(parse_command_line({"--listen"}, env_of({})));
}

// A NATS URL's user and password do not reach --print-config.
TEST(Config, UrlCredentialsAreRedacted) {
  EXPECT_EQ(redact_url_credentials("nats://imd:pw@10.0.0.1:4222,nats://10.0.0.2:4222"),
            "nats://<redacted>@10.0.0.1:4222,nats://10.0.0.2:4222");
  EXPECT_EQ(redact_url_credentials("nats://h:4222/x@y"), "nats://h:4222/x@y");
  EXPECT_EQ(redact_url_credentials("127.0.0.1:2379"), "127.0.0.1:2379");
  auto cl = parse_command_line({"--nats-url", "nats://imd:tops3cret@127.0.0.1:4222"}, env_of({}));
  ASSERT_TRUE(cl) << cl.error().message;
  EXPECT_EQ(to_toml(cl->config).find("tops3cret"), std::string::npos);
}

TEST(Config, EngineSelection) {
  auto cl = parse_command_line(
      {"--store", "mysql", "--cache", "redis", "--mysql-port", "3307", "--redis-mode", "cluster",
       "--redis-addresses", "127.0.0.1:7000,127.0.0.1:7001"},
      env_of({{"IMD_MYSQL_PASSWORD", "s3cret"}}));
  ASSERT_TRUE(cl) << cl.error().message;
  EXPECT_EQ(cl->config.store, "mysql");
  EXPECT_EQ(cl->config.mysql.port, 3307);
  EXPECT_EQ(cl->config.mysql.password, "s3cret");
  EXPECT_EQ(cl->config.redis.mode, "cluster");
  EXPECT_EQ(to_toml(cl->config).find("s3cret"), std::string::npos);
  // The standalone inbox lives in SQLite: MySQL needs the Redis inbox.
  EXPECT_FALSE(parse_command_line({"--store", "mysql"}, env_of({})));
  EXPECT_FALSE(parse_command_line({"--store", "postgres"}, env_of({})));
  EXPECT_FALSE(parse_command_line({"--cache", "memcached"}, env_of({})));
  EXPECT_FALSE(parse_command_line({"--redis-mode", "sentinel"}, env_of({})));
}

TEST(Config, RolesAndClusterEngines) {
  auto roles = parse_roles("gateway, logic");
  ASSERT_TRUE(roles) << roles.error().message;
  EXPECT_TRUE(roles->gateway);
  EXPECT_FALSE(roles->api);
  EXPECT_TRUE(roles->logic);
  EXPECT_TRUE(parse_roles("all")->all());
  EXPECT_FALSE(parse_roles(""));
  EXPECT_FALSE(parse_roles("gateway,,api"));
  EXPECT_FALSE(parse_roles("worker"));

  const std::vector<std::string> cluster = {"--store", "mysql", "--cache",    "redis",
                                            "--queue", "nats",  "--registry", "etcd"};
  auto with = [&](std::vector<std::string> extra) {
    auto args = cluster;
    args.insert(args.end(), extra.begin(), extra.end());
    return parse_command_line(args, env_of({}));
  };
  auto gw = with({"--roles", "gateway", "--rpc-listen", "127.0.0.1:0", "--nats-partitions", "8",
                  "--etcd-endpoints", "127.0.0.1:2379,127.0.0.1:2380"});
  ASSERT_TRUE(gw) << gw.error().message;
  EXPECT_EQ(gw->config.nats.partitions, 8);
  EXPECT_EQ(gw->config.etcd.endpoints, "127.0.0.1:2379,127.0.0.1:2380");
  // A split process shares state only through the cluster engines.
  EXPECT_FALSE(parse_command_line({"--roles", "api"}, env_of({})));
  EXPECT_FALSE(parse_command_line({"--queue", "nats"}, env_of({})));
  EXPECT_FALSE(with({"--queue", "kafka"}));
  EXPECT_FALSE(with({"--registry", "zookeeper"}));
  EXPECT_FALSE(with({"--nats-partitions", "0"}));
  EXPECT_FALSE(with({"--rpc-listen", "nowhere"}));
  EXPECT_TRUE(with({"--roles", "all"}));
}

TEST(Config, PrintedConfigRedactsSecretsAndParsesBack) {
  auto cl = parse_command_line({"--auth-jwt-secret", std::string(40, 'k')}, env_of({}));
  ASSERT_TRUE(cl) << cl.error().message;
  std::string toml = to_toml(cl->config);
  EXPECT_EQ(toml.find(std::string(40, 'k')), std::string::npos);
  EXPECT_NE(toml.find("<redacted>"), std::string::npos);
  Config back;
  ASSERT_TRUE(apply_toml(back, toml, "printed"));
  EXPECT_EQ(back.listen, cl->config.listen);
  EXPECT_NE(help_text().find("--data-dir"), std::string::npos);
  EXPECT_NE(help_text().find("IMD_DATA_DIR"), std::string::npos);
}

}  // namespace
}  // namespace imd
