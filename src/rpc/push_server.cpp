#include "rpc/push_server.hpp"

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>

#include "common/log.hpp"
#include "common/metrics.hpp"
#include "imd/rpc/push.grpc.pb.h"
#include "rpc/log_throttle.hpp"
#include "rpc/push_codec.hpp"

namespace imd::rpc {

struct PushServer::Impl final : Gateway::Service {
  Impl(std::uint32_t node, Pusher& local, PushServerOptions options)
      : node_(node), local_(local), options_(std::move(options)) {
    limits_.max_body_bytes = options_.max_body_bytes;
    limits_.max_text_bytes = options_.max_text_bytes;
    metrics::imd().rpc_server_call_seconds.at(kPushMethod);
    metrics::imd().rpc_server_errors.at(kPushMethod);
  }

  grpc::Status Push(grpc::ServerContext* context, const PushBatch* request,
                    PushReply* reply) override {
    const std::int64_t start = metrics::steady_ns();
    grpc::Status st = push(context, request, reply);
    auto& m = metrics::imd();
    metrics::observe_call(m.rpc_server_call_seconds, m.rpc_server_errors, kPushMethod, start,
                          st.ok());
    return st;
  }

  grpc::Status push(grpc::ServerContext* context, const PushBatch* request, PushReply* reply) {
    calls_.fetch_add(1, std::memory_order_relaxed);
    // The sender gave up (deadline) and will retry: applying this late copy could reorder it
    // after the next batch. (A race remains; see remote_pusher.hpp.)
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "too late");
    DecodedBatch batch = decode_batch(*request, node_, limits_);
    reply->set_accepted(static_cast<std::uint32_t>(batch.pushes.size()));
    reply->set_rejected(static_cast<std::uint32_t>(batch.rejected));
    accepted_.fetch_add(batch.pushes.size(), std::memory_order_relaxed);
    if (batch.rejected > 0) {
      rejected_.fetch_add(batch.rejected, std::memory_order_relaxed);
      std::uint64_t held = 0;
      if (warn_.allow(held)) {
        LOG_WARN("push: skipped " << batch.rejected << " invalid deliveries of "
                                  << request->deliveries_size() << " (" << batch.first_error.message
                                  << "); " << held << " similar warnings suppressed");
      }
    }
    if (batch.pushes.empty() && batch.rejected > 0) {
      calls_rejected_.fetch_add(1, std::memory_order_relaxed);
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, batch.first_error.message);
    }
    if (!batch.pushes.empty()) local_.push(std::move(batch.pushes));
    return grpc::Status::OK;
  }

  const std::uint32_t node_;
  Pusher& local_;
  const PushServerOptions options_;
  DecodeLimits limits_;
  std::unique_ptr<grpc::Server> server_;
  bool started_ = false;
  LogThrottle warn_{std::chrono::seconds(10)};
  std::atomic<std::uint64_t> calls_{0}, accepted_{0}, rejected_{0}, calls_rejected_{0};
};

PushServer::PushServer(std::uint32_t node, Pusher& local, PushServerOptions options)
    : impl_(std::make_unique<Impl>(node, local, std::move(options))) {}

PushServer::~PushServer() {
  stop();
}

std::string PushServer::start() {
  const auto& o = impl_->options_;
  if (impl_->server_ || impl_->started_) {
    throw std::logic_error("rpc push server: start() may be called once");
  }
  impl_->started_ = true;
  auto colon = o.address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw std::runtime_error("rpc push server: address must be host:port, got '" + o.address + "'");
  }
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(o.address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(impl_.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(o.max_receive_bytes));
  grpc::ResourceQuota quota("imd-rpc-push");
  quota.SetMaxThreads(std::max(o.max_threads, 2));  // a poller and a worker at least
  builder.SetResourceQuota(quota);
  // A second process on the same port must fail to bind, not share it silently.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  impl_->server_ = builder.BuildAndStart();
  if (!impl_->server_ || port == 0) {
    impl_->server_.reset();
    throw std::runtime_error("rpc push server: cannot listen on " + o.address);
  }
  std::string bound = o.address.substr(0, colon) + ":" + std::to_string(port);
  LOG_INFO("rpc push server listening on " << bound);
  return bound;
}

void PushServer::stop() {
  if (!impl_ || !impl_->server_) return;
  impl_->server_->Shutdown(std::chrono::system_clock::now() + impl_->options_.stop_deadline);
  impl_->server_->Wait();
  impl_->server_.reset();
}

PushServerStats PushServer::stats() const {
  return PushServerStats{impl_->calls_.load(), impl_->accepted_.load(), impl_->rejected_.load(),
                         impl_->calls_rejected_.load()};
}

}  // namespace imd::rpc
