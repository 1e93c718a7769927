// The storage interface the job pool writes through. Writes are batched into
// transactions (group commit); each write says what it may change (WriteKind),
// and its outcome is handed back exactly once: to a `settled` callback, and to
// whoever waits for it. Implemented once, by CommitPipeline over a backend
// Driver; opened by open_store(). Locks and threads: docs/concurrency.md.
#pragma once

#include <chrono>
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

// The client-side deadline of a database round trip is the statement
// timeout plus this margin, so that the server's own timeout error normally
// arrives first; a round trip still unanswered then means the database does
// not answer. Waits on the store (JobPool) use the same sum.
constexpr std::chrono::milliseconds deadline_margin{500};
constexpr std::chrono::milliseconds round_trip_timeout(std::chrono::milliseconds statement_timeout)
{
    return statement_timeout + deadline_margin;
}

// What a write may change. Every backend applies the same rules, so a job's
// state changes once, whichever worker writes first.
enum class WriteKind : std::uint8_t {
    create,  // insert a new job; skipped if its id, or its Idempotency-Key in its scope, is taken
    finish,  // write a job's done or cancelled record over its unfinished one; skipped if it is finished or gone
    erase,   // delete the job (its result expired); only the id is read
};

// A write's outcome. skipped: the backend applied the rule and changed
// nothing (another write finished the job first, or a key was taken).
// failed: not committed, or not known to be (the store went away mid-commit,
// a wait's deadline passed, shutdown).
enum class Durability { committed, skipped, failed };

// The writer's figures for /metrics. Both histograms count committed
// transactions only, so their _count is the number of commits and
// batch_operations' _sum the writes committed.
struct StoreStats {
    Histogram::Snapshot commit_seconds;    // the driver committing one batch
    Histogram::Snapshot batch_operations;  // writes per transaction
};

class JobStore {
public:
    using Seq = std::uint64_t;
    using Deadline = std::chrono::steady_clock::time_point;
    // Runs exactly once per queued write, with its outcome: on the thread
    // that committed (or failed) it, after the backend answered and before
    // any waiter of that write wakes, outside every lock of the store. It
    // must not block or wait on the store; it may queue writes.
    using Settled = std::function<void(Durability)>;
    virtual ~JobStore() = default;

    // Calls visit once per stored job, in id order. Start-up only.
    virtual void load(const std::function<void(JobRecord&&)>& visit) = 0;

    // Who commits a queued write. writer: a background writer, soon (nobody
    // waits for it). caller: the caller's own wait(), together with
    // everything else queued.
    enum class Committer { writer, caller };

    // Queues a write, in order after every earlier one. nullopt: the store
    // takes no writes now (unavailable, or closing): nothing was queued and
    // `settled` is never called. Never blocks: callers may hold a job table
    // shard lock.
    virtual std::optional<Seq> put(WriteKind kind, const JobRecord& record, Committer by, Settled settled = {}) = 0;

    // Waits until the write is settled, committing what is queued itself when
    // no commit is running. Past `deadline` it returns failed; the write's
    // `settled` still runs when its outcome is known.
    virtual Durability wait(Seq seq, Deadline deadline) = 0;

    // False while the backend does not answer (a failed commit or round
    // trip, until a reconnect succeeds). Writes are refused meanwhile.
    virtual bool available() const = 0;

    // "sqlite", "postgresql", or what a test double calls itself.
    virtual std::string_view backend() const = 0;
    // The reads and sweeps of a store several workers share; nullptr when
    // this worker's memory is the truth (SQLite).
    virtual SharedStore* shared() { return nullptr; }

    // Write figures, callable from any thread at any time (also after close()).
    virtual std::optional<StoreStats> stats() const { return std::nullopt; }

    // Shutdown past its grace: ends every wait on the backend at once (the
    // commit in flight fails, waiters get failed); later writes are refused.
    virtual void interrupt() = 0;
    // Commits what is queued and stops the writer. Idempotent.
    virtual void close() = 0;
};

}  // namespace zk::storage
