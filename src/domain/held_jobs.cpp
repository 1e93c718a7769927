// Counting every change of a held job, and merging the truth into a copy.

#include "domain/held_jobs.h"

#include <algorithm>

namespace zk {

void take_stored(Job& held, const Job& truth)
{
    held.state = truth.state;
    held.started_ms = truth.started_ms;
    held.finished_ms = truth.finished_ms;
    held.result = truth.result;
}

void HeldJobs::restore(const Job& job)
{
    counters_.moved({}, PoolCounters::place(job));
    table_.put(job);
}

bool HeldJobs::insert(Job job, const std::function<bool(Job&)>& first)
{
    return table_.insert(std::move(job), [&](Job& j) {
        if (!first(j)) return false;
        counters_.moved({}, PoolCounters::place(j));
        return true;
    });
}

bool HeldJobs::change(const JobId& id, const std::function<Edit(Job&)>& edit)
{
    return table_.update(id, [&](Job& j) {
        const auto before = PoolCounters::place(j);
        const Edit e = edit(j);
        counters_.moved(before, e == Edit::erase ? PoolCounters::Place{} : PoolCounters::place(j));
        return e;
    });
}

HeldJobs::Applied HeldJobs::apply(const Job& truth, const std::function<std::uint64_t()>& stamp)
{
    Applied out;
    const JobId id = truth.id;
    table_.upsert(id, [&](Job& j, bool held) {
        const auto before = held ? PoolCounters::place(j) : PoolCounters::Place{};
        if (!held) {
            j = truth;
            j.seen_in = stamp();
            out.new_copy = true;
            out.finished_now = j.finished();
        } else if (!j.finished() && (truth.finished() || !j.writing)) {
            out.finished_now = truth.finished();
            take_stored(j, truth);
            j.seen_in = std::max(j.seen_in, stamp());
        }
        counters_.moved(before, PoolCounters::place(j));
        out.view = j;
        return Edit::changed;
    });
    return out;
}

std::optional<Job> HeldJobs::creation_settled(const JobId& id, bool committed, std::uint64_t epoch)
{
    std::optional<Job> settled;
    change(id, [&](Job& j) {
        j.writing.reset();
        if (!committed) {
            settled = j;
            return Edit::erase;
        }
        j.state = JobState::running;
        j.started_ms = j.created_ms;
        j.seen_in = epoch;
        settled = j;
        return Edit::changed;
    });
    return settled;
}

HeldJobs::FinishSettled HeldJobs::finish_settled(const Job& target, storage::Durability outcome, Millis now)
{
    FinishSettled out;
    change(target.id, [&](Job& j) {
        j.writing.reset();
        out.deadline_ms = j.deadline_ms;
        out.learned_first = j.finished();
        if (out.learned_first) return Edit::changed;  // learned meanwhile (the cancel feed, a read)
        if (outcome == storage::Durability::committed) take_stored(j, target);
        if (outcome == storage::Durability::skipped) {
            j.seen_in = 0;
            j.owned = false;
        }
        out.retry = outcome == storage::Durability::failed && j.owned && j.state == JobState::running &&
                    now >= j.deadline_ms;
        return Edit::changed;
    });
    return out;
}

std::optional<Job> HeldJobs::cancelled_elsewhere(const JobId& id, Millis finished_ms)
{
    std::optional<Job> cancelled;
    change(id, [&](Job& j) {
        if (j.finished()) return Edit::none;
        j.state = JobState::cancelled;
        j.finished_ms = finished_ms;
        cancelled = j;
        return Edit::changed;
    });
    return cancelled;
}

std::optional<Job> HeldJobs::expire(const JobId& id, Millis now, Millis ttl, std::optional<Millis>& later)
{
    std::optional<Job> gone;
    change(id, [&](Job& j) {
        if (j.writing) return Edit::none;  // its settling arms what comes next
        const Millis until = j.finished() ? j.finished_ms + ttl : !j.owned ? j.deadline_ms + ttl : 0;
        if (until == 0) return Edit::none;  // ours and running: its completion comes first
        if (until > now) later = until;     // the TTL grew since this timer was set
        else gone = j;
        return gone ? Edit::erase : Edit::none;
    });
    return gone;
}

}  // namespace zk
