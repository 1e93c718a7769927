// The JobStore every backend shares: group commit on top of a Driver. It owns
// the writer thread and every lock; the driver only applies batches.
// Lock order and threads: docs/concurrency.md.
//
// Whoever commits takes everything queued since the last commit into one
// transaction (group commit). A caller waiting for its write commits itself
// when no commit is running (the leader; callers arriving meanwhile wait and
// ride on the next batch), so a creation wakes no other thread; the writer
// thread commits the writes nobody waits for, sweeps caller writes left
// unwaited for, runs the driver's periodic sync(), and reconnects. With
// commit_interval > 0 only the writer commits, after gathering. A batch
// reaches the driver sorted by id, every write kept (each id's in the order
// queued), so each write gets its own outcome (WriteKind's rules).
//
// Outcomes: the committer runs each write's `settled` callback, then
// publishes the batch to waiters. A failed commit fails its batch; if the
// driver found its database gone (Availability down), everything queued
// behind fails too and writes are refused until the writer's reconnect()
// succeeds, once per reconnect_interval(). Measured figures:
// docs/performance.md, "Storage measurements".
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

    // The driver's load(); visit must not wait on the store.
    void load(const std::function<void(JobRecord&&)>& visit) override;
    // Never blocks on the driver: takes mutex_ only (callers hold a shard lock).
    std::optional<Seq> put(WriteKind kind, const JobRecord& record, Committer by, Settled settled) override;
    Durability wait(Seq seq, Deadline deadline) override;
    bool available() const override;
    std::string_view backend() const override { return driver_->name(); }
    SharedStore* shared() override { return driver_->shared(); }
    std::optional<StoreStats> stats() const override;
    void interrupt() override;
    // Commits what is queued, joins the writer, closes the driver. Idempotent.
    void close() override;

private:
    using Clock = std::chrono::steady_clock;
    using Lock = std::unique_lock<std::mutex>;

    struct Op {
        Write write;
        Seq seq = 0;
        Settled settled;
        Durability outcome = Durability::failed;
    };
    // Writes failed together: [first, last]. Kept for waiters still asleep.
    struct Failed {
        Seq first, last;
    };

    void run();
    void await_writer_work(Lock& lock);
    void commit_pending(Lock& lock);
    bool commit_batch(std::string& error);
    void fail_pending(Lock& lock);
    static void run_callbacks(std::vector<Op>& ops);
    void publish(const std::vector<Op>& ops, bool ok);
    std::optional<Durability> outcome_of(Seq seq) const;
    void recover(Lock& lock);
    void sync_if_due(Lock& lock);

    const std::chrono::milliseconds commit_interval_;

    // Used only by the holder of the commit token (committing_), until close()
    // has joined the writer; interrupt() and availability() are safe anywhere.
    std::unique_ptr<Driver> driver_;
    std::vector<Op> batch_;                // the batch being committed, swapped with pending_
    std::vector<std::uint32_t> order_;     // scratch for sorting it
    std::vector<const Write*> sorted_;     // its writes, by id

    // mutex_ guards everything below. Callers take it while holding a shard
    // lock, so nothing slow happens under it: commits, syncs, reconnects and
    // callbacks run outside it, holding the token. pending_ has no cap on
    // purpose: put() may neither block under the caller's lock nor drop an
    // accepted write. It stays small because creators wait for their write
    // (each request thread has at most one queued), and the writes nobody
    // waits for are at most a few per job, whose number max_jobs bounds.
    std::mutex mutex_;
    std::condition_variable writer_cv_;     // writer work queued, a batch filled, or stopping
    std::condition_variable settled_cv_;    // a batch settled, the token is free, or the writer exited
    std::vector<Op> pending_;
    Seq last_seq_ = 0;
    std::size_t writer_work_ = 0;  // queued writes the writer must commit
    Clock::time_point first_pending_at_;
    bool stopping_ = false;
    bool interrupted_ = false;
    bool committing_ = false;  // the commit token
    Seq settled_upto_ = 0;     // every write up to here has its outcome
    std::optional<Clock::time_point> sync_due_;  // when the oldest unsynced commit is due a sync()
    Clock::time_point reconnect_at_{};           // while the driver's database is unavailable
    bool writer_done_ = false;
    std::vector<Failed> failures_;  // the last few, oldest first
    std::vector<Seq> skipped_;      // the last few skipped writes, oldest first
    Seq forgotten_upto_ = 0;        // outcomes up to here may have been dropped

    // Observed by the committer once per committed batch, before it is
    // published. Lock-free: stats() snapshots them from any thread.
    Histogram commit_seconds_;
    Histogram batch_operations_;

    // Serialises close(). Lock order: close_mutex_, then mutex_.
    std::mutex close_mutex_;
    std::thread writer_;  // last member: started once everything it uses exists
};

}  // namespace zk::storage
