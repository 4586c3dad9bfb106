#include "image/vips_image_codec.hpp"

#include <vips/vips.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>

#include "common/log.hpp"

namespace imd {

namespace {

// Owns a VipsImage reference.
struct ImageRef {
  VipsImage* p = nullptr;
  ImageRef() = default;
  ImageRef(const ImageRef&) = delete;
  ImageRef& operator=(const ImageRef&) = delete;
  ~ImageRef() {
    if (p != nullptr) g_object_unref(p);
  }
  VipsImage** out() { return &p; }
};

// The reason libvips gave (its error buffer is per process: read and cleared at once, so
// concurrent calls may mix their texts, which only goes to the log).
void log_vips_error(std::string_view what) {
  LOG_INFO("image: " << what << ": " << vips_error_buffer());
  vips_error_clear();
}

Error undecodable() {
  return make_error(Errc::invalid_argument, "the image cannot be decoded (corrupt or truncated)");
}

// A turn of the codec's semaphore, released on scope exit.
class Turn {
 public:
  Turn(std::counting_semaphore<1024>& s, std::chrono::milliseconds wait)
      : s_(s), held_(s.try_acquire_for(wait)) {}
  ~Turn() {
    if (held_) s_.release();
  }
  Turn(const Turn&) = delete;
  Turn& operator=(const Turn&) = delete;
  explicit operator bool() const { return held_; }

 private:
  std::counting_semaphore<1024>& s_;
  bool held_;
};

Error busy() {
  Error e = make_error(Errc::unavailable, "the server is busy processing images; retry later");
  e.retry_after_s = 2;
  return e;
}

// The header of `bytes` with the loader of `type`: nothing decoded yet (libvips loads
// lazily). All frames of an animation when `all_frames`, sequential access when asked.
Result<void> open(std::string_view bytes, std::string_view type, bool all_frames, bool sequential,
                  ImageRef& out) {
  void* buf = const_cast<char*>(bytes.data());  // libvips does not write to a load's buffer
  const VipsAccess access = sequential ? VIPS_ACCESS_SEQUENTIAL : VIPS_ACCESS_RANDOM;
  int rc = -1;
  if (type == "image/jpeg") {
    rc = vips_jpegload_buffer(buf, bytes.size(), out.out(), "access", access, "fail_on",
                              VIPS_FAIL_ON_ERROR, nullptr);
  } else if (type == "image/png") {
    rc = vips_pngload_buffer(buf, bytes.size(), out.out(), "access", access, "fail_on",
                             VIPS_FAIL_ON_ERROR, nullptr);
  } else if (type == "image/gif") {
    rc = vips_gifload_buffer(buf, bytes.size(), out.out(), "access", access, "fail_on",
                             VIPS_FAIL_ON_ERROR, "n", all_frames ? -1 : 1, nullptr);
  } else if (type == "image/webp") {
    rc = vips_webpload_buffer(buf, bytes.size(), out.out(), "access", access, "fail_on",
                              VIPS_FAIL_ON_ERROR, "n", all_frames ? -1 : 1, nullptr);
  } else {
    return make_error(Errc::invalid_argument, "not an image type this server processes");
  }
  if (rc != 0) {
    log_vips_error("load");
    return undecodable();
  }
  return {};
}

Result<void> check_pixels(VipsImage* im, std::uint64_t max_pixels) {
  const std::uint64_t pixels =
      std::uint64_t(vips_image_get_width(im)) * std::uint64_t(vips_image_get_height(im));
  if (pixels > max_pixels) {
    return make_error(Errc::payload_too_large, "the image has " + std::to_string(pixels) +
                                                   " pixels, at most " +
                                                   std::to_string(max_pixels));
  }
  return {};
}

bool needs_rotation(VipsImage* im) {
  return vips_image_get_orientation(im) > 1;
}

// Loads for decoding: sequential (streaming, little memory) when the caller reads it in order
// and no orientation must be applied (which reads the pixels out of order). The pixel limit is
// checked on the header.
Result<void> load_checked(std::string_view bytes, std::string_view type, bool all_frames,
                          bool may_stream, std::uint64_t max_pixels, ImageRef& out) {
  ImageRef probe;
  IMD_TRY(open(bytes, type, all_frames, true, probe));
  IMD_TRY(check_pixels(probe.p, max_pixels));
  // A rotated animation is not a thing browsers agree on: its frames are kept as they are.
  const bool rotate = needs_rotation(probe.p) && vips_image_get_n_pages(probe.p) == 1;
  if (may_stream && !rotate) {
    out.p = probe.p;
    probe.p = nullptr;
    return {};
  }
  ImageRef random;
  IMD_TRY(open(bytes, type, all_frames, false, random));
  if (!rotate) {
    out.p = random.p;
    random.p = nullptr;
    return {};
  }
  if (vips_autorot(random.p, out.out(), nullptr) != 0) {
    log_vips_error("autorot");
    return undecodable();
  }
  return {};
}

// A copy of `in` that carries no metadata but what an animation needs: EXIF (GPS, camera,
// orientation), XMP, IPTC, ICC profiles, comments and anything a loader attached are dropped.
// Savers are also told to strip, but not every saver of every libvips version honours it.
Result<void> without_metadata(VipsImage* in, ImageRef& out) {
  static constexpr std::string_view kKeep[] = {"n-pages", "page-height", "delay",
                                               "loop",    "gif-delay",   "gif-loop"};
  if (vips_copy(in, out.out(), nullptr) != 0) {
    log_vips_error("copy");
    return undecodable();
  }
  gchar** fields = vips_image_get_fields(out.p);
  for (gchar** f = fields; *f != nullptr; ++f) {
    const std::string_view name(*f);
    if (std::find(std::begin(kKeep), std::end(kKeep), name) != std::end(kKeep)) continue;
    (void)vips_image_remove(out.p, *f);  // a built-in header field is not removable: a no-op
  }
  g_strfreev(fields);
  return {};
}

// Takes a buffer libvips allocated.
std::string take(void* buf, std::size_t len) {
  std::string s(static_cast<const char*>(buf), len);
  g_free(buf);
  return s;
}

// Encodes `in` as `type` without any metadata; decoding happens here (a corrupt body
// surfaces as an error of the save).
Result<std::string> save(VipsImage* in, std::string_view type) {
  ImageRef bare;
  IMD_TRY(without_metadata(in, bare));
  VipsImage* im = bare.p;
  void* buf = nullptr;
  std::size_t len = 0;
  int rc = -1;
  if (type == "image/jpeg") {
    rc = vips_jpegsave_buffer(im, &buf, &len, "strip", TRUE, "Q", 90, nullptr);
  } else if (type == "image/png") {
    rc = vips_pngsave_buffer(im, &buf, &len, "strip", TRUE, nullptr);
  } else if (type == "image/gif") {
    rc = vips_gifsave_buffer(im, &buf, &len, "strip", TRUE, nullptr);
  } else if (type == "image/webp") {
    rc = vips_webpsave_buffer(im, &buf, &len, "strip", TRUE, "Q", 85, nullptr);
  }
  if (rc != 0) {
    log_vips_error("save");
    return undecodable();
  }
  return take(buf, len);
}

Result<EncodedImage> webp_of(VipsImage* im) {
  auto bytes = save(im, "image/webp");
  if (!bytes) return bytes.error();
  return EncodedImage{.bytes = std::move(*bytes),
                      .type = "image/webp",
                      .width = static_cast<std::uint32_t>(vips_image_get_width(im)),
                      .height = static_cast<std::uint32_t>(vips_image_get_height(im))};
}

}  // namespace

VipsImageCodec::VipsImageCodec(ImageCodecLimits limits)
    : limits_(limits), turns_(std::max(1, std::min(limits.workers, 1024))) {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    ok = vips_init("imd") == 0;
    if (!ok) return;
    vips_cache_set_max(0);  // every image is new: caching operations only holds memory
    vips_concurrency_set(1);
    vips_block_untrusted_set(TRUE);
  });
  if (!ok) throw std::runtime_error("libvips failed to initialize");
}

Result<CleanImage> VipsImageCodec::clean(std::string_view bytes, std::string_view type,
                                         std::uint32_t thumb_px) {
  Turn turn(turns_, limits_.wait);
  if (!turn) return busy();
  ImageRef im;
  IMD_TRY(load_checked(bytes, type, true, true, limits_.max_pixels, im));
  CleanImage out;
  auto clean = save(im.p, type);
  if (!clean) return clean.error();
  out.clean.bytes = std::move(*clean);
  out.clean.type = std::string(type);
  out.clean.width = static_cast<std::uint32_t>(vips_image_get_width(im.p));
  const int pages = vips_image_get_n_pages(im.p);
  out.clean.height = static_cast<std::uint32_t>(pages > 1 ? vips_image_get_page_height(im.p)
                                                          : vips_image_get_height(im.p));
  // The thumbnail from the clean copy: oriented already, known to decode; the loader shrinks
  // a JPEG while decoding it. Its first frame only.
  ImageRef thumb;
  if (vips_thumbnail_buffer(out.clean.bytes.data(), out.clean.bytes.size(), thumb.out(),
                            static_cast<int>(thumb_px), "height", static_cast<int>(thumb_px),
                            "size", VIPS_SIZE_DOWN, nullptr) != 0) {
    log_vips_error("thumbnail");
    return undecodable();
  }
  auto t = webp_of(thumb.p);
  if (!t) return t.error();
  out.thumb = std::move(*t);
  return out;
}

Result<EncodedImage> VipsImageCodec::square(std::string_view bytes, std::string_view type,
                                            std::uint32_t px) {
  Turn turn(turns_, limits_.wait);
  if (!turn) return busy();
  ImageRef im;
  IMD_TRY(load_checked(bytes, type, false, false, limits_.max_pixels, im));
  ImageRef sq;
  if (vips_thumbnail_image(im.p, sq.out(), static_cast<int>(px), "height", static_cast<int>(px),
                           "size", VIPS_SIZE_BOTH, "crop", VIPS_INTERESTING_CENTRE, nullptr) != 0) {
    log_vips_error("square");
    return undecodable();
  }
  return webp_of(sq.p);
}

}  // namespace imd
