// The job pool: the rules of a survey's life, written once for every backend.
// Creation, lookup, cancellation, completion, expiry and waiting are here;
// where the truth lives (this worker's memory, or a database several workers
// share) is the Ledger's business (domain/ledger.h), timers are Timers',
// figures PoolCounters'.
//
// The rules:
//   - Memory follows the store. A change is written first and applied to
//     memory by the write's settled callback, so no answer is given that the
//     store might still refuse: a creation is acknowledged once stored; a
//     cancel or a completion shows once stored, or not at all.
//   - One write in flight per job (Job::writing). A change that finds one
//     waits for it to settle, then applies the rules again.
//   - Every finish is conditional (storage::WriteKind::finish): whichever of
//     a completion and a cancel is stored first wins, on any worker; the
//     loser is told it was skipped and learns the truth.
//   - A survey runs from its creation to its deadline; its sentence is a
//     function of its id, so whoever completes it says the same.
// Threads, lock order (shard → store; timers and watchers after the shard
// lock is released) and what may block: docs/concurrency.md.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/clock.h"
#include "domain/idempotency_index.h"
#include "domain/job.h"
#include "domain/job_filter.h"
#include "domain/held_jobs.h"
#include "domain/job_table.h"
#include "domain/ledger.h"
#include "domain/pool_counters.h"
#include "domain/rules.h"
#include "domain/timers.h"
#include "domain/waiters.h"
#include "domain/watch_registry.h"
#include "storage/job_store.h"
#include "util/histogram.h"

namespace zk {

// Fixed for the life of the process.
struct PoolShape {
    TimerShape timers;
    // This worker's name, for /healthz, /metrics and logs.
    std::string worker;
    // Watches (waiting polls) held at once; beyond it watch() refuses.
    std::size_t max_waiters = 10'000;
    // The longest a request waits for the store (its write, or another's it
    // must wait out): past it the answer is 503 (the store's statement
    // timeout plus its margin).
    Millis store_wait_ms = 5500;
    // How soon a completion the store refused (unavailable) is tried again.
    Millis retry_ms = 1000;
};

// key_reused: the Idempotency-Key created a survey of another animal.
// key_in_flight: the key's first creation is still being stored.
enum class CreateError { none, unknown_animal, too_many_jobs, stopping, store_failed, key_reused, key_in_flight };
struct Created {
    std::optional<Job> job;
    CreateError error = CreateError::none;
    // The job is the one an earlier creation with the same key made.
    bool replayed = false;
};

// unavailable: the job may exist, but the store did not answer.
enum class LookupStatus { found, unknown, expired, unavailable };
struct Lookup {
    LookupStatus status = LookupStatus::unknown;
    std::optional<Job> job;
};

enum class CancelOutcome { cancelled, already_cancelled, already_done, unknown, store_failed };

struct PoolStats {
    Millis started_ms = 0;  // when the pool was made: the service's start
    // This worker's own unfinished surveys; held: every job in memory
    // (with a shared store, copies of other workers' jobs too).
    std::size_t queued = 0, running = 0, held = 0, timers = 0;
    std::size_t finished = 0;  // finished jobs held (results kept until they expire)
    std::size_t pool_threads = 0, pool_queue_depth = 0, pool_busy = 0;
    bool store_healthy = true;
    std::string worker;                   // PoolShape::worker
    std::string_view backend = "memory";  // the store's: sqlite, postgresql
    bool shared = false;                  // several workers on one store
    std::uint64_t created_total = 0, completed_total = 0, cancelled_total = 0;
    // Finished surveys whose results expired and were deleted (with a
    // shared store: the rows this worker's sweep deleted).
    std::uint64_t expired_total = 0;
    // Shared store only: late surveys of other (dead) workers this one completed.
    std::uint64_t rescued_total = 0;
    Histogram::Snapshot survey_seconds;          // creation to completion
    Histogram::Snapshot completion_lag_seconds;  // how late completions ran after their deadline
    // The store's own figures, if it keeps any.
    std::optional<storage::StoreStats> store;
};

class CreationClaims;

class JobPool final : private LedgerEvents {
public:
    // `store` and `ledger` must outlive the pool, and the store must be
    // closed before the pool is destroyed (its callbacks call the pool).
    JobPool(const Clock& clock, storage::JobStore& store, Ledger& ledger, PoolShape shape, Rules rules);
    ~JobPool() override;
    JobPool(const JobPool&) = delete;
    JobPool& operator=(const JobPool&) = delete;

    // Restores what the ledger hands over, then starts the timers and the ledger.
    void start();
    // Refuses new work, stops the ledger and the timers (due work still
    // runs), then waits (at most store_wait_ms) for its last write. Idempotent.
    void stop();

    // With a key, a repeat of an earlier creation (same scope and key) is
    // answered with that creation's job, marked replayed, for as long as the
    // job is held (result_ttl after it finished).
    Created create(std::string_view animal, const std::optional<IdempotencyKey>& key = std::nullopt);
    Lookup find(const JobId& id);
    CancelOutcome cancel(const JobId& id);

    void reconfigure(Rules rules) { rules_.set(std::move(rules)); }
    void set_max_waiters(std::size_t n) { waiters_.set_capacity(n); }
    std::shared_ptr<const Rules> rules() const override { return rules_.get(); }
    PoolStats stats() const;
    // Up to filter.limit jobs, newest first; nullopt when the truth did not
    // answer. Meant for operators, not for the hot path.
    std::optional<std::vector<Job>> list(const JobFilter& filter) const { return ledger_.list(filter, held_.table()); }
    // Makes the timer thread look at the clock now (tests move a ManualClock).
    void wake() { timers_.wake(); }

    // Calls `callback` exactly once, outside the pool's locks, when the job
    // is done or cancelled: at once, on this thread, if it already is or is
    // unknown. nullopt when max_waiters watches are held (nothing is called).
    // deadline_ms (the survey's, from find()) tells the ledger when to look
    // for a completion on another worker.
    std::optional<WatchRegistry::Token> watch(const JobId& id, WatchRegistry::Callback callback, Millis deadline_ms = 0)
    {
        return waiters_.add(id, std::move(callback), deadline_ms, [&] { return held_.get(id); });
    }
    // False if the watch already fired or was removed.
    bool unwatch(WatchRegistry::Token token) { return waiters_.remove(token); }
    std::size_t watching() const { return waiters_.size(); }

private:
    using Seq = storage::JobStore::Seq;
    using Durability = storage::Durability;

    void hold_restored(Job&& job, Millis ttl_ms);
    std::optional<Created> replay(const IdempotencyKey& key, std::string_view animal);
    Created store_new(Job job, const std::optional<IdempotencyKey>& key, CreationClaims& claims);
    void settle_creation(const JobId& id, Durability outcome);
    std::optional<Seq> write_finish(Job& held, Job target, storage::JobStore::Committer by);
    void settle_finish(const Job& target, Durability outcome);
    void complete(const JobId& id);
    void expire(const JobId& id);
    void on_timer(const Timer& timer);
    void arm_expiry(const JobId& id, Millis from);
    void arm_retry(const JobId& id, Millis now);
    HeldJobs::Applied learn(const Ledger::Fetched& read);
    void finished(const Job& job);
    storage::JobStore::Deadline store_deadline() const;

    // LedgerEvents
    void learned(const Ledger::Fetched& read) override { learn(read); }
    void cancelled_elsewhere(const JobId& id, Millis finished_ms) override;
    void vanished(const JobId& id) override;
    void arm_recheck(Millis at) override { timers_.arm({at, JobId{}, TimerKind::recheck}); }
    void swept(std::size_t rescued, std::size_t expired) override
    {
        counters_.rescued(rescued);
        counters_.expired(expired);
    }

    const Clock& clock_;
    const Millis started_ms_;
    storage::JobStore& store_;
    Ledger& ledger_;
    const PoolShape shape_;
    CurrentRules rules_;
    PoolCounters counters_;
    HeldJobs held_;          // counts into counters_
    IdempotencyIndex keys_;  // keys of creations through this worker; a shared store's unique index decides across workers
    Waiters waiters_;
    std::atomic<bool> stopping_{false};
    std::atomic<Seq> last_seq_{0};  // the newest write queued: stop() waits for it
    Timers timers_;                 // last: its threads call everything above
};

}  // namespace zk
