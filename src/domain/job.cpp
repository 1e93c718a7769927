// Derived views of a job's timing.

#include "domain/job.h"

#include <algorithm>

namespace zk {

const char* to_string(JobState state)
{
    switch (state) {
    case JobState::queued: return "queued";
    case JobState::running: return "running";
    case JobState::done: return "done";
    case JobState::cancelled: return "cancelled";
    }
    return "unknown";
}

double Job::progress(Millis now) const
{
    switch (state) {
    case JobState::done: return 1.0;
    case JobState::queued:
    case JobState::cancelled:
    case JobState::running: {
        const Millis until = state == JobState::cancelled ? finished_ms : now;
        if (deadline_ms <= created_ms) return 0.0;
        const double f = static_cast<double>(until - created_ms) / static_cast<double>(deadline_ms - created_ms);
        return std::clamp(f, 0.0, 1.0);
    }
    }
    return 0.0;
}

Millis Job::remaining_ms(Millis now) const
{
    switch (state) {
    case JobState::queued:
    case JobState::running: return std::max<Millis>(0, deadline_ms - now);
    case JobState::done:
    case JobState::cancelled: return 0;
    }
    return 0;
}

}  // namespace zk
