// The one way work goes to the blocking pool and comes back: co_await offload(pool, fn) runs a
// blocking fn on the pool and resumes the calling coroutine on its own executor (its strand)
// with fn's result. (Work whose result nobody waits for, e.g. removing a closed connection's
// route, is a plain asio::post to the pool.)
//
// Inline first: hot calls that are usually answered from this process's memory come in two
// forms, `try_x()` (never blocks: a result, or nullopt before any side effect when it would
// have to wait) and `x()` (may block). inline_or_offload() runs try_x() on the I/O thread and
// only hands x() to the pool when try_x() stepped aside: two thread hand-offs fewer per
// message in the common case.
// Capture by reference ([&]): the caller is suspended until fn has run, so its locals outlive
// the call. Never capture std::string & co. by value in a lambda written inside the co_await
// expression: GCC 12 relocates such a temporary bitwise, and its strings then free pointers
// into the caller's coroutine frame (seen under ASan).
#pragma once

#include <type_traits>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace imd {

template <class Fn, class F = std::decay_t<Fn>>
auto offload(boost::asio::thread_pool& pool, Fn&& fn)
    -> boost::asio::awaitable<std::invoke_result_t<F&>> {
  using R = std::invoke_result_t<F&>;
  namespace asio = boost::asio;
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(R)>(
      [&pool](auto handler, F f) {
        asio::post(pool, [f = std::move(f), handler = std::move(handler)]() mutable {
          R r = f();
          auto ex = asio::get_associated_executor(handler);
          asio::dispatch(ex, [h = std::move(handler), r = std::move(r)]() mutable {
            std::move(h)(std::move(r));
          });
        });
      },
      asio::use_awaitable, F(std::forward<Fn>(fn)));
}

// By value: the functions live in this coroutine's frame until it is done.
template <class TryFn, class Fn, class R = std::invoke_result_t<Fn&>>
auto inline_or_offload(boost::asio::thread_pool& pool, TryFn try_fn, Fn fn)
    -> boost::asio::awaitable<R> {
  if (auto r = try_fn()) co_return std::move(*r);
  co_return co_await offload(pool, std::move(fn));
}

}  // namespace imd
