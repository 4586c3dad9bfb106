// What the send path needs of uploaded files (implemented by FileService, file_service.hpp):
// a send that names a file is checked and recorded here before it is queued, and a deleted
// message lets its file go. MessagingService works without one (file sends are then refused).
//
// A file message's stored body is the file's metadata, one line of JSON written by the server,
// then '\n', then the sender's caption (possibly empty): attachment_body() writes it and
// wire::write_message splits it into "file" and "body" again. Storage, queues and inboxes carry
// it as an ordinary body.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "domain/model.hpp"

namespace imd {

class Attachments {
 public:
  virtual ~Attachments() = default;
  // Checks that `sender` may send file `file_id` (it exists, they uploaded it, its bytes are
  // there) as message `message_id` into `conv`, records the share (from then on the
  // conversation's members may download it) and returns the metadata line of the body.
  // not_found for a file that is not the sender's or is gone. Blocking.
  virtual Result<std::string> attach(Id sender, std::string_view file_id, const ConvKey& conv,
                                     Id message_id) = 0;
  // Message `m` (a file message) was deleted: its share ends, and the file's bytes are removed
  // once no stored message shares it. Best effort (errors are logged; the orphan sweep and a
  // later delete retry). Blocking.
  virtual void released(const Message& m) = 0;
};

// The metadata line is at most this long (a 200-byte name escaped, the id twice, the type,
// numbers); a caption gets what the message limit leaves.
inline constexpr std::size_t kMaxAttachmentMetaBytes = 2048;

// "<meta>\n<caption>".
inline std::string attachment_body(std::string_view meta, std::string_view caption) {
  std::string out;
  out.reserve(meta.size() + 1 + caption.size());
  out.append(meta).push_back('\n');
  out.append(caption);
  return out;
}

inline bool is_file_type(std::string_view type) {
  return type == "file" || type == "image";
}

}  // namespace imd
