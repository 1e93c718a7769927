// A handler's "not yet": instead of answering now, a response may carry a
// Park, asking the transport to hold the request (without a thread) until the
// subscription fires, or `wait` runs out, and then to send answer(). The
// response itself is what a transport that cannot park sends instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "http/message.h"

namespace zk::http {

struct Park {
    std::chrono::milliseconds wait{0};
    // The answer as of now (after a wake-up, the timeout, a shutdown).
    // Called on a transport thread, outside every lock.
    std::function<Response()> answer;
    // Calls `wake` once, from any thread, when the answer may have changed
    // (possibly at once, before returning). nullopt: no room, answer now.
    std::function<std::optional<std::uint64_t>(std::function<void()> wake)> subscribe;
    // Ends a subscription that has not fired (timeout, hang-up, shutdown).
    std::function<void(std::uint64_t)> unsubscribe;
};

}  // namespace zk::http
