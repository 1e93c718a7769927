// The sharded in-memory job map.

#include "domain/job_table.h"

namespace zk {

void JobTable::put(const Job& job)
{
    Shard& s = shard(job.id);
    std::lock_guard lock(s.mutex);
    s.jobs.insert_or_assign(job.id, job);
}

void JobTable::insert(const Job& job, const std::function<void(const Job&)>& first)
{
    Shard& s = shard(job.id);
    std::lock_guard lock(s.mutex);
    first(job);
    s.jobs.insert_or_assign(job.id, job);
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

bool JobTable::update(const JobId& id, const std::function<bool(Job&)>& change)
{
    Shard& s = shard(id);
    std::lock_guard lock(s.mutex);
    auto it = s.jobs.find(id);
    return it != s.jobs.end() && change(it->second);
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
