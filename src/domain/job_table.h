// Every job this worker holds, in memory. Sharded by id so acceptor and pool
// threads rarely contend.
// Lock rule (docs/concurrency.md): callbacks run under the shard's mutex; they
// may queue a store write (JobStore::put), never wait for one, arm a timer or
// call back into the pool.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "domain/job.h"
#include "domain/job_id.h"

namespace zk {

// What an edit did with the held job.
enum class Edit { none, changed, erase };

class JobTable {
public:
    // Inserts or replaces.
    void put(const Job& job);
    // Runs first(job) under the shard lock, then inserts the job it may have
    // changed, if it returned true: nothing can reach the job before first()
    // has run, so a job's first store write is queued before any other.
    bool insert(Job job, const std::function<bool(Job&)>& first);
    std::optional<Job> get(const JobId& id) const;
    bool erase(const JobId& id);
    // Runs edit(job) under the shard lock; false when the id is unknown or
    // the edit did nothing.
    bool update(const JobId& id, const std::function<Edit(Job&)>& edit);
    // As update(), with a default Job (held false) when the id is unknown:
    // an edit that returns `changed` then inserts it.
    void upsert(const JobId& id, const std::function<Edit(Job&, bool held)>& edit);
    // Visits every job, shard by shard (not a consistent snapshot across shards).
    void for_each(const std::function<void(const Job&)>& visit) const;
    std::size_t size() const;

private:
    static constexpr std::size_t shard_count = 64;
    struct Shard {
        mutable std::mutex mutex;
        std::unordered_map<JobId, Job, JobIdHash> jobs;  // guarded by mutex
    };
    Shard& shard(const JobId& id) { return shards_[id.digest() % shard_count]; }
    const Shard& shard(const JobId& id) const { return shards_[id.digest() % shard_count]; }

    std::array<Shard, shard_count> shards_;
};

}  // namespace zk
