// The HTTP side of file downloads, transport-neutral like the rest of src/api: which bytes a
// Range header asks for, the Content-Disposition of a name, ETag matching, and the whole
// response to a download (headers of docs/security.md "Files", 200/206/304/416, the body
// streamed from the blob). Pure functions but file_response (which only wraps the reader).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "domain/ports/blob_store.hpp"
#include "domain/ports/file_store.hpp"
#include "wire/http.hpp"

namespace imd::api {

struct RangeAsked {
  enum Kind { whole, partial, unsatisfiable } kind = whole;
  std::uint64_t first = 0;  // partial: bytes first..last, inclusive
  std::uint64_t last = 0;
};
// One range of RFC 9110 §14.1.2 ("bytes=a-b", "bytes=a-", "bytes=-n"). A header that is not
// one valid byte range (several ranges, another unit, garbage) is ignored: the whole file.
RangeAsked parse_range(std::string_view header, std::uint64_t size);

// attachment/inline; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded> (RFC 6266).
std::string content_disposition(bool inline_display, std::string_view name);

// Whether an If-None-Match header names `etag` (a quoted strong tag) or is "*".
bool etag_matches(std::string_view if_none_match, std::string_view etag);

// The answer to GET/HEAD of a file the caller may read.
wire::HttpResponse file_response(const FileMeta& meta, std::unique_ptr<BlobReader> reader,
                                 const wire::HttpRequest& req);

}  // namespace imd::api
