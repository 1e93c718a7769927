// What a storage backend must do for the CommitPipeline: read every job at
// start-up, apply one batch of writes as one transaction, make past commits
// durable, close. No threads and no locks of its own: docs/concurrency.md.
#pragma once

#include <functional>
#include <span>
#include <string_view>

#include "storage/job_record.h"

namespace zk::storage {

// One queued write: insert-or-replace the record, or delete its id.
struct Write {
    JobRecord record;  // only the id for an erase
    bool erase = false;
};

// commit(), sync() and close() are called by one thread at a time (the
// pipeline's commit token), never under the pipeline's mutex.
class Driver {
public:
    virtual ~Driver() = default;

    // The backend's name for logs and health reports: "sqlite".
    virtual std::string_view name() const = 0;

    // Calls visit once per stored job, in id order. Start-up only; may run
    // while commit() runs on another thread (it reads through a connection of
    // its own). Throws StoreError on a row or page it cannot read.
    virtual void load(const std::function<void(JobRecord&&)>& visit) = 0;

    // Applies writes, at most one per id and sorted by id, as one
    // transaction. False when it did not commit; the driver has logged why
    // and left no transaction open. Must not throw.
    virtual bool commit(std::span<const Write* const> writes) = 0;

    // The periodic durability step for commits that returned before reaching
    // stable storage (SQLite: a passive checkpoint, which fsyncs the WAL).
    // False when it failed (logged); the pipeline retries an interval later.
    virtual bool sync() = 0;

    // Releases the connection and whatever marks the store in use. Called
    // once, after the last commit().
    virtual void close() = 0;
};

}  // namespace zk::storage
