// imdctl: the operators' command line over the admin REST API (docs/operations.md,
// "Administration"). One request per step over plain HTTP (run it on the server's host, or
// through the TLS proxy's loopback side), each with a 10 s timeout.
//
//   imdctl [--url URL] [--token TOKEN] COMMAND [ARGS]
//     login PHONE                prints an access token (password: IMD_PASSWORD, else stdin)
//     users [QUERY]              every user (id, name, phone, state); QUERY: a name prefix or
//                                a phone
//     deactivate USER_ID         ends every session, refuses logins
//     reactivate USER_ID
//     reset-password USER_ID [NEW_PASSWORD]
//                                prints the password set (generated when none is given)
//     spaces                     every space (id, name, owner, listed or private)
//     remove-member SPACE_ID USER_ID
//                                removes the user from the space (not its owner)
//     delete-message MESSAGE_ID  deletes any message, as its sender's delete does (logged)
//
// URL: --url, else IMD_URL, else http://127.0.0.1:8080. TOKEN: --token, else IMD_TOKEN; or
// IMD_PHONE with IMD_PASSWORD, with which imdctl logs in first. Exit status: 0 done, 1 the
// server refused or could not be reached (its error printed), 2 usage.
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace bj = boost::json;
using tcp = asio::ip::tcp;

constexpr const char* kUsage =
    "usage: imdctl [--url URL] [--token TOKEN] COMMAND [ARGS]\n"
    "  login PHONE                    print an access token (password: IMD_PASSWORD or stdin)\n"
    "  users [QUERY]                  list users; QUERY: a name prefix or a phone\n"
    "  deactivate USER_ID             end every session and refuse logins\n"
    "  reactivate USER_ID\n"
    "  reset-password USER_ID [PASSWORD]  set (or generate) a password; prints it\n"
    "  spaces                         list every space\n"
    "  remove-member SPACE_ID USER_ID remove a user from a space (not its owner)\n"
    "  delete-message MESSAGE_ID      delete any message (its body and file go)\n"
    "URL: --url, IMD_URL or http://127.0.0.1:8080; TOKEN: --token, IMD_TOKEN, or IMD_PHONE\n"
    "with IMD_PASSWORD to log in first.\n";

struct Failure {
  std::string message;
};

struct Reply {
  int status = 0;
  bj::value json;
};

class Client {
 public:
  explicit Client(const std::string& url) {
    auto u = boost::urls::parse_uri(url);
    if (!u || u->scheme() != "http" || u->host().empty()) {
      throw Failure{"--url must be http://HOST[:PORT]: " + url};
    }
    host_ = std::string(u->host());
    port_ = u->has_port() ? std::string(u->port()) : "80";
  }

  Reply call(http::verb method, const std::string& target, const std::string& token,
             const std::optional<bj::object>& body = std::nullopt) {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(10));
    tcp::resolver resolver(io);
    beast::error_code ec;
    auto endpoints = resolver.resolve(host_, port_, ec);
    if (ec) throw Failure{"cannot resolve " + host_ + ": " + ec.message()};
    stream.connect(endpoints, ec);
    if (ec) throw Failure{"cannot connect to " + host_ + ":" + port_ + ": " + ec.message()};
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, host_);
    req.set(http::field::user_agent, "imdctl");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    if (body) {
      req.set(http::field::content_type, "application/json");
      req.body() = bj::serialize(*body);
    }
    req.prepare_payload();
    http::write(stream, req, ec);
    if (ec) throw Failure{"sending the request failed: " + ec.message()};
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    http::read(stream, buffer, parser, ec);
    if (ec) throw Failure{"reading the answer failed: " + ec.message()};
    Reply r;
    r.status = static_cast<int>(parser.get().result_int());
    const std::string& text = parser.get().body();
    if (!text.empty()) {
      boost::system::error_code jec;
      r.json = bj::parse(text, jec);
      if (jec) r.json = bj::string(text);
    }
    if (r.status >= 400) throw Failure{"HTTP " + std::to_string(r.status) + ": " + error_of(r)};
    return r;
  }

 private:
  static std::string error_of(const Reply& r) {
    if (const auto* o = r.json.if_object()) {
      if (const auto* e = o->if_contains("error"); e && e->is_object()) {
        const auto& eo = e->as_object();
        std::string code = eo.contains("code") ? bj::value_to<std::string>(eo.at("code")) : "";
        std::string msg = eo.contains("message") ? bj::value_to<std::string>(eo.at("message")) : "";
        return code + ": " + msg;
      }
    }
    return r.json.is_string() ? std::string(r.json.as_string()) : bj::serialize(r.json);
  }

  std::string host_;
  std::string port_;
};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string text_of(const bj::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return "";
  return v->is_string() ? std::string(v->as_string()) : bj::serialize(*v);
}

// An id (`what`: USER_ID, MESSAGE_ID): digits only, so it cannot change the request's path.
std::string user_id(const std::string& arg, const char* what = "USER_ID") {
  if (arg.empty() || arg.size() > 20 || arg.find_first_not_of("0123456789") != std::string::npos) {
    throw Failure{std::string(what) + " must be a number: " + arg};
  }
  return arg;
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// Every item of a paged admin list (`{"<key>": [...], "next_after": id|null}`), page by page;
// returns how many there were.
template <class F>
std::size_t each_item(Client& client, const std::string& token, const std::string& target,
                      const char* key, F&& print) {
  std::string after;
  std::size_t n = 0;
  for (;;) {
    auto r =
        client.call(http::verb::get, after.empty() ? target : target + "&after=" + after, token);
    const auto& o = r.json.as_object();
    for (const auto& v : o.at(key).as_array()) {
      print(v.as_object());
      ++n;
    }
    after = text_of(o, "next_after");
    if (after.empty()) return n;
  }
}

std::string login(Client& client, const std::string& phone, std::string password) {
  if (password.empty()) {
    std::cerr << "password: " << std::flush;
    std::getline(std::cin, password);
  }
  auto r = client.call(http::verb::post, "/api/v1/auth/login", "",
                       bj::object{{"phone", phone}, {"password", password}});
  return text_of(r.json.as_object(), "access_token");
}

int run(const std::vector<std::string>& args) {
  std::string url = env("IMD_URL").empty() ? "http://127.0.0.1:8080" : env("IMD_URL");
  std::string token = env("IMD_TOKEN");
  std::vector<std::string> rest;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if ((args[i] == "--url" || args[i] == "--token") && i + 1 < args.size()) {
      std::string& target = args[i] == "--url" ? url : token;
      target = args[++i];
    } else if (args[i] == "--help" || args[i] == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      rest.push_back(args[i]);
    }
  }
  if (rest.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  Client client(url);
  const std::string& cmd = rest[0];
  auto need = [&](std::size_t n) {
    if (rest.size() < n + 1) throw Failure{"usage: " + std::string(kUsage)};
  };
  if (cmd == "login") {
    need(1);
    std::cout << login(client, rest[1], env("IMD_PASSWORD")) << "\n";
    return 0;
  }
  if (token.empty() && !env("IMD_PHONE").empty()) {
    token = login(client, env("IMD_PHONE"), env("IMD_PASSWORD"));
  }
  if (token.empty()) throw Failure{"no token: --token, IMD_TOKEN, or IMD_PHONE + IMD_PASSWORD"};

  if (cmd == "users") {
    const std::string q = rest.size() > 1 ? rest[1] : "";
    const auto n = each_item(
        client, token, "/api/v1/admin/users?limit=100&q=" + url_encode(q), "users",
        [](const bj::object& u) {
          std::cout << text_of(u, "id") << "\t" << text_of(u, "name") << "\t" << text_of(u, "phone")
                    << "\t" << (u.at("deactivated").as_bool() ? "deactivated" : "active") << "\n";
        });
    std::cerr << n << " users\n";
    return 0;
  }
  if (cmd == "deactivate" || cmd == "reactivate") {
    need(1);
    client.call(http::verb::post, "/api/v1/admin/users/" + user_id(rest[1]) + "/" + cmd, token,
                bj::object{});
    std::cout << "user " << rest[1] << " " << cmd << "d\n";
    return 0;
  }
  if (cmd == "spaces") {
    const auto n = each_item(
        client, token, "/api/v1/admin/spaces?limit=100", "spaces", [](const bj::object& sp) {
          const auto* listed = sp.if_contains("discoverable");
          std::cout << text_of(sp, "id") << "\t" << text_of(sp, "name") << "\t"
                    << text_of(sp, "owner_id") << "\t"
                    << (listed && listed->is_bool() && listed->as_bool() ? "listed" : "private")
                    << "\n";
        });
    std::cerr << n << " spaces\n";
    return 0;
  }
  if (cmd == "remove-member") {
    need(2);
    client.call(http::verb::delete_,
                "/api/v1/admin/spaces/" + user_id(rest[1]) + "/members/" + user_id(rest[2]), token);
    std::cout << "user " << rest[2] << " removed from space " << rest[1] << "\n";
    return 0;
  }
  if (cmd == "delete-message") {
    need(1);
    client.call(http::verb::delete_, "/api/v1/admin/messages/" + user_id(rest[1], "MESSAGE_ID"),
                token);
    std::cout << "message " << rest[1] << " deleted\n";
    return 0;
  }
  if (cmd == "reset-password") {
    need(1);
    bj::object body;
    if (rest.size() > 2) body["new_password"] = rest[2];
    auto r = client.call(http::verb::post, "/api/v1/admin/users/" + user_id(rest[1]) + "/password",
                         token, body);
    std::cout << text_of(r.json.as_object(), "password") << "\n";
    return 0;
  }
  std::cerr << "unknown command '" << cmd << "'\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const Failure& f) {
    std::cerr << "imdctl: " << f.message << "\n";
    return f.message.rfind("usage:", 0) == 0 ? 2 : 1;
  } catch (const std::exception& e) {
    std::cerr << "imdctl: " << e.what() << "\n";
    return 1;
  }
}
