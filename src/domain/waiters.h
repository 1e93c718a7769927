// The waiting polls of this worker: who waits for which job (WatchRegistry),
// and the ledger told of each, since with a shared store a job may finish on
// another worker (the ledger then re-reads it: domain/shared_ledger.h).
// Callbacks run once, outside every lock here.
#pragma once

#include <cstddef>
#include <optional>

#include "domain/clock.h"
#include "domain/job.h"
#include "domain/ledger.h"
#include "domain/watch_registry.h"

namespace zk {

class Waiters {
public:
    Waiters(Ledger& ledger, std::size_t capacity) : ledger_(ledger), registry_(capacity) {}

    // A new watch of `id`; `held` is the job as memory holds it after the
    // watch was added (nullopt: not held), so a finish racing the watch is
    // seen by one side or the other. nullopt when `capacity` are held.
    template <class Held>
    std::optional<WatchRegistry::Token> add(const JobId& id, WatchRegistry::Callback callback, Millis deadline_ms,
                                            Held&& held)
    {
        const auto token = registry_.add(id, std::move(callback));
        if (!token) return std::nullopt;
        ledger_.watched(id, deadline_ms);
        const std::optional<Job> job = held();
        if ((!job || job->finished()) && registry_.fire_one(*token)) ledger_.unwatched(id, 1);
        return token;
    }
    // False if the watch already fired or was removed.
    bool remove(WatchRegistry::Token token)
    {
        const auto job = registry_.take(token);
        if (job) ledger_.unwatched(*job, 1);
        return job.has_value();
    }
    // The job finished (or its truth changed): every watch of it fires.
    void notify(const JobId& id)
    {
        if (const std::size_t fired = registry_.fire(id)) ledger_.unwatched(id, fired);
    }
    void set_capacity(std::size_t n) { registry_.set_capacity(n); }
    std::size_t size() const { return registry_.size(); }

private:
    Ledger& ledger_;
    WatchRegistry registry_;
};

}  // namespace zk
