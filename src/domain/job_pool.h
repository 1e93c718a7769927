// The job pool: creates surveys, answers lookups from memory, cancels, and
// completes each survey when its deadline comes. No survey owns a thread: one
// timer thread watches every deadline and hands due work to a small bounded
// ThreadPool. Every change is written through the JobStore; creations and
// cancellations are durable before they are acknowledged. A survey is queued
// while its creation is made durable, then the creating thread begins it, so
// it runs from just after its creation until its deadline.
//
// Threads, lock order (timer_mutex_ → shard → store) and what may block:
// docs/concurrency.md.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "domain/clock.h"
#include "domain/deadline_queue.h"
#include "domain/idempotency_index.h"
#include "domain/job.h"
#include "domain/job_table.h"
#include "domain/remote_watches.h"
#include "domain/survey.h"
#include "domain/thread_pool.h"
#include "domain/vocabulary.h"
#include "domain/watch_registry.h"
#include "storage/job_store.h"
#include "util/histogram.h"

namespace zk {

// What a config reload may change. The defaults of these and of PoolShape
// are the config's (config/config.h), in one place; app::rules_from and
// app::shape_from fill them, so the zeros here only mean "not set".
struct Rules {
    std::shared_ptr<const Vocabulary> vocabulary;
    Workload workload;
    std::size_t max_jobs = 0;   // queued + running
    Millis result_ttl_ms = 0;   // how long finished jobs are kept
};

// Fixed for the life of the process.
struct PoolShape {
    std::size_t threads = 0;
    // Due completions and expiries waiting for a thread; when it is full the
    // timer thread waits (nothing due is dropped).
    std::size_t queue_capacity = 0;
    // The timer thread re-reads the clock at least this often, so a wall
    // clock step is noticed and tests can move a ManualClock. Not a setting.
    Millis timer_max_wait_ms = 250;
    // This worker's name, for /healthz, /metrics and logs.
    std::string worker;
    // Watches (waiting polls) held at once; beyond it watch() refuses.
    std::size_t max_waiters = 10'000;
    // Shared store: when watches re-read jobs finished elsewhere. Not a
    // setting; period_ms is the remote_check_ms of docs/waiting-polls.md.
    RemoteTiming remote;
};

// key_reused: the Idempotency-Key created a survey of another animal.
// key_in_flight: the key's first creation is still being made durable.
enum class CreateError { none, unknown_animal, too_many_jobs, stopping, store_failed, key_reused, key_in_flight };
struct Created {
    std::optional<Job> job;
    CreateError error = CreateError::none;
    // The job is the one an earlier creation with the same key made.
    bool replayed = false;
};

// unavailable: the job may exist, but the shared store did not answer.
enum class LookupStatus { found, unknown, expired, unavailable };
struct Lookup {
    LookupStatus status = LookupStatus::unknown;
    std::optional<Job> job;
};

enum class CancelOutcome { cancelled, already_cancelled, already_done, unknown, store_failed };

struct PoolStats {
    Millis started_ms = 0;  // when the pool was made: the service's start
    std::size_t queued = 0, running = 0, held = 0, timers = 0;
    std::size_t pool_threads = 0, pool_queue_depth = 0, pool_busy = 0;
    bool store_healthy = true;
    std::string worker;                   // PoolShape::worker
    std::string_view backend = "memory";  // the store's: sqlite, postgresql
    bool shared = false;                  // several workers on one store
    std::uint64_t created_total = 0, completed_total = 0, cancelled_total = 0, expired_total = 0;
    // Shared store only: surveys of other (dead) workers this one completed
    // late, and finished ones it deleted after result_ttl.
    std::uint64_t rescued_total = 0, purged_total = 0;
    Histogram::Snapshot survey_seconds;  // creation to completion
    // How late completions ran after their deadline.
    Histogram::Snapshot completion_lag_seconds;
    // The store's own figures, if it keeps any (none without a store).
    std::optional<storage::StoreStats> store;
};

// Which jobs a listing shows: newest first, older than `before` if given.
struct JobFilter {
    std::optional<JobState> state;
    std::optional<std::string> animal;
    std::optional<JobId> before;
    // All matches unless set; the API sets its page size (api/api.h).
    std::size_t limit = std::numeric_limits<std::size_t>::max();
};

class JobPool {
public:
    // `store` may be null (memory only); it must outlive the pool.
    JobPool(const Clock& clock, storage::JobStore* store, PoolShape shape, Rules rules);
    ~JobPool();
    JobPool(const JobPool&) = delete;
    JobPool& operator=(const JobPool&) = delete;

    // Restores stored jobs, then starts the timer thread.
    void start();
    // Refuses new work, runs queued tasks, joins all threads. Idempotent.
    void stop();

    // With a key, a repeat of an earlier creation (same scope and key) is
    // answered with that creation's job, marked replayed, for as long as the
    // job is held (result_ttl after it finished).
    Created create(std::string_view animal, const std::optional<IdempotencyKey>& key = std::nullopt);
    // With a shared store a job not finished here is read from the
    // database (another worker may have cancelled or finished it); a
    // finished one is kept in memory until its result expires.
    Lookup find(const JobId& id);
    CancelOutcome cancel(const JobId& id);

    void reconfigure(Rules rules);
    std::shared_ptr<const Rules> rules() const;
    PoolStats stats() const;
    // Up to filter.limit jobs, newest first. Scans every held job (with a
    // shared store: asks the database, nullopt when it does not answer):
    // meant for operators, not for the hot path.
    std::optional<std::vector<Job>> list(const JobFilter& filter) const;

    // For the sweep of a shared store (domain/sweeper.h): turns a late
    // survey's record into its done record, as the survey's own worker
    // would have (the sentence is a function of the id), and counts it.
    void finish_late(storage::JobRecord& record);
    void count_purged(std::size_t n) { purged_ += n; }
    // Makes the timer thread look at the clock now.
    void wake();

    // Calls `callback` exactly once, outside the pool's locks, when the job
    // is done or cancelled: at once, on this thread, if it already is or is
    // unknown. nullopt when max_waiters watches are held (nothing is called).
    // With a shared store the job may finish on another worker: deadline_ms
    // (the record's, from find(); 0 if unknown) says when to read it again,
    // and every watch is re-read every RemoteTiming::period_ms for cancels.
    std::optional<WatchRegistry::Token> watch(const JobId& id, WatchRegistry::Callback callback,
                                              Millis deadline_ms = 0);
    // False if the watch already fired or was removed.
    bool unwatch(WatchRegistry::Token token);
    std::size_t watching() const { return watchers_.size(); }
    // Jobs whose watches re-read the shared store (tests, metrics).
    std::size_t remote_watching() const { return remote_.size(); }

private:
    void restore();
    std::optional<Created> replay(const IdempotencyKey& key, std::string_view animal);
    std::optional<Created> replay_shared(const IdempotencyKey& key, std::string_view animal);
    Created store_new(Job job, const std::optional<IdempotencyKey>& key);
    void run_timers();
    void arm(const Timer& timer);
    void on_timer(const Timer& timer);
    Millis begin(const JobId& id);
    void complete(const JobId& id);
    void settle_completion(const Job& done, storage::JobStore::Seq seq);
    std::optional<WatchRegistry::Token> watch_shared(const JobId& id, WatchRegistry::Callback callback,
                                                     Millis deadline_ms);
    void check_remote();
    void settle_remote(const std::vector<JobId>& due, std::vector<storage::JobRecord>& rows);
    void notify(const JobId& id);
    void expire(const JobId& id);
    void forget(const JobId& id);
    Lookup find_shared(const JobId& id, std::optional<Job> held);
    void remember(const Job& finished);
    CancelOutcome cancel_shared(const JobId& id);
    storage::JobStore::Seq persist(const Job& job, storage::JobStore::Committer by);
    bool durable(storage::JobStore::Seq seq);

    const Clock& clock_;
    const Millis started_ms_;
    storage::JobStore* const store_;
    storage::SharedStore* const shared_;  // store_'s, when several workers share it
    const PoolShape shape_;
    JobTable table_;
    IdempotencyIndex keys_;  // unused with a shared store: its unique index decides
    ThreadPool workers_;

    mutable std::mutex rules_mutex_;
    std::shared_ptr<const Rules> rules_;  // guarded by rules_mutex_

    mutable std::mutex timer_mutex_;
    std::condition_variable timer_cv_;
    DeadlineQueue timers_;         // guarded by timer_mutex_
    bool timers_stopping_ = false;  // guarded by timer_mutex_
    std::thread timer_thread_;

    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> in_flight_{0};  // queued + running, for max_jobs
    std::atomic<std::size_t> queued_{0}, running_{0};
    std::atomic<std::uint64_t> created_{0}, completed_{0}, cancelled_{0}, expired_{0};
    std::atomic<std::uint64_t> rescued_{0}, purged_{0};
    Histogram survey_seconds_;
    Histogram completion_lag_seconds_;
    WatchRegistry watchers_;
    // Shared store only. Every watch there counts in remote_ from before it
    // is added to watchers_ until it fires or is taken back.
    RemoteWatches remote_;
    std::atomic<bool> remote_checking_{false};  // one re-check at a time
};

}  // namespace zk
