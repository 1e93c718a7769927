// The key index: one map under one leaf mutex. Its entries are few (keyed
// creations still held) and each call is a single map operation.

#include "domain/idempotency_index.h"

namespace zk {

// Length-prefixed, so no scope and key pair can spell another's.
std::string IdempotencyIndex::flat(const IdempotencyKey& key)
{
    return std::to_string(key.scope.size()) + ':' + key.scope + key.key;
}

std::optional<IdempotencyIndex::Entry> IdempotencyIndex::claim(const IdempotencyKey& key, const JobId& job,
                                                               std::string_view animal)
{
    std::string name = flat(key);
    std::lock_guard lock(mutex_);
    const auto [it, inserted] = entries_.try_emplace(std::move(name), Entry{job, std::string(animal), false});
    if (inserted) return std::nullopt;
    return it->second;
}

std::optional<IdempotencyIndex::Entry> IdempotencyIndex::find(const IdempotencyKey& key) const
{
    const std::string name = flat(key);
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(name);
    if (it == entries_.end()) return std::nullopt;
    return it->second;
}

void IdempotencyIndex::commit(const IdempotencyKey& key, const JobId& job)
{
    const std::string name = flat(key);
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(name);
    if (it != entries_.end() && it->second.job == job) it->second.committed = true;
}

void IdempotencyIndex::restore(const IdempotencyKey& key, const JobId& job, std::string_view animal)
{
    std::string name = flat(key);
    std::lock_guard lock(mutex_);
    entries_.insert_or_assign(std::move(name), Entry{job, std::string(animal), true});
}

void IdempotencyIndex::release(const IdempotencyKey& key, const JobId& job)
{
    const std::string name = flat(key);
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(name);
    if (it != entries_.end() && it->second.job == job) entries_.erase(it);
}

std::size_t IdempotencyIndex::size() const
{
    std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace zk
