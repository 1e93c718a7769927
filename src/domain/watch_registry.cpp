// The watch registry: a map from job to its waiters, and from token to job so
// a waiter can leave (timeout, hang-up, shutdown) without a scan.

#include "domain/watch_registry.h"

#include <algorithm>

namespace zk {

std::optional<WatchRegistry::Token> WatchRegistry::add(const JobId& id, Callback callback)
{
    std::lock_guard lock(mutex_);
    if (count_ >= capacity_) return std::nullopt;
    const Token token = next_token_++;
    by_job_[id].push_back({token, std::move(callback)});
    jobs_.emplace(token, id);
    ++count_;
    return token;
}

// Must be called with mutex_ held.
std::optional<WatchRegistry::Taken> WatchRegistry::take_locked(Token token)
{
    const auto job = jobs_.find(token);
    if (job == jobs_.end()) return std::nullopt;
    const JobId id = job->second;
    Callback callback;
    auto& list = by_job_[job->second];
    const auto it = std::find_if(list.begin(), list.end(), [&](const Entry& e) { return e.token == token; });
    if (it != list.end()) {
        callback = std::move(it->callback);
        list.erase(it);
    }
    if (list.empty()) by_job_.erase(job->second);
    jobs_.erase(job);
    --count_;
    return Taken{id, std::move(callback)};
}

std::optional<JobId> WatchRegistry::take(Token token)
{
    std::optional<Taken> dropped;  // destroyed outside the lock: it may own anything
    {
        std::lock_guard lock(mutex_);
        dropped = take_locked(token);
    }
    if (!dropped) return std::nullopt;
    return dropped->job;
}

std::size_t WatchRegistry::fire(const JobId& id)
{
    std::vector<Entry> due;
    {
        std::lock_guard lock(mutex_);
        const auto it = by_job_.find(id);
        if (it == by_job_.end()) return 0;
        due = std::move(it->second);
        by_job_.erase(it);
        for (const Entry& e : due) jobs_.erase(e.token);
        count_ -= due.size();
    }
    for (Entry& e : due) e.callback();
    return due.size();
}

bool WatchRegistry::fire_one(Token token)
{
    std::optional<Taken> taken;
    {
        std::lock_guard lock(mutex_);
        taken = take_locked(token);
    }
    if (taken && taken->callback) taken->callback();
    return taken.has_value();
}

bool WatchRegistry::watching(const JobId& id) const
{
    std::lock_guard lock(mutex_);
    return by_job_.count(id) > 0;
}

std::size_t WatchRegistry::size() const
{
    std::lock_guard lock(mutex_);
    return count_;
}

}  // namespace zk
