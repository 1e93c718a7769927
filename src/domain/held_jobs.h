// The jobs this worker holds in memory, with the counts that follow them:
// every change goes through here, under the job's shard lock, so the
// queued/running gauges and the max_jobs admission never drift from the
// table. Also the one rule for taking the truth (a read of the store, a
// cancel feed) over a held copy.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "domain/job.h"
#include "domain/job_table.h"
#include "domain/pool_counters.h"
#include "storage/job_store.h"

namespace zk {

// The stored fields of `truth` (state, started, finished, result) over a
// held copy; this worker's hold on it stays.
void take_stored(Job& held, const Job& truth);

class HeldJobs {
public:
    explicit HeldJobs(PoolCounters& counters) : counters_(counters) {}

    // A stored job at start-up, ours.
    void restore(const Job& job);
    // As JobTable::insert, counted.
    bool insert(Job job, const std::function<bool(Job&)>& first);
    // As JobTable::update, counted.
    bool change(const JobId& id, const std::function<Edit(Job&)>& edit);
    std::optional<Job> get(const JobId& id) const { return table_.get(id); }

    // The truth over the held copy, or as a new copy (not ours). A copy with
    // its own write in flight keeps its state unless the truth says finished
    // (that write will be skipped); a finished copy is final. `stamp` gives
    // the copy's epoch, under the shard lock (Ledger::stamp).
    struct Applied {
        Job view;                   // the copy as now held
        bool finished_now = false;  // the truth finished it here
        bool new_copy = false;      // it was not held before
    };
    Applied apply(const Job& truth, const std::function<std::uint64_t()>& stamp);

    // What each settled write does to the job it wrote (memory follows the
    // store). A creation: begun (running, started at its creation) when
    // committed, dropped otherwise; the job as it was or now is.
    std::optional<Job> creation_settled(const JobId& id, bool committed, std::uint64_t epoch);
    // A finish (done or cancelled): committed, memory takes it; skipped,
    // another worker finished it first, so the copy vouches for nothing and
    // is no longer ours; failed, nothing changes. `retry`: a survey of ours
    // past its deadline must be tried again.
    struct FinishSettled {
        bool retry = false;
        bool learned_first = false;  // memory already had the job finished (the feed, a read)
        Millis deadline_ms = 0;
    };
    FinishSettled finish_settled(const Job& target, storage::Durability outcome, Millis now);
    // Cancelled through another worker: the job if that finished it here.
    std::optional<Job> cancelled_elsewhere(const JobId& id, Millis finished_ms);
    // Its result expired (finished), or a copy of another's survey outlived
    // its deadline plus the TTL: dropped (returned). `later`: not yet, look again then.
    std::optional<Job> expire(const JobId& id, Millis now, Millis ttl, std::optional<Millis>& later);

    const JobTable& table() const { return table_; }
    std::size_t size() const { return table_.size(); }

private:
    PoolCounters& counters_;
    JobTable table_;
};

}  // namespace zk
