// A thread about to wait (for a disk commit, a slow peer) says so, so that
// whoever runs the thread can let a standby thread work meanwhile (the idea
// of Java's ForkJoinPool.ManagedBlocker). Code that may block calls
// will_block(); the owner of a thread installs what that does.
#pragma once

#include <functional>

namespace zk::util {

// Installs `before_block` for the calling thread until destroyed. Not nested:
// a thread has one owner.
class BlockingHook {
public:
    explicit BlockingHook(std::function<void()> before_block);
    ~BlockingHook();
    BlockingHook(const BlockingHook&) = delete;
    BlockingHook& operator=(const BlockingHook&) = delete;

private:
    std::function<void()> before_block_;
};

// Runs the calling thread's hook, if it has one; cheap when it has none.
void will_block();

}  // namespace zk::util
