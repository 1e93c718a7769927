// The JobStore on SQLite: one table in DIR/jobs.db keyed by the 16-byte job
// id. Whoever commits takes everything queued since the last commit into one
// transaction (group commit). A caller waiting for durability commits itself
// when no commit is running (the leader; callers arriving meanwhile wait and
// ride on the next batch), so a creation wakes no other thread; the writer
// thread commits the writes nobody waits for and runs the periodic fsync.
// With commit_interval > 0 only the writer commits, after gathering.
//
// Durability (WAL journal, synchronous=NORMAL). wait_durable(seq) returns
// once seq's transaction has committed: its WAL frames are written with
// write(2), not yet fsynced.
//   - Process crash (kill -9, abort, OOM kill): nothing acknowledged is lost.
//     The frames sit in the kernel's page cache and the next open replays the
//     WAL. Writes still queued and not waited for are lost; callers that
//     answer a client wait first.
//   - Power loss or kernel crash: commits since the last fsync of the WAL may
//     roll back; the file stays consistent (SQLite drops a torn WAL tail by
//     checksum). The writer fsyncs the WAL, by a passive checkpoint, once
//     sync_interval (1 s) has passed since the oldest unsynced commit, at
//     its next pause between batches. So the window is the acknowledged
//     writes of the last 1 s, plus one batch's commit time and the fsync's own
//     duration (a few ms here). SQLite's auto-checkpoint (every 1000 WAL
//     pages, about 4 MB) syncs sooner under load. A clean close() checkpoints
//     and fsyncs everything.
//   Rejected: synchronous=FULL, an fsync per commit. Measured with 8 callers
//   doing put + wait_durable on a disk whose fsync takes about 0.4 ms: 12.8k
//   creates/s, p50 0.53 ms, against 30k/s, p50 0.16 ms with NORMAL; slower
//   disks widen the gap. The periodic fsync costs NORMAL its p99 instead
//   (2.4 ms against 1.3 ms without it).
//
// One process per directory: the constructor takes flock(2) on DIR and
// refuses a second opener, so two workers never write one database.
//
// Recovery from a corrupt store (the worker exits 2 and names the file): stop
// the worker and move jobs.db, jobs.db-wal and jobs.db-shm aside together
// (the WAL holds recent commits). Then either start with an empty directory,
// losing the stored jobs, or salvage the readable rows (tested with Debian
// 12's sqlite3 shell, whose .recover is not built in):
//   sqlite3 bad/jobs.db .dump >dump.sql   # ends in "ROLLBACK; -- due to errors"
//   sed -i 's/^ROLLBACK; -- due to errors$/COMMIT;/' dump.sql
//   sqlite3 DIR/jobs.db <dump.sql && sqlite3 DIR/jobs.db 'PRAGMA user_version = 1'
// Rows on a damaged page are lost (one 4 KiB page holds about 70 jobs); the
// rest come back.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "storage/job_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace zk::storage {

class SqliteJobStore final : public JobStore {
public:
    // Creates dir and dir/jobs.db if missing. Throws StoreError (naming the
    // path) when the directory or file cannot be used, is in use by another
    // process, is not a database, fails its integrity check or has a schema
    // version this build does not know. commit_interval: how long the writer
    // may wait to gather a small batch; 0 commits as soon as anything is
    // queued. Measured (bench/store_load.cpp), 0 is best: batches form anyway
    // while a commit runs, and waiting only adds latency (8 callers doing
    // put + wait_durable: 30k creates/s at 0 ms, 3.4k/s at 2 ms).
    SqliteJobStore(const std::string& dir, std::chrono::milliseconds commit_interval);
    ~SqliteJobStore() override;
    SqliteJobStore(const SqliteJobStore&) = delete;
    SqliteJobStore& operator=(const SqliteJobStore&) = delete;

    // Reads through its own connection (a snapshot), so it may run while the
    // writer commits. visit must not call wait_durable. Throws StoreError on
    // a corrupt page or an invalid row.
    void load(const std::function<void(JobRecord&&)>& visit) override;
    Seq put(const JobRecord& record, Committer by) override;
    Seq erase(const std::array<unsigned char, 16>& id) override;
    bool wait_durable(Seq seq) override;
    bool healthy() const override;
    std::optional<StoreStats> stats() const override;
    void close() override;

private:
    using Clock = std::chrono::steady_clock;

    struct Op {
        JobRecord record;  // only the id for an erase
        bool erase = false;
        Seq seq = 0;
    };
    struct DbCloser {
        void operator()(sqlite3* db) const;
    };
    struct StmtFinalizer {
        void operator()(sqlite3_stmt* stmt) const;
    };
    using Db = std::unique_ptr<sqlite3, DbCloser>;
    using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;
    // Owns the directory's file descriptor, whose flock marks the store in use.
    struct DirLock {
        int fd = -1;
        DirLock() = default;
        explicit DirLock(int f) : fd(f) {}
        DirLock(DirLock&& o) noexcept : fd(o.fd) { o.fd = -1; }
        DirLock& operator=(DirLock&& o) noexcept;
        ~DirLock();
    };

    [[noreturn]] void fail(const std::string& what) const;
    [[noreturn]] void fail_sqlite(const std::string& what, sqlite3* db) const;
    void lock_dir();
    Db open_db(int flags) const;
    void exec(const char* sql);
    std::int64_t query_int(const char* sql);
    std::string query_text(const char* sql);
    Stmt prepare(sqlite3* db, const char* sql) const;
    void configure();
    void migrate();
    void check_integrity();

    using Lock = std::unique_lock<std::mutex>;
    Seq enqueue(Op op, Committer by);
    void run();
    void await_writer_work(Lock& lock);
    void commit_pending(Lock& lock);
    bool commit(const std::vector<Op>& batch, std::vector<std::uint32_t>& order);
    bool apply(const Op& op);
    bool step_reset(sqlite3_stmt* stmt);
    void abandon();
    void sync_if_due(Lock& lock);

    const std::string dir_;
    const std::string path_;  // dir_ + "/jobs.db"
    const std::chrono::milliseconds commit_interval_;

    // Set up by the constructor; from then on used only by the holder of the
    // commit token (committing_), until close() has joined the writer; then
    // released by close(). Declared before the statements so they are
    // finalized first.
    DirLock dir_lock_;
    Db db_;
    Stmt upsert_, delete_, begin_, commit_, rollback_;
    std::vector<Op> batch_;             // the batch being committed, swapped with pending_
    std::vector<std::uint32_t> order_;  // its coalesced order

    // mutex_ guards everything below up to failed_, which is written under
    // it and read without it. Callers take it while holding their own locks
    // (JobPool's shard mutex), so nothing slow happens under it: commits and
    // checkpoints run outside it, holding the token. pending_ has no cap on
    // purpose: put() may neither block under the caller's lock nor drop an
    // accepted write. It stays small because creators wait for durability
    // (a stalled disk stalls them, the acceptors are few) and the writes not
    // waited for are at most a few per job, whose number max_jobs bounds.
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
    std::optional<Clock::time_point> sync_due_;  // when the oldest unsynced commit is due an fsync
    bool writer_done_ = false;
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
