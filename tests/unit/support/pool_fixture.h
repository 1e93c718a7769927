// A job pool on each backend it runs on in production, for the pool suite
// (tests/unit/domain/job_pool_test.cpp) and the api, dispatch and app tests:
//   - LocalRig:  LocalLedger over the real CommitPipeline on MemoryDriver
//                (one worker; memory is the truth, as with SQLite);
//   - SharedRig: SharedLedger over the real CommitPipeline on a
//                SharedMemoryDriver (several workers on one database, whose
//                cancel feed, reads and writes a test can steer);
//   - PgRig:     SharedLedger over the real CommitPipeline on PostgreSQL, in a
//                schema of its own (ZK_TEST_PG_URL; support/pg_test_db.h).
// Each rig has the same face: clock (a ManualClock), store, ledger, pool,
// row(id) (the stored record), advance(ms) (moves the clock and wakes the
// timers). The two memory rigs add the knobs: close_gate()/open_gate() hold
// commits in flight, fail_commits() makes the store unavailable.
// Members are made in order and the destructor stops the pool and closes the
// store before anything is destroyed (the store's callbacks call the pool).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <optional>
#include <string>
#include <vector>

#include "domain/cluster_clock.h"
#include "domain/job_pool.h"
#include "domain/local_ledger.h"
#include "domain/shared_ledger.h"
#include "domain/vocabulary.h"
#include "storage/commit_pipeline.h"
#include "storage/postgres_driver.h"
#include "support/memory_driver.h"
#include "support/pg_test_db.h"
#include "support/shared_memory_driver.h"
#include "support/wait.h"

namespace zk::test {

// An arbitrary fixed wall-clock start: 2023-11-14T22:13:20Z.
constexpr Millis t0 = 1'700'000'000'000;

inline std::shared_ptr<const Vocabulary> small_vocabulary()
{
    return std::make_shared<const Vocabulary>(std::vector<std::string>{"bisons", "elks", "koalas"},
                                              std::vector<std::string>{"thirsty", "calm"},
                                              std::vector<std::string>{"sing", "sleep"},
                                              std::vector<std::string>{"carefully", "wildly"});
}

inline Rules test_rules(Millis min_ms = 10'000, Millis max_ms = 20'000, std::size_t max_jobs = 1000,
                        Millis ttl_ms = 60'000)
{
    Rules r;
    r.vocabulary = small_vocabulary();
    r.workload = {min_ms, max_ms};
    r.max_jobs = max_jobs;
    r.result_ttl_ms = ttl_ms;
    return r;
}

// The timer thread re-reads the clock every 5 ms, so tests never depend on
// a single wake() arriving. A store wait gives up after store_wait_ms; a
// refused completion is tried again retry_ms (of the ManualClock) later.
inline PoolShape test_shape(std::size_t threads = 2, std::size_t capacity = 256, Millis store_wait_ms = 2000)
{
    PoolShape s;
    s.timers.threads = threads;
    s.timers.queue_capacity = capacity;
    s.timers.max_wait_ms = 5;
    s.worker = "test-worker";
    s.store_wait_ms = store_wait_ms;
    s.retry_ms = 20;
    return s;
}

// The sweep runs once at start and then not for an hour of real time, and
// rescues nothing a day late or less: a test that wants one asks for it.
// Remote re-reads in ManualClock ms.
inline SharedShape test_shared_shape()
{
    SharedShape s;
    s.sweep.interval_ms = 3'600'000;
    s.sweep.rescue_after_ms = 86'400'000;
    s.sweep.batch = 100;
    s.remote.settle_ms = 5;
    s.remote.retry_ms = 10;
    s.remote.retries = 2;
    s.remote.period_ms = 5'000;
    return s;
}

struct RigOptions {
    Rules rules = test_rules();
    PoolShape shape = test_shape();
    SharedShape shared = test_shared_shape();
    bool start = true;  // pool.start() in the constructor
};

// The face every rig shares.
template <class Self>
class RigBase {
public:
    void advance(Millis ms)
    {
        self().clock.advance(ms);
        self().pool.wake();
    }
    // Moves the clock to `at` (never back) and wakes the timers.
    void move_to(Millis at) { advance(std::max<Millis>(0, at - self().clock.now_ms())); }

private:
    Self& self() { return static_cast<Self&>(*this); }
};

class LocalRig : public RigBase<LocalRig> {
public:
    using Disk = MemoryDriver::Disk;
    static constexpr const char* name = "local";

    explicit LocalRig(RigOptions o = {}, std::shared_ptr<Disk> shared_disk = nullptr)
        : disk(shared_disk ? std::move(shared_disk) : std::make_shared<Disk>()),
          store(std::make_unique<MemoryDriver>(disk), std::chrono::milliseconds(0)),
          ledger(store),
          pool(clock, store, ledger, o.shape, o.rules)
    {
        if (o.start) pool.start();
    }
    ~LocalRig() { shutdown(); }
    LocalRig(const LocalRig&) = delete;
    LocalRig& operator=(const LocalRig&) = delete;

    // Stops the pool and closes the store (with the gate open). Idempotent.
    void shutdown()
    {
        open_gate();
        pool.stop();
        store.close();
    }

    std::optional<storage::JobRecord> row(const JobId& id) const
    {
        std::lock_guard lock(disk->mutex);
        const auto it = disk->rows.find(id.bytes());
        return it == disk->rows.end() ? std::nullopt : std::optional(it->second);
    }
    std::size_t rows() const
    {
        std::lock_guard lock(disk->mutex);
        return disk->rows.size();
    }
    std::size_t commits() const
    {
        std::lock_guard lock(disk->mutex);
        return disk->commits.size();
    }
    // The job being created (memory is the truth here: it is listed queued).
    std::optional<JobId> in_flight() const
    {
        JobFilter queued;
        queued.state = JobState::queued;
        const auto jobs = pool.list(queued);
        if (!jobs || jobs->empty()) return std::nullopt;
        return jobs->front().id;
    }
    void close_gate() { disk->close_gate(); }
    void open_gate() { disk->open_gate(); }
    int at_gate() const { return disk->waiting_at_gate(); }
    void fail_commits(bool on)
    {
        std::lock_guard lock(disk->mutex);
        disk->fail_commits = on;
    }

    ManualClock clock{t0};
    const Millis start_ms = t0;
    std::shared_ptr<Disk> disk;
    storage::CommitPipeline store;
    LocalLedger ledger;
    JobPool pool;
};

class SharedRig : public RigBase<SharedRig> {
public:
    static constexpr const char* name = "shared";

    // Another worker on the same database: pass the first rig's db.
    explicit SharedRig(RigOptions o = {}, std::shared_ptr<SharedDatabase> shared_db = nullptr)
        : db(shared_db ? std::move(shared_db) : std::make_shared<SharedDatabase>()),
          store(std::make_unique<SharedMemoryDriver>(db), std::chrono::milliseconds(0)),
          ledger(*store.shared(), cluster, o.shared),
          pool(cluster, store, ledger, o.shape, o.rules)
    {
        if (!o.start) return;
        // The sweeper's first pass runs on its thread at once: it must not
        // land after the test moved the clock (it would purge what the test
        // expired).
        const int purges = db->purges();
        pool.start();
        REQUIRE(wait_until([&] { return db->purges() > purges; }));
    }
    ~SharedRig() { shutdown(); }
    SharedRig(const SharedRig&) = delete;
    SharedRig& operator=(const SharedRig&) = delete;

    void shutdown()
    {
        open_gate();
        db->open_exit_gate();
        pool.stop();
        store.close();
    }

    std::optional<storage::JobRecord> row(const JobId& id) const { return db->row(id.bytes()); }
    // The job whose write reached the gate last.
    std::optional<JobId> in_flight() const
    {
        const auto ids = db->gated();
        if (ids.empty()) return std::nullopt;
        return JobId(ids.back());
    }
    // Another worker on the same database.
    std::unique_ptr<SharedRig> peer(RigOptions o = {}) const { return std::make_unique<SharedRig>(std::move(o), db); }
    std::size_t rows() const { return db->size(); }
    std::size_t commits() const { return db->commits().size(); }
    void close_gate() { db->close_gate(); }
    void open_gate() { db->open_gate(); }
    int at_gate() const { return db->waiting_at_gate(); }
    void fail_commits(bool on) { db->fail_commits(on); }
    // The cancel feed's notices reach the workers now (PostgreSQL's come by themselves).
    void deliver_feed() { db->deliver(); }

    ManualClock clock{t0};
    ClusterClock cluster{clock};  // the pool's and the ledger's, as in service.cpp (offset 0 here)
    const Millis start_ms = t0;
    std::shared_ptr<SharedDatabase> db;
    storage::CommitPipeline store;
    SharedLedger ledger;
    JobPool pool;
};

// The real store (CommitPipeline over MemoryDriver) whose put() can be made to
// throw, as CommitPipeline's may (std::bad_alloc): an exception inside a
// request's handler, which only the dispatcher catches.
class ThrowingStore final : public storage::JobStore {
public:
    explicit ThrowingStore(std::shared_ptr<MemoryDriver::Disk> disk)
        : inner_(std::make_unique<MemoryDriver>(std::move(disk)), std::chrono::milliseconds(0))
    {
    }
    void load(const std::function<void(storage::JobRecord&&)>& visit) override { inner_.load(visit); }
    std::optional<Seq> put(storage::WriteKind kind, const storage::JobRecord& record, Committer by,
                           Settled settled) override
    {
        if (throwing) throw std::runtime_error("memory store: put refused");
        return inner_.put(kind, record, by, std::move(settled));
    }
    storage::Durability wait(Seq seq, Deadline deadline) override { return inner_.wait(seq, deadline); }
    bool available() const override { return inner_.available(); }
    std::string_view backend() const override { return inner_.backend(); }
    void interrupt() override { inner_.interrupt(); }
    void close() override { inner_.close(); }

    std::atomic<bool> throwing{false};

private:
    storage::CommitPipeline inner_;
};

// PostgreSQL: the pool's clock starts at the real time; the ledger's (the
// sweep's and the remote re-reads') stays there, moved only by the offset the
// sweep measures, so a sweep whenever its thread gets to it never finds
// anything late or expired that the test made so by moving the pool's clock.
class PgRig : public RigBase<PgRig> {
public:
    static constexpr const char* name = "postgresql";

    explicit PgRig(RigOptions o = {}, std::shared_ptr<PgTestSchema> shared_schema = nullptr)
        : schema(shared_schema ? std::move(shared_schema) : std::make_shared<PgTestSchema>()),
          store(std::make_unique<storage::PostgresDriver>(options(schema->conninfo())), std::chrono::milliseconds(0)),
          ledger(*store.shared(), cluster, o.shared),
          pool(clock, store, ledger, with_store_wait(o.shape), o.rules)
    {
        if (o.start) pool.start();
    }
    ~PgRig() { shutdown(); }
    PgRig(const PgRig&) = delete;
    PgRig& operator=(const PgRig&) = delete;

    // As the service's shutdown past its grace: the pool has stopped and
    // nothing is left to write, so interrupt() only ends the waits. Without
    // it close() takes up to the cancel feed's heartbeat (2 s): the
    // listener's stop() waits one out (pg_listener_test pins that).
    void shutdown()
    {
        pool.stop();
        store.interrupt();
        store.close();
    }

    // Another worker on the same database.
    std::unique_ptr<PgRig> peer(RigOptions o = {}) const { return std::make_unique<PgRig>(std::move(o), schema); }

    // CHECK, not REQUIRE: a waiter's callback may ask from another thread.
    std::optional<storage::JobRecord> row(const JobId& id)
    {
        std::optional<storage::JobRecord> out;
        CHECK(store.shared()->fetch(id.bytes(), out));
        return out;
    }
    // PostgreSQL delivers its notifications by itself.
    void deliver_feed() {}

    const Millis start_ms = SystemClock().now_ms();
    ManualClock clock{start_ms};
    ManualClock ledger_clock{start_ms};
    ClusterClock cluster{ledger_clock};  // the ledger's: the sweep keeps its offset
    std::shared_ptr<PgTestSchema> schema;
    storage::CommitPipeline store;
    SharedLedger ledger;
    JobPool pool;

private:
    static storage::PostgresOptions options(const std::string& conninfo)
    {
        storage::PostgresOptions o;
        o.conninfo = conninfo;
        o.read_connections = 2;
        o.statement_timeout = std::chrono::milliseconds(3000);
        o.connect_timeout = std::chrono::seconds(5);
        o.reconnect_interval = std::chrono::milliseconds(100);
        return o;
    }
    // A round trip may take the statement timeout plus its margin.
    static PoolShape with_store_wait(PoolShape s)
    {
        s.store_wait_ms = std::max<Millis>(s.store_wait_ms, 3000 + storage::deadline_margin.count());
        return s;
    }
};

}  // namespace zk::test
