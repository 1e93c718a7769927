// Every job the service holds, in memory: polls are answered from here, never
// from storage. Sharded by id so acceptor and pool threads rarely contend.
// Lock rule (docs/concurrency.md): callbacks run under the shard's mutex; they
// may queue a store write (put/erase), never wait for one or call the pool.
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

class JobTable {
public:
    // Inserts or replaces.
    void put(const Job& job);
    // Runs first(job) under the shard lock, then inserts job (unless first
    // threw): nothing can reach the job before first() has run, so a job's
    // first store write is queued before any other.
    void insert(const Job& job, const std::function<void(const Job&)>& first);
    std::optional<Job> get(const JobId& id) const;
    bool erase(const JobId& id);
    // Runs change(job) under the shard lock; returns what change returned, or
    // false when the id is unknown. `change` decides whether it changed anything.
    bool update(const JobId& id, const std::function<bool(Job&)>& change);
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
