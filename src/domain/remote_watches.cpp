// The remote-watch set: entries by id, and the deadline checks ordered by
// (time, id) so equal times never collide and due() is a walk from the front.

#include "domain/remote_watches.h"

#include <algorithm>

namespace zk {

// Must be called with mutex_ held.
void RemoteWatches::schedule_locked(const JobId& id, Entry& e, Millis at)
{
    if (e.check_at) schedule_.erase({e.check_at, id});
    e.check_at = at;
    if (at) schedule_.insert({at, id});
}

// Must be called with mutex_ held.
std::optional<Millis> RemoteWatches::next_due_locked() const
{
    if (entries_.empty()) return std::nullopt;
    Millis next = period_at_;
    if (!schedule_.empty()) next = std::min(next, schedule_.begin()->first);
    return next;
}

std::optional<Millis> RemoteWatches::add(const JobId& id, Millis deadline_ms, Millis now)
{
    std::lock_guard lock(mutex_);
    if (entries_.empty()) period_at_ = now + timing_.period_ms;
    auto [it, fresh] = entries_.try_emplace(id);
    Entry& e = it->second;
    ++e.watchers;
    // A second watcher of the same job changes nothing: its checks stand.
    if (fresh && deadline_ms) {
        e.retry_ms = timing_.retry_ms;
        e.retries_left = timing_.retries;
        schedule_locked(id, e, std::max(deadline_ms + timing_.settle_ms, now));
    }
    const auto next = next_due_locked();
    if (armed_at_ && *armed_at_ <= *next) return std::nullopt;
    armed_at_ = next;
    return next;
}

void RemoteWatches::release(const JobId& id, std::size_t watchers)
{
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(id);
    if (it == entries_.end()) return;
    Entry& e = it->second;
    e.watchers -= std::min(watchers, e.watchers);
    if (e.watchers > 0) return;
    schedule_locked(id, e, 0);
    entries_.erase(it);
}

std::vector<JobId> RemoteWatches::take_due(Millis now)
{
    std::lock_guard lock(mutex_);
    armed_at_.reset();
    std::vector<JobId> due;
    const bool periodic = !entries_.empty() && period_at_ <= now;
    if (periodic) {
        period_at_ = now + timing_.period_ms;
        due.reserve(entries_.size());
        for (const auto& [id, e] : entries_) due.push_back(id);
    }
    while (!schedule_.empty() && schedule_.begin()->first <= now) {
        const JobId id = schedule_.begin()->second;
        Entry& e = entries_.at(id);
        if (!periodic) due.push_back(id);
        const bool again = e.retries_left-- > 0;
        schedule_locked(id, e, again ? now + e.retry_ms : 0);
        e.retry_ms *= 2;
    }
    return due;
}

void RemoteWatches::all_due()
{
    std::lock_guard lock(mutex_);
    period_at_ = 0;
}

std::optional<Millis> RemoteWatches::rearm()
{
    std::lock_guard lock(mutex_);
    armed_at_ = next_due_locked();
    return armed_at_;
}

std::size_t RemoteWatches::size() const
{
    std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace zk
