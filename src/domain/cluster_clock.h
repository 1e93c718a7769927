// The clock every worker of a shared store agrees on: the local wall clock
// moved by its measured offset from the database's, so deadlines, Retry-After
// and the rescue of late surveys do not depend on which host's clock is
// right. The sweeper measures the offset (domain/sweeper.h); until it has,
// the offset is 0.
#pragma once

#include <atomic>

#include "domain/clock.h"

namespace zk {

class ClusterClock final : public Clock {
public:
    explicit ClusterClock(const Clock& local) : local_(local) {}
    Millis now_ms() const override { return local_.now_ms() + offset_.load(std::memory_order_relaxed); }
    const Clock& local() const { return local_; }
    void set_offset(Millis offset) { offset_.store(offset, std::memory_order_relaxed); }
    Millis offset() const { return offset_.load(std::memory_order_relaxed); }

private:
    const Clock& local_;
    std::atomic<Millis> offset_{0};
};

}  // namespace zk
