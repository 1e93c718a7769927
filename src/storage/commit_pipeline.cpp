// CommitPipeline: callers queue writes and wait; the holder of the commit
// token (a leading caller or the writer thread) hands each batch to the
// driver outside the mutex; the writer also runs the driver's periodic sync.

#include "storage/commit_pipeline.h"

#include <algorithm>
#include <numeric>

#include "util/blocking.h"
#include "util/log.h"

namespace zk::storage {

namespace {

// Upper bound on the window in which a commit is not yet on stable storage
// (SQLite: the power-loss window; see sqlite_driver.cpp).
constexpr auto sync_interval = std::chrono::seconds(1);
// With commit_interval > 0 the writer stops gathering once this many writes
// are queued: a batch this large already amortises the commit.
constexpr std::size_t gather_target = 256;
// From a page-cache write (tens of us) to a commit that waited out a
// backend's lock (SQLite's busy timeout, 5 s). Figures: docs/performance.md.
const std::vector<double> commit_buckets{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                         0.001,   0.0025,   0.005,   0.01,   0.025,   0.05,
                                         0.1,     0.25,     0.5,     1,      2.5,     5};
// Powers of two: batches are 1 when idle, and grow to thousands only while a
// slow commit lets the queue build up (pending_ has no cap).
const std::vector<double> batch_buckets{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
// Failed ranges and skipped writes kept for waiters: a waiter reads its own
// at its next wake-up, so only a caller that never waits leaves one behind;
// beyond these the oldest go.
constexpr std::size_t failures_kept = 64;
constexpr std::size_t skips_kept = 4096;

// Fills out with each id's last write in batch (a later put or erase
// replaces an earlier one), sorted by id so a B-tree is walked once.
// order is scratch space, kept by the caller so a commit does not allocate.
template <class Batch>
void coalesce(const Batch& batch, std::vector<std::uint32_t>& order, std::vector<const Write*>& out)
{
    order.resize(batch.size());
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
        const auto& ia = batch[a].write.record.id;
        const auto& ib = batch[b].write.record.id;
        return ia != ib ? ia < ib : a < b;
    });
    out.clear();
    for (std::size_t i = 0; i < order.size(); ++i) {
        if (i + 1 == order.size() || batch[order[i + 1]].write.record.id != batch[order[i]].write.record.id)
            out.push_back(&batch[order[i]].write);
    }
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

JobStore::Seq CommitPipeline::put(const JobRecord& record, Committer by)
{
    return enqueue(Op{Write{record, false}, 0, by == Committer::caller}, by);  // the copy is made outside the lock
}

JobStore::Seq CommitPipeline::erase(const std::array<unsigned char, 16>& id)
{
    Op op;
    op.write.record.id = id;
    op.write.erase = true;
    return enqueue(std::move(op), Committer::writer);
}

// After close() or a failed commit the write is not queued; it still gets a
// fresh sequence number, which no commit will ever reach.
JobStore::Seq CommitPipeline::enqueue(Op op, Committer by)
{
    bool wake = false;
    Seq seq;
    {
        std::lock_guard lock(mutex_);
        seq = ++last_seq_;
        if (failed_) failures_.back().upto = seq;  // refused: fails with the rest
        if (stopping_ || failed_) return seq;
        op.seq = seq;
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
JobStore::Durability CommitPipeline::wait(Seq seq)
{
    const bool may_lead = commit_interval_.count() == 0;
    Lock lock(mutex_);
    if (committed_ < seq && !failed_ && !writer_done_) {
        // Committing or waiting for a commit may take a while (a disk, a lock
        // held by an operator's sqlite3, a database server): the thread's
        // owner may stand in.
        lock.unlock();  // the hook takes its owner's lock, never under ours
        util::will_block();
        lock.lock();
    }
    for (;;) {
        if (failed_seq(seq)) return Durability::failed;
        if (committed_ >= seq) {
            const auto it = std::find(skipped_.begin(), skipped_.end(), seq);
            if (it == skipped_.end()) return Durability::committed;
            skipped_.erase(it);
            return Durability::skipped;
        }
        if (writer_done_) return Durability::failed;
        if (may_lead && !committing_ && !pending_.empty() && pending_.front().seq <= seq) commit_pending(lock);
        else committed_cv_.wait(lock);
    }
}

bool CommitPipeline::wait_durable(Seq seq) { return wait(seq) != Durability::failed; }

bool CommitPipeline::failed_seq(Seq seq) const
{
    for (const Failed& f : failures_)
        if (seq > f.after && seq <= f.upto) return true;
    return false;
}

bool CommitPipeline::healthy() const { return !failed_; }

std::optional<StoreStats> CommitPipeline::stats() const
{
    return StoreStats{commit_seconds_.snapshot(), batch_operations_.snapshot()};
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
        committed_cv_.wait(lock, [this] { return !committing_; });  // a leader may be committing
        if (failed_ && !stopping_) recover(lock);
        if (!pending_.empty()) commit_pending(lock);
        sync_if_due(lock);
        if (stopping_ && pending_.empty()) break;  // nothing more can be queued
    }
    writer_done_ = true;
    lock.unlock();
    committed_cv_.notify_all();
}

// Waits for writes the writer must commit, a due sync, stopping, or writes
// a caller queued but never waited for (nothing wakes the writer for those,
// so it looks at least once per sync interval); then, when commit_interval
// allows, for the batch to fill.
void CommitPipeline::await_writer_work(Lock& lock)
{
    const bool reconnects = driver_->recovers();
    for (;;) {
        if (stopping_ || writer_work_ > 0) break;
        const auto now = Clock::now();
        auto until = now + sync_interval;
        if (sync_due_) until = std::min(until, *sync_due_);
        if (failed_ && reconnects) until = std::min(until, reconnect_at_);
        if (!pending_.empty()) until = std::min(until, first_pending_at_ + sync_interval);
        if (until <= now) break;
        writer_cv_.wait_until(lock, until);
    }
    if (commit_interval_.count() > 0 && !pending_.empty())
        writer_cv_.wait_until(lock, first_pending_at_ + commit_interval_,
                              [this] { return stopping_ || pending_.size() >= gather_target; });
}

// Takes the commit token and everything queued, commits it outside the lock
// and publishes the outcome. Called with the lock held and the token free;
// returns with the lock held.
void CommitPipeline::commit_pending(Lock& lock)
{
    committing_ = true;
    batch_.swap(pending_);
    writer_work_ = 0;
    lock.unlock();
    const bool ok = !failed_ && commit_batch();
    const Seq last = batch_.back().seq;
    batch_skips_.clear();
    if (ok)
        for (const Op& op : batch_)
            if (op.by_caller && op.write.skipped) batch_skips_.push_back(op.seq);
    batch_.clear();  // the records are freed outside the lock
    lock.lock();
    committing_ = false;
    settle(ok, last);
    committed_cv_.notify_all();
}

// One driver transaction for the batch's coalesced writes, timed and counted.
bool CommitPipeline::commit_batch()
{
    try {
        coalesce(batch_, order_, coalesced_);  // allocates, so before the driver begins
    } catch (const std::exception& e) {
        log::error("store_commit_failed").kv("store", driver_->name()).kv("error", e.what());
        return false;
    }
    const auto begun = Clock::now();
    if (!driver_->commit(coalesced_)) return false;  // not observed: zookeeper_store_up reports it
    commit_seconds_.observe(std::chrono::duration<double>(Clock::now() - begun).count());
    batch_operations_.observe(static_cast<double>(batch_.size()));
    return true;
}

// The failure policy, in one place. A failed commit fails its batch and
// everything queued behind it (their waiters get false; writes nobody waits
// for are lost, which a shared store's sweep repairs); writes are refused
// until recover() succeeds, which with a driver that does not recover is
// never. Called with mutex_ held.
void CommitPipeline::settle(bool ok, Seq last)
{
    if (ok) {
        committed_ = last;
        note_skips();
        if (!sync_due_) sync_due_ = Clock::now() + sync_interval;
        return;
    }
    if (!failed_) {
        if (failures_.size() == failures_kept) failures_.erase(failures_.begin());
        failures_.push_back({committed_, last_seq_});
        reconnect_at_ = Clock::now() + driver_->reconnect_interval();
        writer_cv_.notify_one();
    }
    failures_.back().upto = last_seq_;
    failed_ = true;
    pending_.clear();
    writer_work_ = 0;
}

// A skip counts only once its batch has committed, so a waiter that sees
// committed_ pass its seq finds its skip already noted.
void CommitPipeline::note_skips()
{
    for (Seq s : batch_skips_) {
        if (skipped_.size() == skips_kept) skipped_.erase(skipped_.begin());
        skipped_.push_back(s);
    }
    batch_skips_.clear();
}

// The writer, while failed_: asks the driver to reconnect once its interval
// has passed; on success the store takes writes again (sequence numbers
// refused meanwhile stay failed). Called with the lock held and the token free.
void CommitPipeline::recover(Lock& lock)
{
    if (!driver_->recovers() || Clock::now() < reconnect_at_) return;
    committing_ = true;
    lock.unlock();
    const bool ok = driver_->reconnect();
    lock.lock();
    committing_ = false;
    if (ok) {
        failed_ = false;
        log::info("store_recovered").kv("store", driver_->name());
    } else {
        reconnect_at_ = Clock::now() + driver_->reconnect_interval();
    }
    committed_cv_.notify_all();
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
    committed_cv_.notify_all();
}

}  // namespace zk::storage
