// Survey lifecycle: queued → running → done, or → cancelled; finished jobs
// expire after the result TTL. Threads and lock order: docs/concurrency.md.

#include "domain/job_pool.h"

#include "util/log.h"

#include <algorithm>
#include <chrono>
#include <map>

namespace zk {

namespace {

const std::vector<double> survey_buckets{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 12.5, 15, 17.5, 20, 30, 60, 120};
const std::vector<double> lag_buckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

storage::JobRecord to_record(const Job& j)
{
    storage::JobRecord r;
    r.id = j.id.bytes();
    r.animal = j.animal;
    r.state = static_cast<storage::RecordState>(j.state);
    r.created_ms = j.created_ms;
    r.started_ms = j.started_ms;
    r.deadline_ms = j.deadline_ms;
    r.finished_ms = j.finished_ms;
    r.duration_ms = j.duration_ms;
    r.result = j.result;
    r.idem_scope = j.idem_scope;
    r.idem_key = j.idem_key;
    return r;
}

Job from_record(storage::JobRecord&& r)
{
    Job j;
    j.id = JobId(r.id);
    j.animal = std::move(r.animal);
    j.state = static_cast<JobState>(r.state);
    j.created_ms = r.created_ms;
    j.started_ms = r.started_ms;
    j.deadline_ms = r.deadline_ms;
    j.finished_ms = r.finished_ms;
    j.duration_ms = r.duration_ms;
    j.result = std::move(r.result);
    j.idem_scope = std::move(r.idem_scope);
    j.idem_key = std::move(r.idem_key);
    return j;
}

std::optional<IdempotencyKey> key_of(const Job& j)
{
    if (j.idem_key.empty()) return std::nullopt;
    return IdempotencyKey{j.idem_scope, j.idem_key};
}

}  // namespace

JobPool::JobPool(const Clock& clock, storage::JobStore* store, PoolShape shape, Rules rules)
    : clock_(clock),
      started_ms_(clock.now_ms()),
      store_(store),
      shared_(store ? store->shared() : nullptr),
      shape_(shape),
      workers_(shape.threads, shape.queue_capacity),
      rules_(std::make_shared<const Rules>(std::move(rules))),
      survey_seconds_(survey_buckets),
      completion_lag_seconds_(lag_buckets),
      watchers_(shape.max_waiters),
      remote_(shape.remote)
{
}

JobPool::~JobPool() { stop(); }

void JobPool::start()
{
    restore();
    timer_thread_ = std::thread([this] { run_timers(); });
}

void JobPool::stop()
{
    stopping_ = true;
    {
        std::lock_guard lock(timer_mutex_);
        timers_stopping_ = true;
    }
    timer_cv_.notify_all();
    if (timer_thread_.joinable()) timer_thread_.join();
    // Queued starts and completions still run; whatever they do not reach is
    // in the store and resumes at the next start.
    workers_.stop();
}

// Loads every stored job. Unfinished ones keep their stored deadline, so a
// survey whose deadline passed while we were down completes at once. Queued
// ones are begun here, before any thread runs: submitting them to the pool
// would block on its bounded queue with nobody yet draining it.
void JobPool::restore()
{
    // A shared store is read per request: its jobs are every worker's.
    if (!store_ || shared_) return;
    const Millis now = clock_.now_ms();
    const Millis ttl = rules()->result_ttl_ms;
    std::lock_guard lock(timer_mutex_);
    store_->load([&](storage::JobRecord&& r) {
        Job j = from_record(std::move(r));
        if (j.state == JobState::queued) {  // not written, as in begin()
            j.state = JobState::running;
            j.started_ms = now;
        }
        if (j.state == JobState::running) {
            ++running_;
            ++in_flight_;
            timers_.add({j.deadline_ms, j.id, TimerKind::complete});
        } else {
            timers_.add({j.finished_ms + ttl, j.id, TimerKind::expire});
        }
        if (const auto key = key_of(j)) keys_.restore(*key, j.id, j.animal);
        table_.put(j);
    });
}

Created JobPool::create(std::string_view animal, const std::optional<IdempotencyKey>& key)
{
    if (stopping_) return {std::nullopt, CreateError::stopping};
    if (store_ && !store_->healthy()) return {std::nullopt, CreateError::store_failed};
    // Before the animal and the limit: a repeat is answered as the first
    // creation was, even once max_jobs is reached or the animal is gone.
    if (key)
        if (auto earlier = shared_ ? replay_shared(*key, animal) : replay(*key, animal)) return std::move(*earlier);
    const auto r = rules();
    if (!r->vocabulary->has_animal(animal)) return {std::nullopt, CreateError::unknown_animal};
    if (in_flight_.fetch_add(1) >= r->max_jobs) {
        --in_flight_;
        return {std::nullopt, CreateError::too_many_jobs};
    }
    Job job;
    job.created_ms = clock_.now_ms();
    job.id = JobId::generate(job.created_ms);
    job.animal = animal;
    job.duration_ms = static_cast<std::int32_t>(survey_duration(job.id, r->workload));
    job.deadline_ms = job.created_ms + job.duration_ms;
    if (key) {
        job.idem_scope = key->scope;
        job.idem_key = key->key;
    }
    // The claim settles a race between two first creations with one key:
    // the loser is answered as a repeat of the winner.
    if (key && !shared_)
        if (auto holder = keys_.claim(*key, job.id, animal)) {
            --in_flight_;
            if (auto earlier = replay(*key, animal)) return std::move(*earlier);
            return {std::nullopt, CreateError::key_in_flight};
        }
    return store_new(std::move(job), key);
}

// A repeat of a keyed creation this worker holds (memory is the truth):
// nullopt when the key is free. A claim not yet durable is not answered
// with its job: that creation may still fail, and its client be told so.
std::optional<Created> JobPool::replay(const IdempotencyKey& key, std::string_view animal)
{
    const auto held = keys_.find(key);
    if (!held) return std::nullopt;
    if (held->animal != animal) return Created{std::nullopt, CreateError::key_reused};
    if (!held->committed) return Created{std::nullopt, CreateError::key_in_flight};
    auto job = table_.get(held->job);
    if (!job) return std::nullopt;  // expired a moment ago: its release is on its way
    return Created{std::move(job), CreateError::none, true};
}

// The database is the truth: the job holding the key, on whichever worker
// it was created.
std::optional<Created> JobPool::replay_shared(const IdempotencyKey& key, std::string_view animal)
{
    std::optional<storage::JobRecord> record;
    if (!shared_->fetch_key(key.scope, key.key, record)) return Created{std::nullopt, CreateError::store_failed};
    if (!record) return std::nullopt;
    if (record->animal != animal) return Created{std::nullopt, CreateError::key_reused};
    return Created{from_record(std::move(*record)), CreateError::none, true};
}

// Records a new job, makes its creation durable and begins it. Counted in
// in_flight_ by the caller.
Created JobPool::store_new(Job job, const std::optional<IdempotencyKey>& key)
{
    // The first write is queued under the shard lock, before the job can be
    // seen: a cancel must find it queued after it, or the store would keep
    // the queued row (its last write) and a restart would run the survey.
    storage::JobStore::Seq seq = 0;
    try {
        table_.insert(job, [&](const Job& j) {
            seq = persist(j, storage::JobStore::Committer::caller);
            ++queued_;  // under the shard lock: see cancel()
        });
    } catch (...) {  // the write could not even be queued (bad_alloc): nothing was inserted
        --in_flight_;
        if (key && !shared_) keys_.release(*key, job.id);
        throw;
    }
    // Durable before it can run: a survey the client is told failed must
    // not run on under an id nobody holds.
    const auto outcome = store_ ? store_->wait(seq) : storage::JobStore::Durability::committed;
    if (outcome != storage::JobStore::Durability::committed) {
        forget(job.id);
        if (key && !shared_) keys_.release(*key, job.id);
        // Skipped: another worker's creation holds the key (the unique index).
        if (outcome == storage::JobStore::Durability::skipped && key && shared_) {
            if (auto earlier = replay_shared(*key, job.animal)) return std::move(*earlier);
            return {std::nullopt, CreateError::key_in_flight};
        }
        return {std::nullopt, CreateError::store_failed};
    }
    if (key && !shared_) keys_.commit(*key, job.id);
    ++created_;
    // Begun here rather than on a pool thread: beginning is only a state
    // change and a timer, and a hand-off per creation cost a context switch
    // and much of the worker's CPU per creation (figures in docs/performance.md).
    if (const Millis started = begin(job.id)) {
        job.state = JobState::running;
        job.started_ms = started;
    }
    return {std::move(job), CreateError::none};
}

// Undoes a creation that was refused after the job was recorded.
void JobPool::forget(const JobId& id)
{
    table_.erase(id);
    if (store_) store_->erase(id.bytes());
    --queued_;
    --in_flight_;
}

Lookup JobPool::find(const JobId& id)
{
    auto job = table_.get(id);
    if (job && (!shared_ || job->finished())) return {LookupStatus::found, std::move(job)};
    if (shared_) return find_shared(id, std::move(job));
    // Ids carry their creation time: an id older than the TTL that we no
    // longer hold most likely finished and expired.
    const auto born = id.created_ms();
    if (born && *born + rules()->result_ttl_ms < clock_.now_ms()) return {LookupStatus::expired, std::nullopt};
    return {LookupStatus::unknown, std::nullopt};
}

// The database is the truth about a job not finished here: another worker
// may have cancelled it, or completed it for a worker that died. A finished
// answer never changes, so it is kept until its result expires.
Lookup JobPool::find_shared(const JobId& id, std::optional<Job> held)
{
    std::optional<storage::JobRecord> record;
    if (!shared_->fetch(id.bytes(), record)) return {LookupStatus::unavailable, std::nullopt};
    if (!record) {
        const auto born = id.created_ms();
        const bool old = born && *born + rules()->result_ttl_ms < clock_.now_ms();
        return {old ? LookupStatus::expired : LookupStatus::unknown, std::nullopt};
    }
    Job job = from_record(std::move(*record));
    if (job.finished()) remember(job);
    else if (held) job.started_ms = held->started_ms;  // not written: see begin()
    return {LookupStatus::found, std::move(job)};
}

// Keeps a finished job read from the shared store. If it was one of ours
// still running here (cancelled through another worker), it leaves our counts.
void JobPool::remember(const Job& finished)
{
    bool was_ours = false;
    const bool held = table_.update(finished.id, [&](Job& j) {
        if (j.finished()) return false;
        --(j.state == JobState::queued ? queued_ : running_);
        was_ours = true;
        j = finished;
        return true;
    });
    if (was_ours) --in_flight_;
    if (!held && !was_ours) table_.put(finished);
    arm({finished.finished_ms + rules()->result_ttl_ms, finished.id, TimerKind::expire});
}

CancelOutcome JobPool::cancel(const JobId& id)
{
    if (shared_) return cancel_shared(id);
    const Millis now = clock_.now_ms();
    CancelOutcome outcome = CancelOutcome::unknown;
    storage::JobStore::Seq seq = 0;
    table_.update(id, [&](Job& j) {
        if (j.state == JobState::done) outcome = CancelOutcome::already_done;
        else if (j.state == JobState::cancelled) outcome = CancelOutcome::already_cancelled;
        else {
            Job next = j;  // persisted first: a store that throws leaves memory as it was
            next.state = JobState::cancelled;
            next.finished_ms = now;
            seq = persist(next, storage::JobStore::Committer::caller);
            // Counted under the shard lock, as begin() does: a cancel racing
            // a begin must not take running_ below zero for a moment.
            --(j.state == JobState::queued ? queued_ : running_);
            j = std::move(next);
            outcome = CancelOutcome::cancelled;
        }
        return outcome == CancelOutcome::cancelled;
    });
    if (outcome != CancelOutcome::cancelled) return outcome;
    --in_flight_;
    ++cancelled_;
    // The pending completion timer finds the job cancelled and does nothing.
    arm({now + rules()->result_ttl_ms, id, TimerKind::expire});
    watchers_.fire(id);
    const bool stored = durable(seq);
    log::info("job_cancelled").kv("job", id.str()).kv("stored", stored ? "yes" : "no");
    return stored ? outcome : CancelOutcome::store_failed;
}

// The database decides: the cancelled row is written only over an
// unfinished one, so a cancel racing a completion on another worker either
// wins or is told the job is done, never both.
CancelOutcome JobPool::cancel_shared(const JobId& id)
{
    const Lookup found = find(id);
    if (found.status == LookupStatus::unavailable) return CancelOutcome::store_failed;
    if (found.status != LookupStatus::found) return CancelOutcome::unknown;
    const Job& job = *found.job;
    if (job.state == JobState::done) return CancelOutcome::already_done;
    if (job.state == JobState::cancelled) return CancelOutcome::already_cancelled;
    const Millis now = clock_.now_ms();
    Job next = job;
    next.state = JobState::cancelled;
    next.finished_ms = now;
    switch (store_->wait(persist(next, storage::JobStore::Committer::caller))) {
    case storage::JobStore::Durability::failed: return CancelOutcome::store_failed;
    case storage::JobStore::Durability::skipped: {  // finished elsewhere meanwhile
        const Lookup after = find(id);
        if (after.status == LookupStatus::unavailable) return CancelOutcome::store_failed;
        if (after.job && after.job->state == JobState::cancelled) return CancelOutcome::already_cancelled;
        return CancelOutcome::already_done;
    }
    case storage::JobStore::Durability::committed: break;
    }
    ++cancelled_;
    remember(next);
    notify(id);  // durable, and held: the waiter's answer reads it from memory
    log::info("job_cancelled").kv("job", id.str()).kv("stored", "yes");
    return CancelOutcome::cancelled;
}

void JobPool::reconfigure(Rules rules)
{
    auto next = std::make_shared<const Rules>(std::move(rules));
    std::lock_guard lock(rules_mutex_);
    rules_ = std::move(next);
}

std::shared_ptr<const Rules> JobPool::rules() const
{
    std::lock_guard lock(rules_mutex_);
    return rules_;
}

PoolStats JobPool::stats() const
{
    PoolStats s;
    s.started_ms = started_ms_;
    s.queued = queued_;
    s.running = running_;
    s.held = table_.size();
    {
        std::lock_guard lock(timer_mutex_);
        s.timers = timers_.size();
    }
    s.pool_threads = shape_.threads;
    s.store_healthy = !store_ || (store_->healthy() && (!shared_ || shared_->reachable()));
    s.backend = store_ ? store_->backend() : "memory";
    s.worker = shape_.worker;
    s.shared = shared_ != nullptr;
    s.rescued_total = rescued_;
    s.purged_total = purged_;
    s.pool_queue_depth = workers_.queue_depth();
    s.pool_busy = workers_.busy();
    s.created_total = created_;
    s.completed_total = completed_;
    s.cancelled_total = cancelled_;
    s.expired_total = expired_;
    s.survey_seconds = survey_seconds_.snapshot();
    s.completion_lag_seconds = completion_lag_seconds_.snapshot();
    if (store_) s.store = store_->stats();
    return s;
}

std::optional<std::vector<Job>> JobPool::list(const JobFilter& filter) const
{
    if (shared_) {
        storage::ListQuery q;
        if (filter.state) q.state = static_cast<storage::RecordState>(*filter.state);
        q.animal = filter.animal;
        if (filter.before) q.before = filter.before->bytes();
        q.limit = filter.limit;
        std::vector<storage::JobRecord> rows;
        if (!shared_->list(q, rows)) return std::nullopt;
        std::vector<Job> jobs;
        jobs.reserve(rows.size());
        for (auto& r : rows) jobs.push_back(from_record(std::move(r)));
        return jobs;
    }
    // A min-heap on id keeps the newest `limit` matches (v7 ids sort by time).
    if (filter.limit == 0) return std::vector<Job>{};  // the heap test below reads front()
    auto older = [](const Job& a, const Job& b) { return a.id > b.id; };
    std::vector<Job> heap;
    table_.for_each([&](const Job& j) {
        if (filter.state && j.state != *filter.state) return;
        if (filter.animal && j.animal != *filter.animal) return;
        if (filter.before && !(j.id < *filter.before)) return;
        if (heap.size() == filter.limit && !(heap.front().id < j.id)) return;
        heap.push_back(j);
        std::push_heap(heap.begin(), heap.end(), older);
        if (heap.size() > filter.limit) {
            std::pop_heap(heap.begin(), heap.end(), older);
            heap.pop_back();
        }
    });
    std::sort(heap.begin(), heap.end(), [](const Job& a, const Job& b) { return b.id < a.id; });
    return std::optional<std::vector<Job>>(std::move(heap));
}

void JobPool::wake()
{
    // Passing through the mutex puts this call either before the timer
    // thread's next clock read or after it has started waiting; a bare
    // notify between those two points would be lost.
    { std::lock_guard lock(timer_mutex_); }
    timer_cv_.notify_all();
}

std::optional<WatchRegistry::Token> JobPool::watch(const JobId& id, WatchRegistry::Callback callback,
                                                  Millis deadline_ms)
{
    if (shared_) return watch_shared(id, std::move(callback), deadline_ms);
    const auto token = watchers_.add(id, std::move(callback));
    if (!token) return std::nullopt;
    // After the add: a finish from here on fires it; one before is seen here.
    const auto job = table_.get(id);
    if (!job || job->finished()) watchers_.fire_one(*token);
    return token;
}

// Shared store: the database is the truth, and this worker may never see the
// job finish (another runs it, or cancels it), so every watch is a remote
// one. Counted in remote_ before the registry holds it, so that no fire can
// release it before it is counted. Only a held cancel fires at once: a held
// `done` may be our own completion whose write is not yet durable (its
// deadline is past, so the re-check reads it at once).
std::optional<WatchRegistry::Token> JobPool::watch_shared(const JobId& id, WatchRegistry::Callback callback,
                                                         Millis deadline_ms)
{
    if (const auto at = remote_.add(id, deadline_ms, clock_.now_ms())) arm({*at, JobId{}, TimerKind::remote});
    const auto token = watchers_.add(id, std::move(callback));
    if (!token) {
        remote_.release(id);
        return std::nullopt;
    }
    const auto job = table_.get(id);
    if (job && job->state == JobState::cancelled && watchers_.fire_one(*token)) remote_.release(id);
    return token;
}

bool JobPool::unwatch(WatchRegistry::Token token)
{
    const auto job = watchers_.take(token);
    if (job && shared_) remote_.release(*job);
    return job.has_value();
}

// Fires the job's watchers; with a shared store their remote watches go too.
void JobPool::notify(const JobId& id)
{
    const std::size_t fired = watchers_.fire(id);
    if (shared_ && fired) remote_.release(id, fired);
}

// On a pool thread: one round trip for every remote watch that is due. A
// database that does not answer leaves them all in place: the next period
// retries, and each wait's own timeout still ends it.
void JobPool::check_remote()
{
    if (remote_checking_.exchange(true)) return;  // the running one re-arms when done
    const std::vector<JobId> due = remote_.take_due(clock_.now_ms());
    if (!due.empty()) {
        std::vector<storage::RecordId> ids;
        ids.reserve(due.size());
        for (const JobId& id : due) ids.push_back(id.bytes());
        std::vector<storage::JobRecord> rows;
        if (shared_->fetch_many(ids, rows)) settle_remote(due, rows);
    }
    remote_checking_ = false;
    if (const auto at = remote_.rearm()) arm({*at, JobId{}, TimerKind::remote});
}

// A job found finished is remembered first, so the waiters' answers read it
// from memory; one with no row at all is gone (its result expired and was
// purged) and its waiters are answered too.
void JobPool::settle_remote(const std::vector<JobId>& due, std::vector<storage::JobRecord>& rows)
{
    std::map<JobId, Job> found;
    for (auto& r : rows) {
        Job j = from_record(std::move(r));
        found.emplace(j.id, std::move(j));
    }
    for (const JobId& id : due) {
        const auto it = found.find(id);
        if (it != found.end() && !it->second.finished()) continue;
        if (it != found.end()) remember(it->second);
        notify(id);
    }
}

void JobPool::arm(const Timer& timer)
{
    bool sooner = false;
    {
        std::lock_guard lock(timer_mutex_);
        sooner = timers_.empty() || timer.at < timers_.next_at();
        timers_.add(timer);
    }
    if (sooner) timer_cv_.notify_one();
}

void JobPool::run_timers()
{
    std::vector<Timer> due;
    std::unique_lock lock(timer_mutex_);
    while (!timers_stopping_) {
        const Millis now = clock_.now_ms();
        due.clear();
        timers_.pop_due(now, due);
        if (due.empty()) {
            Millis wait = shape_.timer_max_wait_ms;
            if (!timers_.empty()) wait = std::clamp<Millis>(timers_.next_at() - now, 1, wait);
            timer_cv_.wait_for(lock, std::chrono::milliseconds(wait));
            continue;
        }
        lock.unlock();
        // Blocking submit: due work waits for room rather than being dropped.
        for (const Timer& t : due)
            if (!workers_.submit([this, t] { on_timer(t); })) break;
        lock.lock();
    }
}

void JobPool::on_timer(const Timer& timer)
{
    switch (timer.kind) {
    case TimerKind::complete: complete(timer.job); break;
    case TimerKind::expire: expire(timer.job); break;
    case TimerKind::remote: check_remote(); break;
    }
}

// Returns when the job began, or 0 if it was no longer queued (cancelled
// while its creation was being made durable).
Millis JobPool::begin(const JobId& id)
{
    const Millis now = clock_.now_ms();
    Millis deadline = 0;
    const bool begun = table_.update(id, [&](Job& j) {
        if (j.state != JobState::queued) return false;
        // Not written to the store: the queued row already holds the
        // deadline, and a restart begins queued jobs itself, so this write
        // would only record started_ms, at the price of a second row write
        // per survey. The completion's write records it.
        j.state = JobState::running;
        j.started_ms = now;
        deadline = j.deadline_ms;
        --queued_;  // under the shard lock: see cancel()
        ++running_;
        return true;
    });
    if (!begun) return 0;
    arm({deadline, id, TimerKind::complete});
    if (log::enabled(log::Level::debug)) log::debug("job_started").kv("job", id.str()).kv("deadline_ms", deadline);
    return now;
}

void JobPool::complete(const JobId& id)
{
    const Millis now = clock_.now_ms();
    const auto r = rules();
    Job finished;
    storage::JobStore::Seq waited = 0;  // shared and watched: the write to wait for
    const bool done = table_.update(id, [&](Job& j) {
        if (j.state != JobState::running) return false;
        Job next = j;  // see cancel()
        next.state = JobState::done;
        next.finished_ms = now;
        next.result = survey_sentence(next.id, next.animal, *r->vocabulary);
        // Nobody waits for the write (see the store), unless a waiting poll
        // will read it from a shared store: see settle_completion(). Asked
        // under the shard lock, after which watch() finds the job done.
        const bool wait = shared_ && watchers_.watching(id);
        using By = storage::JobStore::Committer;
        const auto seq = persist(next, wait ? By::caller : By::writer);
        if (wait) waited = seq;
        finished = next;
        j = std::move(next);
        return true;
    });
    if (!done) return;
    if (!shared_) watchers_.fire(id);  // first: a waiting poll's latency starts at the deadline
    const Millis created = finished.created_ms, deadline = finished.deadline_ms;
    --running_;
    --in_flight_;
    ++completed_;
    survey_seconds_.observe(static_cast<double>(now - created) / 1000.0);
    completion_lag_seconds_.observe(static_cast<double>(std::max<Millis>(0, now - deadline)) / 1000.0);
    if (shared_) settle_completion(finished, waited);
    else arm({now + r->result_ttl_ms, id, TimerKind::expire});
    // Debug, not info: one line per survey doubles the log of a busy service.
    if (log::enabled(log::Level::debug))
        log::debug("job_completed").kv("job", id.str()).kv("lag_ms", std::max<Millis>(0, now - deadline));
}

// Shared: the write may yet find the job cancelled through another worker,
// so what we hold is no answer; polls read the database until it says done,
// and then keep that. A watched job's write was committed by us (seq): its
// waiters are woken only once it is durable, since their answer reads the
// database (measured: one commit round trip, ~1 ms, on this pool thread, and
// only for completions somebody waits for). A failed write wakes nobody:
// the remote re-checks keep looking until a sweep rescues the survey.
void JobPool::settle_completion(const Job& done, storage::JobStore::Seq seq)
{
    if (!seq) {
        table_.erase(done.id);
        return;
    }
    switch (store_->wait(seq)) {
    case storage::JobStore::Durability::committed:
        remember(done);  // the database says done: held until the result expires
        notify(done.id);
        break;
    case storage::JobStore::Durability::skipped:  // cancelled elsewhere first
        table_.erase(done.id);
        notify(done.id);
        break;
    case storage::JobStore::Durability::failed: table_.erase(done.id); break;
    }
}

void JobPool::expire(const JobId& id)
{
    const Millis now = clock_.now_ms();
    const Millis ttl = rules()->result_ttl_ms;
    auto job = table_.get(id);
    if (!job || !job->finished()) return;
    if (job->finished_ms + ttl > now) {  // the TTL grew since this timer was set
        arm({job->finished_ms + ttl, id, TimerKind::expire});
        return;
    }
    if (!table_.erase(id)) return;
    if (const auto key = key_of(*job); key && !shared_) keys_.release(*key, id);
    ++expired_;
    // A shared store's rows are deleted by the sweep (every worker held a
    // copy); only this worker's memory forgets here.
    if (store_ && !shared_) store_->erase(id.bytes());
    if (log::enabled(log::Level::debug)) log::debug("job_expired").kv("job", id.str());
}

void JobPool::finish_late(storage::JobRecord& r)
{
    const auto rules_now = rules();
    r.state = storage::RecordState::done;
    r.finished_ms = clock_.now_ms();
    if (r.started_ms == 0) r.started_ms = r.created_ms;
    r.result = survey_sentence(JobId(r.id), r.animal, *rules_now->vocabulary);
    ++rescued_;
}

// Called under the job's shard lock, so the store sees each job's changes in
// the order they happened; put() only queues (docs/concurrency.md).
storage::JobStore::Seq JobPool::persist(const Job& job, storage::JobStore::Committer by)
{
    return store_ ? store_->put(to_record(job), by) : 0;
}

bool JobPool::durable(storage::JobStore::Seq seq)
{
    return !store_ || store_->wait_durable(seq);
}

}  // namespace zk
