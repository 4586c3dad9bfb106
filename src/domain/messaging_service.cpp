#include "domain/messaging_service.hpp"

#include <algorithm>
#include <unordered_map>

#include "common/json.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/thread_name.hpp"
#include "domain/auth_service.hpp"

namespace imd {
namespace {

// A member's history starts after their floor (history_from_join).
void drop_up_to(std::vector<Message>& page, std::uint64_t floor) {
  if (floor == 0) return;
  std::erase_if(page, [floor](const Message& m) { return m.seq <= floor; });
}

bool is_member(const MemberList& members, Id user) {
  return std::binary_search(members->begin(), members->end(), user);
}

bool valid_cid(std::string_view cid) {
  if (cid.empty() || cid.size() > kMaxCidBytes) return false;
  return std::all_of(cid.begin(), cid.end(), [](char c) { return c > 0x20 && c < 0x7F; });
}

template <class E>
std::shared_ptr<const Event> make_event(E e) {
  return std::make_shared<const Event>(std::move(e));
}

// A SendFailedEvent to the connection that sent `nm` (none: nobody to tell).
void fail_to_origin(const NewMessage& nm, const Error& e, std::vector<Push>& pushes) {
  if (nm.origin.conn == 0) return;
  pushes.push_back({{nm.origin}, make_event(SendFailedEvent{nm.msg.cid, e, nm.change, nm.msg.id})});
}

}  // namespace

bool is_message_type(std::string_view type) {
  return type == "text" || type == "image" || type == "file";
}

std::vector<Id> mentioned_ids(std::string_view body) {
  std::vector<Id> out;
  for (std::size_t at = body.find("<@"); at != std::string_view::npos && out.size() < kMaxMentions;
       at = body.find("<@", at + 2)) {
    const std::size_t close = body.find('>', at + 2);
    if (close == std::string_view::npos) break;
    const std::string_view digits = body.substr(at + 2, close - at - 2);
    if (digits.empty() || digits.size() > 20 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    auto id = json::parse_uint(digits);
    if (!id || *id == 0) continue;
    if (std::find(out.begin(), out.end(), *id) == out.end()) out.push_back(*id);
  }
  return out;
}

Broadcast broadcast_of(std::string_view body) {
  if (body.find("<!channel>") != std::string_view::npos) return Broadcast::channel;
  if (body.find("<!here>") != std::string_view::npos) return Broadcast::here;
  return Broadcast::none;
}

std::uint64_t unread_of(const ConversationState& c) {
  return c.last_seq > c.read_seq ? c.last_seq - c.read_seq : 0;
}

MessagingService::MessagingService(Store& store, Inbox& inbox, Queue& queue, MessagingCaches caches,
                                   Routes& routes, Pusher& pusher, IdGenerator& ids, Clock& clock,
                                   MessagingLimits limits)
    : store_(store),
      inbox_(inbox),
      queue_(queue),
      members_(caches.members),
      users_(caches.users),
      cursors_(caches.cursors),
      routes_(routes),
      pusher_(pusher),
      ids_(ids),
      clock_(clock),
      limits_(limits) {
  // A message the queue gave up on (an unconfirmed publish, a dead letter): tell the sender,
  // who may retry with the same cid.
  queue_.on_failed([this](const NewMessage& nm, const Error& why) {
    std::vector<Push> pushes;
    fail_to_origin(nm, why, pushes);
    if (!pushes.empty()) pusher_.push(std::move(pushes));
  });
}

Result<void> MessagingService::check_access(Id user, const ConvKey& conv) {
  return *access(user, conv, Lookup::may_block);
}

std::optional<Result<void>> MessagingService::access(Id user, const ConvKey& conv, Lookup how) {
  if (conv.is_dm()) {
    if (!conv.has_participant(user)) return make_error(Errc::forbidden, "not your conversation");
    return Result<void>{};
  }
  MemberList members;
  if (how == Lookup::may_block) {
    auto loaded = members_.members(conv.channel_id());
    if (!loaded) return loaded.error();
    members = std::move(*loaded);
  } else if (auto cached = members_.cached(conv.channel_id())) {
    members = std::move(*cached);
  } else {
    return std::nullopt;
  }
  if (!is_member(members, user)) {
    // The same answer as for a missing channel: a non-member learns nothing of it.
    return make_error(Errc::not_found, "channel not found");
  }
  return Result<void>{};
}

std::optional<Result<void>> MessagingService::dm_allowed(Id from, Id to, Lookup how) {
  const MemberKey key{from, ConvKey::dm(from, to)};
  const Millis now = clock_.now_ms();
  {
    std::lock_guard lock(dm_mu_);
    auto it = dm_allowed_until_.find(key);
    if (it != dm_allowed_until_.end() && it->second > now) return Result<void>{};
  }
  if (how == Lookup::in_memory) return std::nullopt;
  auto policy = store_.dm_policy(from, to);
  if (!policy) return policy.error();
  // The sender learns that they may not write, never which of the reasons it is when the
  // reason is the peer's (a block reads like the policy). A refusal is not remembered: joining
  // a shared space or an unblock takes effect at the next send.
  if (policy->blocked_peer) {
    return make_error(Errc::forbidden, "you blocked this user: unblock them to write");
  }
  if (policy->blocked_by_peer ||
      (limits_.dm_shared_space_only && !policy->shares_space && !policy->has_conversation)) {
    return make_error(Errc::forbidden,
                      "this user does not accept direct messages from you (users may write to "
                      "people they share a space with)");
  }
  std::lock_guard lock(dm_mu_);
  if (dm_allowed_until_.size() >= kMaxDmVerdicts) dm_allowed_until_.clear();
  dm_allowed_until_[key] = now + kDmPolicyTtlMs;
  return Result<void>{};
}

void MessagingService::forget_dm_policy(Id a, Id b) {
  std::lock_guard lock(dm_mu_);
  dm_allowed_until_.erase(MemberKey{a, ConvKey::dm(a, b)});
  dm_allowed_until_.erase(MemberKey{b, ConvKey::dm(a, b)});
}

Result<void> MessagingService::block(Id user, Id target) {
  if (user == target) return make_error(Errc::invalid_argument, "you cannot block yourself");
  auto blocked = store_.block_user(user, target, clock_.now_ms());
  if (!blocked) {
    if (blocked.error().code == Errc::not_found) return make_error(Errc::not_found, "no such user");
    return blocked.error();
  }
  forget_dm_policy(user, target);
  return {};
}

Result<void> MessagingService::unblock(Id user, Id target) {
  auto unblocked = store_.unblock_user(user, target);
  if (!unblocked) return unblocked.error();
  forget_dm_policy(user, target);
  if (!*unblocked) return make_error(Errc::not_found, "this user is not blocked");
  return {};
}

Result<Page<Blocked>> MessagingService::blocks(Id user, Id after, std::uint32_t limit) {
  limit = std::clamp<std::uint32_t>(limit, 1, kMaxPageSize);
  auto list = store_.blocks_of(user, after, limit);
  if (!list) return list.error();
  Page<Blocked> page{std::move(*list), std::nullopt};
  if (page.items.size() == limit) page.next_after = page.items.back().user_id;
  return page;
}

bool MessagingService::known_user(Id user) {
  std::lock_guard lock(known_mu_);
  return known_users_.count(user) != 0;
}

namespace {

// imd_messages_accepted_total / imd_messages_refused_total{reason}.
void count_send(const Result<void>& r) {
  auto& m = metrics::imd();
  if (r) {
    m.messages_accepted.inc();
  } else {
    m.messages_refused.at(errc_name(r.error().code)).inc();
  }
}

}  // namespace

Result<void> MessagingService::submit(Id sender, const SendInput& in, ConnRef origin) {
  auto r = *submit_impl(sender, in, origin, Lookup::may_block);
  count_send(r);
  return r;
}

std::optional<Result<void>> MessagingService::try_submit(Id sender, const SendInput& in,
                                                         ConnRef origin) {
  auto r = submit_impl(sender, in, origin, Lookup::in_memory);
  if (r) count_send(*r);
  return r;
}

std::optional<Result<void>> MessagingService::submit_impl(Id sender, const SendInput& in,
                                                          ConnRef origin, Lookup how) {
  if (!valid_cid(in.cid)) {
    return make_error(Errc::invalid_argument, "cid must be 1..64 printable ASCII characters");
  }
  if (in.to.has_value() == in.channel.has_value()) {
    return make_error(Errc::invalid_argument, "exactly one of `to` and `channel` is required");
  }
  if (!is_message_type(in.type)) {
    return make_error(Errc::invalid_argument, "type must be text, image or file");
  }
  // A file message carries an upload (`file`) and an optional caption; its stored body is
  // written here (attachments.hpp), never taken from the client.
  const bool with_file = is_file_type(in.type);
  if (with_file != in.file.has_value()) {
    return make_error(Errc::invalid_argument,
                      with_file ? "a message of type file or image needs `file`, an upload's id"
                                : "`file` needs type file or image");
  }
  if (with_file && attachments_ == nullptr) {
    return make_error(Errc::invalid_argument, "this server takes no files");
  }
  if (!with_file || !in.body.empty()) {
    if (auto body = check_body(in.body); !body) return body;
  }

  NewMessage nm;
  nm.origin = origin;
  Message& m = nm.msg;
  if (in.to) {
    if (*in.to == sender) return make_error(Errc::invalid_argument, "cannot message yourself");
    if (!known_user(*in.to)) {
      if (how == Lookup::in_memory) return std::nullopt;
      auto peer = store_.user_by_id(*in.to);
      if (!peer) {
        if (peer.error().code == Errc::not_found) {
          return make_error(Errc::not_found, "no such user");
        }
        return peer.error();
      }
      std::lock_guard lock(known_mu_);
      if (known_users_.size() >= kMaxKnownUsers) known_users_.clear();
      known_users_.insert(*in.to);
    }
    auto allowed = dm_allowed(sender, *in.to, how);
    if (!allowed) return std::nullopt;
    if (!*allowed) return allowed->error();
    m.conv = ConvKey::dm(sender, *in.to);
    m.to = *in.to;
  } else {
    m.conv = ConvKey::channel(*in.channel);
    auto allowed = access(sender, m.conv, how);
    if (!allowed) return std::nullopt;
    if (!*allowed) return allowed->error();
    if (!limits_.channel_mentions_by_members && broadcast_of(in.body) != Broadcast::none) {
      // The sender's role is read from the Store: never inline.
      if (how == Lookup::in_memory) return std::nullopt;
      auto moderator = moderates(sender, m.conv);
      if (!moderator) return moderator.error();
      if (!*moderator) {
        return make_error(Errc::forbidden,
                          "only the space's owner and admins may mention @channel or @here");
      }
    }
  }
  if (in.reply_to) {
    // The answered message is read from the Store: a reply never goes inline.
    if (how == Lookup::in_memory) return std::nullopt;
    auto answered = store_.message_by_id(*in.reply_to);
    // One of another conversation is not found either: its existence is not this sender's.
    if (!answered ? answered.error().code == Errc::not_found : answered->conv != m.conv) {
      return make_error(Errc::not_found, "reply_to: no such message in this conversation");
    }
    if (!answered) return answered.error();
    m.reply_to = *in.reply_to;
  }
  // Checking and recording the file reads and writes the Store: never inline.
  if (with_file && how == Lookup::in_memory) return std::nullopt;
  auto id = ids_.next();
  if (!id) return id.error();
  m.id = *id;
  m.from = sender;
  m.type = in.type;
  if (with_file) {
    // The stored body (metadata and caption) stays within the message limit, which the queue,
    // the inbox and the gRPC push are sized for.
    const std::size_t caption_max = limits_.max_message_bytes > kMaxAttachmentMetaBytes
                                        ? limits_.max_message_bytes - kMaxAttachmentMetaBytes
                                        : 0;
    if (in.body.size() > caption_max) {
      return make_error(Errc::payload_too_large, "a file's caption may have at most " +
                                                     std::to_string(caption_max) + " bytes");
    }
    auto meta = attachments_->attach(sender, *in.file, m.conv, m.id);
    if (!meta) return meta.error();
    m.body = attachment_body(*meta, in.body);
  } else {
    m.body = in.body;
  }
  m.cid = in.cid;
  m.created_at = clock_.now_ms();
  return queue_.publish(std::move(nm));
}

Result<void> MessagingService::check_body(const std::string& body) const {
  if (body.empty()) return make_error(Errc::invalid_argument, "body must not be empty");
  if (body.size() > limits_.max_message_bytes) {
    return make_error(
        Errc::payload_too_large,
        "body is larger than " + std::to_string(limits_.max_message_bytes) + " bytes");
  }
  if (!json::valid_utf8(body)) return make_error(Errc::invalid_argument, "body is not UTF-8");
  return {};
}

Result<bool> MessagingService::moderates(Id user, const ConvKey& conv) {
  if (conv.is_dm()) return false;
  auto channel = store_.channel_by_id(conv.channel_id());
  if (!channel) return channel.error();
  auto role = store_.space_role(channel->space_id, user);
  if (!role) return role.error().code == Errc::not_found ? Result<bool>(false) : role.error();
  return *role == SpaceRole::admin || *role == SpaceRole::owner;
}

Result<void> MessagingService::change(Id user, const ChangeInput& in, ConnRef origin) {
  if (in.id == 0) return make_error(Errc::invalid_argument, "id is required");
  if (in.change == Change::edit) {
    IMD_TRY(check_body(in.body));
  } else if (in.change == Change::react) {
    const bool printable = std::all_of(in.body.begin(), in.body.end(), [](char c) {
      return static_cast<unsigned char>(c) > 0x20 && c != 0x7F;
    });
    if (in.body.empty() || in.body.size() > kMaxEmojiBytes || !printable ||
        !json::valid_utf8(in.body)) {
      return make_error(Errc::invalid_argument,
                        "emoji must be 1..32 bytes of UTF-8 without spaces or controls");
    }
  } else if (in.change != Change::erase) {
    return make_error(Errc::invalid_argument, "not a message change");
  }
  const Error missing = make_error(Errc::not_found, "no such message");
  auto m = store_.message_by_id(in.id);
  if (!m) return m.error().code == Errc::not_found ? missing : m.error();
  // A message of a conversation the user cannot read does not exist for them.
  if (auto allowed = check_access(user, m->conv); !allowed) {
    const Errc e = allowed.error().code;
    return e == Errc::forbidden || e == Errc::not_found ? missing : allowed.error();
  }
  if (m->deleted) return make_error(Errc::not_found, "message deleted");
  if (in.change != Change::react && m->from != user) {
    auto moderator = moderates(user, m->conv);
    if (!moderator) return moderator.error();
    if (in.change != Change::erase || !*moderator) {
      return make_error(Errc::forbidden, "not your message");
    }
  }
  return publish_change(*m, user, in, origin);
}

Result<Message> MessagingService::erase_by_server_admin(Id message_id) {
  auto m = store_.message_by_id(message_id);
  if (!m) return m.error();
  if (m->deleted) return make_error(Errc::not_found, "message deleted");
  // As its sender: the Store lets only the sender erase a message.
  const ChangeInput erase{.id = message_id, .change = Change::erase, .body = {}, .on = true};
  IMD_TRY(publish_change(*m, m->from, erase, ConnRef{}));
  return m;
}

Result<void> MessagingService::publish_change(const Message& m, Id from, const ChangeInput& in,
                                              ConnRef origin) {
  auto change_id = ids_.next();
  if (!change_id) return change_id.error();
  NewMessage nm;
  nm.origin = origin;
  nm.change = in.change;
  nm.change_id = *change_id;
  nm.react_on = in.on;
  nm.msg.id = in.id;
  nm.msg.conv = m.conv;
  nm.msg.from = from;
  nm.msg.to = m.to;
  nm.msg.type = m.type;
  nm.msg.body = in.body;
  // An erase of a file message carries the stored body (the store ignores it) so that the
  // consumer knows which file it releases.
  if (in.change == Change::erase && is_file_type(m.type)) nm.msg.body = m.body;
  // An edit of a file message changes its caption; the file stays.
  if (in.change == Change::edit && is_file_type(m.type)) {
    if (const auto nl = m.body.find('\n'); nl != std::string::npos) {
      nm.msg.body = attachment_body(std::string_view(m.body).substr(0, nl), in.body);
    }
  }
  nm.msg.created_at = clock_.now_ms();
  return queue_.publish(std::move(nm));
}

void MessagingService::fan_out(const Message& m, ConnRef skip, std::vector<Push>& out,
                               bool changed) {
  Push p;
  if (m.conv.is_dm()) {
    const Id users[2] = {m.conv.a, m.conv.b};
    route_or_address(routes_, users, skip, p);
  } else {
    auto members = members_.members(m.conv.channel_id());
    if (!members) {
      // Stored but not pushed: members catch up on their next sync.
      LOG_WARN("fan-out skipped for channel " << m.conv.channel_id() << ": "
                                              << members.error().message);
      return;
    }
    route_or_address(routes_, **members, skip, p);
  }
  if (p.targets.empty() && p.users.empty()) return;
  p.event = make_event(MessageEvent{m, changed});
  out.push_back(std::move(p));
}

Queue::Outcome MessagingService::consume(std::vector<NewMessage>& batch) {
  std::vector<Push> pushes;
  // Runs of sends and runs of changes, in batch order: a change never overtakes the send of
  // its message, nor a send the change published before it.
  for (std::size_t i = 0; i < batch.size();) {
    const bool changes = batch[i].change != Change::none;
    std::size_t j = i;
    while (j < batch.size() && (batch[j].change != Change::none) == changes) ++j;
    std::span<NewMessage> run(batch.data() + i, j - i);
    if (!(changes ? consume_changes(run, pushes) : consume_sends(run, pushes))) {
      return Queue::Outcome::retry;
    }
    i = j;
  }
  pusher_.push(std::move(pushes));
  return Queue::Outcome::done;
}

void MessagingService::find_mentions(NewMessage& nm) {
  nm.mentions.clear();
  const Message& m = nm.msg;
  const Broadcast broadcast = m.conv.is_channel() ? broadcast_of(m.body) : Broadcast::none;
  // @channel: one row for every member (kEveryMember), personal ones would count twice.
  if (broadcast == Broadcast::channel) {
    nm.mentions.push_back(kEveryMember);
    return;
  }
  if (broadcast == Broadcast::none && m.body.find("<@") == std::string::npos) return;
  MemberList members;
  if (m.conv.is_channel()) {
    auto loaded = members_.members(m.conv.channel_id());
    if (!loaded) {
      LOG_WARN("mentions of a message to channel " << m.conv.channel_id()
                                                   << " skipped: " << loaded.error().message);
      return;
    }
    members = std::move(*loaded);
  }
  for (Id user : mentioned_ids(m.body)) {
    if (user == m.from) continue;
    if (m.conv.is_dm() ? m.conv.has_participant(user) : is_member(members, user)) {
      nm.mentions.push_back(user);
    }
  }
  if (broadcast == Broadcast::here && presence_ != nullptr) {
    // @here: every member online now (not away), a row each, beside the personal ones.
    std::vector<Id> others;
    others.reserve(members->size());
    for (Id u : *members) {
      if (u != m.from &&
          std::find(nm.mentions.begin(), nm.mentions.end(), u) == nm.mentions.end()) {
        others.push_back(u);
      }
    }
    auto statuses = presence_->statuses(others);
    if (!statuses) {
      LOG_WARN("@here of a message to channel " << m.conv.channel_id()
                                                << " skipped: " << statuses.error().message);
      return;
    }
    for (std::size_t i = 0; i < others.size(); ++i) {
      if ((*statuses)[i] == PresenceStatus::online) nm.mentions.push_back(others[i]);
    }
  }
}

bool MessagingService::consume_sends(std::span<NewMessage> batch, std::vector<Push>& pushes) {
  auto fail = [&](const NewMessage& nm, const Error& e) { fail_to_origin(nm, e, pushes); };
  for (auto& nm : batch) find_mentions(nm);
  auto& metric = metrics::imd();
  static auto& append_seconds = metric.store_call_seconds.at("append_messages");
  static auto& inbox_push_seconds = metric.inbox_call_seconds.at("push");
  auto stored = [&] {
    metrics::Timer t(append_seconds);
    return store_.append_messages(batch);
  }();
  if (!stored) {
    metric.store_errors.at("append_messages").inc();
    // The detail (SQL, engine messages) goes to the log, not to clients.
    LOG_ERROR("storing a batch of " << batch.size() << " failed: " << stored.error().message);
    // A queue that redelivers hands the batch again later; the sender hears nothing yet.
    if (queue_.redelivers()) return false;
    const Error retry =
        make_error(stored.error().code == Errc::internal ? Errc::internal : Errc::unavailable,
                   "storing failed, retry with the same cid");
    for (const auto& nm : batch) fail(nm, retry);
    return true;
  }
  auto& results = *stored;

  // Write diffusion for DMs: the recipient's inbox must hold the message before the ACK.
  // Duplicates are pushed again: the push is idempotent and repairs an inbox write that a
  // crash interrupted before the original ACK.
  std::vector<InboxItem> inbox_items;
  for (const auto& r : results) {
    if (r && r->msg.conv.is_dm()) inbox_items.push_back({r->msg.to, r->msg});
  }
  bool inbox_ok = true;
  if (!inbox_items.empty()) {
    auto ir = [&] {
      metrics::Timer t(inbox_push_seconds);
      return inbox_.push(inbox_items);
    }();
    if (!ir) {
      metric.inbox_errors.at("push").inc();
      LOG_ERROR("inbox push of " << inbox_items.size() << " failed: " << ir.error().message);
      // Redelivery finds the messages stored (duplicates) and writes the inbox again. Meanwhile
      // (Redis away) the newly stored ones go out live, without their `sent`: the recipients
      // need not wait for Redis, the senders' ACKs still wait for the inbox (§2 of
      // docs/architecture.md). A redelivery pushes them again; connections drop seqs they hold.
      if (queue_.redelivers()) {
        std::vector<Push> live;
        for (std::size_t i = 0; i < batch.size(); ++i) {
          if (results[i] && !results[i]->duplicate) fan_out(results[i]->msg, batch[i].origin, live);
        }
        if (!live.empty()) pusher_.push(std::move(live));
        return false;
      }
      // Without redelivery: the DMs are stored and pushed live but get no ACK, so their senders
      // retry the same cid, and the retry repairs the inbox.
      inbox_ok = false;
    }
  }

  const Millis stored_at = clock_.now_ms();  // once per batch: the sent ACKs go out together
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const NewMessage& nm = batch[i];
    auto& r = results[i];
    if (!r) {
      fail(nm, r.error());
      continue;
    }
    const Message& m = r->msg;
    (r->duplicate ? metric.messages_duplicate : metric.messages_stored).inc();
    // A redelivered message may have been stored by a consumer that died before its fan-out:
    // push it again (clients drop what they already hold, by seq). A client's own retry of a
    // stored cid is only answered.
    if (!r->duplicate || nm.attempt > 1) fan_out(m, nm.origin, pushes);
    if (m.conv.is_dm() && !inbox_ok) {
      fail(nm, make_error(Errc::unavailable, "inbox unavailable, retry"));
      continue;
    }
    // A duplicate's created_at is the original's: its latency would be the retry's age.
    if (!r->duplicate)
      metric.send_to_sent_seconds.observe(metrics::elapsed_us(m.created_at, stored_at));
    if (nm.origin.conn != 0) {
      pushes.push_back(
          {{nm.origin}, make_event(SentEvent{m.cid, m.id, m.seq, m.conv, m.from, m.created_at})});
    }
  }
  return true;
}

bool MessagingService::consume_changes(std::span<NewMessage> run, std::vector<Push>& pushes) {
  auto changed = store_.change_messages(run);
  if (!changed) {
    LOG_ERROR("applying " << run.size() << " changes failed: " << changed.error().message);
    if (queue_.redelivers()) return false;
    // The items before the failure may be applied: their fan-out is lost, devices get them at
    // their next sync; the origin hears that it failed and may repeat it.
    const Error retry = make_error(Errc::unavailable, "storing failed, retry");
    for (const auto& nm : run) fail_to_origin(nm, retry, pushes);
    return true;
  }
  for (std::size_t i = 0; i < run.size(); ++i) {
    auto& r = (*changed)[i];
    if (!r) {
      fail_to_origin(run[i], r.error(), pushes);
      continue;
    }
    // Every connection of the conversation, the origin's too (its answer). A redelivered change
    // that was applied is pushed again: connections drop a rev they hold.
    if (!r->duplicate || run[i].attempt > 1) fan_out(r->msg, ConnRef{}, pushes, true);
    // The bytes of a deleted file message go once nothing else shares them.
    if (run[i].change == Change::erase && attachments_ != nullptr &&
        is_file_type(run[i].msg.type)) {
      attachments_->released(run[i].msg);
    }
  }
  return true;
}

Result<void> MessagingService::ack(Id user, const ConvKey& conv, std::uint64_t seq) {
  IMD_TRY(check_access(user, conv));
  // The cached cursor is never ahead of the stored one (CursorCache): at or below it, the
  // Store's cursor is there already, and so is the inbox's.
  if (seq <= cursors_.get(user, conv)) return {};
  // Bounded: past the limit the caller writes the batch itself (back-pressure).
  if (*gather_ack(user, conv, seq, false)) return flush_acks();
  return {};
}

std::optional<Result<void>> MessagingService::try_ack(Id user, const ConvKey& conv,
                                                      std::uint64_t seq) {
  auto allowed = access(user, conv, Lookup::in_memory);
  if (!allowed || !*allowed) return allowed;
  auto cached = cursors_.cached(user, conv);
  if (!cached) return std::nullopt;
  if (seq <= *cached) return Result<void>{};
  // At the bound the gathered ACKs must be written now: that blocks.
  if (!gather_ack(user, conv, seq, true)) return std::nullopt;
  return Result<void>{};
}

std::optional<bool> MessagingService::gather_ack(Id user, const ConvKey& conv, std::uint64_t seq,
                                                 bool refuse_at_bound) {
  std::lock_guard lock(ack_mu_);
  if (refuse_at_bound && pending_acks_.size() >= kMaxPendingAcks) return std::nullopt;
  auto& pending = pending_acks_[MemberKey{user, conv}];
  pending = std::max(pending, seq);
  return pending_acks_.size() >= kMaxPendingAcks;
}

Result<void> MessagingService::flush_acks() {
  std::lock_guard flush_lock(flush_mu_);
  std::vector<DeliveryUpdate> batch;
  {
    std::lock_guard lock(ack_mu_);
    if (pending_acks_.empty()) return {};
    batch.reserve(pending_acks_.size());
    for (const auto& [k, seq] : pending_acks_) batch.push_back({k.user, k.conv, seq});
    pending_acks_.clear();
  }
  // Cursors first: from then on a repeated inbox push of these entries is a no-op.
  Result<void> r;
  auto& metric = metrics::imd();
  static auto& advance_seconds = metric.store_call_seconds.at("advance_deliveries");
  static auto& ack_many_seconds = metric.inbox_call_seconds.at("ack_many");
  auto stored = [&] {
    metrics::Timer t(advance_seconds);
    return store_.advance_deliveries(batch);
  }();
  if (!stored) {
    metric.store_errors.at("advance_deliveries").inc();
    r = stored.error();
  } else {
    {
      metrics::Timer t(ack_many_seconds);
      r = inbox_.ack_many(batch);
    }
    if (!r) metric.inbox_errors.at("ack_many").inc();
    // Only what the Store holds, and only once the inbox followed: a cached cursor lets later
    // ACKs at or below it skip both writes.
    if (r) cursors_.put(*stored);
  }
  if (!r) {
    LOG_WARN("writing " << batch.size() << " delivery ACKs failed: " << r.error().message);
    std::lock_guard lock(ack_mu_);
    for (const auto& u : batch) {
      if (pending_acks_.size() >= kMaxPendingAcks) break;  // bounded: the rest is redelivered
      auto& pending = pending_acks_[MemberKey{u.user, u.conv}];
      pending = std::max(pending, u.seq);
    }
  }
  return r;
}

void MessagingService::flush_soon() {
  {
    std::lock_guard lock(ack_mu_);
    if (pending_acks_.empty()) return;
    flush_now_ = true;
  }
  ack_cv_.notify_one();
}

void MessagingService::start(std::chrono::milliseconds ack_flush) {
  flusher_ = std::thread([this, ack_flush] {
    set_thread_name("imd-acks");
    std::unique_lock lock(ack_mu_);
    while (!stopping_) {
      ack_cv_.wait_for(lock, ack_flush, [&] { return stopping_ || flush_now_; });
      flush_now_ = false;
      lock.unlock();
      (void)flush_acks();
      lock.lock();
    }
  });
}

void MessagingService::stop() {
  {
    std::lock_guard lock(ack_mu_);
    stopping_ = true;
  }
  ack_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  (void)flush_acks();
}

MessagingService::~MessagingService() {
  stop();
}

Result<std::uint64_t> MessagingService::read(Id user, const ConvKey& conv, std::uint64_t seq,
                                             ConnRef origin) {
  IMD_TRY(check_access(user, conv));
  auto r = store_.advance_read(user, conv, seq);
  if (!r) return r;
  Push p;
  // The user's other connections, and in a DM the peer's (a read receipt) unless either of them
  // turned receipts off. A failed lookup of the setting sends none (the safe side).
  bool receipt = false;
  if (conv.is_dm()) {
    auto both = store_.receipts_between(user, conv.peer_of(user));
    receipt = both && *both;
  }
  const Id users[2] = {user, receipt ? conv.peer_of(user) : user};
  route_or_address(routes_, std::span<const Id>(users, receipt ? 2 : 1), origin, p);
  if (!p.targets.empty() || !p.users.empty()) {
    p.event = make_event(ReadEvent{user, conv, *r});
    std::vector<Push> v;
    v.push_back(std::move(p));
    pusher_.push(std::move(v));
  }
  return r;
}

Result<bool> MessagingService::read_receipts(Id user) {
  return store_.read_receipts(user);
}

Result<void> MessagingService::set_read_receipts(Id user, bool on) {
  return store_.set_read_receipts(user, on);
}

Result<Page<User>> MessagingService::directory(Id caller, const std::string& query, Id after,
                                               std::uint32_t limit) {
  limit = std::clamp<std::uint32_t>(limit, 1, kMaxPageSize);
  if (query.size() > kMaxNameBytes || !json::valid_utf8(query)) {
    return make_error(Errc::invalid_argument, "q must be at most 64 bytes of UTF-8");
  }
  // Anyone may be DMed: without a prefix, only the people sharing a space are listed, so the
  // directory is never a list of every account.
  const bool shared_space_only = limits_.dm_shared_space_only || query.empty();
  // The cursor is the last user of the previous page: its name places the next page.
  std::string after_name;
  if (after != 0) {
    auto last = store_.user_by_id(after);
    if (!last) {
      if (last.error().code != Errc::not_found) return last.error();
      return make_error(Errc::invalid_argument, "after is not a user of the directory");
    }
    after_name = std::move(last->name);
  }
  auto rows = store_.directory_users(caller, query, after_name, after, shared_space_only, limit);
  if (!rows) return rows.error();
  Page<User> page;
  page.items = std::move(*rows);
  if (page.items.size() == limit) page.next_after = page.items.back().id;
  return page;
}

Result<void> MessagingService::typing(Id user, const ConvKey& conv) {
  IMD_TRY(check_access(user, conv));
  Push p;
  auto add = [&](Id u, ConnRef c) {
    if (u != user) p.targets.push_back(c);
  };
  // Typing is not worth a user-addressed push to every gateway: without routes, none is sent.
  if (conv.is_dm()) {
    Id peer[1] = {conv.peer_of(user)};
    if (!routes_.lookup_many(peer, add)) return {};
  } else {
    auto members = members_.members(conv.channel_id());
    if (!members) return members.error();
    if ((*members)->size() > kMaxTypingMembers) return {};
    if (!routes_.lookup_many(**members, add)) return {};
  }
  if (p.targets.empty()) return {};
  p.event = make_event(TypingEvent{user, conv});
  std::vector<Push> v;
  v.push_back(std::move(p));
  pusher_.push(std::move(v));
  return {};
}

namespace {

Result<void> check_history_query(const HistoryQuery& q) {
  if (q.before_seq && q.after_seq) {
    return make_error(Errc::invalid_argument, "give before_seq or after_seq, not both");
  }
  if (q.limit < 1 || q.limit > kMaxHistoryPage) {
    return make_error(Errc::invalid_argument, "limit must be 1..100");
  }
  return {};
}

}  // namespace

std::optional<std::vector<Message>> MessagingService::try_history(Id user, const ConvKey& conv,
                                                                  const HistoryQuery& q) {
  if (!check_history_query(q)) return std::nullopt;
  // A DM's peer must exist (history() reads it): users seen on the send path do.
  if (conv.is_dm() && conv.has_participant(user) && !known_user(conv.peer_of(user))) {
    return std::nullopt;
  }
  auto allowed = access(user, conv, Lookup::in_memory);
  if (!allowed || !*allowed) return std::nullopt;
  auto floor = cached_floor(user, conv);
  if (!floor) return std::nullopt;
  HistoryQuery from_floor = q;
  if (q.after_seq && *q.after_seq < *floor) from_floor.after_seq = *floor;
  auto page = store_.cached_messages(conv, from_floor);
  if (page) drop_up_to(*page, *floor);
  return page;
}

Result<std::vector<Message>> MessagingService::history(Id user, const ConvKey& conv,
                                                       HistoryQuery q) {
  IMD_TRY(check_history_query(q));
  if (conv.is_dm()) {
    auto peer = store_.user_by_id(conv.peer_of(user));
    if (!peer) return peer.error();
  }
  IMD_TRY(check_access(user, conv));
  auto floor = history_floor(user, conv);
  if (!floor) return floor.error();
  // Paging forward starts at the floor; a backward page is cut at it.
  if (q.after_seq && *q.after_seq < *floor) q.after_seq = *floor;
  auto page = store_.messages(conv, q);
  if (page) drop_up_to(*page, *floor);
  return page;
}

Result<Message> MessagingService::message(Id user, Id message_id) {
  const Error missing = make_error(Errc::not_found, "message not found");
  auto m = store_.message_by_id(message_id);
  if (!m) return m.error().code == Errc::not_found ? missing : m.error();
  // One answer for "no such message" and "not yours to read": an id alone tells nothing.
  if (auto allowed = check_access(user, m->conv); !allowed) {
    const Errc code = allowed.error().code;
    return code == Errc::forbidden || code == Errc::not_found ? missing : allowed.error();
  }
  auto floor = history_floor(user, m->conv);
  if (!floor) return floor.error().code == Errc::not_found ? missing : floor.error();
  if (m->seq <= *floor) return missing;
  return m;
}

std::optional<std::uint64_t> MessagingService::cached_floor(Id user, const ConvKey& conv) {
  if (conv.is_dm()) return 0;
  std::lock_guard lock(floor_mu_);
  auto it = floors_.find(MemberKey{user, conv});
  if (it == floors_.end() || it->second.second <= clock_.now_ms()) return std::nullopt;
  return it->second.first;
}

Result<std::uint64_t> MessagingService::history_floor(Id user, const ConvKey& conv) {
  if (auto cached = cached_floor(user, conv)) return *cached;
  auto floor = store_.history_floor(conv.channel_id(), user);
  if (!floor) {
    // Not a member (any more): the same answer as for a missing channel.
    if (floor.error().code == Errc::not_found)
      return make_error(Errc::not_found, "channel not found");
    return floor.error();
  }
  std::lock_guard lock(floor_mu_);
  if (floors_.size() >= kMaxDmVerdicts) floors_.clear();
  floors_[MemberKey{user, conv}] = {*floor, clock_.now_ms() + kHistoryFloorTtlMs};
  return *floor;
}

Result<ConversationList> MessagingService::conversations(Id user) {
  auto convs = store_.conversations(user);
  if (!convs) return convs.error();
  auto memberships = users_.memberships(user);
  if (!memberships) return memberships.error();
  const auto& spaces = (*memberships)->spaces;
  ConversationList out;
  std::unordered_map<Id, SpaceUnread> sums;
  for (Id s : spaces) sums[s] = SpaceUnread{s, 0, 0};
  for (const auto& c : *convs) {
    if (!c.conv.is_channel()) continue;
    auto& sum = sums[c.space_id];
    sum.unread += unread_of(c);
    sum.mentions += c.mentions;
  }
  for (Id s : spaces) out.spaces.push_back(sums[s]);
  out.conversations = std::move(*convs);
  return out;
}

void MessagingService::warm(Id user) {
  auto m = users_.memberships(user);
  if (!m) {
    LOG_DEBUG("warm-up of user " << user << " failed: " << m.error().message);
    return;
  }
  if (auto r = members_.warm((*m)->channels); !r) {
    LOG_DEBUG("warm-up of user " << user << "'s channels failed: " << r.error().message);
  }
}

}  // namespace imd
