#include "support/test_images.hpp"

#include <vips/vips.h>

#include <stdexcept>
#include <utility>

namespace imd::test {

namespace {

struct Ref {
  VipsImage* p = nullptr;
  Ref() = default;
  Ref(Ref&& o) noexcept : p(std::exchange(o.p, nullptr)) {}
  Ref& operator=(Ref&&) = delete;
  ~Ref() {
    if (p != nullptr) g_object_unref(p);
  }
};

void check(int rc, const char* what) {
  if (rc != 0) throw std::runtime_error(std::string(what) + ": " + vips_error_buffer());
}

void init() {
  static const bool ok = vips_init("imd-test") == 0;
  if (!ok) throw std::runtime_error("libvips failed to initialize");
}

std::string take(void* buf, std::size_t len) {
  std::string s(static_cast<const char*>(buf), len);
  g_free(buf);
  return s;
}

Ref solid(int w, int h, double r, double g, double b) {
  Ref black, out;
  check(vips_black(&black.p, w, h, "bands", 3, nullptr), "black");
  double a[] = {1, 1, 1};
  double c[] = {r, g, b};
  check(vips_linear(black.p, &out.p, a, c, 3, "uchar", TRUE, nullptr), "linear");
  return out;
}

Ref halves(int w, int h) {
  init();
  Ref left = solid(w / 2, h, 255, 0, 0);
  Ref right = solid(w - w / 2, h, 0, 0, 255);
  Ref joined, mem;
  check(vips_join(left.p, right.p, &joined.p, VIPS_DIRECTION_HORIZONTAL, nullptr), "join");
  mem.p = vips_image_copy_memory(joined.p);
  if (mem.p == nullptr) check(-1, "copy_memory");
  return mem;
}

void u16(std::string& s, unsigned v) {
  s.push_back(char(v & 0xff));
  s.push_back(char((v >> 8) & 0xff));
}
void u32(std::string& s, unsigned v) {
  u16(s, v & 0xffff);
  u16(s, v >> 16);
}
void entry(std::string& s, unsigned tag, unsigned type, unsigned count, unsigned value) {
  u16(s, tag);
  u16(s, type);
  u32(s, count);
  u32(s, value);
}

// "Exif\0\0", then a little-endian TIFF: IFD0 {Orientation = 6, GPSInfo -> the GPS IFD}, the
// GPS IFD {GPSLatitudeRef "N", GPSMapDatum kGpsMarker}.
std::string exif_with_gps() {
  std::string s("Exif\0\0II", 8);
  u16(s, 42);
  u32(s, 8);
  u16(s, 2);
  entry(s, 0x0112, 3, 1, 6);
  entry(s, 0x8825, 4, 1, 38);
  u32(s, 0);
  u16(s, 2);
  entry(s, 0x0001, 2, 2, 'N');
  entry(s, 0x0012, 2, static_cast<unsigned>(kGpsMarker.size() + 1), 68);
  u32(s, 0);
  s.append(kGpsMarker).push_back('\0');
  return s;
}

}  // namespace

std::string jpeg_with_metadata(int w, int h) {
  Ref im = halves(w, h);
  const std::string exif = exif_with_gps();
  const std::string xmp =
      "<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF "
      "xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'><rdf:Description "
      "xmlns:exif='http://ns.adobe.com/exif/1.0/' exif:GPSLatitude='" +
      std::string(kXmpMarker) + "'/></rdf:RDF></x:xmpmeta>";
  vips_image_set_blob_copy(im.p, VIPS_META_EXIF_NAME, exif.data(), exif.size());
  vips_image_set_blob_copy(im.p, VIPS_META_XMP_NAME, xmp.data(), xmp.size());
  vips_image_set_int(im.p, VIPS_META_ORIENTATION, 6);
  void* buf = nullptr;
  std::size_t len = 0;
  check(vips_jpegsave_buffer(im.p, &buf, &len, "Q", 95, nullptr), "jpegsave");
  return take(buf, len);
}

std::string png_halves(int w, int h, std::string_view comment) {
  Ref im = halves(w, h);
  if (!comment.empty()) {
    const std::string xmp =
        "<x:xmpmeta xmlns:x='adobe:ns:meta/'>" + std::string(comment) + "</x:xmpmeta>";
    vips_image_set_blob_copy(im.p, VIPS_META_XMP_NAME, xmp.data(), xmp.size());
    vips_image_set_string(im.p, "png-comment-0-Comment", std::string(comment).c_str());
  }
  void* buf = nullptr;
  std::size_t len = 0;
  check(vips_pngsave_buffer(im.p, &buf, &len, nullptr), "pngsave");
  return take(buf, len);
}

std::string png_header_claiming(std::uint32_t w, std::uint32_t h) {
  auto be32 = [](std::string& s, std::uint32_t v) {
    for (int i = 3; i >= 0; --i) s.push_back(char((v >> (8 * i)) & 0xff));
  };
  auto crc = [](std::string_view d) {
    std::uint32_t c = 0xffffffffu;
    for (unsigned char b : d) {
      c ^= b;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
  };
  std::string s("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr = "IHDR";
  be32(ihdr, w);
  be32(ihdr, h);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);
  be32(s, 13);
  s += ihdr;
  be32(s, crc(ihdr));
  // A few bytes of IDAT (a zlib stream header): decoders read the header up to here.
  const std::string idat = std::string("IDAT") + std::string("\x78\x9c\x63\x00\x00", 5);
  be32(s, 5);
  s += idat;
  be32(s, crc(idat));
  be32(s, 0);
  s += "IEND";
  be32(s, crc("IEND"));
  return s;
}

ImageInfo image_info(const std::string& bytes) {
  init();
  ImageInfo out;
  Ref im;
  // All frames where the format has them (gifload, webpload take n; the others refuse it).
  im.p = vips_image_new_from_buffer(bytes.data(), bytes.size(), "n=-1", nullptr);
  if (im.p == nullptr) {
    vips_error_clear();
    im.p = vips_image_new_from_buffer(bytes.data(), bytes.size(), "", nullptr);
  }
  if (im.p == nullptr) {
    vips_error_clear();
    return out;
  }
  out.width = vips_image_get_width(im.p);
  out.pages = vips_image_get_n_pages(im.p);
  out.height = out.pages > 1 ? vips_image_get_page_height(im.p) : vips_image_get_height(im.p);
  out.orientation = vips_image_get_orientation(im.p);
  gchar** fields = vips_image_get_fields(im.p);
  for (gchar** f = fields; *f != nullptr; ++f) out.fields.emplace_back(*f);
  g_strfreev(fields);
  const char* loader = nullptr;
  if (vips_image_get_string(im.p, VIPS_META_LOADER, &loader) == 0 && loader != nullptr) {
    out.loader = loader;
  }
  return out;
}

bool ImageInfo::has(std::string_view field_prefix) const {
  for (const std::string& f : fields) {
    if (f.starts_with(field_prefix)) return true;
  }
  return false;
}

std::vector<double> pixel_at(const std::string& bytes, int x, int y) {
  init();
  Ref im;
  im.p = vips_image_new_from_buffer(bytes.data(), bytes.size(), "", nullptr);
  if (im.p == nullptr) {
    vips_error_clear();
    return {};
  }
  double* v = nullptr;
  int n = 0;
  if (vips_getpoint(im.p, &v, &n, x, y, nullptr) != 0) {
    vips_error_clear();
    return {};
  }
  std::vector<double> out(v, v + n);
  g_free(v);
  return out;
}

bool reddish(const std::vector<double>& p) {
  return p.size() >= 3 && p[0] > 200 && p[2] < 60;
}

bool bluish(const std::vector<double>& p) {
  return p.size() >= 3 && p[2] > 200 && p[0] < 60;
}

}  // namespace imd::test
