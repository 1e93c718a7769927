// Reading the shared database, vouching for copies by the cancel feed's
// epoch, re-reading watched jobs, and the sweep's hooks.

#include "domain/shared_ledger.h"

#include <map>

#include "domain/record_mapping.h"
#include "domain/survey.h"

namespace zk {

SharedLedger::SharedLedger(storage::SharedStore& store, ClusterClock& clock, SharedShape shape)
    : store_(store), clock_(clock), remote_(shape.remote)
{
    Sweeper::Hooks hooks{[this](storage::JobRecord& r) { finish_late(r); },
                         [this] { return events_ ? events_->rules()->result_ttl_ms : 0; },
                         [this](std::size_t rescued, std::size_t purged) {
                             if (events_) events_->swept(rescued, purged);
                         }};
    sweeper_ = std::make_unique<Sweeper>(store, clock, shape.sweep, std::move(hooks));
}

SharedLedger::~SharedLedger() { stop(); }

void SharedLedger::start(LedgerEvents& events)
{
    events_ = &events;
    storage::CancelFeed feed;
    feed.cancelled = [this](const storage::RecordId& id, std::int64_t finished_ms) {
        ++cancels_;  // before the cancel is applied: see stamp()
        events_->cancelled_elsewhere(JobId(id), finished_ms);
    };
    feed.resumed = [this] { resumed(); };
    store_.listen(std::move(feed));
    sweeper_->start();
}

void SharedLedger::stop() { sweeper_->stop(); }

bool SharedLedger::vouches(const Job& held, Millis now) const
{
    if (held.finished()) return true;
    const std::uint64_t e = epoch_;
    return e != 0 && held.seen_in == e && store_.listening() && now < held.deadline_ms;
}

// Cancels made while the feed was down were missed: every copy of an older
// epoch is read again when next asked for, and the watched ones at once.
void SharedLedger::resumed()
{
    ++epoch_;
    if (!events_ || remote_.size() == 0) return;
    remote_.all_due();
    events_->arm_recheck(clock_.now_ms());
}

// A copy made from a read is vouched for only if nothing the feed said since
// the read began could be missing from it. The pool calls this under the
// job's shard lock, and a cancel counts itself before it takes that lock to
// apply: so either this sees the count move, or the cancel finds the copy.
std::uint64_t SharedLedger::stamp(const Fetched& read) const
{
    return read.epoch == epoch_ && read.cancels == cancels_ ? read.epoch : 0;
}

// A read begins: what the feed says from now on makes a copy from it stale.
Ledger::Fetched SharedLedger::begin_read() const
{
    Fetched f;
    f.epoch = epoch_;
    f.cancels = cancels_;
    return f;
}

// A read of one record ended: answered or not, found or not.
void SharedLedger::end_read(Fetched& f, bool answered, std::optional<storage::JobRecord>& record)
{
    if (!answered) f.status = Fetched::Status::unavailable;
    else if (record) {
        f.status = Fetched::Status::found;
        f.job = from_record(std::move(*record));
    }
}

Ledger::Fetched SharedLedger::fetch(const JobId& id)
{
    Fetched f = begin_read();
    std::optional<storage::JobRecord> record;
    end_read(f, store_.fetch(id.bytes(), record), record);
    return f;
}

Ledger::Fetched SharedLedger::fetch_key(const IdempotencyKey& key)
{
    Fetched f = begin_read();
    std::optional<storage::JobRecord> record;
    end_read(f, store_.fetch_key(key.scope, key.key, record, f.key_in_flight), record);
    return f;
}

std::optional<std::vector<Job>> SharedLedger::list(const JobFilter& filter, const JobTable&) const
{
    storage::ListQuery q;
    if (filter.state) q.state = static_cast<storage::RecordState>(*filter.state);
    q.animal = filter.animal;
    if (filter.before) q.before = filter.before->bytes();
    q.limit = filter.limit;
    std::vector<storage::JobRecord> rows;
    if (!store_.list(q, rows)) return std::nullopt;
    std::vector<Job> jobs;
    jobs.reserve(rows.size());
    for (auto& r : rows) jobs.push_back(from_record(std::move(r)));
    return jobs;
}

void SharedLedger::watched(const JobId& id, Millis deadline_ms)
{
    if (const auto at = remote_.add(id, deadline_ms, clock_.now_ms()))
        if (events_) events_->arm_recheck(*at);
}

// On a pool thread: one round trip for every watched job that is due. A job
// found finished is learned (its waiters wake); one with no record is gone.
// A database that does not answer leaves them in place: the next period
// retries, and each wait's own timeout still ends it.
void SharedLedger::recheck()
{
    if (rechecking_.exchange(true)) return;  // the running one re-arms when done
    const std::vector<JobId> due = remote_.take_due(clock_.now_ms());
    if (!due.empty()) {
        std::vector<storage::RecordId> ids;
        ids.reserve(due.size());
        for (const JobId& id : due) ids.push_back(id.bytes());
        Fetched read = begin_read();
        read.status = Fetched::Status::found;
        std::vector<storage::JobRecord> rows;
        if (store_.fetch_many(ids, rows)) {
            std::map<JobId, Job> found;
            for (auto& r : rows) {
                Job j = from_record(std::move(r));
                found.emplace(j.id, std::move(j));
            }
            for (const JobId& id : due) {
                const auto it = found.find(id);
                if (it == found.end()) {
                    events_->vanished(id);
                } else if (it->second.finished()) {
                    read.job = std::move(it->second);
                    events_->learned(read);
                }
            }
        }
    }
    rechecking_ = false;
    if (const auto at = remote_.rearm()) events_->arm_recheck(*at);
}

// A late survey's done record, as its own worker would have written it.
void SharedLedger::finish_late(storage::JobRecord& r) const
{
    const auto rules = events_->rules();
    r.state = storage::RecordState::done;
    r.finished_ms = clock_.now_ms();
    if (r.started_ms == 0) r.started_ms = r.created_ms;
    r.result = survey_sentence(JobId(r.id), r.animal, *rules->vocabulary);
}

}  // namespace zk
