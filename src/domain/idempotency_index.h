// Which job each Idempotency-Key created through this worker: a creation
// claims its key before it is stored, and a repeat finds the claim (a repeat
// in flight is 409). Restored at start from the stored rows (SQLite),
// released when the job expires. With a shared store the database decides
// between workers: its unique index, and the key's advisory lock while a
// creation is being stored (storage/postgres_schema.cpp).
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "domain/job_id.h"

namespace zk {

// A key as the client sent it, within the scope of the client that sent it
// (nginx names the scope: docs/design.md). Keys of two scopes never meet.
struct IdempotencyKey {
    std::string scope;
    std::string key;
};

class IdempotencyIndex {
public:
    struct Entry {
        JobId job;
        std::string animal;
        bool committed = false;  // false while the creation is being made durable
    };

    // Claims the key for job, uncommitted; if another job holds it already,
    // returns that holder and claims nothing.
    std::optional<Entry> claim(const IdempotencyKey& key, const JobId& job, std::string_view animal);
    // The holder, if any.
    std::optional<Entry> find(const IdempotencyKey& key) const;
    // The job's creation is durable: repeats may be answered with it.
    void commit(const IdempotencyKey& key, const JobId& job);
    // A stored job's key, at start-up.
    void restore(const IdempotencyKey& key, const JobId& job, std::string_view animal);
    // Frees the key if job holds it (its creation failed, or it expired).
    void release(const IdempotencyKey& key, const JobId& job);
    std::size_t size() const;

private:
    static std::string flat(const IdempotencyKey& key);

    mutable std::mutex mutex_;  // a leaf: nothing is called while it is held
    std::unordered_map<std::string, Entry> entries_;  // guarded by mutex_
};

}  // namespace zk
