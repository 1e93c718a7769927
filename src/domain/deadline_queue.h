// The timers' heap: (deadline, job, kind). Not thread-safe; domain/timers.h
// owns it under its own mutex.
// Cancelling is lazy: a timer whose job has moved on is ignored when it fires,
// which keeps cancel O(1) and the heap free of back-pointers.
#pragma once

#include <cstdint>
#include <queue>
#include <vector>

#include "domain/clock.h"
#include "domain/job_id.h"

namespace zk {

// complete: the survey's deadline. expire: its result's TTL ran out.
// recheck: the ledger's re-reads are due (domain/shared_ledger.h); its job
// is empty, the ledger knows what is due.
enum class TimerKind : std::uint8_t { complete, expire, recheck };

struct Timer {
    Millis at = 0;
    JobId job;
    TimerKind kind = TimerKind::complete;
};

class DeadlineQueue {
public:
    void add(const Timer& timer) { heap_.push(timer); }
    bool empty() const { return heap_.empty(); }
    std::size_t size() const { return heap_.size(); }
    // Earliest deadline; only valid when not empty.
    Millis next_at() const { return heap_.top().at; }
    // Moves every timer due at `now` into `out`, earliest first.
    void pop_due(Millis now, std::vector<Timer>& out);

private:
    // Ties on the deadline are ordered by job id, so equal deadlines never
    // collide and firing order is stable.
    struct Later {
        bool operator()(const Timer& a, const Timer& b) const
        {
            return a.at != b.at ? a.at > b.at : a.job > b.job;
        }
    };
    std::priority_queue<Timer, std::vector<Timer>, Later> heap_;
};

}  // namespace zk
