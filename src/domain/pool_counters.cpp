// Admission, gauges, totals and histograms of the job pool.

#include "domain/pool_counters.h"

#include <algorithm>
#include <vector>

#include "domain/job_pool.h"

namespace zk {

namespace {

const std::vector<double> survey_buckets{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 12.5, 15, 17.5, 20, 30, 60, 120};
const std::vector<double> lag_buckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

}  // namespace

PoolCounters::PoolCounters() : survey_seconds_(survey_buckets), completion_lag_seconds_(lag_buckets) {}

bool PoolCounters::admit(std::size_t max_jobs)
{
    if (admitted_.fetch_add(1) < max_jobs) return true;
    --admitted_;
    return false;
}

void PoolCounters::moved(Place before, Place after)
{
    auto gauge = [this](Place p, int by) {
        if (!p.unfinished_ours()) return;
        auto& g = p.state == JobState::queued ? queued_ : running_;
        if (by > 0) ++g;
        else --g;
    };
    gauge(before, -1);
    gauge(after, +1);
    const auto done = [](Place p) { return p.held && (p.state == JobState::done || p.state == JobState::cancelled); };
    if (done(before) && !done(after)) --finished_;
    if (!done(before) && done(after)) ++finished_;
    if (before.unfinished_ours() && !after.unfinished_ours()) --admitted_;
}

void PoolCounters::completed(const Job& done, Millis now)
{
    ++completed_;
    survey_seconds_.observe(static_cast<double>(now - done.created_ms) / 1000.0);
    completion_lag_seconds_.observe(static_cast<double>(std::max<Millis>(0, now - done.deadline_ms)) / 1000.0);
}

void PoolCounters::fill(PoolStats& s) const
{
    s.queued = queued_;
    s.running = running_;
    s.finished = finished_;
    s.created_total = created_;
    s.completed_total = completed_;
    s.cancelled_total = cancelled_;
    s.expired_total = expired_;
    s.rescued_total = rescued_;
    s.survey_seconds = survey_seconds_.snapshot();
    s.completion_lag_seconds = completion_lag_seconds_.snapshot();
}

}  // namespace zk
