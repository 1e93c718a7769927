// Survey lifecycle: queued (being stored) → running → done, or → cancelled;
// finished jobs expire after the result TTL. The rules are in job_pool.h;
// threads and lock order: docs/concurrency.md.

#include "domain/job_pool.h"

#include <algorithm>

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

// The stored fields of `truth` over a held copy; this worker's hold stays.
void take_stored(Job& held, const Job& truth)
{
    held.state = truth.state;
    held.started_ms = truth.started_ms;
    held.finished_ms = truth.finished_ms;
    held.result = truth.result;
}

}  // namespace

JobPool::JobPool(const Clock& clock, storage::JobStore& store, Ledger& ledger, PoolShape shape, Rules rules)
    : clock_(clock),
      started_ms_(clock.now_ms()),
      store_(store),
      ledger_(ledger),
      shape_(std::move(shape)),
      rules_(std::move(rules)),
      watchers_(shape_.max_waiters),
      timers_(clock, shape_.timers, [this](const Timer& t) { on_timer(t); })
{
}

JobPool::~JobPool() { stop(); }

void JobPool::start()
{
    ledger_.restore([this](Job&& j) { hold_restored(std::move(j)); });
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
void JobPool::hold_restored(Job&& j)
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
        timers_.arm({j.finished_ms + rules()->result_ttl_ms, j.id, TimerKind::expire});
    }
    if (const auto key = key_of(j)) keys_.restore(*key, j.id, j.animal);
    counters_.moved({}, PoolCounters::place(j));
    table_.put(j);
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
    Job job = new_job(animal, key, *r);
    // The claim settles a race between two first creations with one key on
    // this worker: the loser is answered as a repeat of the winner.
    if (key && keys_.claim(*key, job.id, animal)) {
        counters_.unadmit();
        if (auto earlier = replay(*key, animal)) return std::move(*earlier);
        return {std::nullopt, CreateError::key_in_flight};
    }
    return store_new(std::move(job), key);
}

Job JobPool::new_job(std::string_view animal, const std::optional<IdempotencyKey>& key, const Rules& rules) const
{
    Job job;
    job.created_ms = clock_.now_ms();
    job.id = JobId::generate(job.created_ms);
    job.animal = animal;
    job.duration_ms = static_cast<std::int32_t>(survey_duration(job.id, rules.workload));
    job.deadline_ms = job.created_ms + job.duration_ms;
    job.owned = true;
    if (key) {
        job.idem_scope = key->scope;
        job.idem_key = key->key;
    }
    return job;
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
        if (auto job = table_.get(held->job)) return Created{std::move(job), CreateError::none, true};
        return std::nullopt;  // expired a moment ago: its release is on its way
    }
    Ledger::Fetched f = ledger_.fetch_key(key);
    switch (f.status) {
    case Ledger::Fetched::Status::unavailable: return Created{std::nullopt, CreateError::store_failed};
    case Ledger::Fetched::Status::absent: return std::nullopt;
    case Ledger::Fetched::Status::found: break;
    }
    if (f.job.animal != animal) return Created{std::nullopt, CreateError::key_reused};
    bool finished_now = false;
    Job truth = std::move(f.job);
    return Created{apply_truth(std::move(truth), f, finished_now), CreateError::none, true};
}

// Stores a new job and answers once the store has: its first write is
// queued under the shard lock, before anyone can see the job, so any later
// change of it is queued after. It is stored running, started at its
// creation; memory shows it queued until the write settles. Counted in the
// admission by the caller.
Created JobPool::store_new(Job job, const std::optional<IdempotencyKey>& key)
{
    const JobId id = job.id;
    const std::string animal = job.animal;
    std::optional<Seq> seq;
    table_.insert(std::move(job), [&](Job& j) {
        Job stored = j;
        stored.state = JobState::running;
        stored.started_ms = stored.created_ms;
        seq = store_.put(storage::WriteKind::create, to_record(stored), storage::JobStore::Committer::caller,
                         [this, id](Durability d) { settle_creation(id, d); });
        if (!seq) return false;
        j.writing = JobState::running;
        j.writing_seq = *seq;
        counters_.moved({}, PoolCounters::place(j));
        return true;
    });
    if (!seq) {  // the store takes no writes now
        counters_.unadmit();
        if (key) keys_.release(*key, id);
        return {std::nullopt, CreateError::store_failed};
    }
    last_seq_ = *seq;
    switch (store_.wait(*seq, store_deadline())) {
    case Durability::committed: break;
    case Durability::skipped:  // another worker's creation holds the key (the store's unique index)
        if (key)
            if (auto earlier = replay(*key, animal)) return std::move(*earlier);
        return {std::nullopt, CreateError::key_in_flight};
    case Durability::failed: return {std::nullopt, CreateError::store_failed};
    }
    auto held = table_.get(id);
    return {std::move(held), CreateError::none};
}

// The creation's write settled: begun, or dropped from memory.
void JobPool::settle_creation(const JobId& id, Durability outcome)
{
    std::optional<Job> begun, dropped;
    const std::uint64_t epoch = ledger_.epoch();
    change(id, [&](Job& j) {
        j.writing.reset();
        if (outcome != Durability::committed) {
            dropped = j;
            return Edit::erase;
        }
        j.state = JobState::running;
        j.started_ms = j.created_ms;
        j.seen_in = epoch;
        begun = j;
        return Edit::changed;
    });
    if (dropped) {
        if (const auto key = key_of(*dropped)) keys_.release(*key, id);
        return;
    }
    if (!begun) return;
    counters_.created();
    if (const auto key = key_of(*begun)) keys_.commit(*key, id);
    timers_.arm({begun->deadline_ms, id, TimerKind::complete});
    if (log::enabled(log::Level::debug)) log::debug("job_started").kv("job", id.str()).kv("deadline_ms", begun->deadline_ms);
}

// ---------------------------------------------------------------------------
// Lookup
// ---------------------------------------------------------------------------

Lookup JobPool::find(const JobId& id)
{
    auto held = table_.get(id);
    if (held && ledger_.vouches(*held, clock_.now_ms())) return {LookupStatus::found, std::move(held)};
    Ledger::Fetched f = ledger_.fetch(id);
    if (f.status == Ledger::Fetched::Status::unavailable) return {LookupStatus::unavailable, std::nullopt};
    if (f.status == Ledger::Fetched::Status::found) {
        bool finished_now = false;
        Job truth = std::move(f.job);
        return {LookupStatus::found, apply_truth(std::move(truth), f, finished_now)};
    }
    if (held && held->writing) return {LookupStatus::found, std::move(held)};  // being created: not stored yet
    if (held) vanished(id);
    // Ids carry their creation time: an id older than the TTL that nobody
    // holds most likely finished and expired.
    const auto born = id.created_ms();
    if (born && *born + rules()->result_ttl_ms < clock_.now_ms()) return {LookupStatus::expired, std::nullopt};
    return {LookupStatus::unknown, std::nullopt};
}

// What the truth says, over the held copy (or as a new copy, not ours).
// A copy with its own write in flight keeps its state unless the truth says
// finished (that write will be skipped); a finished copy is final.
Job JobPool::apply_truth(Job truth, const Ledger::Fetched& read, bool& finished_now)
{
    Job view;
    bool fresh_copy = false;
    const JobId id = truth.id;
    table_.upsert(id, [&](Job& j, bool held) {
        const auto before = held ? PoolCounters::place(j) : PoolCounters::Place{};
        const std::uint64_t epoch = ledger_.stamp(read);
        if (!held) {
            j = std::move(truth);
            j.seen_in = epoch;
            fresh_copy = true;
            finished_now = j.finished();
        } else if (!j.finished() && (truth.finished() || !j.writing)) {
            finished_now = truth.finished();
            take_stored(j, truth);
            j.seen_in = std::max(j.seen_in, epoch);
        }
        counters_.moved(before, PoolCounters::place(j));
        view = j;
        return Edit::changed;
    });
    const Millis ttl = rules()->result_ttl_ms;
    if (finished_now) finished(view);
    else if (fresh_copy) timers_.arm({view.deadline_ms + ttl, view.id, TimerKind::expire});  // a copy of another's survey
    return view;
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
        change(id, [&](Job& j) {
            if (j.finished() || j.writing) {
                raced = true;
                return Edit::none;
            }
            Job target = j;
            target.state = JobState::cancelled;
            target.finished_ms = clock_.now_ms();
            seq = write_finish(j, std::move(target), storage::JobStore::Committer::caller);
            return seq ? Edit::changed : Edit::none;
        });
        if (raced) continue;
        if (!seq) return CancelOutcome::store_failed;
        switch (store_.wait(*seq, store_deadline())) {
        case Durability::committed: return CancelOutcome::cancelled;
        case Durability::skipped: continue;  // finished elsewhere first: the next round reads how
        case Durability::failed: return CancelOutcome::store_failed;
        }
    }
    return CancelOutcome::store_failed;
}

// Queues the finish write of a held job (under its shard lock) and marks it
// in flight; nullopt when the store takes no writes.
std::optional<JobPool::Seq> JobPool::write_finish(Job& held, Job target, storage::JobStore::Committer by)
{
    target.writing.reset();
    const auto record = to_record(target);
    const auto seq = store_.put(storage::WriteKind::finish, record, by,
                                [this, target = std::move(target)](Durability d) { settle_finish(target, d); });
    if (!seq) return std::nullopt;
    held.writing = target.state;
    held.writing_seq = *seq;
    last_seq_ = *seq;
    return seq;
}

// A finish write settled. committed: memory takes it. skipped: another
// worker finished the job first; the copy no longer vouches for itself (the
// next lookup reads the truth) and is no longer ours to complete. failed:
// memory stays as it was; a survey of ours past its deadline tries again.
void JobPool::settle_finish(const Job& target, Durability outcome)
{
    const Millis now = clock_.now_ms();
    bool done_here = false, retry = false, stale = false;
    Millis deadline = 0;
    change(target.id, [&](Job& j) {
        j.writing.reset();
        if (j.finished()) return Edit::changed;  // learned meanwhile (the cancel feed)
        switch (outcome) {
        case Durability::committed:
            take_stored(j, target);
            done_here = true;
            break;
        case Durability::skipped:
            j.seen_in = 0;
            j.owned = false;
            stale = true;
            deadline = j.deadline_ms;
            break;
        case Durability::failed: retry = j.owned && j.state == JobState::running && now >= j.deadline_ms; break;
        }
        return Edit::changed;
    });
    if (done_here) {
        if (target.state == JobState::done) counters_.completed(target, now);
        else counters_.cancelled();
        finished(target);
        if (log::enabled(log::Level::debug)) log::debug("job_finished").kv("job", target.id.str()).kv("state", to_string(target.state));
    }
    if (target.state == JobState::cancelled && outcome == Durability::committed)
        log::info("job_cancelled").kv("job", target.id.str());
    if (stale) {  // no longer ours: a copy, dropped like any other if nobody asks
        notify(target.id);  // waiters read the truth
        timers_.arm({std::max(now, deadline) + rules()->result_ttl_ms, target.id, TimerKind::expire});
    }
    if (retry) timers_.arm({now + shape_.retry_ms, target.id, TimerKind::complete});
}

// At the deadline, on a pool thread: writes the done record; nobody waits
// for it (the writer commits), and memory shows done once it is stored.
void JobPool::complete(const JobId& id)
{
    const auto r = rules();
    bool refused = false;
    change(id, [&](Job& j) {
        // Cancelled, not ours, or a write in flight whose settling re-arms us.
        if (!j.owned || j.state != JobState::running || j.writing) return Edit::none;
        Job target = j;
        target.state = JobState::done;
        target.finished_ms = clock_.now_ms();
        target.result = survey_sentence(target.id, target.animal, *r->vocabulary);
        refused = !write_finish(j, std::move(target), storage::JobStore::Committer::writer);
        return refused ? Edit::none : Edit::changed;
    });
    if (refused) timers_.arm({clock_.now_ms() + shape_.retry_ms, id, TimerKind::complete});
}

// ---------------------------------------------------------------------------
// Expiry, timers, what the ledger learns
// ---------------------------------------------------------------------------

// A finished job's result expired: memory forgets it (and the ledger its
// record). A copy of another worker's survey that nobody asked about since
// goes at its deadline plus the TTL, finished or not.
void JobPool::expire(const JobId& id)
{
    const Millis now = clock_.now_ms();
    const Millis ttl = rules()->result_ttl_ms;
    std::optional<Millis> later;
    std::optional<Job> gone;
    change(id, [&](Job& j) {
        if (j.writing) return Edit::none;  // its settling arms what comes next
        const Millis until = j.finished() ? j.finished_ms + ttl : !j.owned ? j.deadline_ms + ttl : 0;
        if (until == 0) return Edit::none;  // ours and running: its completion comes first
        if (until > now) {                  // the TTL grew since this timer was set
            later = until;
            return Edit::none;
        }
        gone = j;
        return Edit::erase;
    });
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

void JobPool::learned(Job truth, const Ledger::Fetched& read)
{
    bool finished_now = false;
    apply_truth(std::move(truth), read, finished_now);
}

void JobPool::cancelled_elsewhere(const JobId& id, Millis finished_ms)
{
    std::optional<Job> cancelled;
    change(id, [&](Job& j) {
        if (j.finished()) return Edit::none;
        j.state = JobState::cancelled;
        j.finished_ms = finished_ms;
        cancelled = j;
        return Edit::changed;
    });
    if (cancelled) finished(*cancelled);
}

// The truth has no record: a held copy not being written goes, and its waiters answer.
void JobPool::vanished(const JobId& id)
{
    change(id, [](Job& j) { return j.writing ? Edit::none : Edit::erase; });
    notify(id);
}

void JobPool::swept(std::size_t rescued, std::size_t expired)
{
    counters_.rescued(rescued);
    counters_.expired(expired);
}

// A job just finished in memory: its waiters wake, its result's TTL starts.
void JobPool::finished(const Job& job)
{
    notify(job.id);
    timers_.arm({job.finished_ms + rules()->result_ttl_ms, job.id, TimerKind::expire});
}

// Runs `edit` on the held job under its shard lock, keeping the counters in step.
bool JobPool::change(const JobId& id, const std::function<Edit(Job&)>& edit)
{
    return table_.update(id, [&](Job& j) {
        const auto before = PoolCounters::place(j);
        const Edit e = edit(j);
        counters_.moved(before, e == Edit::erase ? PoolCounters::Place{} : PoolCounters::place(j));
        return e;
    });
}

storage::JobStore::Deadline JobPool::store_deadline() const
{
    return std::chrono::steady_clock::now() + std::chrono::milliseconds(shape_.store_wait_ms);
}

// ---------------------------------------------------------------------------
// Waiting and figures
// ---------------------------------------------------------------------------

std::optional<WatchRegistry::Token> JobPool::watch(const JobId& id, WatchRegistry::Callback callback,
                                                  Millis deadline_ms)
{
    const auto token = watchers_.add(id, std::move(callback));
    if (!token) return std::nullopt;
    ledger_.watched(id, deadline_ms);
    // After the add: a finish from here on fires it; one before is seen here.
    const auto job = table_.get(id);
    if ((!job || job->finished()) && watchers_.fire_one(*token)) ledger_.unwatched(id, 1);
    return token;
}

bool JobPool::unwatch(WatchRegistry::Token token)
{
    const auto job = watchers_.take(token);
    if (job) ledger_.unwatched(*job, 1);
    return job.has_value();
}

void JobPool::notify(const JobId& id)
{
    if (const std::size_t fired = watchers_.fire(id)) ledger_.unwatched(id, fired);
}

PoolStats JobPool::stats() const
{
    PoolStats s;
    counters_.fill(s);
    s.started_ms = started_ms_;
    s.held = table_.size();
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
