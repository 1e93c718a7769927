// CommitPipeline: callers queue writes and wait; the holder of the commit
// token (a leading caller or the writer thread) hands each batch to the
// driver outside the mutex, runs the writes' callbacks, then publishes; the
// writer also syncs and reconnects.

#include "storage/commit_pipeline.h"

#include <algorithm>
#include <numeric>

#include "util/blocking.h"
#include "util/log.h"

namespace zk::storage {

namespace {

// Upper bound on the window in which a commit is not yet on stable storage
// (SQLite: the power-loss window; see sqlite_driver.cpp), and on how long a
// caller write nobody waited for stays queued.
constexpr auto sync_interval = std::chrono::seconds(1);
// With commit_interval > 0 the writer stops gathering once this many writes
// are queued: a batch this large already amortises the commit.
constexpr std::size_t gather_target = 256;
// From a page-cache write (tens of us) to a commit that waited out a
// backend's deadline (seconds). Figures: docs/performance.md.
const std::vector<double> commit_buckets{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                         0.001,   0.0025,   0.005,   0.01,   0.025,   0.05,
                                         0.1,     0.25,     0.5,     1,      2.5,     5};
// Powers of two: batches are 1 when idle, and grow to thousands only while a
// slow commit lets the queue build up (pending_ has no cap).
const std::vector<double> batch_buckets{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
// Outcomes kept for waiters that have not read theirs yet: a waiter reads it
// at its next wake-up, so only one that gave up (its deadline) leaves one
// behind; beyond these the oldest go, and a write older than what went is
// reported failed (not known), never committed.
constexpr std::size_t failures_kept = 64;
constexpr std::size_t skips_kept = 4096;

// Fills out with the batch's writes sorted by id, each id's in queue order
// (a stable sort), so a B-tree is walked once and two workers' transactions
// lock rows in the same order. order is the caller's scratch space.
template <class Batch>
void sort_by_id(const Batch& batch, std::vector<std::uint32_t>& order, std::vector<const Write*>& out)
{
    order.resize(batch.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
        return batch[a].write.record.id < batch[b].write.record.id;
    });
    out.clear();
    for (std::uint32_t i : order) out.push_back(&batch[i].write);
}

}  // namespace

CommitPipeline::CommitPipeline(std::unique_ptr<Driver> driver, std::chrono::milliseconds commit_interval)
    : commit_interval_(std::max(commit_interval, std::chrono::milliseconds(0))),
      driver_(std::move(driver)),
      commit_seconds_(commit_buckets),
      batch_operations_(batch_buckets),
      writer_([this] { run(); })
{
}

CommitPipeline::~CommitPipeline() { close(); }

// No lock: the driver reads through a connection of its own.
void CommitPipeline::load(const std::function<void(JobRecord&&)>& visit) { driver_->load(visit); }

// ---------------------------------------------------------------------------
// Callers: queue and wait
// ---------------------------------------------------------------------------

std::optional<JobStore::Seq> CommitPipeline::put(WriteKind kind, const JobRecord& record, Committer by,
                                                 Settled settled)
{
    Op op{Write{kind, record, false}, 0, std::move(settled), Durability::failed};  // copied outside the lock
    bool wake = false;
    Seq seq;
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || interrupted_ || !driver_->availability().up()) return std::nullopt;
        seq = op.seq = ++last_seq_;
        if (pending_.empty()) first_pending_at_ = Clock::now();
        pending_.push_back(std::move(op));
        // The writer waits for its first write, or, while gathering, for a full batch.
        if (by == Committer::writer || commit_interval_.count() > 0)
            wake = ++writer_work_ == 1 || pending_.size() == gather_target;
    }
    if (wake) writer_cv_.notify_one();
    return seq;
}

// The first waiter to find no commit running commits everything queued (its
// own write among it); the others wait for that commit, or lead the next.
// A follower gives up at its deadline; a leader returns when the commit it
// runs ends, which the driver bounds by the store's own deadline.
Durability CommitPipeline::wait(Seq seq, Deadline deadline)
{
    const bool may_lead = commit_interval_.count() == 0;
    Lock lock(mutex_);
    if (settled_upto_ < seq && !writer_done_) {
        // Committing or waiting for a commit may take a while (a disk, a lock
        // held by an operator's sqlite3, a database server): the thread's
        // owner may stand in.
        lock.unlock();  // the hook takes its owner's lock, never under ours
        util::will_block();
        lock.lock();
    }
    for (;;) {
        if (const auto outcome = outcome_of(seq)) return *outcome;
        if (writer_done_ || interrupted_ || Clock::now() >= deadline) return Durability::failed;
        if (may_lead && !committing_ && !pending_.empty() && pending_.front().seq <= seq) commit_pending(lock);
        else settled_cv_.wait_until(lock, deadline);
    }
}

// Must be called with mutex_ held.
std::optional<Durability> CommitPipeline::outcome_of(Seq seq) const
{
    if (settled_upto_ < seq) return std::nullopt;
    for (const Failed& f : failures_)
        if (seq >= f.first && seq <= f.last) return Durability::failed;
    if (std::find(skipped_.begin(), skipped_.end(), seq) != skipped_.end()) return Durability::skipped;
    if (forgotten_upto_ != 0 && seq <= forgotten_upto_) return Durability::failed;  // its record may have gone
    return Durability::committed;
}

bool CommitPipeline::available() const { return driver_->availability().up(); }

std::optional<StoreStats> CommitPipeline::stats() const
{
    return StoreStats{commit_seconds_.snapshot(), batch_operations_.snapshot()};
}

void CommitPipeline::interrupt()
{
    {
        std::lock_guard lock(mutex_);
        interrupted_ = true;
    }
    driver_->interrupt();  // the commit in flight fails at once
    settled_cv_.notify_all();
    writer_cv_.notify_one();
}

void CommitPipeline::close()
{
    std::lock_guard closing(close_mutex_);
    if (!writer_.joinable()) return;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    writer_cv_.notify_one();
    writer_.join();  // it commits what is queued; nobody takes the token after it
    driver_->close();
}

// ---------------------------------------------------------------------------
// Committing: the writer thread, or a waiting caller
// ---------------------------------------------------------------------------

void CommitPipeline::run()
{
    Lock lock(mutex_);
    for (;;) {
        await_writer_work(lock);
        settled_cv_.wait(lock, [this] { return !committing_; });  // a leader may be committing
        if (!stopping_ && !interrupted_) recover(lock);
        if (!pending_.empty()) commit_pending(lock);
        sync_if_due(lock);
        if (stopping_ && pending_.empty()) break;  // nothing more can be queued
    }
    writer_done_ = true;
    lock.unlock();
    settled_cv_.notify_all();
}

// Waits for writes the writer must commit, a due sync or reconnect, stopping,
// or caller writes never waited for (nothing wakes the writer for those, so
// it looks at least once per sync interval); then, when commit_interval
// allows, for the batch to fill.
void CommitPipeline::await_writer_work(Lock& lock)
{
    for (;;) {
        if (stopping_ || writer_work_ > 0) break;
        const auto now = Clock::now();
        auto until = now + sync_interval;
        if (sync_due_) until = std::min(until, *sync_due_);
        if (!driver_->availability().up()) until = std::min(until, reconnect_at_);
        if (!pending_.empty()) until = std::min(until, first_pending_at_ + sync_interval);
        if (until <= now) break;
        writer_cv_.wait_until(lock, until);
    }
    if (commit_interval_.count() > 0 && !pending_.empty())
        writer_cv_.wait_until(lock, first_pending_at_ + commit_interval_,
                              [this] { return stopping_ || pending_.size() >= gather_target; });
}

// Takes the commit token and everything queued, commits it outside the lock,
// runs the callbacks and publishes the outcome. Called with the lock held and
// the token free; returns with the lock held.
void CommitPipeline::commit_pending(Lock& lock)
{
    committing_ = true;
    batch_.swap(pending_);
    writer_work_ = 0;
    const bool refused = interrupted_;
    lock.unlock();
    std::string error;
    const bool ok = !refused && commit_batch(error);
    if (!ok && !refused) log::debug("store_commit_failed").kv("store", driver_->name()).kv("error", error);
    for (Op& op : batch_)
        op.outcome = !ok ? Durability::failed : op.write.skipped ? Durability::skipped : Durability::committed;
    run_callbacks(batch_);
    lock.lock();
    publish(batch_, ok);
    batch_.clear();
    if (ok) {
        if (!sync_due_) sync_due_ = Clock::now() + sync_interval;
    } else if (!driver_->availability().up() || interrupted_) {
        reconnect_at_ = Clock::now() + driver_->reconnect_interval();
        fail_pending(lock);  // queued behind a database that is gone
        writer_cv_.notify_one();
    }
    committing_ = false;
    settled_cv_.notify_all();
}

// One driver transaction for the batch, timed and counted. Nothing here may
// escape: a throw would leave the token taken and every waiter asleep.
bool CommitPipeline::commit_batch(std::string& error)
{
    try {
        sort_by_id(batch_, order_, sorted_);  // allocates, so before the driver begins
        const auto begun = Clock::now();
        if (!driver_->commit(sorted_, error)) return false;
        commit_seconds_.observe(std::chrono::duration<double>(Clock::now() - begun).count());
        batch_operations_.observe(static_cast<double>(batch_.size()));
        return true;
    } catch (const std::exception& e) {
        error = e.what();
    } catch (...) {
        error = "unknown exception";
    }
    log::error("store_commit_failed").kv("store", driver_->name()).kv("error", error).kv("cause", "bug");
    return false;
}

// Fails everything queued, running its callbacks outside the lock. Called
// with the lock and the token held; returns with both.
void CommitPipeline::fail_pending(Lock& lock)
{
    if (pending_.empty()) return;
    std::vector<Op> failed;
    failed.swap(pending_);
    writer_work_ = 0;
    lock.unlock();
    for (Op& op : failed) op.outcome = Durability::failed;
    run_callbacks(failed);
    lock.lock();
    publish(failed, false);
}

// In queue order. A callback that throws is our bug; it must not stop the rest.
void CommitPipeline::run_callbacks(std::vector<Op>& ops)
{
    for (Op& op : ops) {
        if (!op.settled) continue;
        try {
            op.settled(op.outcome);
        } catch (const std::exception& e) {
            log::error("store_callback_failed").kv("error", e.what()).kv("cause", "bug");
        }
    }
}

// Makes a settled run of writes (contiguous sequence numbers) visible to
// waiters. Called with mutex_ held.
void CommitPipeline::publish(const std::vector<Op>& ops, bool ok)
{
    if (ops.empty()) return;
    if (!ok) {
        if (failures_.size() == failures_kept) {
            forgotten_upto_ = std::max(forgotten_upto_, failures_.front().last);
            failures_.erase(failures_.begin());
        }
        failures_.push_back({ops.front().seq, ops.back().seq});
    } else {
        for (const Op& op : ops) {
            if (op.outcome != Durability::skipped) continue;
            if (skipped_.size() == skips_kept) {
                forgotten_upto_ = std::max(forgotten_upto_, skipped_.front());
                skipped_.erase(skipped_.begin());
            }
            skipped_.push_back(op.seq);
        }
    }
    settled_upto_ = std::max(settled_upto_, ops.back().seq);
}

// The writer, while the database is unavailable: asks the driver to
// reconnect once its interval has passed (the driver reports the outcome to
// its Availability). Called with the lock held and the token free.
void CommitPipeline::recover(Lock& lock)
{
    if (driver_->availability().up() || Clock::now() < reconnect_at_) return;
    committing_ = true;
    lock.unlock();
    std::string error;
    driver_->reconnect(error);
    lock.lock();
    committing_ = false;
    reconnect_at_ = Clock::now() + driver_->reconnect_interval();
    settled_cv_.notify_all();
}

// The driver's sync() bounds how long a commit stays off stable storage. The
// writer runs it holding the token (it uses the connection), outside the lock.
void CommitPipeline::sync_if_due(Lock& lock)
{
    if (!sync_due_ || Clock::now() < *sync_due_) return;
    committing_ = true;
    lock.unlock();
    const bool ok = driver_->sync();  // a failure is logged; commits still survive a process crash
    lock.lock();
    committing_ = false;
    sync_due_ = ok ? std::nullopt : std::optional(Clock::now() + sync_interval);
    settled_cv_.notify_all();
}

}  // namespace zk::storage
