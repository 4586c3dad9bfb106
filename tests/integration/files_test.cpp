// Files and images through the real binary: upload over REST (streamed, sniffed, sanitized,
// limited), download with access control, ranges and validators, file messages over real
// WebSockets into DMs and channels, removal with the message, the orphan sweep.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>
#include <thread>

#include <unistd.h>

#include "support/client.hpp"
#include "support/server_process.hpp"
#include "support/test_images.hpp"

namespace imd::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A real 3x2 RGB PNG (valid CRCs: browsers render it too).
const std::string kPng(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x03\x00\x00"
    "\x00\x02\x08\x02\x00\x00\x00\x12\x16\xf1\x4d\x00\x00\x00\x10\x49\x44\x41\x54\x78\x9c\x63"
    "\xf8\xcf\xc0\x00\x41\x0c\x70\x16\x00\x41\xd2\x05\xfb\x87\xf0\xb9\x48\x00\x00\x00\x00\x49"
    "\x45\x4e\x44\xae\x42\x60\x82",
    73);

// Whether the server under test keeps the bytes on its local disk (files.blob = disk, the
// default): then the tests also look at the files themselves.
bool blobs_on_disk() {
  const char* flags = std::getenv("IMD_TEST_SERVER_FLAGS");
  return flags == nullptr ||
         std::string_view(flags).find("--files-blob s3") == std::string_view::npos;
}

bool is_op(const bj::object& f, const char* op) {
  return str(f, "op") == op;
}

std::string url_encode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

class Files : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }
  void start(std::vector<std::string> flags) {
    flags.insert(flags.end(), {"--limits-http-rate-per-s", "100000", "--limits-http-burst",
                               "100000", "--limits-auth-rate-per-min", "1000000"});
    server_ = std::make_unique<ServerProcess>(std::move(flags));
    server_->start();
  }
  Http http() { return Http(server_->host(), server_->port()); }
  Account account(const std::string& name) {
    Http h = http();
    return make_account(h, name);
  }
  HttpResult upload(const Account& a, const std::string& name, const std::string& bytes,
                    const std::string& content_type = "application/octet-stream") {
    return http().request("POST", "/api/v1/files?name=" + url_encode(name), bytes, a.access,
                          content_type);
  }
  std::string upload_ok(const Account& a, const std::string& name, const std::string& bytes) {
    auto r = upload(a, name, bytes);
    EXPECT_EQ(r.status, 201) << r.body;
    return r.status == 201 ? r.str("id") : std::string();
  }
  HttpResult download(const Account& a, const std::string& id,
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
    return http().request("GET", "/api/v1/files/" + id, std::nullopt, a.access, "application/json",
                          headers);
  }
  std::unique_ptr<Ws> connect_synced(const Account& a) {
    auto ws = std::make_unique<Ws>(server_->host(), server_->port(), a.access);
    auto frames = ws->recv_until([](const bj::object& f) { return is_op(f, "synced"); });
    EXPECT_TRUE(!frames.empty() && is_op(frames.back(), "synced")) << "no synced";
    return ws;
  }
  // Sends a file message and returns the `sent` frame (or the error frame).
  bj::object send_file(Ws& ws, const std::string& cid, const char* target_key,
                       const std::string& target, const std::string& file,
                       const std::string& caption = "") {
    bj::object f{{"op", "send"}, {"cid", cid}, {"type", "file"}, {"file", file}};
    f[target_key] = target;
    if (!caption.empty()) f["body"] = caption;
    ws.send(f);
    auto frames = ws.recv_until([&](const bj::object& fr) {
      return (is_op(fr, "sent") || is_op(fr, "error")) && str(fr, "cid") == cid;
    });
    EXPECT_FALSE(frames.empty());
    return frames.empty() ? bj::object{} : frames.back();
  }
  fs::path blob_path(const std::string& id) {
    return fs::path(server_->data_dir()) / "files" / id.substr(0, 2) / id;
  }

  std::unique_ptr<ServerProcess> server_;
};

TEST_F(Files, APngRoundTripsWithSniffedTypeDimensionsAndSafeHeaders) {
  auto a = account("alice");
  auto r = upload(a, "dot.png", kPng, "text/html");
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id = r.str("id");
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(r.str("url"), "/api/v1/files/" + id);
  EXPECT_EQ(r.str("type"), "image/png");                   // the client's text/html is ignored
  const std::int64_t size = r.json.at("size").as_int64();  // of the clean copy (re-encoded)
  EXPECT_GT(size, 0);
  EXPECT_EQ(r.json.at("width").as_int64(), 3);
  EXPECT_EQ(r.json.at("height").as_int64(), 2);
  EXPECT_EQ(r.header("Location"), "/api/v1/files/" + id);
  // Durable before the answer: the bytes are in place under the data dir, private.
  if (blobs_on_disk()) {
    ASSERT_TRUE(fs::exists(blob_path(id)));
    EXPECT_EQ(fs::status(blob_path(id)).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
  }

  auto d = download(a, id);
  ASSERT_EQ(d.status, 200) << d.body;
  EXPECT_EQ(static_cast<std::int64_t>(d.body.size()), size);
  const ImageInfo served = image_info(d.body);
  EXPECT_EQ(served.loader, "pngload_buffer");
  EXPECT_EQ(served.width, 3);
  EXPECT_EQ(served.height, 2);
  EXPECT_EQ(d.header("Content-Type"), "image/png");
  EXPECT_EQ(d.header("Content-Disposition").rfind("inline;", 0), 0u)
      << d.header("Content-Disposition");
  EXPECT_EQ(d.header("X-Content-Type-Options"), "nosniff");
  EXPECT_NE(d.header("Content-Security-Policy").find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(d.header("Cache-Control").rfind("private", 0), 0u);
  EXPECT_EQ(d.header("ETag").size(), 66u);  // a quoted sha256
  EXPECT_EQ(d.header("Accept-Ranges"), "bytes");

  // HEAD: the headers, no body.
  auto h = http().request("HEAD", "/api/v1/files/" + id, std::nullopt, a.access);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.header("Content-Length"), std::to_string(size));
  EXPECT_TRUE(h.body.empty());
}

TEST_F(Files, HtmlIsTextServedAsAnAttachmentWhateverTheClientClaims) {
  auto a = account("alice");
  auto r = upload(a, "page.html", "<html><script>alert(1)</script></html>", "image/png");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.str("type"), "text/plain");
  auto d = download(a, r.str("id"));
  ASSERT_EQ(d.status, 200);
  EXPECT_EQ(d.header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(d.header("Content-Disposition").rfind("attachment;", 0), 0u);
  EXPECT_EQ(d.header("X-Content-Type-Options"), "nosniff");

  auto bin = upload(a, "blob.bin", std::string("\x00\x01\x02\xff", 4));
  ASSERT_EQ(bin.status, 201);
  EXPECT_EQ(bin.str("type"), "application/octet-stream");
  auto pdf = upload(a, "doc", "%PDF-1.7\n...");
  EXPECT_EQ(pdf.str("type"), "application/pdf");
  auto zip = upload(a, "a.zip", std::string("PK\x03\x04rest", 8));
  EXPECT_EQ(zip.str("type"), "application/zip");
}

TEST_F(Files, ADecompressionBombIsRefusedByItsHeader) {
  auto a = account("alice");
  // A 57-byte PNG whose header declares 100000 x 100000 pixels (30 GB decoded).
  auto r = upload(a, "bomb.png", png_header_claiming(100000, 100000));
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(r.error_code(), "payload_too_large");
  // Under the limit, a header without the pixels it declares is a corrupt image: refused.
  std::string fake = kPng;
  fake.replace(16, 8, std::string("\x00\x00\x13\x88\x00\x00\x13\x88", 8));  // 5000 x 5000
  auto bad = upload(a, "fake.png", fake);
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(bad.error_code(), "invalid_argument");
}

TEST_F(Files, ThePixelLimitIsConfigured) {
  server_.reset();
  start({"--files-max-image-pixels", "1000"});
  auto a = account("alice");
  auto big = upload(a, "big.png", png_halves(40, 40));  // 1600 pixels
  EXPECT_EQ(big.status, 413) << big.body;
  EXPECT_NE(big.body.find("at most 1000"), std::string::npos) << big.body;
  auto small = upload(a, "small.png", png_halves(20, 20));
  EXPECT_EQ(small.status, 201) << small.body;
}

// docs/security.md "Files": what a photo says about where it was taken never leaves the server.
TEST_F(Files, AJpegIsServedUprightWithoutItsExifGpsOrXmp) {
  auto a = account("alice");
  const std::string jpeg = jpeg_with_metadata(80, 40);
  ASSERT_NE(jpeg.find(kGpsMarker), std::string::npos);
  ASSERT_NE(jpeg.find(kXmpMarker), std::string::npos);
  ASSERT_EQ(image_info(jpeg).orientation, 6);

  auto r = upload(a, "holiday.jpg", jpeg);
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id = r.str("id");
  EXPECT_EQ(r.str("type"), "image/jpeg");
  EXPECT_EQ(r.json.at("width").as_int64(), 40);  // as shown: the orientation is applied
  EXPECT_EQ(r.json.at("height").as_int64(), 80);
  EXPECT_EQ(r.str("thumb_url"), "/api/v1/files/" + id + "?thumb=1");

  auto d = download(a, id);
  ASSERT_EQ(d.status, 200);
  EXPECT_EQ(d.body.find(kGpsMarker), std::string::npos);
  EXPECT_EQ(d.body.find(kXmpMarker), std::string::npos);
  EXPECT_EQ(d.body.find(std::string("Exif\0\0", 6)), std::string::npos);
  const ImageInfo served = image_info(d.body);
  EXPECT_EQ(served.loader, "jpegload_buffer");
  EXPECT_EQ(served.width, 40);
  EXPECT_EQ(served.height, 80);
  EXPECT_LE(served.orientation, 1);
  EXPECT_TRUE(reddish(pixel_at(d.body, 20, 10)));  // the left half is now on top
  EXPECT_TRUE(bluish(pixel_at(d.body, 20, 70)));

  auto t = http().request("GET", "/api/v1/files/" + id + "?thumb=1", std::nullopt, a.access);
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_EQ(t.header("Content-Type"), "image/webp");
  EXPECT_EQ(t.header("Content-Disposition").rfind("inline;", 0), 0u);
  EXPECT_EQ(t.header("X-Content-Type-Options"), "nosniff");
  EXPECT_NE(t.header("ETag"), d.header("ETag"));
  const ImageInfo thumb = image_info(t.body);
  EXPECT_EQ(thumb.loader, "webpload_buffer");
  EXPECT_EQ(thumb.width, 40);  // smaller than 360: not enlarged
  EXPECT_EQ(thumb.height, 80);
  EXPECT_TRUE(reddish(pixel_at(t.body, 20, 10)));
  EXPECT_EQ(t.body.find(kGpsMarker), std::string::npos);
  auto again = http().request("GET", "/api/v1/files/" + id + "?thumb=1", std::nullopt, a.access,
                              "application/json", {{"If-None-Match", t.header("ETag")}});
  EXPECT_EQ(again.status, 304);

  // Nothing of the upload as sent is kept where the bytes live.
  if (blobs_on_disk()) {
    for (const auto& e :
         fs::recursive_directory_iterator(fs::path(server_->data_dir()) / "files")) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), {});
      EXPECT_EQ(bytes.find(kGpsMarker), std::string::npos) << e.path();
    }
  }
}

TEST_F(Files, ALargeImageGetsAThumbnailThatFits) {
  auto a = account("alice");
  auto r = upload(a, "wide.png", png_halves(1200, 300));
  ASSERT_EQ(r.status, 201) << r.body;
  auto t =
      http().request("GET", "/api/v1/files/" + r.str("id") + "?thumb=1", std::nullopt, a.access);
  ASSERT_EQ(t.status, 200);
  const ImageInfo thumb = image_info(t.body);
  EXPECT_EQ(thumb.width, 360);
  EXPECT_EQ(thumb.height, 90);
  EXPECT_LT(t.body.size(), download(a, r.str("id")).body.size());
}

TEST_F(Files, ThumbnailsAreServedToWhoMayReadTheFile) {
  auto a = account("alice");
  auto b = account("bob");
  auto c = account("carol");
  const std::string id = upload_ok(a, "p.png", png_halves(30, 20));
  auto thumb = [&](const Account& who, const std::string& file) {
    return http().request("GET", "/api/v1/files/" + file + "?thumb=1", std::nullopt, who.access);
  };
  EXPECT_EQ(thumb(a, id).status, 200);
  EXPECT_EQ(thumb(b, id).status, 404);  // not shared yet
  auto wa = connect_synced(a);
  auto sent = send_file(*wa, "t1", "to", b.id, id);
  ASSERT_TRUE(is_op(sent, "sent")) << bj::serialize(sent);
  EXPECT_EQ(thumb(b, id).status, 200);
  EXPECT_EQ(thumb(c, id).status, 404);
  EXPECT_EQ(http().request("GET", "/api/v1/files/" + id + "?thumb=1", std::nullopt, "").status,
            401);
  // A file that is not an image has no thumbnail.
  const std::string text = upload_ok(a, "notes.txt", "just words");
  EXPECT_EQ(thumb(a, text).status, 404);
  // Deleting the message removes the thumbnail with the file.
  wa->send(bj::object{{"op", "delete"}, {"id", str(sent, "id")}});
  auto frames = wa->recv_until([&](const bj::object& f) { return is_op(f, "deleted"); });
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(thumb(a, id).status, 404);
  if (blobs_on_disk()) {
    EXPECT_FALSE(fs::exists(blob_path(id + "7468756d62")));
  }
}

TEST_F(Files, ACorruptImageIsRefusedAndNothingIsKept) {
  auto a = account("alice");
  const std::string jpeg = jpeg_with_metadata(64, 64);
  auto r = upload(a, "broken.jpg", jpeg.substr(0, jpeg.size() / 2));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.error_code(), "invalid_argument");
  EXPECT_NE(r.body.find("cannot be decoded"), std::string::npos) << r.body;
  if (blobs_on_disk()) {
    const fs::path dir = fs::path(server_->data_dir()) / "files";
    std::size_t blobs = 0;
    if (fs::exists(dir)) {
      for (const auto& e : fs::recursive_directory_iterator(dir)) blobs += e.is_regular_file();
    }
    EXPECT_EQ(blobs, 0u);
  }
  // The server is still there and serves the next image.
  EXPECT_EQ(upload(a, "fine.jpg", jpeg).status, 201);
}

TEST_F(Files, FileNamesAreSanitized) {
  auto a = account("alice");
  // Path components, a right-to-left override, a control character, quotes.
  auto r = upload(a, "../../etc/evil\xE2\x80\xAEgnp.exe\x01\"x\".txt", "hello");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.str("name"), "evilgnp.exex.txt");
  auto dots = upload(a, "..", "hello");
  EXPECT_EQ(dots.str("name"), "file");
  auto longname = upload(a, std::string(500, 'n') + ".txt", "hello");
  EXPECT_EQ(longname.str("name").size(), 200u);
  EXPECT_EQ(longname.str("name").substr(196), ".txt");
  auto d = download(a, r.str("id"));
  EXPECT_EQ(d.header("Content-Disposition"),
            "attachment; filename=\"evilgnp.exex.txt\"; filename*=UTF-8''evilgnp.exex.txt");
}

TEST_F(Files, UploadsNeedATokenAndABody) {
  auto a = account("alice");
  auto r = http().request("POST", "/api/v1/files?name=x", std::string("abc"), "");
  EXPECT_EQ(r.status, 401) << r.body;
  auto empty = upload(a, "x", "");
  EXPECT_EQ(empty.status, 400) << empty.body;
  // A bogus id, someone's id with a path in it: plain 404s.
  EXPECT_EQ(download(a, "0123456789abcdef0123456789abcdef").status, 404);
  EXPECT_EQ(download(a, "..%2F..%2Fjwt.secret").status, 404);
  EXPECT_EQ(http().get("/api/v1/files/0123456789abcdef0123456789abcdef").status, 401);
}

TEST_F(Files, RangesAndValidators) {
  auto a = account("alice");
  std::string bytes;
  for (int i = 0; i < 1000; ++i) bytes += static_cast<char>('a' + i % 26);
  const std::string id = upload_ok(a, "letters.txt", bytes);
  auto part = download(a, id, {{"Range", "bytes=10-19"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, bytes.substr(10, 10));
  EXPECT_EQ(part.header("Content-Range"), "bytes 10-19/1000");
  auto tail = download(a, id, {{"Range", "bytes=-5"}});
  EXPECT_EQ(tail.status, 206);
  EXPECT_EQ(tail.body, bytes.substr(995));
  auto open_end = download(a, id, {{"Range", "bytes=990-"}});
  EXPECT_EQ(open_end.body, bytes.substr(990));
  EXPECT_EQ(open_end.header("Content-Range"), "bytes 990-999/1000");
  auto past = download(a, id, {{"Range", "bytes=1000-"}});
  EXPECT_EQ(past.status, 416);
  EXPECT_EQ(past.header("Content-Range"), "bytes */1000");
  // Several ranges are not served as multipart: the whole file.
  auto multi = download(a, id, {{"Range", "bytes=0-1,5-6"}});
  EXPECT_EQ(multi.status, 200);
  EXPECT_EQ(multi.body, bytes);

  auto full = download(a, id);
  const std::string etag = full.header("ETag");
  auto same = download(a, id, {{"If-None-Match", etag}});
  EXPECT_EQ(same.status, 304);
  EXPECT_TRUE(same.body.empty());
  EXPECT_EQ(same.header("ETag"), etag);
  auto other = download(a, id, {{"If-None-Match", "\"nope\""}});
  EXPECT_EQ(other.status, 200);
}

TEST_F(Files, ALargeFileStreamsBothWays) {
  auto a = account("alice");
  std::string bytes(5 * 1024 * 1024 + 123, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 7919) >> 3);
  auto r = upload(a, "big.bin", bytes);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.json.at("size").as_int64(), static_cast<std::int64_t>(bytes.size()));
  auto d = download(a, r.str("id"));
  ASSERT_EQ(d.status, 200);
  EXPECT_TRUE(d.body == bytes);
}

TEST_F(Files, DmShareGivesThePeerAccessAndStrangersA404) {
  auto a = account("alice");
  auto b = account("bob");
  auto c = account("carol");
  const std::string id = upload_ok(a, "dot.png", kPng);
  EXPECT_EQ(download(b, id).status, 404);  // not shared yet

  auto wa = connect_synced(a);
  auto wb = connect_synced(b);
  auto sent = send_file(*wa, "f1", "to", b.id, id, "look at this");
  ASSERT_TRUE(is_op(sent, "sent")) << bj::serialize(sent);
  auto msg = wb->recv_op("msg");
  ASSERT_TRUE(msg);
  EXPECT_EQ(str(*msg, "type"), "file");
  EXPECT_EQ(str(*msg, "body"), "look at this");
  ASSERT_TRUE(msg->contains("file")) << bj::serialize(*msg);
  const auto& file = msg->at("file").as_object();
  EXPECT_EQ(str(file, "id"), id);
  EXPECT_EQ(str(file, "name"), "dot.png");
  EXPECT_EQ(str(file, "type"), "image/png");
  EXPECT_EQ(str(file, "url"), "/api/v1/files/" + id);
  EXPECT_EQ(str(file, "thumb_url"), "/api/v1/files/" + id + "?thumb=1");
  EXPECT_EQ(file.at("width").as_int64(), 3);
  EXPECT_EQ(file.at("height").as_int64(), 2);

  auto got = download(b, id);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, download(a, id).body);
  EXPECT_EQ(file.at("size").as_int64(), static_cast<std::int64_t>(got.body.size()));
  EXPECT_EQ(download(c, id).status, 404);

  // History carries the file too.
  auto hist = http().get("/api/v1/dms/" + a.id + "/messages", b.access);
  ASSERT_EQ(hist.status, 200) << hist.body;
  const auto& m = hist.json.at("messages").as_array().at(0).as_object();
  EXPECT_EQ(str(m.at("file").as_object(), "id"), id);
  EXPECT_EQ(str(m, "body"), "look at this");
}

TEST_F(Files, ChannelShareGivesMembersAccessWhileTheyAreMembers) {
  auto a = account("alice");
  auto b = account("bob");
  auto c = account("carol");
  Http h = http();
  auto sc = make_space_channel(h, a, {&b});
  const std::string id = upload_ok(a, "notes.txt", "meeting notes");
  auto wa = connect_synced(a);
  // No caption: the body may be left out.
  auto sent = send_file(*wa, "c1", "channel", sc.channel_id, id);
  ASSERT_TRUE(is_op(sent, "sent")) << bj::serialize(sent);
  EXPECT_EQ(download(b, id).status, 200);
  EXPECT_EQ(download(c, id).status, 404);
  auto left = http().post("/api/v1/channels/" + sc.channel_id + "/leave", bj::object{}, b.access);
  ASSERT_TRUE(left.status == 200 || left.status == 204) << left.body;
  EXPECT_EQ(download(b, id).status, 404);
}

TEST_F(Files, OnlyTheUploaderSendsAFile) {
  auto a = account("alice");
  auto b = account("bob");
  const std::string id = upload_ok(a, "x.txt", "secret");
  auto wb = connect_synced(b);
  auto refused = send_file(*wb, "s1", "to", a.id, id);
  EXPECT_TRUE(is_op(refused, "error")) << bj::serialize(refused);
  EXPECT_EQ(str(refused, "code"), "not_found") << bj::serialize(refused);
  EXPECT_EQ(download(b, id).status, 404);
  auto unknown = send_file(*wb, "s2", "to", a.id, "0123456789abcdef0123456789abcdef");
  EXPECT_TRUE(is_op(unknown, "error"));
  // A caption leaves room for the metadata within the message limit (16 KiB).
  auto wa = connect_synced(a);
  const std::string mine = upload_ok(a, "y.txt", "mine");
  bj::object big{{"op", "send"},   {"cid", "s4"},  {"to", b.id},
                 {"type", "file"}, {"file", mine}, {"body", std::string(16 * 1024 - 2000, 'c')}};
  wa->send(big);
  auto e4 =
      wa->recv_until([](const bj::object& f) { return is_op(f, "error") || is_op(f, "sent"); });
  ASSERT_FALSE(e4.empty());
  EXPECT_EQ(str(e4.back(), "code"), "payload_too_large") << bj::serialize(e4.back());
  // type file without `file`, and `file` with type text, are malformed.
  wb->send(
      bj::object{{"op", "send"}, {"cid", "s3"}, {"to", a.id}, {"type", "file"}, {"body", "x"}});
  auto e3 = wb->recv_op("error");
  ASSERT_TRUE(e3);
  EXPECT_EQ(str(*e3, "code"), "invalid_argument");
}

TEST_F(Files, DeletingTheMessageRemovesTheBytes) {
  auto a = account("alice");
  auto b = account("bob");
  const std::string id = upload_ok(a, "dot.png", kPng);
  auto wa = connect_synced(a);
  auto sent = send_file(*wa, "d1", "to", b.id, id);
  ASSERT_TRUE(is_op(sent, "sent"));
  const std::string msg_id = str(sent, "id");
  if (blobs_on_disk()) ASSERT_TRUE(fs::exists(blob_path(id)));
  wa->send(bj::object{{"op", "delete"}, {"id", msg_id}});
  auto frames = wa->recv_until(
      [&](const bj::object& f) { return is_op(f, "deleted") && str(f, "id") == msg_id; });
  ASSERT_FALSE(frames.empty());
  ASSERT_TRUE(is_op(frames.back(), "deleted")) << "no deleted frame";
  EXPECT_FALSE(frames.back().contains("file"));
  if (blobs_on_disk()) EXPECT_FALSE(fs::exists(blob_path(id)));
  EXPECT_EQ(download(a, id).status, 404);
  EXPECT_EQ(download(b, id).status, 404);
  // A deleted file cannot be sent again.
  auto again = send_file(*wa, "d2", "to", b.id, id);
  EXPECT_TRUE(is_op(again, "error"));
}

// A deleted channel takes the files shared only there with it; a file also shared elsewhere
// stays for those who may still see it.
TEST_F(Files, DeletingAChannelRemovesTheBytesOfItsFiles) {
  auto owner = account("owner");
  auto b = account("bob");
  Http h = http();
  auto sc = make_space_channel(h, owner, {&b});
  const std::string only_here = upload_ok(b, "dot.png", kPng);
  const std::string also_dm = upload_ok(b, "note.txt", "shared twice");
  auto wb = connect_synced(b);
  ASSERT_TRUE(is_op(send_file(*wb, "c1", "channel", sc.channel_id, only_here), "sent"));
  ASSERT_TRUE(is_op(send_file(*wb, "c2", "channel", sc.channel_id, also_dm), "sent"));
  ASSERT_TRUE(is_op(send_file(*wb, "c3", "to", owner.id, also_dm), "sent"));
  EXPECT_EQ(download(owner, only_here).status, 200);

  ASSERT_EQ(h.request("DELETE", "/api/v1/channels/" + sc.channel_id, std::nullopt, b.access).status,
            403);
  ASSERT_EQ(
      h.request("DELETE", "/api/v1/channels/" + sc.channel_id, std::nullopt, owner.access).status,
      204);
  if (blobs_on_disk()) {
    EXPECT_FALSE(fs::exists(blob_path(only_here)));
  }
  EXPECT_EQ(download(b, only_here).status, 404);
  EXPECT_EQ(download(owner, only_here).status, 404);
  EXPECT_EQ(download(owner, also_dm).status, 200);
  if (blobs_on_disk()) {
    EXPECT_TRUE(fs::exists(blob_path(also_dm)));
  }
}

// A server admin deletes anyone's message through the same path as the sender's delete: every
// member's connection gets `deleted`, the body and the file's bytes go; others may not.
TEST_F(Files, AServerAdminDeletesAnyMessageAndItsFile) {
  // A server admin named by phone: on a MySQL database that concurrent tests share, the first
  // account registered is some other test's.
  const std::string root_phone = "+1556" + std::to_string(::getpid() % 10000) + "1234567";
  server_.reset();
  start({"--auth-admins", root_phone});
  Http h = http();
  const Account root = make_account(h, "root", root_phone);
  auto a = account("alice");
  auto b = account("bob");
  const std::string id = upload_ok(a, "dot.png", kPng);
  auto wa = connect_synced(a);
  auto wb = connect_synced(b);
  auto sent = send_file(*wa, "m1", "to", b.id, id, "look");
  ASSERT_TRUE(is_op(sent, "sent")) << bj::serialize(sent);
  const std::string msg_id = str(sent, "id");
  ASSERT_TRUE(wb->recv_op("msg"));
  const std::string route = "/api/v1/admin/messages/" + msg_id;

  EXPECT_EQ(h.request("DELETE", route, std::nullopt, b.access).status, 403);
  EXPECT_EQ(h.request("DELETE", route, std::nullopt, a.access).status, 403);
  EXPECT_EQ(h.request("DELETE", "/api/v1/admin/messages/999", std::nullopt, root.access).status,
            404);
  ASSERT_EQ(h.request("DELETE", route, std::nullopt, root.access).status, 204);
  for (Ws* w : {wa.get(), wb.get()}) {
    auto frames = w->recv_until(
        [&](const bj::object& f) { return is_op(f, "deleted") && str(f, "id") == msg_id; });
    ASSERT_FALSE(frames.empty());
    ASSERT_TRUE(is_op(frames.back(), "deleted")) << "no deleted frame";
    EXPECT_FALSE(frames.back().contains("file"));
  }
  auto history = h.get("/api/v1/dms/" + a.id + "/messages", b.access);
  ASSERT_EQ(history.status, 200);
  EXPECT_EQ(history.body.find("look"), std::string::npos) << history.body;
  EXPECT_NE(history.body.find("\"deleted\":true"), std::string::npos) << history.body;
  if (blobs_on_disk()) {
    EXPECT_FALSE(fs::exists(blob_path(id)));
  }
  EXPECT_EQ(download(b, id).status, 404);
  EXPECT_EQ(h.request("DELETE", route, std::nullopt, root.access).status, 404);
}

TEST_F(Files, TheDeclaredSizeIsRefusedBeforeTheBodyIsSent) {
  server_.reset();
  start({"--files-max-bytes", "1000", "--files-quota-bytes", "2500"});
  auto a = account("alice");
  // Only the headers go out; the answer comes without the body ever being sent.
  const std::string raw =
      http().raw("POST /api/v1/files?name=x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                 a.access + "\r\nContent-Length: 1001\r\n\r\n");
  EXPECT_EQ(raw.rfind("HTTP/1.1 413", 0), 0u) << raw;
  // Within the file limit, over the quota that is left.
  EXPECT_EQ(upload(a, "a", std::string(1000, 'a')).status, 201);
  EXPECT_EQ(upload(a, "b", std::string(1000, 'b')).status, 201);
  auto over = upload(a, "c", std::string(1000, 'c'));
  EXPECT_EQ(over.status, 413) << over.body;
  EXPECT_EQ(over.error_code(), "payload_too_large");
  EXPECT_EQ(upload(a, "d", std::string(500, 'd')).status, 201);
  // Chunked, without a declared length: cut at the limit.
  const std::string chunked =
      http().raw("POST /api/v1/files?name=y HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                 account("bob").access + "\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" +
                 std::string(1000, 'x') + "\r\n10\r\n" + std::string(16, 'y') + "\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.rfind("HTTP/1.1 413", 0), 0u) << chunked;
}

TEST_F(Files, UploadsNeverSentAreSwept) {
  server_.reset();
  // The shared file must be sent within the TTL of its upload: the connection is ready first.
  start({"--files-orphan-ttl-s", "5", "--files-sweep-interval-s", "1"});
  auto a = account("alice");
  auto b = account("bob");
  auto wa = connect_synced(a);
  const std::string shared = upload_ok(a, "s.txt", "sent");
  ASSERT_TRUE(is_op(send_file(*wa, "o1", "to", b.id, shared), "sent"));
  const std::string orphan = upload_ok(a, "o.txt", "never sent");
  // A download that races the sweep may lose its bytes after its headers went out: the server
  // can only cut that response short (a truncated body, never a wrong one). Poll again.
  auto gone = [&] {
    try {
      return download(a, orphan).status == 404;
    } catch (const std::exception&) {
      return false;
    }
  };
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!gone() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(download(a, orphan).status, 404);
  if (blobs_on_disk()) EXPECT_FALSE(fs::exists(blob_path(orphan)));
  EXPECT_EQ(download(b, shared).status, 200);
}

// Avatars go through the same codec: a square WebP, upright, without metadata, served to who
// may see its owner; set by the user, or by who may rename the space or channel.
class Avatars : public Files {
 protected:
  HttpResult put_avatar(const Account& a, const std::string& path, const std::string& bytes) {
    return http().request("PUT", path, bytes, a.access, "image/jpeg");
  }
  HttpResult get(const Account& a, const std::string& url) {
    return http().request("GET", url, std::nullopt, a.access);
  }
};

TEST_F(Avatars, AUserSetsTheirsAndEveryoneSeesASquareWithoutMetadata) {
  auto a = account("alice");
  auto b = account("bob");
  auto r = put_avatar(a, "/api/v1/users/me/avatar", jpeg_with_metadata(80, 40));
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string url = r.str("avatar");
  const std::string prefix = "/api/v1/users/" + a.id + "/avatar?v=";
  ASSERT_EQ(url.rfind(prefix, 0), 0u) << url;
  EXPECT_EQ(get(a, "/api/v1/users/me").str("avatar"), url);
  EXPECT_EQ(get(b, "/api/v1/users/" + a.id).str("avatar"), url);

  auto img = get(b, url);
  ASSERT_EQ(img.status, 200) << img.body;
  EXPECT_EQ(img.header("Content-Type"), "image/webp");
  EXPECT_EQ(img.header("Cache-Control").rfind("private", 0), 0u);
  const ImageInfo info = image_info(img.body);
  EXPECT_EQ(info.loader, "webpload_buffer");
  EXPECT_EQ(info.width, 128);
  EXPECT_EQ(info.height, 128);
  EXPECT_TRUE(reddish(pixel_at(img.body, 64, 10)));  // upright: the red half on top
  EXPECT_TRUE(bluish(pixel_at(img.body, 64, 118)));
  EXPECT_EQ(img.body.find(kGpsMarker), std::string::npos);
  EXPECT_EQ(get(b, url).status, 200);
  EXPECT_EQ(http().request("GET", url, std::nullopt, "").status, 401);

  // A new one replaces it: a new version in the URL, the old bytes gone.
  auto again = put_avatar(a, "/api/v1/users/me/avatar", png_halves(50, 50));
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_NE(again.str("avatar"), url);
  EXPECT_NE(get(b, again.str("avatar")).body, img.body);
  if (blobs_on_disk()) {
    std::size_t blobs = 0;
    for (const auto& e :
         fs::recursive_directory_iterator(fs::path(server_->data_dir()) / "files")) {
      blobs += e.is_regular_file();
    }
    EXPECT_EQ(blobs, 1u);
  }
  // Nobody has one until they upload it.
  EXPECT_EQ(get(a, "/api/v1/users/" + b.id + "/avatar").status, 404);
}

TEST_F(Avatars, SpaceAndChannelAvatarsFollowTheirRoles) {
  auto a = account("alice");
  auto b = account("bob");
  auto c = account("carol");
  Http h = http();
  auto sc = make_space_channel(h, a, {&b});  // alice owns, bob is a member
  const std::string space = "/api/v1/spaces/" + sc.space_id + "/avatar";
  const std::string channel = "/api/v1/channels/" + sc.channel_id + "/avatar";
  const std::string png = png_halves(64, 32);

  // A member may not change the space's or someone else's channel's; a stranger sees neither.
  EXPECT_EQ(put_avatar(b, space, png).status, 403);
  EXPECT_EQ(put_avatar(b, channel, png).status, 403);
  EXPECT_EQ(put_avatar(c, space, png).status, 404);
  EXPECT_EQ(get(a, space).status, 404);  // none yet

  auto sp = put_avatar(a, space, png);
  ASSERT_EQ(sp.status, 200) << sp.body;
  EXPECT_EQ(str(sp.json.as_object(), "id"), sc.space_id);
  const std::string space_url = sp.str("avatar");
  EXPECT_EQ(space_url.rfind("/api/v1/spaces/" + sc.space_id + "/avatar?v=", 0), 0u);
  auto ch = put_avatar(a, channel, png);
  ASSERT_EQ(ch.status, 200) << ch.body;
  const std::string channel_url = ch.str("avatar");
  EXPECT_EQ(channel_url.rfind("/api/v1/channels/" + sc.channel_id + "/avatar?v=", 0), 0u);
  EXPECT_EQ(get(b, "/api/v1/spaces/" + sc.space_id).str("avatar"), space_url);

  for (const std::string& url : {space_url, channel_url}) {
    auto got = get(b, url);
    ASSERT_EQ(got.status, 200) << url;
    EXPECT_EQ(image_info(got.body).width, 128);
    EXPECT_EQ(get(c, url).status, 404) << url;  // carol is not in the space
  }
}

TEST_F(Avatars, BadBodiesAreRefused) {
  auto a = account("alice");
  auto text = put_avatar(a, "/api/v1/users/me/avatar", "not an image at all");
  EXPECT_EQ(text.status, 400) << text.body;
  EXPECT_EQ(text.error_code(), "invalid_argument");
  const std::string jpeg = jpeg_with_metadata(64, 64);
  auto cut = put_avatar(a, "/api/v1/users/me/avatar", jpeg.substr(0, jpeg.size() / 2));
  EXPECT_EQ(cut.status, 400) << cut.body;
  auto bomb = put_avatar(a, "/api/v1/users/me/avatar", png_header_claiming(100000, 100000));
  EXPECT_EQ(bomb.status, 413) << bomb.body;
  EXPECT_EQ(http().request("PUT", "/api/v1/users/me/avatar", jpeg, "", "image/jpeg").status, 401);
  // Over 10 MiB is refused from Content-Length: only the headers go out.
  const std::string big =
      http().raw("PUT /api/v1/users/me/avatar HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                 a.access + "\r\nContent-Length: 10485761\r\n\r\n");
  EXPECT_EQ(big.rfind("HTTP/1.1 413", 0), 0u) << big;
  // So is a member's try at a space's avatar, before the body.
  Http h = http();
  auto b = account("bob");
  auto sc = make_space_channel(h, a, {&b});
  const std::string refused = http().raw("PUT /api/v1/spaces/" + sc.space_id +
                                         "/avatar HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                         b.access + "\r\nContent-Length: 5000\r\n\r\n");
  EXPECT_EQ(refused.rfind("HTTP/1.1 403", 0), 0u) << refused;
  EXPECT_EQ(http().get("/api/v1/users/me", a.access).str("avatar"), "");
}

}  // namespace
}  // namespace imd::test
