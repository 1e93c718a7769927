// Survey lifecycle: queued (being stored) → running → done, or → cancelled;
// finished jobs expire after the result TTL. The rules are in job_pool.h;
// threads and lock order: docs/concurrency.md.

#include "domain/job_pool.h"

#include <algorithm>

#include "domain/creation_claims.h"
#include "domain/record_mapping.h"
#include "domain/survey.h"
#include "util/log.h"

namespace zk {

namespace {

// A cancel waits out another change of the same job at most this many times
// before it answers 503 (each wait is bounded by store_wait_ms).
constexpr int max_cancel_rounds = 3;

std::optional<IdempotencyKey> key_of(const Job& j)
{
    if (j.idem_key.empty()) return std::nullopt;
    return IdempotencyKey{j.idem_scope, j.idem_key};
}

}  // namespace

JobPool::JobPool(const Clock& clock, storage::JobStore& store, Ledger& ledger, PoolShape shape, Rules rules)
    : clock_(clock),
      started_ms_(clock.now_ms()),
      store_(store),
      ledger_(ledger),
      shape_(std::move(shape)),
      rules_(std::move(rules)),
      held_(counters_),
      waiters_(ledger, shape_.max_waiters),
      timers_(clock, shape_.timers, [this](const Timer& t) { on_timer(t); })
{
}

JobPool::~JobPool() { stop(); }

void JobPool::start()
{
    const Millis ttl_ms = rules()->result_ttl_ms;
    ledger_.restore([this, ttl_ms](Job&& j) { hold_restored(std::move(j), ttl_ms); });
    timers_.start();
    ledger_.start(*this);
}

void JobPool::stop()
{
    if (stopping_.exchange(true)) return;
    ledger_.stop();
    // Due completions and expiries still run; what they do not reach is in
    // the store and resumes at the next start (or a sweep's rescue).
    timers_.stop();
    if (const Seq last = last_seq_) store_.wait(last, store_deadline());
}

// A stored job, before any thread runs. One whose deadline passed while we
// were down completes at once; a queued one (written by an older version)
// began when it was created.
void JobPool::hold_restored(Job&& j, Millis ttl_ms)
{
    j.owned = true;
    if (j.state == JobState::queued) {
        j.state = JobState::running;
        j.started_ms = j.created_ms;
    }
    if (j.state == JobState::running) {
        counters_.admit_restored();
        timers_.arm({j.deadline_ms, j.id, TimerKind::complete});
    } else {
        timers_.arm({j.finished_ms + ttl_ms, j.id, TimerKind::expire});
    }
    if (const auto key = key_of(j)) keys_.restore(*key, j.id, j.animal);
    held_.restore(j);
}

// ---------------------------------------------------------------------------
// Creation
// ---------------------------------------------------------------------------

Created JobPool::create(std::string_view animal, const std::optional<IdempotencyKey>& key)
{
    if (stopping_) return {std::nullopt, CreateError::stopping};
    // Before everything else: a repeat is answered as the first creation
    // was, even once max_jobs is reached, the animal is gone or the store is down.
    if (key)
        if (auto earlier = replay(*key, animal)) return std::move(*earlier);
    if (!store_.available()) return {std::nullopt, CreateError::store_failed};
    const auto r = rules();
    if (!r->vocabulary->has_animal(animal)) return {std::nullopt, CreateError::unknown_animal};
    if (!counters_.admit(r->max_jobs)) return {std::nullopt, CreateError::too_many_jobs};
    CreationClaims claims(counters_, keys_);
    Job job = new_survey(animal, clock_.now_ms(), r->workload);
    if (key) {
        job.idem_scope = key->scope;
        job.idem_key = key->key;
        // The claim settles a race between two first creations with one key
        // on this worker: the loser is answered as a repeat of the winner.
        if (keys_.claim(*key, job.id, animal)) {
            if (auto earlier = replay(*key, animal)) return std::move(*earlier);
            return {std::nullopt, CreateError::key_in_flight};
        }
        claims.claimed(*key, job.id);
    }
    return store_new(std::move(job), key, claims);
}

// A repeat of a keyed creation: from this worker's key index, or from the
// ledger (another worker's creation). nullopt when the key is free. A claim
// not yet stored is not answered with its job: that creation may still
// fail, and its client be told so.
std::optional<Created> JobPool::replay(const IdempotencyKey& key, std::string_view animal)
{
    if (const auto held = keys_.find(key)) {
        if (held->animal != animal) return Created{std::nullopt, CreateError::key_reused};
        if (!held->committed) return Created{std::nullopt, CreateError::key_in_flight};
        if (auto job = held_.get(held->job)) return Created{std::move(job), CreateError::none, true};
        return std::nullopt;  // expired a moment ago: its release is on its way
    }
    Ledger::Fetched f = ledger_.fetch_key(key);
    if (f.status == Ledger::Fetched::Status::unavailable) return Created{std::nullopt, CreateError::store_failed};
    if (f.status == Ledger::Fetched::Status::absent && f.key_in_flight)
        return Created{std::nullopt, CreateError::key_in_flight};
    if (f.status == Ledger::Fetched::Status::absent) return std::nullopt;
    if (f.job.animal != animal) return Created{std::nullopt, CreateError::key_reused};
    return Created{learn(f).view, CreateError::none, true};
}

// Stores a new job and answers once the store has: its first write is
// queued under the shard lock, before anyone can see the job, so any later
// change of it is queued after. It is stored running, started at its
// creation; memory shows it queued until the write settles.
Created JobPool::store_new(Job job, const std::optional<IdempotencyKey>& key, CreationClaims& claims)
{
    const JobId id = job.id;
    const std::string animal = job.animal;
    std::optional<Seq> seq;
    held_.insert(std::move(job), [&](Job& j) {
        storage::JobRecord stored = to_record(j);
        stored.state = storage::RecordState::running;
        stored.started_ms = stored.created_ms;
        seq = store_.put(storage::WriteKind::create, stored, storage::JobStore::Committer::caller,
                         [this, id](Durability d) { settle_creation(id, d); });
        if (!seq) return false;
        j.writing = JobState::running;
        j.writing_seq = last_seq_ = *seq;
        claims.keep();
        return true;
    });
    if (!seq) return {std::nullopt, CreateError::store_failed};  // the store takes no writes now
    switch (store_.wait(*seq, store_deadline())) {
    case Durability::committed: return {held_.get(id), CreateError::none};
    case Durability::skipped:  // another worker's creation holds the key (the store's unique index)
        if (key)
            if (auto earlier = replay(*key, animal)) return std::move(*earlier);
        return {std::nullopt, CreateError::key_in_flight};
    case Durability::failed: break;
    }
    return {std::nullopt, CreateError::store_failed};
}

// The creation's write settled: the job begun, or dropped from memory.
void JobPool::settle_creation(const JobId& id, Durability outcome)
{
    const bool committed = outcome == Durability::committed;
    const auto settled = held_.creation_settled(id, committed, ledger_.epoch());
    if (!settled) return;
    const auto key = key_of(*settled);
    if (!committed) {
        if (key) keys_.release(*key, id);
        return;
    }
    counters_.created();
    if (key) keys_.commit(*key, id);
    timers_.arm({settled->deadline_ms, id, TimerKind::complete});
    if (log::enabled(log::Level::debug)) log::debug("job_started").kv("job", id.str()).kv("deadline_ms", settled->deadline_ms);
}

// ---------------------------------------------------------------------------
// Lookup
// ---------------------------------------------------------------------------

Lookup JobPool::find(const JobId& id)
{
    auto held = held_.get(id);
    if (held && ledger_.vouches(*held, clock_.now_ms())) return {LookupStatus::found, std::move(held)};
    const Ledger::Fetched f = ledger_.fetch(id);
    if (f.status == Ledger::Fetched::Status::unavailable) return {LookupStatus::unavailable, std::nullopt};
    if (f.status == Ledger::Fetched::Status::found) return {LookupStatus::found, learn(f).view};
    if (held && held->writing) return {LookupStatus::found, std::move(held)};  // being created: not stored yet
    if (held) vanished(id);
    // Ids carry their creation time: an id older than the TTL that nobody
    // holds most likely finished and expired.
    const auto born = id.created_ms();
    if (born && *born + rules()->result_ttl_ms < clock_.now_ms()) return {LookupStatus::expired, std::nullopt};
    return {LookupStatus::unknown, std::nullopt};
}

// A read of the truth, taken over the held copy (or held as a copy of
// another worker's survey, dropped at its deadline plus the TTL if nobody
// asks again).
HeldJobs::Applied JobPool::learn(const Ledger::Fetched& read)
{
    auto applied = held_.apply(read.job, [&] { return ledger_.stamp(read); });
    if (applied.finished_now) finished(applied.view);
    else if (applied.new_copy) arm_expiry(read.job.id, applied.view.deadline_ms);
    return applied;
}

// ---------------------------------------------------------------------------
// Cancellation and completion
// ---------------------------------------------------------------------------

CancelOutcome JobPool::cancel(const JobId& id)
{
    for (int round = 0; round < max_cancel_rounds; ++round) {
        const Lookup found = find(id);
        if (found.status == LookupStatus::unavailable) return CancelOutcome::store_failed;
        if (found.status != LookupStatus::found) return CancelOutcome::unknown;
        if (found.job->state == JobState::done) return CancelOutcome::already_done;
        if (found.job->state == JobState::cancelled) return CancelOutcome::already_cancelled;
        if (found.job->writing) {  // another change of it is being stored: its outcome decides
            store_.wait(found.job->writing_seq, store_deadline());
            continue;
        }
        std::optional<Seq> seq;
        bool raced = false;
        held_.change(id, [&](Job& j) {
            raced = j.finished() || j.writing.has_value();
            if (raced) return Edit::none;
            Job target = j;
            target.state = JobState::cancelled;
            target.finished_ms = clock_.now_ms();
            seq = write_finish(j, std::move(target), storage::JobStore::Committer::caller);
            return seq ? Edit::changed : Edit::none;
        });
        if (raced) continue;
        if (!seq) return CancelOutcome::store_failed;
        const Durability outcome = store_.wait(*seq, store_deadline());
        if (outcome == Durability::committed) return CancelOutcome::cancelled;
        if (outcome == Durability::failed) return CancelOutcome::store_failed;
        // skipped: finished elsewhere first; the next round reads how
    }
    return CancelOutcome::store_failed;
}

// Queues the finish write of a held job (under its shard lock) and marks it
// in flight; nullopt when the store takes no writes.
std::optional<JobPool::Seq> JobPool::write_finish(Job& held, Job target, storage::JobStore::Committer by)
{
    target.writing.reset();
    const auto seq = store_.put(storage::WriteKind::finish, to_record(target), by,
                                [this, target](Durability d) { settle_finish(target, d); });
    if (!seq) return std::nullopt;
    held.writing = target.state;
    held.writing_seq = last_seq_ = *seq;
    return seq;
}

// A finish write settled (HeldJobs::finish_settled says what memory does).
void JobPool::settle_finish(const Job& target, Durability outcome)
{
    const Millis now = clock_.now_ms();
    const auto settled = held_.finish_settled(target, outcome, now);
    if (outcome == Durability::committed) {  // counted here even if memory learned it first (the feed, a read)
        if (target.state == JobState::done) counters_.completed(target, now);
        else counters_.cancelled();
        if (!settled.learned_first) finished(target);
        if (target.state == JobState::cancelled) log::info("job_cancelled").kv("job", target.id.str());
        else if (log::enabled(log::Level::debug)) log::debug("job_finished").kv("job", target.id.str()).kv("state", "done");
    } else if (outcome == Durability::skipped) {  // a copy now: waiters read the truth; dropped if nobody asks
        waiters_.notify(target.id);
        arm_expiry(target.id, std::max(now, settled.deadline_ms));
    } else if (settled.retry) {
        arm_retry(target.id, now);
    }
}

// At the deadline, on a pool thread: writes the done record; nobody waits
// for it (the writer commits), and memory shows done once it is stored.
void JobPool::complete(const JobId& id)
{
    const auto r = rules();
    bool refused = false;
    held_.change(id, [&](Job& j) {
        // Cancelled, not ours, or a write in flight whose settling re-arms us.
        if (!j.owned || j.state != JobState::running || j.writing) return Edit::none;
        Job target = j;
        target.state = JobState::done;
        target.finished_ms = clock_.now_ms();
        target.result = survey_sentence(target.id, target.animal, *r->vocabulary);
        refused = !write_finish(j, std::move(target), storage::JobStore::Committer::writer);
        return refused ? Edit::none : Edit::changed;
    });
    if (refused) arm_retry(id, clock_.now_ms());
}

// ---------------------------------------------------------------------------
// Expiry, timers, what the ledger learns
// ---------------------------------------------------------------------------

// A finished job's result expired: memory forgets it, and the ledger its record.
void JobPool::expire(const JobId& id)
{
    std::optional<Millis> later;
    const auto gone = held_.expire(id, clock_.now_ms(), rules()->result_ttl_ms, later);
    if (later) timers_.arm({*later, id, TimerKind::expire});
    if (!gone) return;
    if (const auto key = key_of(*gone)) keys_.release(*key, id);
    if (gone->finished() && ledger_.expired(*gone)) counters_.expired(1);
    if (log::enabled(log::Level::debug)) log::debug("job_expired").kv("job", id.str());
}

void JobPool::on_timer(const Timer& timer)
{
    switch (timer.kind) {
    case TimerKind::complete: complete(timer.job); break;
    case TimerKind::expire: expire(timer.job); break;
    case TimerKind::recheck: ledger_.recheck(); break;
    }
}

void JobPool::cancelled_elsewhere(const JobId& id, Millis finished_ms)
{
    if (const auto cancelled = held_.cancelled_elsewhere(id, finished_ms)) finished(*cancelled);
}

// The truth has no record: a held copy not being written goes, and its waiters answer.
void JobPool::vanished(const JobId& id)
{
    held_.change(id, [](Job& j) { return j.writing ? Edit::none : Edit::erase; });
    waiters_.notify(id);
}

// A job just finished in memory: its waiters wake, its result's TTL starts.
void JobPool::finished(const Job& job)
{
    waiters_.notify(job.id);
    arm_expiry(job.id, job.finished_ms);
}

// The job's result (or copy) goes a result_ttl after `from`.
void JobPool::arm_expiry(const JobId& id, Millis from)
{
    timers_.arm({from + rules()->result_ttl_ms, id, TimerKind::expire});
}

// A completion the store refused or failed is tried again.
void JobPool::arm_retry(const JobId& id, Millis now)
{
    timers_.arm({now + shape_.retry_ms, id, TimerKind::complete});
}

storage::JobStore::Deadline JobPool::store_deadline() const
{
    return std::chrono::steady_clock::now() + std::chrono::milliseconds(shape_.store_wait_ms);
}

PoolStats JobPool::stats() const
{
    PoolStats s;
    counters_.fill(s);
    s.started_ms = started_ms_;
    s.held = held_.size();
    s.timers = timers_.size();
    s.pool_threads = timers_.threads();
    s.pool_queue_depth = timers_.queue_depth();
    s.pool_busy = timers_.busy();
    s.store_healthy = store_.available();
    s.backend = store_.backend();
    s.worker = shape_.worker;
    s.shared = store_.shared() != nullptr;
    s.store = store_.stats();
    return s;
}

}  // namespace zk
