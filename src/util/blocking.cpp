// The per-thread hook behind will_block().

#include "util/blocking.h"

namespace zk::util {

namespace {
thread_local const std::function<void()>* current_hook = nullptr;
}

BlockingHook::BlockingHook(std::function<void()> before_block) : before_block_(std::move(before_block))
{
    current_hook = &before_block_;
}

BlockingHook::~BlockingHook() { current_hook = nullptr; }

void will_block()
{
    if (current_hook && *current_hook) (*current_hook)();
}

}  // namespace zk::util
