// A fixed-bucket histogram safe to observe from many threads without a lock;
// the shape Prometheus expects (cumulative buckets, count, sum).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace zk {

class Histogram {
public:
    explicit Histogram(std::vector<double> upper_bounds);

    void observe(double value);

    struct Snapshot {
        std::vector<double> bounds;          // upper bounds, ascending (+Inf implied)
        std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf
        double sum = 0;
    };
    Snapshot snapshot() const;

private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, last is +Inf
    std::atomic<double> sum_{0};
};

}  // namespace zk
