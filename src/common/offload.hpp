// co_await offload(pool, fn): runs a blocking fn on the blocking pool and resumes the calling
// coroutine on its own executor (its strand) with fn's result.
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

namespace imd::net {

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

}  // namespace imd::net
