// The pool's figures: gauges of this worker's own unfinished surveys, totals
// counted where each change is settled (a write the store later skips is
// never counted), and the two latency histograms. Lock-free: the pool
// updates them under a job's shard lock or none, /metrics reads them anywhere.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "domain/job.h"
#include "util/histogram.h"

namespace zk {

struct PoolStats;

class PoolCounters {
public:
    PoolCounters();

    // Admission for max_jobs: room for one more unfinished survey of ours,
    // taken by a creation before it is stored. False at the limit.
    bool admit(std::size_t max_jobs);
    // Room taken without the limit (a restored survey).
    void admit_restored() { ++admitted_; }
    void unadmit() { --admitted_; }

    // Where a job stands for counting: held or not, ours or not, its state.
    struct Place {
        bool held = false;
        bool owned = false;
        JobState state = JobState::queued;
        bool unfinished_ours() const { return held && owned && state != JobState::done && state != JobState::cancelled; }
    };
    static Place place(const Job& j) { return {true, j.owned, j.state}; }
    // A job moved from `before` to `after`. Keeps the queued/running gauges
    // of our own jobs, and frees a job's room once it is finished, dropped or
    // no longer ours. Called under the job's shard lock.
    void moved(Place before, Place after);

    void created() { ++created_; }
    void cancelled() { ++cancelled_; }
    // A survey of ours finished with its sentence at `now`.
    void completed(const Job& done, Millis now);
    void expired(std::uint64_t n) { expired_ += n; }
    void rescued(std::uint64_t n) { rescued_ += n; }

    std::size_t admitted() const { return admitted_; }
    // Fills the counting part of the pool's stats.
    void fill(PoolStats& s) const;

private:
    std::atomic<std::size_t> admitted_{0};  // owned unfinished surveys + creations being stored
    std::atomic<std::size_t> queued_{0}, running_{0};
    std::atomic<std::size_t> finished_{0};  // held and finished, ours or copies
    std::atomic<std::uint64_t> created_{0}, completed_{0}, cancelled_{0}, expired_{0}, rescued_{0};
    Histogram survey_seconds_;          // creation to completion
    Histogram completion_lag_seconds_;  // how late completions ran after their deadline
};

}  // namespace zk
