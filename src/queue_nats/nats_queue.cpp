// One file over ~600 lines on purpose: the publisher (confirmations, the Failed handler), the
// partition owners and their consumer threads share one connection and its C callbacks
// through NatsQueue::Impl; the sections below (publishing, ownership of partitions, consuming
// one partition) read in that order.
#include "queue_nats/nats_queue.hpp"

#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/log.hpp"
#include "common/thread_name.hpp"
#include "queue_nats/message_codec.hpp"

namespace imd {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::int64_t kNanosPerMilli = 1000 * 1000;

std::int64_t to_nanos(milliseconds d) {
  return static_cast<std::int64_t>(d.count()) * kNanosPerMilli;
}

// The library's last error of this thread, with the status as a fallback.
std::string nats_error(natsStatus s) {
  natsStatus last = NATS_OK;
  const char* text = nats_GetLastError(&last);
  if (text != nullptr && *text != '\0') return text;
  return natsStatus_GetText(s);
}

// user:password@ never reaches a log line or an exception message.
std::string redact_url(const std::string& url) {
  std::string out;
  std::size_t start = 0;
  while (start <= url.size()) {
    std::size_t end = url.find(',', start);
    if (end == std::string::npos) end = url.size();
    std::string one = url.substr(start, end - start);
    std::size_t scheme = one.find("//");
    std::size_t at = one.find('@');
    if (at != std::string::npos) {
      std::size_t from = scheme == std::string::npos ? 0 : scheme + 2;
      if (at >= from) one = one.substr(0, from) + "***@" + one.substr(at + 1);
    }
    if (!out.empty()) out += ',';
    out += one;
    start = end + 1;
  }
  return out;
}

// Header values must stay on one line.
std::string header_value(std::string v) {
  for (char& c : v) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  if (v.size() > 200) v.resize(200);
  return v;
}

bool valid_token(const std::string& s, bool allow_dots) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '*' || c == '>' || c == '\r' || c == '\n') return false;
    if (!allow_dots && c == '.') return false;
  }
  return s.front() != '.' && s.back() != '.';
}

struct MsgListGuard {
  natsMsgList list{nullptr, 0};
  ~MsgListGuard() { natsMsgList_Destroy(&list); }
};

}  // namespace

struct NatsQueue::Impl {
  // One owned partition: its thread and what stops it.
  struct Worker {
    std::uint32_t partition = 0;
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::condition_variable cv;
    std::thread thread;
    // Stream sequences this worker's consumer answered `done` for, oldest first. JetStream hands
    // a message again when its ACK timer ran out before our ACK arrived (a stalled process);
    // such a copy is ACKed, not consumed twice.
    std::unordered_set<std::uint64_t> done_seqs;
    std::deque<std::uint64_t> done_order;

    void remember_done(std::uint64_t seq, std::size_t cap) {
      if (seq == 0 || !done_seqs.insert(seq).second) return;
      done_order.push_back(seq);
      while (done_order.size() > cap) {
        done_seqs.erase(done_order.front());
        done_order.pop_front();
      }
    }

    void request_stop() {
      {
        std::lock_guard lock(mu);
        stop = true;
      }
      cv.notify_all();
    }
    bool stopping() const { return stop.load(); }
    // False when stopped during the wait.
    bool sleep(milliseconds d) {
      std::unique_lock lock(mu);
      return !cv.wait_for(lock, d, [&] { return stop.load(); });
    }
  };

  // A fetched message with what the loop needs to hand it again or move it aside.
  struct Item {
    natsMsg* msg = nullptr;  // owned by the fetched list
    NewMessage nm;
    std::uint64_t stream_seq = 0;
  };

  struct Counters {
    std::atomic<std::uint64_t> published{0}, publish_rejected{0}, confirmed{0}, publish_failed{0},
        consumed{0}, acked{0}, retried{0}, dead_lettered{0}, decode_errors{0}, duplicates{0};
  };

  explicit Impl(NatsQueueOptions o) : opt(std::move(o)) {
    validate();
    connect();
    try {
      ensure_stream(opt.stream, opt.subject_prefix + ".*", /*dlq=*/false);
      ensure_stream(opt.dlq_stream, opt.dlq_subject_prefix + ".*", /*dlq=*/true);
    } catch (...) {
      close();
      throw;
    }
  }

  ~Impl() {
    stop();
    close();
  }

  void validate() const {
    auto fail = [](const std::string& why) {
      throw std::runtime_error("nats queue: invalid options: " + why);
    };
    if (opt.partitions == 0) fail("partitions must be > 0");
    if (opt.fetch_batch_max == 0) fail("fetch_batch_max must be > 0");
    if (opt.max_attempts == 0) fail("max_attempts must be > 0");
    if (opt.max_pending_publishes == 0) fail("max_pending_publishes must be > 0");
    if (opt.ack_wait < milliseconds(100)) fail("ack_wait must be >= 100ms");
    if (opt.fetch_wait < milliseconds(1) || opt.fetch_wait >= opt.ack_wait) {
      fail("fetch_wait must be in [1ms, ack_wait)");
    }
    if (opt.retry_backoff_min < milliseconds(1) || opt.retry_backoff_max < opt.retry_backoff_min) {
      fail("retry backoff must satisfy 1ms <= min <= max");
    }
    if (!valid_token(opt.stream, false)) fail("bad stream name '" + opt.stream + "'");
    if (!valid_token(opt.dlq_stream, false)) fail("bad dlq stream name '" + opt.dlq_stream + "'");
    if (opt.stream == opt.dlq_stream) fail("stream and dlq_stream must differ");
    if (!valid_token(opt.subject_prefix, true)) fail("bad subject prefix");
    if (!valid_token(opt.dlq_subject_prefix, true)) fail("bad dlq subject prefix");
    if (opt.subject_prefix == opt.dlq_subject_prefix) fail("subject prefixes must differ");
  }

  void connect() {
    natsOptions* no = nullptr;
    natsStatus s = natsOptions_Create(&no);
    if (s == NATS_OK) s = natsOptions_SetURL(no, opt.url.c_str());
    if (s == NATS_OK) s = natsOptions_SetTimeout(no, opt.connect_timeout.count());
    if (s == NATS_OK) s = natsOptions_SetName(no, "imd");
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(no, -1);  // forever; waits are bounded
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(no, 250);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(no, &Impl::on_disconnected, this);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(no, &Impl::on_reconnected, this);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(no, &Impl::on_closed, this);
    if (s == NATS_OK) s = natsConnection_Connect(&nc, no);
    std::string why = s == NATS_OK ? "" : nats_error(s);
    natsOptions_Destroy(no);
    if (s != NATS_OK) {
      nc = nullptr;
      throw std::runtime_error("nats queue: cannot connect to " + redact_url(opt.url) + ": " + why);
    }

    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = opt.api_timeout.count();
    // Our own bound (inflight) refuses at once; the library's would stall the caller.
    jo.PublishAsync.MaxPending = 0;
    jo.PublishAsync.AckHandler = &Impl::on_pub_ack;
    jo.PublishAsync.AckHandlerClosure = this;
    s = natsConnection_JetStream(&js, nc, &jo);
    if (s != NATS_OK) {
      why = nats_error(s);
      close();
      throw std::runtime_error("nats queue: no JetStream context: " + why);
    }
  }

  void close() {
    if (nc != nullptr) {
      closing = true;
      natsConnection_Close(nc);
      // Connection callbacks run on the library's own thread, in order; the closed one is
      // last. Waiting for it keeps `this` alive for all of them.
      std::unique_lock lock(closed_mu);
      if (!closed_cv.wait_for(lock, opt.stop_timeout, [&] { return closed; })) {
        LOG_WARN("nats queue: the connection did not report closing in time");
      }
    }
    if (js != nullptr) jsCtx_Destroy(js);
    if (nc != nullptr) natsConnection_Destroy(nc);
    js = nullptr;
    nc = nullptr;
  }

  // Creates the stream, or updates it to this configuration (idempotent).
  void ensure_stream(const std::string& name, const std::string& subjects, bool dlq) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char* subj[1] = {subjects.c_str()};
    cfg.Name = name.c_str();
    cfg.Subjects = subj;
    cfg.SubjectsLen = 1;
    cfg.Storage = opt.file_storage ? js_FileStorage : js_MemoryStorage;
    cfg.Replicas = opt.replicas;
    cfg.Duplicates = to_nanos(opt.duplicate_window);
    if (dlq) {
      // Kept for inspection until they age out; the oldest go first when full.
      cfg.Retention = js_LimitsPolicy;
      cfg.MaxAge = to_nanos(opt.dlq_max_age);
      cfg.MaxBytes = opt.max_bytes;
      cfg.Discard = js_DiscardOld;
    } else {
      // Each message is consumed once (disjoint per-partition consumers) and removed on ACK.
      cfg.Retention = js_WorkQueuePolicy;
      cfg.MaxBytes = opt.max_bytes;
      cfg.Discard = js_DiscardNew;  // full: refuse (reported to the sender), never drop
    }

    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&si, js, name.c_str(), nullptr, &jerr);
    jsStreamInfo_Destroy(si);
    si = nullptr;
    const char* what = "create";
    if (s == NATS_NOT_FOUND) {
      s = js_AddStream(&si, js, &cfg, nullptr, &jerr);
    } else if (s == NATS_OK) {
      what = "update";
      s = js_UpdateStream(&si, js, &cfg, nullptr, &jerr);
    }
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK) {
      throw std::runtime_error("nats queue: cannot " + std::string(what) + " stream " + name +
                               " at " + redact_url(opt.url) + ": " + nats_error(s) +
                               (s == NATS_NO_RESPONDERS ? " (is JetStream enabled?)" : ""));
    }
  }

  // --- publishing

  // `for_origin`: the id names the sending connection too (see on_pub_ack).
  Result<void> publish(NewMessage m, bool for_origin = false) {
    std::shared_lock lock(pub_mu);
    if (!accepting) {
      counters.publish_rejected++;
      return make_error(Errc::unavailable, "message queue is stopped");
    }
    if (inflight.fetch_add(1) >= opt.max_pending_publishes) {
      inflight--;
      counters.publish_rejected++;
      return make_error(Errc::too_many_requests, "message queue is busy, retry later");
    }
    std::string bytes = queue_nats::encode_new_message(m);
    std::string subject = subject_of(queue_nats::partition_of(m.msg.conv, opt.partitions));
    natsMsg* msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, bytes.data(),
                                  static_cast<int>(bytes.size()));
    if (s == NATS_OK) {
      jsPubOptions po;
      jsPubOptions_Init(&po);
      po.MaxWait = opt.publish_confirm_timeout.count();
      std::string id;
      if (!m.msg.cid.empty()) {
        id = std::to_string(m.msg.from) + ":" + m.msg.cid;
        if (for_origin) {
          id += "@" + std::to_string(m.origin.node) + "." + std::to_string(m.origin.conn);
        }
        po.MsgId = id.c_str();
      }
      s = js_PublishMsgAsync(js, &msg, &po);
    }
    if (s != NATS_OK) {
      natsMsg_Destroy(msg);  // no-op when the library took it
      inflight--;
      counters.publish_rejected++;
      if (s == NATS_MAX_PAYLOAD) {
        return make_error(Errc::payload_too_large, "message too large for the queue");
      }
      LOG_WARN("nats queue: publish failed: " << nats_error(s));
      return make_error(Errc::unavailable, "message queue unavailable");
    }
    counters.published++;
    return {};
  }

  static void on_pub_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    if (pa != nullptr) {
      self->counters.confirmed++;
      if (pa->Duplicate) self->answer_duplicate(msg);
    } else {
      std::string why = pae != nullptr && pae->ErrText != nullptr ? pae->ErrText : "no reason";
      self->report_unconfirmed(msg, why);
    }
    natsMsg_Destroy(msg);
    self->inflight--;
  }

  // JetStream dropped a publish whose (sender, cid) it already holds. The copy it holds may
  // have come from another connection of the sender (a client that reconnected and resent): the
  // `sent` ACK of that copy goes to its own connection, so this one would never hear back.
  // Publish once more under an id that names this connection too: the consumer then finds the
  // message stored and answers this connection. A repeat from the same connection is dropped
  // again (it is answered through the copy already queued for it).
  void answer_duplicate(natsMsg* msg) {
    const char* id = nullptr;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK || id == nullptr ||
        std::string_view(id).find('@') != std::string_view::npos) {
      return;
    }
    auto nm = queue_nats::decode_new_message(std::string_view(
        natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))));
    if (!nm || nm->origin.conn == 0) return;
    NewMessage copy = *nm;
    if (auto r = publish(std::move(copy), true); !r && failed) failed(*nm, r.error());
  }

  void report_unconfirmed(natsMsg* msg, const std::string& why) {
    counters.publish_failed++;
    auto nm = queue_nats::decode_new_message(std::string_view(
        natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))));
    if (!nm) {
      LOG_ERROR("nats queue: an unconfirmed publish does not decode: " << nm.error().message);
      return;
    }
    LOG_WARN("nats queue: publish of message " << nm->msg.id << " not confirmed: " << why);
    if (failed)
      failed(*nm, make_error(Errc::unavailable, "message queue did not confirm the message"));
  }

  static void on_closed(natsConnection*, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    std::lock_guard lock(self->closed_mu);
    self->closed = true;
    self->closed_cv.notify_all();  // under the lock: the waiter cannot leave before we do
  }
  static void on_disconnected(natsConnection*, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    if (self->closing) return;
    LOG_WARN("nats queue: disconnected from " << redact_url(self->opt.url) << ", reconnecting");
  }
  static void on_reconnected(natsConnection*, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    LOG_INFO("nats queue: reconnected to " << redact_url(self->opt.url));
  }

  std::string subject_of(std::uint32_t partition) const {
    return opt.subject_prefix + "." + std::to_string(partition);
  }

  // --- ownership of partitions

  void start(Consumer c) {
    std::lock_guard alock(assign_mu);
    std::lock_guard lock(mu);
    if (stopped || started) return;
    consumer = std::move(c);
    started = true;
    for (std::uint32_t p : desired) spawn(p);
  }

  void assign(std::vector<std::uint32_t> partitions) {
    std::lock_guard alock(assign_mu);
    std::vector<std::unique_ptr<Worker>> leaving;
    {
      std::lock_guard lock(mu);
      if (stopped) return;
      desired.clear();
      for (std::uint32_t p : partitions) {
        if (p >= opt.partitions) {
          LOG_WARN("nats queue: ignoring partition " << p << " (there are " << opt.partitions
                                                     << ")");
          continue;
        }
        desired.insert(p);
      }
      if (!started) return;
      for (auto it = workers.begin(); it != workers.end();) {
        if (desired.count(it->first) == 0) {
          leaving.push_back(std::move(it->second));
          it = workers.erase(it);
        } else {
          ++it;
        }
      }
    }
    // Let go first (batch in hand finished), then take on the new ones.
    for (auto& w : leaving) w->request_stop();
    for (auto& w : leaving) w->thread.join();
    std::lock_guard lock(mu);
    if (stopped) return;
    for (std::uint32_t p : desired) {
      if (workers.count(p) == 0) spawn(p);
    }
  }

  void spawn(std::uint32_t p) {  // mu held
    auto w = std::make_unique<Worker>();
    w->partition = p;
    Worker* raw = w.get();
    w->thread = std::thread([this, raw] {
      set_thread_name(("imd-part-" + std::to_string(raw->partition)).c_str());
      run(*raw);
    });
    workers.emplace(p, std::move(w));
  }

  void stop() {
    {
      std::unique_lock lock(pub_mu);  // no publish is inside the library after this
      accepting = false;
    }
    std::vector<std::unique_ptr<Worker>> all;
    {
      std::lock_guard alock(assign_mu);
      {
        std::lock_guard lock(mu);
        if (stopped) return;
        stopped = true;
        for (auto& [p, w] : workers) all.push_back(std::move(w));
        workers.clear();
      }
      for (auto& w : all) w->request_stop();
      for (auto& w : all) w->thread.join();
    }
    if (js == nullptr) return;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = opt.stop_timeout.count();
    if (js_PublishAsyncComplete(js, &po) != NATS_OK) {
      natsMsgList pending{nullptr, 0};
      if (js_PublishAsyncGetPendingList(&pending, js) == NATS_OK) {
        for (int i = 0; i < pending.Count; ++i) {
          report_unconfirmed(pending.Msgs[i], "not confirmed before shutdown");
          inflight--;
        }
        natsMsgList_Destroy(&pending);
      }
      // Confirmations being handled right now finish before the connection goes.
      po.MaxWait = 1000;
      (void)js_PublishAsyncComplete(js, &po);
    }
    close();
  }

  // --- consuming one partition

  void run(Worker& w) {
    const std::string durable = opt.stream + "_p" + std::to_string(w.partition);
    const std::string subject = subject_of(w.partition);
    natsSubscription* sub = nullptr;
    milliseconds backoff = opt.retry_backoff_min;
    int fetch_errors = 0, subscribe_errors = 0;
    while (!w.stopping()) {
      if (sub == nullptr) {
        std::string why;
        sub = subscribe(durable, subject, why);
        if (sub == nullptr) {
          if (subscribe_errors++ % 30 == 0) {  // while NATS is down: now and then, not always
            LOG_WARN("nats queue: partition " << w.partition << ": cannot subscribe: " << why);
          }
          if (!w.sleep(backoff)) break;
          backoff = std::min(backoff * 2, opt.retry_backoff_max);
          continue;
        }
        backoff = opt.retry_backoff_min;
        fetch_errors = 0;
        subscribe_errors = 0;
        if (!wait_for_previous_owner(w, durable)) break;
        continue;
      }
      MsgListGuard fetched;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s = natsSubscription_Fetch(
          &fetched.list, sub, static_cast<int>(opt.fetch_batch_max), opt.fetch_wait.count(), &jerr);
      if (fetched.list.Count > 0) {
        fetch_errors = 0;
        handle_batch(w, fetched.list);
        continue;
      }
      if (s == NATS_OK || s == NATS_TIMEOUT) continue;
      if (++fetch_errors == 1) {
        LOG_WARN("nats queue: partition " << w.partition << ": fetch failed: " << nats_error(s));
      }
      if (fetch_errors >= 10) {  // the consumer may be gone: subscribe again
        natsSubscription_Destroy(sub);
        sub = nullptr;
      }
      if (!w.sleep(std::min(backoff * fetch_errors, opt.retry_backoff_max))) break;
    }
    // Bound to a consumer we created: destroying the subscription leaves the consumer be.
    if (sub != nullptr) natsSubscription_Destroy(sub);
  }

  natsSubscription* subscribe(const std::string& durable, const std::string& subject,
                              std::string& why) {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = to_nanos(opt.ack_wait);
    cc.FilterSubject = subject.c_str();
    cc.DeliverPolicy = js_DeliverAll;
    cc.MaxAckPending = opt.fetch_batch_max;
    cc.MaxDeliver = -1;  // our own attempt limit decides (dead letters)
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_AddConsumer(&ci, js, opt.stream.c_str(), &cc, nullptr, &jerr);
    jsConsumerInfo_Destroy(ci);
    ci = nullptr;
    if (s != NATS_OK) {  // exists with another configuration (e.g. a new ack_wait)
      s = js_UpdateConsumer(&ci, js, opt.stream.c_str(), &cc, nullptr, &jerr);
      jsConsumerInfo_Destroy(ci);
    }
    if (s != NATS_OK) {
      why = "consumer " + durable + ": " + nats_error(s);
      return nullptr;
    }
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = opt.stream.c_str();
    so.Consumer = durable.c_str();
    natsSubscription* sub = nullptr;
    s = js_PullSubscribe(&sub, js, subject.c_str(), durable.c_str(), nullptr, &so, &jerr);
    if (s != NATS_OK) {
      why = "pull subscription " + durable + ": " + nats_error(s);
      return nullptr;
    }
    return sub;
  }

  // Messages still ACK-pending on the consumer belong to a previous owner (or to this process
  // before an unassign): fetching now would hand newer messages first. Wait until they are
  // ACKed, or until JetStream redelivers them (ack_wait, plus a margin for its timer).
  bool wait_for_previous_owner(Worker& w, const std::string& durable) {
    const auto deadline = Clock::now() + opt.ack_wait + opt.ack_wait / 10 + milliseconds(200);
    bool logged = false;
    for (;;) {
      jsConsumerInfo* ci = nullptr;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s =
          js_GetConsumerInfo(&ci, js, opt.stream.c_str(), durable.c_str(), nullptr, &jerr);
      std::int64_t pending = s == NATS_OK && ci != nullptr ? ci->NumAckPending : 0;
      jsConsumerInfo_Destroy(ci);
      if (pending == 0 || Clock::now() >= deadline) return true;
      if (!logged) {
        LOG_INFO("nats queue: partition " << w.partition << ": " << pending
                                          << " message(s) still ACK-pending; waiting for "
                                             "their redelivery");
        logged = true;
      }
      if (!w.sleep(milliseconds(100))) return false;
    }
  }

  void handle_batch(Worker& w, const natsMsgList& list) {
    std::vector<Item> items;
    items.reserve(static_cast<std::size_t>(list.Count));
    std::unordered_map<std::uint64_t, std::size_t> index;  // stream seq -> position in items
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* m = list.Msgs[i];
      std::uint64_t delivered = 1, seq = 0;
      jsMsgMetaData* meta = nullptr;
      if (natsMsg_GetMetaData(&meta, m) == NATS_OK && meta != nullptr) {
        delivered = meta->NumDelivered;
        seq = meta->Sequence.Stream;
      }
      jsMsgMetaData_Destroy(meta);
      if (seq != 0 && w.done_seqs.count(seq) != 0) {  // stored already: just ACK this copy
        counters.duplicates++;
        (void)natsMsg_Ack(m, nullptr);
        continue;
      }
      if (auto at = index.find(seq); seq != 0 && at != index.end()) {
        // A copy redelivered while the first one waited in our buffer: keep one, in the first
        // one's place, with the newer delivery (its ACK is the one JetStream expects).
        counters.duplicates++;
        Item& kept = items[at->second];
        kept.msg = m;
        kept.nm.attempt =
            static_cast<std::uint32_t>(std::min<std::uint64_t>(delivered, UINT32_MAX));
        continue;
      }
      auto nm = queue_nats::decode_new_message(
          std::string_view(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m))));
      if (!nm) {
        counters.decode_errors++;
        LOG_ERROR("nats queue: partition " << w.partition << ": message " << seq
                                           << " does not decode: " << nm.error().message);
        (void)dead_letter(w, m, seq, static_cast<std::uint32_t>(delivered), nm.error().message);
        continue;
      }
      nm->attempt = static_cast<std::uint32_t>(std::min<std::uint64_t>(delivered, UINT32_MAX));
      if (delivered > opt.max_attempts) {
        // Handed out that often without an ACK: it likely takes its consumers down.
        std::string why = "delivered " + std::to_string(delivered) + " times without success";
        if (dead_letter(w, m, seq, nm->attempt, why)) report_dead(*nm);
        continue;
      }
      if (seq != 0) index.emplace(seq, items.size());
      items.push_back(Item{m, std::move(*nm), seq});
    }
    if (items.empty()) return;

    milliseconds backoff = opt.retry_backoff_min;
    for (;;) {
      std::vector<NewMessage> batch;
      batch.reserve(items.size());
      for (const Item& it : items) batch.push_back(it.nm);
      Outcome outcome = Outcome::retry;
      try {
        outcome = consumer(batch);
      } catch (const std::exception& e) {
        LOG_ERROR("nats queue: consumer threw: " << e.what() << "; treated as retry");
      } catch (...) {
        LOG_ERROR("nats queue: consumer threw; treated as retry");
      }
      counters.consumed += items.size();
      if (outcome == Outcome::done) {
        const std::size_t cap = 4 * static_cast<std::size_t>(opt.fetch_batch_max);
        for (const Item& it : items) w.remember_done(it.stream_seq, cap);
        ack_all(w, items);
        return;
      }
      // Retry: move aside what reached its limit, keep the rest in order.
      std::vector<Item> keep;
      keep.reserve(items.size());
      for (Item& it : items) {
        if (it.nm.attempt >= opt.max_attempts) {
          std::string why =
              "consumer asked for a retry " + std::to_string(it.nm.attempt) + " times";
          if (dead_letter(w, it.msg, it.stream_seq, it.nm.attempt, why)) {
            report_dead(it.nm);
          } else {
            // Could not move it aside: leave it un-ACKed for a later redelivery.
            LOG_ERROR("nats queue: partition " << w.partition << ": message " << it.stream_seq
                                               << " left for redelivery");
          }
          continue;
        }
        keep.push_back(std::move(it));
      }
      items = std::move(keep);
      if (items.empty()) return;
      if (!sleep_keeping_alive(w, backoff, items)) return;  // stopping: left un-ACKed
      backoff = std::min(backoff * 2, opt.retry_backoff_max);
      for (Item& it : items) it.nm.attempt++;
      counters.retried += items.size();
    }
  }

  void keep_alive(const std::vector<Item>& items) {
    for (const Item& it : items) (void)natsMsg_InProgress(it.msg, nullptr);
  }

  bool sleep_keeping_alive(Worker& w, milliseconds total, const std::vector<Item>& items) {
    const milliseconds slice = std::max(opt.ack_wait / 3, milliseconds(20));
    const auto end = Clock::now() + total;
    keep_alive(items);
    for (;;) {
      auto left = std::chrono::duration_cast<milliseconds>(end - Clock::now());
      if (left <= milliseconds(0)) return !w.stopping();
      if (!w.sleep(std::min(left, slice))) return false;
      keep_alive(items);
    }
  }

  void ack_all(Worker& w, const std::vector<Item>& items) {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = opt.api_timeout.count();
    natsStatus s = NATS_OK;
    for (std::size_t i = 0; i + 1 < items.size() && s == NATS_OK; ++i) {
      s = natsMsg_Ack(items[i].msg, &jo);
    }
    jsErrCode jerr = static_cast<jsErrCode>(0);
    // ACKs travel in order on one connection: the confirmed last one covers those before it.
    if (s == NATS_OK) s = natsMsg_AckSync(items.back().msg, &jo, &jerr);
    if (s == NATS_OK) {
      counters.acked += items.size();
    } else {
      // They were stored: a redelivery finds them already there ((from, cid) is unique).
      LOG_WARN("nats queue: partition " << w.partition << ": ACK of " << items.size()
                                        << " message(s) failed: " << nats_error(s));
    }
  }

  // Publishes the original record to the dead-letter stream, then terminates it. Retries a
  // few times (keeping it alive); false when it could not be moved aside.
  bool dead_letter(Worker& w, natsMsg* m, std::uint64_t seq, std::uint32_t attempts,
                   const std::string& why) {
    const std::string subject = opt.dlq_subject_prefix + "." + std::to_string(w.partition);
    const std::string id = "dlq:" + opt.stream + ":" + std::to_string(seq);
    milliseconds backoff = opt.retry_backoff_min;
    for (int tries = 0; tries < 3; ++tries) {
      natsMsg* d = nullptr;
      natsStatus s = natsMsg_Create(&d, subject.c_str(), nullptr, natsMsg_GetData(m),
                                    natsMsg_GetDataLength(m));
      if (s == NATS_OK) s = natsMsgHeader_Set(d, "Imd-Dlq-Reason", header_value(why).c_str());
      if (s == NATS_OK) {
        s = natsMsgHeader_Set(d, "Imd-Dlq-Partition", std::to_string(w.partition).c_str());
      }
      if (s == NATS_OK) s = natsMsgHeader_Set(d, "Imd-Dlq-Stream", opt.stream.c_str());
      if (s == NATS_OK) s = natsMsgHeader_Set(d, "Imd-Dlq-Seq", std::to_string(seq).c_str());
      if (s == NATS_OK) {
        s = natsMsgHeader_Set(d, "Imd-Dlq-Attempts", std::to_string(attempts).c_str());
      }
      if (s == NATS_OK) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id.c_str();  // a second try after a lost confirmation is stored once
        po.MaxWait = opt.api_timeout.count();
        jsPubAck* pa = nullptr;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        s = js_PublishMsg(&pa, js, d, &po, &jerr);
        jsPubAck_Destroy(pa);
      }
      natsMsg_Destroy(d);
      if (s == NATS_OK) {
        (void)natsMsg_Term(m, nullptr);
        counters.dead_lettered++;
        LOG_WARN("nats queue: partition " << w.partition << ": message " << seq
                                          << " dead-lettered: " << why);
        return true;
      }
      LOG_WARN("nats queue: dead letter of message " << seq << " failed: " << nats_error(s));
      (void)natsMsg_InProgress(m, nullptr);
      if (!w.sleep(backoff)) return false;
      backoff = std::min(backoff * 2, opt.retry_backoff_max);
    }
    return false;
  }

  void report_dead(const NewMessage& nm) {
    if (failed) {
      failed(nm,
             make_error(Errc::unavailable, "message could not be stored; moved to dead letters"));
    }
  }

  NatsQueueStats stats() const {
    NatsQueueStats s;
    s.published = counters.published;
    s.publish_rejected = counters.publish_rejected;
    s.confirmed = counters.confirmed;
    s.publish_failed = counters.publish_failed;
    s.consumed = counters.consumed;
    s.acked = counters.acked;
    s.retried = counters.retried;
    s.dead_lettered = counters.dead_lettered;
    s.decode_errors = counters.decode_errors;
    s.duplicates = counters.duplicates;
    return s;
  }

  const NatsQueueOptions opt;
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  Failed failed;
  Consumer consumer;
  Counters counters;
  std::atomic<std::size_t> inflight{0};

  std::atomic<bool> closing{false};
  std::mutex closed_mu;
  std::condition_variable closed_cv;
  bool closed = false;

  std::shared_mutex pub_mu;  // publish (shared) vs stop (exclusive)
  bool accepting = true;

  std::mutex assign_mu;  // one assign/start/stop at a time; held while joining
  std::mutex mu;         // desired, workers, started, stopped
  std::set<std::uint32_t> desired;
  std::map<std::uint32_t, std::unique_ptr<Worker>> workers;
  bool started = false;
  bool stopped = false;
};

NatsQueue::NatsQueue(NatsQueueOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

NatsQueue::~NatsQueue() = default;

Result<void> NatsQueue::publish(NewMessage msg) {
  return impl_->publish(std::move(msg));
}

void NatsQueue::on_failed(Failed handler) {
  impl_->failed = std::move(handler);
}

void NatsQueue::start(Consumer consumer) {
  impl_->start(std::move(consumer));
}

void NatsQueue::stop() {
  impl_->stop();
}

void NatsQueue::assign(std::vector<std::uint32_t> partitions) {
  impl_->assign(std::move(partitions));
}

NatsQueueStats NatsQueue::stats() const {
  return impl_->stats();
}

Result<void> NatsQueue::ping(std::chrono::milliseconds timeout) {
  natsConnection* nc = impl_->nc;
  jsCtx* js = impl_->js;
  if (nc == nullptr || js == nullptr) return make_error(Errc::unavailable, "not connected");
  if (natsConnection_Status(nc) != NATS_CONN_STATUS_CONNECTED) {
    return make_error(Errc::unavailable, "the NATS connection is not connected");
  }
  // JetStream answers for the stream (a request/reply to the server, bounded by `timeout`).
  jsOptions o;
  jsOptions_Init(&o);
  o.Wait = timeout.count();
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus st = js_GetStreamInfo(&si, js, impl_->opt.stream.c_str(), &o, &jerr);
  if (si != nullptr) jsStreamInfo_Destroy(si);
  if (st != NATS_OK) {
    return make_error(Errc::unavailable,
                      "JetStream stream " + impl_->opt.stream + ": " + nats_error(st));
  }
  return {};
}

std::uint32_t NatsQueue::partition_of(const ConvKey& conv) const {
  return queue_nats::partition_of(conv, impl_->opt.partitions);
}

const NatsQueueOptions& NatsQueue::options() const {
  return impl_->opt;
}

}  // namespace imd
