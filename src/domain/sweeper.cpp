// The sweep: rescue late surveys, purge expired ones, keep the clock in step.

#include "domain/sweeper.h"

#include <chrono>

#include "util/log.h"

namespace zk {

namespace {

// A clock reading whose round trip took longer says little about the
// offset; the last good one stays.
constexpr Millis max_clock_round_trip_ms = 50;

}  // namespace

Sweeper::Sweeper(storage::SharedStore& store, ClusterClock& clock, SweepShape shape, Hooks hooks)
    : store_(store), clock_(clock), shape_(shape), hooks_(std::move(hooks))
{
}

Sweeper::~Sweeper() { stop(); }

void Sweeper::start()
{
    sync_clock();  // before the first request is served, when it can
    thread_ = std::thread([this] { run(); });
}

void Sweeper::stop()
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

// Passes start every interval (a slow pass does not push the next one a
// whole interval later), so a late survey waits at most about one interval
// past rescue_after.
void Sweeper::run()
{
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        const auto next = std::chrono::steady_clock::now() + std::chrono::milliseconds(shape_.interval_ms);
        lock.unlock();
        sweep();
        lock.lock();
        wake_.wait_until(lock, next, [this] { return stopping_; });
    }
}

// A database that does not answer ends the pass: the store's Availability
// has logged it (once), and the next pass tries again.
void Sweeper::sweep()
{
    sync_clock();
    const Millis now = clock_.now_ms();
    std::size_t rescued = 0, purged = 0;
    // Batch by batch, so a backlog (a worker that died holding thousands)
    // clears in one pass without one long statement.
    for (bool more = true; more;) {
        const auto n = store_.rescue(now - shape_.rescue_after_ms, shape_.batch, hooks_.finish);
        if (!n) break;
        rescued += *n;
        more = *n == shape_.batch;
    }
    for (bool more = true; more;) {
        const auto n = store_.purge(now - hooks_.ttl_ms(), shape_.batch);
        if (!n) break;
        purged += *n;
        more = *n == shape_.batch;
    }
    if (rescued > 0) log::info("jobs_rescued").kv("count", static_cast<std::int64_t>(rescued));
    if (rescued + purged > 0) hooks_.swept(rescued, purged);
}

// The offset from the midpoint of the round trip; its error is at most half
// the round trip.
void Sweeper::sync_clock()
{
    const Clock& local = clock_.local();
    const Millis before = local.now_ms();
    const auto db = store_.now_ms();
    const Millis after = local.now_ms();
    if (!db || after - before > max_clock_round_trip_ms) return;
    const Millis offset = *db - (before + after) / 2;
    if (offset != clock_.offset())
        log::debug("clock_offset").kv("offset_ms", offset).kv("round_trip_ms", after - before);
    clock_.set_offset(offset);
}

}  // namespace zk
