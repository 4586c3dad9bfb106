// VipsImageCodec: the ImageCodec port (domain/ports/image_codec.hpp) over libvips' C API.
//
// Each type has its own loader (jpegload, pngload, gifload, webpload; never the generic
// sniffing one), libvips' untrusted loaders are blocked process-wide, its operation cache is
// off. A load reads the header first; an image whose width x height (all frames of an
// animation counted) is over `max_pixels` is refused before any pixel is decoded, and a
// decode warning is an error (fail_on = error): a truncated or corrupt image is refused, not
// half-served. At most `workers` images are processed at once; a caller waits up to `wait`
// for a turn and then gets unavailable. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <semaphore>

#include "domain/ports/image_codec.hpp"

namespace imd {

struct ImageCodecLimits {
  std::uint64_t max_pixels = 50'000'000;
  int workers = 2;
  // Short: a waiting upload holds a thread of the blocking pool every REST request needs.
  std::chrono::milliseconds wait{2'000};
};

class VipsImageCodec final : public ImageCodec {
 public:
  // Initializes libvips once per process; throws std::runtime_error when it cannot.
  explicit VipsImageCodec(ImageCodecLimits limits);

  Result<CleanImage> clean(std::string_view bytes, std::string_view type,
                           std::uint32_t thumb_px) override;
  Result<EncodedImage> square(std::string_view bytes, std::string_view type,
                              std::uint32_t px) override;

 private:
  const ImageCodecLimits limits_;
  std::counting_semaphore<1024> turns_;
};

}  // namespace imd
