// What a storage backend must do for the CommitPipeline: read every job at
// start-up, apply one batch of writes as one transaction, make past commits
// durable, close. No threads and no locks of its own: docs/concurrency.md.
#pragma once

#include <chrono>
#include <functional>
#include <span>
#include <string_view>

#include "storage/job_record.h"

namespace zk::storage {

class SharedStore;

// One queued write: insert-or-replace the record, or delete its id.
struct Write {
    JobRecord record;  // only the id for an erase
    bool erase = false;
    // The driver's answer, set by commit(): a shared store's conditional
    // write that found the job already finished (by another worker) and
    // left it as it was. The pipeline reports it to the write's waiter.
    mutable bool skipped = false;
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

    // Whether a failed commit is final. SQLite's is (a disk or file that
    // failed once is not trusted again: the store stays unhealthy). A
    // database server's is not: the pipeline fails that batch's waiters and
    // calls reconnect() until it succeeds, then takes writes again.
    virtual bool recovers() const { return false; }
    // Called by the writer, holding the token, while the store is
    // unhealthy, once per reconnect_interval().
    virtual bool reconnect() { return false; }
    virtual std::chrono::milliseconds reconnect_interval() const { return std::chrono::seconds(1); }

    // The reads of a store several workers share (nullptr: this worker's
    // memory is the truth, as with SQLite).
    virtual SharedStore* shared() { return nullptr; }
};

}  // namespace zk::storage
