// SqliteJobStore: opening (directory lock, pragmas, schema version, integrity
// probe), the writer thread's group-commit loop, and the start-up scan.
// Producers only append to pending_; all SQL after the constructor runs on the
// writer thread, except load(), which reads through a connection of its own.

#include "storage/sqlite_job_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "util/blocking.h"
#include "util/log.h"

namespace zk::storage {

namespace {

constexpr std::int64_t schema_version = 1;

// WITHOUT ROWID: the id is the only key, so the table is one B-tree ordered
// by id. UUIDv7 ids are time-ordered, so inserts land on its right edge and
// expiry deletes on its left, and load() reads it in key order with no sort.
constexpr const char* schema_sql =
    "CREATE TABLE jobs ("
    " id BLOB PRIMARY KEY NOT NULL,"
    " animal TEXT NOT NULL,"
    " state INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " started_ms INTEGER NOT NULL,"
    " deadline_ms INTEGER NOT NULL,"
    " finished_ms INTEGER NOT NULL,"
    " duration_ms INTEGER NOT NULL,"
    " result TEXT NOT NULL"
    ") WITHOUT ROWID";

constexpr const char* upsert_sql =
    "INSERT OR REPLACE INTO jobs (id, animal, state, created_ms, started_ms,"
    " deadline_ms, finished_ms, duration_ms, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr const char* select_sql =
    "SELECT id, animal, state, created_ms, started_ms, deadline_ms, finished_ms,"
    " duration_ms, result FROM jobs ORDER BY id";

// How long an operator's sqlite3 shell (or a checkpointing reader) may hold
// the write lock before a commit gives up and the store turns unhealthy.
constexpr int busy_timeout_ms = 5000;
// Upper bound on the power-loss window; see the header.
constexpr auto sync_interval = std::chrono::seconds(1);
// With commit_interval > 0 the writer stops gathering once this many writes
// are queued: a batch this large already amortises the commit.
constexpr std::size_t gather_target = 256;
// A commit only write(2)s its WAL frames (no fsync, see the header): 10-50 us
// when the page cache takes them (measured on ext4, 4 callers); milliseconds
// when SQLite's auto-checkpoint, which fsyncs, runs inside it or the disk is
// busy; up to the busy timeout (5 s) when another connection holds the write
// lock and the commit still succeeds.
const std::vector<double> commit_buckets{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                         0.001,   0.0025,   0.005,   0.01,   0.025,   0.05,
                                         0.1,     0.25,     0.5,     1,      2.5,     5};
// Powers of two: batches are 1 when idle, and grow to thousands only while a
// slow commit lets the queue build up (pending_ has no cap).
const std::vector<double> batch_buckets{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
// Ends every message about a damaged file; the header and README have the recipe.
constexpr const char* recovery_hint =
    "; to recover, stop the worker, move jobs.db, jobs.db-wal and jobs.db-shm aside"
    " together and salvage rows with sqlite3 .dump (see the README)";

std::string text_column(sqlite3_stmt* s, int col)
{
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, col))) : std::string();
}

// Reads the file once, front to back, into the page cache. quick_check
// visits each page's children last to first, which defeats the kernel's
// readahead: with a cold cache, opening 1M jobs (100 MB) took 3.0 s without
// this and 0.5 s with it.
// A speed-up only: errors are left for SQLite to meet and report.
void prefetch(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    std::vector<char> buf(1 << 20);
    while (::read(fd, buf.data(), buf.size()) > 0) {
    }
    ::close(fd);
}

// Fills r from a row of select_sql; false when the row cannot be a job.
bool read_row(sqlite3_stmt* s, JobRecord& r)
{
    const int state = sqlite3_column_int(s, 2);
    const std::int64_t duration = sqlite3_column_int64(s, 7);
    if (sqlite3_column_bytes(s, 0) != static_cast<int>(r.id.size())) return false;
    if (state < 0 || state > static_cast<int>(RecordState::cancelled)) return false;
    if (duration < std::numeric_limits<std::int32_t>::min() || duration > std::numeric_limits<std::int32_t>::max())
        return false;
    std::memcpy(r.id.data(), sqlite3_column_blob(s, 0), r.id.size());
    r.animal = text_column(s, 1);
    r.state = static_cast<RecordState>(state);
    r.created_ms = sqlite3_column_int64(s, 3);
    r.started_ms = sqlite3_column_int64(s, 4);
    r.deadline_ms = sqlite3_column_int64(s, 5);
    r.finished_ms = sqlite3_column_int64(s, 6);
    r.duration_ms = static_cast<std::int32_t>(duration);
    r.result = text_column(s, 8);
    return true;
}

// Fills order with the batch indices to apply: for each id only its last
// write (a later put or erase replaces an earlier one), sorted by id so the
// B-tree is walked once, left to right.
template <class Batch>
void coalesce(const Batch& batch, std::vector<std::uint32_t>& order)
{
    order.resize(batch.size());
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
        const auto& ia = batch[a].record.id;
        const auto& ib = batch[b].record.id;
        return ia != ib ? ia < ib : a < b;
    });
    std::size_t kept = 0;
    for (std::size_t i = 0; i < order.size(); ++i) {
        if (i + 1 == order.size() || batch[order[i + 1]].record.id != batch[order[i]].record.id)
            order[kept++] = order[i];
    }
    order.resize(kept);
}

}  // namespace

void SqliteJobStore::DbCloser::operator()(sqlite3* db) const { sqlite3_close_v2(db); }
void SqliteJobStore::StmtFinalizer::operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }

SqliteJobStore::DirLock& SqliteJobStore::DirLock::operator=(DirLock&& o) noexcept
{
    if (this != &o) {
        if (fd >= 0) ::close(fd);
        fd = o.fd;
        o.fd = -1;
    }
    return *this;
}

SqliteJobStore::DirLock::~DirLock()
{
    if (fd >= 0) ::close(fd);  // releases the flock
}

// ---------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------

SqliteJobStore::SqliteJobStore(const std::string& dir, std::chrono::milliseconds commit_interval)
    : dir_(dir),
      path_(dir + "/jobs.db"),
      commit_interval_(std::max(commit_interval, std::chrono::milliseconds(0))),
      commit_seconds_(commit_buckets),
      batch_operations_(batch_buckets)
{
    lock_dir();
    db_ = open_db(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    configure();
    migrate();
    check_integrity();
    upsert_ = prepare(db_.get(), upsert_sql);
    delete_ = prepare(db_.get(), "DELETE FROM jobs WHERE id = ?1");
    // IMMEDIATE takes the write lock up front, so a competing writer is met
    // by the busy timeout instead of failing the upgrade mid-transaction.
    begin_ = prepare(db_.get(), "BEGIN IMMEDIATE");
    commit_ = prepare(db_.get(), "COMMIT");
    rollback_ = prepare(db_.get(), "ROLLBACK");
    writer_ = std::thread([this] { run(); });
}

SqliteJobStore::~SqliteJobStore() { close(); }

void SqliteJobStore::fail(const std::string& what) const
{
    throw StoreError("job store " + path_ + ": " + what);
}

void SqliteJobStore::fail_sqlite(const std::string& what, sqlite3* db) const
{
    if (!db) fail(what + ": out of memory");
    const int code = sqlite3_extended_errcode(db) & 0xff;
    std::string msg = what + ": " + sqlite3_errmsg(db);
    if (const int err = sqlite3_system_errno(db); err != 0 && code != SQLITE_CORRUPT && code != SQLITE_NOTADB)
        msg += std::string(" (") + std::strerror(err) + ")";
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) msg += recovery_hint;
    fail(msg);
}

// Creates the directory and takes an exclusive flock on it: a second worker
// on the same directory is refused instead of interleaving writes with ours.
void SqliteJobStore::lock_dir()
{
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) fail("cannot create directory " + dir_ + ": " + ec.message());
    DirLock lock(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (lock.fd < 0) fail("cannot open directory " + dir_ + ": " + std::strerror(errno));
    if (::flock(lock.fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) fail("in use by another process (" + dir_ + " is locked)");
        fail("cannot lock " + dir_ + ": " + std::strerror(errno));
    }
    dir_lock_ = std::move(lock);
}

SqliteJobStore::Db SqliteJobStore::open_db(int flags) const
{
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path_.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
    Db db(raw);  // closed on every path, even a failed open
    if (rc != SQLITE_OK) fail_sqlite("cannot open", db.get());
    sqlite3_busy_timeout(db.get(), busy_timeout_ms);
    return db;
}

void SqliteJobStore::exec(const char* sql)
{
    if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr) != SQLITE_OK)
        fail_sqlite(std::string("'") + sql + "' failed", db_.get());
}

std::int64_t SqliteJobStore::query_int(const char* sql)
{
    Stmt s = prepare(db_.get(), sql);
    if (sqlite3_step(s.get()) != SQLITE_ROW) fail_sqlite(std::string("'") + sql + "' failed", db_.get());
    return sqlite3_column_int64(s.get(), 0);
}

std::string SqliteJobStore::query_text(const char* sql)
{
    Stmt s = prepare(db_.get(), sql);
    if (sqlite3_step(s.get()) != SQLITE_ROW) fail_sqlite(std::string("'") + sql + "' failed", db_.get());
    return text_column(s.get(), 0);
}

SqliteJobStore::Stmt SqliteJobStore::prepare(sqlite3* db, const char* sql) const
{
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK)
        fail_sqlite(std::string("cannot prepare '") + sql + "'", db);
    return Stmt(raw);
}

void SqliteJobStore::configure()
{
    // The first read of the file: a non-database or torn header fails here.
    if (sqlite3_exec(db_.get(), "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr) != SQLITE_OK)
        fail_sqlite("cannot read", db_.get());
    if (query_text("PRAGMA journal_mode = WAL") != "wal") fail("cannot switch to WAL journal mode");
    exec("PRAGMA synchronous = NORMAL");
    // After a checkpoint the WAL is truncated back to this size rather than
    // keeping the high-water mark of a burst.
    exec("PRAGMA journal_size_limit = 16777216");
}

// user_version 0 with no tables is a file we just created; anything else
// must carry our version, or a later build's layout could be misread.
void SqliteJobStore::migrate()
{
    const std::int64_t version = query_int("PRAGMA user_version");
    if (version == schema_version) return;
    if (version != 0)
        fail("schema version " + std::to_string(version) + " is unknown (this build reads version " +
             std::to_string(schema_version) + "); refusing to open it");
    if (query_int("SELECT count(*) FROM sqlite_master") != 0)
        fail("has tables but no zookeeper schema version; not a job store");
    exec("BEGIN IMMEDIATE");
    exec(schema_sql);
    exec(("PRAGMA user_version = " + std::to_string(schema_version)).c_str());
    exec("COMMIT");
}

// quick_check walks every page (O(size), no index cross-checks): it finds a
// torn or overwritten page at start-up, when refusing to start is still an
// option, rather than at the first write that touches it.
void SqliteJobStore::check_integrity()
{
    prefetch(path_);
    Stmt s = prepare(db_.get(), "PRAGMA quick_check(5)");
    std::string problems;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
        const std::string line = text_column(s.get(), 0);
        if (line != "ok") problems += (problems.empty() ? "" : "; ") + line;
    }
    if (rc != SQLITE_DONE) fail_sqlite("integrity check failed", db_.get());
    if (!problems.empty()) fail("integrity check failed: " + problems + recovery_hint);
}

// ---------------------------------------------------------------------------
// Callers: queue and wait
// ---------------------------------------------------------------------------

JobStore::Seq SqliteJobStore::put(const JobRecord& record, Committer by)
{
    return enqueue(Op{record, false, 0}, by);  // the copy is made outside the lock
}

JobStore::Seq SqliteJobStore::erase(const std::array<unsigned char, 16>& id)
{
    Op op;
    op.record.id = id;
    op.erase = true;
    return enqueue(std::move(op), Committer::writer);
}

// After close() or a failed commit the write is not queued; it still gets a
// fresh sequence number, which no commit will ever reach.
JobStore::Seq SqliteJobStore::enqueue(Op op, Committer by)
{
    bool wake = false;
    Seq seq;
    {
        std::lock_guard lock(mutex_);
        seq = ++last_seq_;
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
bool SqliteJobStore::wait_durable(Seq seq)
{
    const bool may_lead = commit_interval_.count() == 0;
    Lock lock(mutex_);
    if (committed_ < seq && !failed_ && !writer_done_) {
        // Committing or waiting for a commit may take a while (a disk, a lock
        // held by an operator's sqlite3): the thread's owner may stand in.
        lock.unlock();  // the hook takes its owner's lock, never under ours
        util::will_block();
        lock.lock();
    }
    for (;;) {
        if (committed_ >= seq) return true;
        if (failed_ || writer_done_) return false;
        if (may_lead && !committing_ && !pending_.empty() && pending_.front().seq <= seq) commit_pending(lock);
        else committed_cv_.wait(lock);
    }
}

bool SqliteJobStore::healthy() const { return !failed_; }

std::optional<StoreStats> SqliteJobStore::stats() const
{
    return StoreStats{commit_seconds_.snapshot(), batch_operations_.snapshot()};
}

void SqliteJobStore::close()
{
    std::lock_guard closing(close_mutex_);
    if (!writer_.joinable()) return;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    writer_cv_.notify_one();
    writer_.join();  // it commits what is queued; nobody takes the token after it
    upsert_.reset();
    delete_.reset();
    begin_.reset();
    commit_.reset();
    rollback_.reset();
    db_.reset();  // the last connection to close checkpoints and removes the WAL
    dir_lock_ = DirLock();
}

// ---------------------------------------------------------------------------
// Committing: the writer thread, or a waiting caller
// ---------------------------------------------------------------------------

void SqliteJobStore::run()
{
    Lock lock(mutex_);
    for (;;) {
        await_writer_work(lock);
        committed_cv_.wait(lock, [this] { return !committing_; });  // a leader may be committing
        if (!pending_.empty()) commit_pending(lock);
        sync_if_due(lock);
        if (stopping_ && pending_.empty()) break;  // nothing more can be queued
    }
    writer_done_ = true;
    lock.unlock();
    committed_cv_.notify_all();
}

// Waits for writes the writer must commit, a due fsync, stopping, or writes
// a caller queued but never waited for (nothing wakes the writer for those,
// so it looks at least once per sync interval); then, when commit_interval
// allows, for the batch to fill.
void SqliteJobStore::await_writer_work(Lock& lock)
{
    for (;;) {
        if (stopping_ || writer_work_ > 0) break;
        const auto now = Clock::now();
        auto until = now + sync_interval;
        if (sync_due_) until = std::min(until, *sync_due_);
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
void SqliteJobStore::commit_pending(Lock& lock)
{
    committing_ = true;
    batch_.swap(pending_);
    writer_work_ = 0;
    lock.unlock();
    bool ok = false;
    if (!failed_) {
        try {
            ok = commit(batch_, order_);
        } catch (const std::exception& e) {  // only allocation can throw here
            log::error("store_commit_failed").kv("path", path_).kv("error", e.what());
        }
    }
    const Seq last = batch_.back().seq;
    batch_.clear();  // the records are freed outside the lock
    lock.lock();
    committing_ = false;
    // A failure is sticky: a later commit succeeding would leave a hole
    // behind sequence numbers already reported durable-or-failed.
    if (ok) {
        committed_ = last;
        if (!sync_due_) sync_due_ = Clock::now() + sync_interval;
    } else {
        failed_ = true;
    }
    committed_cv_.notify_all();
}

// One transaction for the whole batch, through the prepared statements.
bool SqliteJobStore::commit(const std::vector<Op>& batch, std::vector<std::uint32_t>& order)
{
    coalesce(batch, order);  // allocates, so before BEGIN: a throw leaves no transaction open
    const auto begun = Clock::now();
    bool ok = step_reset(begin_.get());
    for (std::size_t k = 0; ok && k < order.size(); ++k) ok = apply(batch[order[k]]);
    if (!(ok && step_reset(commit_.get()))) {
        abandon();
        return false;  // not observed: zookeeper_store_up reports the (sticky) failure
    }
    commit_seconds_.observe(std::chrono::duration<double>(Clock::now() - begun).count());
    batch_operations_.observe(static_cast<double>(batch.size()));
    return true;
}

bool SqliteJobStore::apply(const Op& op)
{
    const JobRecord& r = op.record;
    sqlite3_stmt* s = op.erase ? delete_.get() : upsert_.get();
    // SQLITE_STATIC: op outlives the step; nothing is copied.
    sqlite3_bind_blob(s, 1, r.id.data(), static_cast<int>(r.id.size()), SQLITE_STATIC);
    if (!op.erase) {
        sqlite3_bind_text(s, 2, r.animal.data(), static_cast<int>(r.animal.size()), SQLITE_STATIC);
        sqlite3_bind_int(s, 3, static_cast<int>(r.state));
        sqlite3_bind_int64(s, 4, r.created_ms);
        sqlite3_bind_int64(s, 5, r.started_ms);
        sqlite3_bind_int64(s, 6, r.deadline_ms);
        sqlite3_bind_int64(s, 7, r.finished_ms);
        sqlite3_bind_int(s, 8, r.duration_ms);
        sqlite3_bind_text(s, 9, r.result.data(), static_cast<int>(r.result.size()), SQLITE_STATIC);
    }
    return step_reset(s);
}

bool SqliteJobStore::step_reset(sqlite3_stmt* stmt)
{
    const int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE;
}

// Logs a failed commit and rolls back what SQLite has not already.
void SqliteJobStore::abandon()
{
    log::error("store_commit_failed").kv("path", path_).kv("error", sqlite3_errmsg(db_.get()));
    // Some errors (I/O, full disk) already rolled the transaction back.
    if (!sqlite3_get_autocommit(db_.get())) step_reset(rollback_.get());
}

// A passive checkpoint fsyncs the WAL before copying it into the database:
// that fsync is what bounds the power-loss window. The writer runs it holding
// the token (it uses the connection), outside the lock.
void SqliteJobStore::sync_if_due(Lock& lock)
{
    if (!sync_due_ || Clock::now() < *sync_due_) return;
    committing_ = true;
    lock.unlock();
    const int rc = sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc != SQLITE_OK)  // commits still survive a process crash; retried next interval
        log::warn("store_checkpoint_failed").kv("path", path_).kv("error", sqlite3_errmsg(db_.get()));
    lock.lock();
    committing_ = false;
    sync_due_ = rc == SQLITE_OK ? std::nullopt : std::optional(Clock::now() + sync_interval);
    committed_cv_.notify_all();
}

// ---------------------------------------------------------------------------
// Start-up scan
// ---------------------------------------------------------------------------

void SqliteJobStore::load(const std::function<void(JobRecord&&)>& visit)
{
    Db db = open_db(SQLITE_OPEN_READONLY);
    Stmt s = prepare(db.get(), select_sql);
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
        JobRecord r;
        if (!read_row(s.get(), r))
            fail(std::string("invalid row in jobs (id length, state or duration out of range)") + recovery_hint);
        visit(std::move(r));
    }
    if (rc != SQLITE_DONE) fail_sqlite("reading jobs failed", db.get());
}

}  // namespace zk::storage
