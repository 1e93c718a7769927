// What a storage backend must do for the CommitPipeline: read every job at
// start-up, apply one batch of writes as one transaction under the rules of
// WriteKind, make past commits durable, reconnect after a failure, and say
// whether its database answers (Availability). No threads and no locks of
// its own on the commit path: docs/concurrency.md.
#pragma once

#include <chrono>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "storage/availability.h"
#include "storage/job_record.h"
#include "storage/job_store.h"

namespace zk::storage {

class SharedStore;

// One queued write.
struct Write {
    WriteKind kind = WriteKind::create;
    JobRecord record;  // only the id for an erase
    // Set by commit(): the backend applied the write's rule and changed
    // nothing (WriteKind says when).
    mutable bool skipped = false;
};

// commit(), sync(), reconnect() and close() are called by one thread at a
// time (the pipeline's commit token), never under the pipeline's mutex.
class Driver {
public:
    virtual ~Driver() = default;

    // The backend's name for logs and health reports: "sqlite".
    virtual std::string_view name() const = 0;

    // Calls visit once per stored job, in id order. Start-up only; may run
    // while commit() runs on another thread (it reads through a connection of
    // its own). Throws StoreError on a row or page it cannot read.
    virtual void load(const std::function<void(JobRecord&&)>& visit) = 0;

    // Applies writes in the order given (the pipeline sorts them by id and
    // keeps each id's writes in the order they were queued) as one
    // transaction, and marks the skipped ones. False, with the reason in
    // `error`, when it did not commit or cannot tell; it leaves no
    // transaction open. Every wait in it has a deadline. Must not throw.
    virtual bool commit(std::span<const Write* const> writes, std::string& error) = 0;

    // The periodic durability step for commits that returned before reaching
    // stable storage (SQLite: a passive checkpoint, which fsyncs the WAL).
    // False when it failed (logged); the pipeline retries an interval later.
    virtual bool sync() = 0;

    // While the store is unavailable the writer calls this once per
    // reconnect_interval(): make the connection anew and prove it with a
    // round trip. True: the store takes writes again.
    virtual bool reconnect(std::string& error) = 0;
    virtual std::chrono::milliseconds reconnect_interval() const = 0;

    // Whether the backend answers, as its round trips find. The driver
    // reports every round trip of its own to it (commits, reconnects,
    // reads): only it can tell a database that is gone from a statement
    // refused; the pipeline reads it to refuse writes meanwhile.
    virtual Availability& availability() = 0;

    // Ends every wait on the backend at once, for good (shutdown past its
    // grace): a commit in flight fails, later ones fail at once. Any thread.
    virtual void interrupt() = 0;

    // Releases the connection and whatever marks the store in use. Called
    // once, after the last commit().
    virtual void close() = 0;

    // The reads of a store several workers share (nullptr: this worker's
    // memory is the truth, as with SQLite).
    virtual SharedStore* shared() { return nullptr; }
};

}  // namespace zk::storage
