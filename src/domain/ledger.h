// Where the truth about every job lives, and what the pool asks of it. The
// pool's rules (domain/job_pool.cpp) are written once against this seam;
// each side is a file of its own, and the pool never asks which it has (as
// nginx's event actions are filled by epoll or kqueue):
//   - LocalLedger (local_ledger.h): this worker's memory is the truth; the
//     store (SQLite) is its durable log, read once at start.
//   - SharedLedger (shared_ledger.h): the database several workers share is
//     the truth; memory holds copies it vouches for while the database's
//     cancel feed is connected, and reads the database for the rest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "domain/clock.h"
#include "domain/idempotency_index.h"
#include "domain/job.h"
#include "domain/job_filter.h"
#include "domain/job_table.h"
#include "domain/rules.h"

namespace zk {

class LedgerEvents;

class Ledger {
public:
    // What the truth says about one job.
    struct Fetched {
        enum class Status { found, absent, unavailable };
        Status status = Status::absent;
        Job job;  // when found
        // fetch_key, absent: another worker's creation with the key is being stored.
        bool key_in_flight = false;
        // What the ledger knew when the read began (stamp() compares it with now).
        std::uint64_t epoch = 0, cancels = 0;
    };

    virtual ~Ledger() = default;

    // Before start(): hands over every job this worker must hold (local: the stored ones).
    virtual void restore(const std::function<void(Job&&)>& hold) = 0;
    // Background work (shared: the sweep, the cancel feed), reporting to `events`.
    virtual void start(LedgerEvents& events) = 0;
    virtual void stop() = 0;

    // Whether a held copy answers for its job at `now` without asking the truth.
    virtual bool vouches(const Job& held, Millis now) const = 0;
    // The epoch a copy written now belongs to.
    virtual std::uint64_t epoch() const = 0;
    // The epoch a copy made from `read` belongs to, called under the job's
    // shard lock as the copy is made: 0 (not vouched for) when the truth may
    // have moved on during the read (the cancel feed resumed, or delivered a
    // cancel the read may predate).
    virtual std::uint64_t stamp(const Fetched& read) const = 0;
    // The truth about a job memory does not vouch for (local: absent: memory
    // is the truth, so what it does not hold does not exist).
    virtual Fetched fetch(const JobId& id) = 0;
    // The job an Idempotency-Key created, when this worker's key index does
    // not know it (local: absent).
    virtual Fetched fetch_key(const IdempotencyKey& key) = 0;
    // Up to filter.limit jobs, newest first; nullopt when the truth did not answer.
    virtual std::optional<std::vector<Job>> list(const JobFilter& filter, const JobTable& held) const = 0;

    // A finished job's result expired and memory forgot it. True: its stored
    // record's deletion is queued, counted by the pool (local); false: the
    // sweep deletes records and counts them (shared), or the store refused.
    virtual bool expired(const Job& job) = 0;

    // A waiting poll on a job this worker may not see finish itself, and its
    // end (`watchers` of them left). recheck() runs when armed.
    virtual void watched(const JobId& id, Millis deadline_ms) = 0;
    virtual void unwatched(const JobId& id, std::size_t watchers) = 0;
    virtual void recheck() = 0;
};

// What a ledger tells the pool of jobs it learns about by itself: a cancel
// through another worker, a re-read of a watched job, a sweep.
class LedgerEvents {
public:
    virtual ~LedgerEvents() = default;
    // The truth about a job (a read: see Ledger::stamp): a held copy takes
    // it, and its waiters wake if it is finished.
    virtual void learned(const Ledger::Fetched& read) = 0;
    // Cancelled through another worker at finished_ms.
    virtual void cancelled_elsewhere(const JobId& id, Millis finished_ms) = 0;
    // No record any more (its result expired and was deleted): waiters answer.
    virtual void vanished(const JobId& id) = 0;
    // Calls Ledger::recheck() on a pool thread at `at`.
    virtual void arm_recheck(Millis at) = 0;
    // A sweep finished late surveys of other workers and deleted expired ones.
    virtual void swept(std::size_t rescued, std::size_t expired) = 0;
    virtual std::shared_ptr<const Rules> rules() const = 0;
};

}  // namespace zk
