// The storage interface the job pool writes through. Writes are batched into
// transactions (group commit); callers that need durability wait for their
// write's sequence number to be committed, and may commit the batch
// themselves while they wait. Implemented once, by CommitPipeline over a
// backend Driver; opened by open_store(). Locks: docs/concurrency.md.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "storage/job_record.h"
#include "storage/shared_store.h"
#include "util/histogram.h"

namespace zk::storage {

// Raised when the store cannot be opened or read (corrupt, unreadable,
// wrong schema): the worker refuses to start rather than lose jobs.
struct StoreError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The writer's figures for /metrics. Both histograms count committed
// transactions only, so their _count is the number of commits and
// batch_operations' _sum the writes (puts and erases) committed.
struct StoreStats {
    Histogram::Snapshot commit_seconds;    // the driver committing one batch
    Histogram::Snapshot batch_operations;  // writes per transaction, before coalescing
};

class JobStore {
public:
    using Seq = std::uint64_t;
    virtual ~JobStore() = default;

    // Calls visit once per stored job, in id order. Start-up only.
    virtual void load(const std::function<void(JobRecord&&)>& visit) = 0;

    // Who commits a queued write. writer: a background writer, soon (nobody
    // waits for it). caller: the caller's own wait_durable(), together with
    // everything else queued; no thread is woken for it, so a caller that
    // does not wait leaves it to the next commit.
    enum class Committer { writer, caller };

    // Queue an insert-or-replace / a delete; returns the write's sequence
    // number. Never blocks: callers may hold a job table shard lock.
    virtual Seq put(const JobRecord& record, Committer by) = 0;
    virtual Seq erase(const std::array<unsigned char, 16>& id) = 0;

    // Blocks until every write up to seq is committed (or the store failed:
    // returns false). Commits what is queued itself when no commit is
    // running.
    virtual bool wait_durable(Seq seq) = 0;

    // As wait_durable(), telling a committed write from one a shared store
    // skipped because another worker had finished the job first (only a
    // put() by Committer::caller is told apart; any other write that
    // committed reports committed).
    enum class Durability { committed, skipped, failed };
    virtual Durability wait(Seq seq) { return wait_durable(seq) ? Durability::committed : Durability::failed; }

    // False while commits fail (for good with SQLite; until the database
    // answers again with PostgreSQL); health reporting reads it.
    virtual bool healthy() const = 0;

    // "sqlite", "postgresql", or what a test double calls itself.
    virtual std::string_view backend() const { return "memory"; }
    // The reads of a store several workers share; nullptr when this
    // worker's memory is the truth (SQLite).
    virtual SharedStore* shared() { return nullptr; }

    // Write figures, callable from any thread at any time (also after
    // close()). Stores with no writer to measure (test doubles) have none.
    virtual std::optional<StoreStats> stats() const { return std::nullopt; }

    // Commits what is queued and stops the writer. Idempotent.
    virtual void close() = 0;
};

}  // namespace zk::storage
