// A creation's room under max_jobs and its Idempotency-Key's claim in this
// worker's key index, given back when the creation ends without a job in
// memory, however it ends (a refusal, a throw); once the job is in memory,
// settling its write owns them (JobPool::settle_creation).
#pragma once

#include <optional>

#include "domain/idempotency_index.h"
#include "domain/job_id.h"
#include "domain/pool_counters.h"

namespace zk {

class CreationClaims {
public:
    // Made once the room is taken (PoolCounters::admit).
    CreationClaims(PoolCounters& counters, IdempotencyIndex& keys) : counters_(counters), keys_(keys) {}
    ~CreationClaims()
    {
        if (kept_) return;
        counters_.unadmit();
        if (key_) keys_.release(*key_, job_);
    }
    CreationClaims(const CreationClaims&) = delete;
    CreationClaims& operator=(const CreationClaims&) = delete;

    void claimed(const IdempotencyKey& key, const JobId& job)
    {
        key_ = key;
        job_ = job;
    }
    void keep() { kept_ = true; }

private:
    PoolCounters& counters_;
    IdempotencyIndex& keys_;
    std::optional<IdempotencyKey> key_;
    JobId job_;
    bool kept_ = false;
};

}  // namespace zk
