// The sharded in-memory job map.

#include "domain/job_table.h"

namespace zk {

void JobTable::put(const Job& job)
{
    Shard& s = shard(job.id);
    std::lock_guard lock(s.mutex);
    s.jobs.insert_or_assign(job.id, job);
}

bool JobTable::insert(Job job, const std::function<bool(Job&)>& first)
{
    Shard& s = shard(job.id);
    std::lock_guard lock(s.mutex);
    if (!first(job)) return false;
    const JobId id = job.id;
    s.jobs.insert_or_assign(id, std::move(job));
    return true;
}

std::optional<Job> JobTable::get(const JobId& id) const
{
    const Shard& s = shard(id);
    std::lock_guard lock(s.mutex);
    auto it = s.jobs.find(id);
    if (it == s.jobs.end()) return std::nullopt;
    return it->second;
}

bool JobTable::erase(const JobId& id)
{
    Shard& s = shard(id);
    std::lock_guard lock(s.mutex);
    return s.jobs.erase(id) != 0;
}

bool JobTable::update(const JobId& id, const std::function<Edit(Job&)>& edit)
{
    Shard& s = shard(id);
    std::lock_guard lock(s.mutex);
    auto it = s.jobs.find(id);
    if (it == s.jobs.end()) return false;
    const Edit e = edit(it->second);
    if (e == Edit::erase) s.jobs.erase(it);
    return e != Edit::none;
}

void JobTable::upsert(const JobId& id, const std::function<Edit(Job&, bool held)>& edit)
{
    Shard& s = shard(id);
    std::lock_guard lock(s.mutex);
    auto it = s.jobs.find(id);
    if (it != s.jobs.end()) {
        if (edit(it->second, true) == Edit::erase) s.jobs.erase(it);
        return;
    }
    Job fresh;
    if (edit(fresh, false) == Edit::changed) s.jobs.emplace(id, std::move(fresh));
}

void JobTable::for_each(const std::function<void(const Job&)>& visit) const
{
    for (const Shard& s : shards_) {
        std::lock_guard lock(s.mutex);
        for (const auto& [id, job] : s.jobs) visit(job);
    }
}

std::size_t JobTable::size() const
{
    std::size_t n = 0;
    for (const Shard& s : shards_) {
        std::lock_guard lock(s.mutex);
        n += s.jobs.size();
    }
    return n;
}

}  // namespace zk
