// Time for the domain, injectable so timing logic is tested without sleeping.
// Deadlines are wall-clock milliseconds because they must survive a restart;
// SystemClock reads the real clock, ManualClock is moved by tests.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace zk {

using Millis = std::int64_t;  // ms since the Unix epoch, or a duration in ms

class Clock {
public:
    virtual ~Clock() = default;
    virtual Millis now_ms() const = 0;
};

class SystemClock final : public Clock {
public:
    Millis now_ms() const override
    {
        using namespace std::chrono;
        return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    }
};

class ManualClock final : public Clock {
public:
    explicit ManualClock(Millis start) : now_(start) {}
    Millis now_ms() const override { return now_.load(); }
    void advance(Millis by) { now_ += by; }

private:
    std::atomic<Millis> now_;
};

}  // namespace zk
