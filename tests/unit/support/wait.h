// Bounded waiting for something another thread does. Tests never assert after
// a fixed sleep: they poll a predicate every millisecond up to a limit, so a
// slow machine (or a sanitizer build) only makes them slower, not flaky.
#pragma once

#include <chrono>
#include <thread>

namespace zk::test {

// True as soon as pred() holds; false if it still does not after `limit`.
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(2000))
{
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) return pred();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

}  // namespace zk::test
