// The JobStore every backend shares: group commit on top of a Driver. It owns
// the writer thread and every lock; the driver only applies batches.
// Lock order and threads: docs/concurrency.md.
//
// Whoever commits takes everything queued since the last commit into one
// transaction (group commit). A caller waiting for durability commits itself
// when no commit is running (the leader; callers arriving meanwhile wait and
// ride on the next batch), so a creation wakes no other thread; the writer
// thread commits the writes nobody waits for, sweeps caller-committed writes
// left unwaited for, and runs the driver's periodic sync(). With
// commit_interval > 0 only the writer commits, after gathering. Within a
// batch only each id's last write reaches the driver (coalescing).
//
// A failed commit fails every write not yet committed (its waiters get
// false) and turns the store unhealthy; writes are refused meanwhile. With
// SQLite that is final. A driver that recovers() (PostgreSQL) is asked to
// reconnect by the writer, once per its reconnect_interval(), and the store
// takes writes again once it has: settle() and recover() are the one place
// that decides. Measured figures: docs/performance.md, "Storage measurements".
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "storage/driver.h"
#include "storage/job_store.h"

namespace zk::storage {

class CommitPipeline final : public JobStore {
public:
    // Starts the writer thread. commit_interval: how long the writer may wait
    // to gather a small batch; 0 commits as soon as anything is queued (the
    // measured best: batches form anyway while a commit runs).
    CommitPipeline(std::unique_ptr<Driver> driver, std::chrono::milliseconds commit_interval);
    ~CommitPipeline() override;
    CommitPipeline(const CommitPipeline&) = delete;
    CommitPipeline& operator=(const CommitPipeline&) = delete;

    // The driver's load(); visit must not call wait_durable.
    void load(const std::function<void(JobRecord&&)>& visit) override;
    // Never block on the driver: they take mutex_ only (callers hold a shard lock).
    Seq put(const JobRecord& record, Committer by) override;
    Seq erase(const std::array<unsigned char, 16>& id) override;
    bool wait_durable(Seq seq) override;
    Durability wait(Seq seq) override;
    bool healthy() const override;
    std::string_view backend() const override { return driver_->name(); }
    SharedStore* shared() override { return driver_->shared(); }
    std::optional<StoreStats> stats() const override;
    // Commits what is queued, joins the writer, closes the driver. Idempotent.
    void close() override;

private:
    using Clock = std::chrono::steady_clock;
    using Lock = std::unique_lock<std::mutex>;

    struct Op {
        Write write;
        Seq seq = 0;
        bool by_caller = false;  // its waiter is told a skip apart
    };
    // Writes failed together: (after, upto]. Kept for waiters still asleep.
    struct Failed {
        Seq after, upto;
    };

    Seq enqueue(Op op, Committer by);
    void run();
    void await_writer_work(Lock& lock);
    void commit_pending(Lock& lock);
    bool commit_batch();
    void settle(bool ok, Seq last);
    void note_skips();
    bool failed_seq(Seq seq) const;
    void recover(Lock& lock);
    void sync_if_due(Lock& lock);

    const std::chrono::milliseconds commit_interval_;

    // Used only by the holder of the commit token (committing_), until close()
    // has joined the writer.
    std::unique_ptr<Driver> driver_;
    std::vector<Op> batch_;               // the batch being committed, swapped with pending_
    std::vector<std::uint32_t> order_;     // scratch for coalescing it
    std::vector<const Write*> coalesced_;  // its last write per id, by id

    // mutex_ guards everything below up to failed_, which is written under
    // it and read without it. Callers take it while holding a shard lock, so
    // nothing slow happens under it: commits and syncs run outside it,
    // holding the token. pending_ has no cap on purpose: put() may neither
    // block under the caller's lock nor drop an accepted write. It stays
    // small because creators wait for durability (a stalled disk stalls
    // them, the acceptors are few) and the writes not waited for are at most
    // a few per job, whose number max_jobs bounds.
    std::mutex mutex_;
    std::condition_variable writer_cv_;     // writer work queued, a batch filled, or stopping
    std::condition_variable committed_cv_;  // a commit ended, the token is free, or the writer exited
    std::vector<Op> pending_;
    Seq last_seq_ = 0;
    std::size_t writer_work_ = 0;  // queued writes the writer must commit
    Clock::time_point first_pending_at_;
    bool stopping_ = false;
    bool committing_ = false;  // the commit token
    Seq committed_ = 0;
    std::optional<Clock::time_point> sync_due_;  // when the oldest unsynced commit is due a sync()
    bool writer_done_ = false;
    std::vector<Failed> failures_;       // the last few, oldest first
    std::vector<Seq> skipped_;           // caller writes skipped, until their waiter reads them
    std::vector<Seq> batch_skips_;       // the batch's, gathered outside the lock
    Clock::time_point reconnect_at_{};   // while failed_ with a driver that recovers
    std::atomic<bool> failed_{false};

    // Observed by the committer once per committed batch, before it is
    // published, so a caller whose wait_durable() returned sees it counted.
    // Lock-free: stats() snapshots them from any thread.
    Histogram commit_seconds_;
    Histogram batch_operations_;

    // Serialises close(). Lock order: close_mutex_, then mutex_.
    std::mutex close_mutex_;
    std::thread writer_;  // last member: started once everything it uses exists
};

}  // namespace zk::storage
