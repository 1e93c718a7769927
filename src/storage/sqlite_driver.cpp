// SqliteDriver: opening (directory lock, pragmas, schema version, integrity
// probe), applying a batch through prepared statements, the checkpoint that
// syncs the WAL, and the start-up scan. Design and recovery: sqlite_driver.h.

#include "storage/sqlite_driver.h"

#include <sqlite3.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <atomic>
#include <iterator>
#include <mutex>
#include <limits>
#include <system_error>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "storage/job_store.h"
#include "util/log.h"

namespace zk::storage {

namespace {

// Version 1: the jobs table. Version 2: each job's idempotency scope and
// key (NULL without one), unique among the rows that have one. A new store is
// made at version 1 and brought up by the same steps an old one takes, so
// the upgrade path is the one every test runs.
constexpr std::int64_t schema_version = 2;

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

// migrations[v - 1] brings the schema from version v to v + 1. Append only.
constexpr const char* migrations[] = {
    // 1 -> 2. Partial: rows without a key (most) stay out of the index.
    "ALTER TABLE jobs ADD COLUMN idem_scope TEXT;"
    "ALTER TABLE jobs ADD COLUMN idem_key TEXT;"
    "CREATE UNIQUE INDEX jobs_idempotency ON jobs (idem_scope, idem_key) WHERE idem_key IS NOT NULL;",
};
static_assert(std::size(migrations) == schema_version - 1, "one migration per schema version after the first");

// Each WriteKind's rule, as in every backend (storage/job_store.h). A
// creation whose id or key is taken changes nothing (OR IGNORE: the domain's
// key index admits a key once, so it never happens here); a finish lands only
// on an unfinished row. Made from the column table (storage/job_record.h).
std::string create_sql()
{
    std::string values;
    for (std::size_t i = 0; i < columns.size(); ++i) values += (i ? ", ?" : "?") + std::to_string(i + 1);
    return "INSERT OR IGNORE INTO jobs (" + column_list() + ") VALUES (" + values + ")";
}

std::string finish_sql()
{
    std::string set;
    for (std::size_t i = 0; i < columns.size(); ++i)
        if (columns[i].changes_on_finish)
            set += (set.empty() ? "" : ", ") + std::string(columns[i].name) + " = ?" + std::to_string(i + 1);
    return "UPDATE jobs SET " + set + " WHERE id = ?1 AND state < " +
           std::to_string(static_cast<int>(RecordState::done));
}

std::string select_sql() { return "SELECT " + column_list() + " FROM jobs ORDER BY id"; }

// A reconnect's probe wants at least this much room on the store's file
// system: one auto-checkpoint's worth of WAL (1000 pages of 4 KiB). Reopening
// the file deletes the WAL and frees its space, so a small probe write alone
// would succeed on a disk that is still full, and the store would flap.
constexpr unsigned long long probe_room_bytes = 4ull << 20;

// While another connection (an operator's sqlite3, a checkpointing reader)
// holds the write lock, a commit retries at growing pauses up to this one,
// checking its deadline and an interrupt between them.
constexpr auto busy_pause_max = std::chrono::milliseconds(10);

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
// readahead (cold-cache figures: docs/performance.md).
// A speed-up only: errors are left for SQLite to meet and report. It must
// run before SQLite opens the file: closing any descriptor of a file drops
// every POSIX lock the process holds on it, SQLite's included, and an
// outside reader (an operator's sqlite3) would then believe it is the last
// connection and delete the WAL the worker still writes to.
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

// Reads column i of a select of column_list() into the field.
struct ColumnReader {
    sqlite3_stmt* s;
    bool ok = true;
    void operator()(const Column&, std::size_t i, RecordId& v)
    {
        const int col = static_cast<int>(i);
        ok = ok && sqlite3_column_bytes(s, col) == static_cast<int>(v.size());
        if (ok) std::memcpy(v.data(), sqlite3_column_blob(s, col), v.size());
    }
    void operator()(const Column&, std::size_t i, std::string& v) { v = text_column(s, static_cast<int>(i)); }  // NULL reads as empty
    void operator()(const Column&, std::size_t i, std::int64_t& v) { v = sqlite3_column_int64(s, static_cast<int>(i)); }
    void operator()(const Column&, std::size_t i, std::int32_t& v)
    {
        const std::int64_t wide = sqlite3_column_int64(s, static_cast<int>(i));
        ok = ok && wide >= std::numeric_limits<std::int32_t>::min() && wide <= std::numeric_limits<std::int32_t>::max();
        v = static_cast<std::int32_t>(wide);
    }
    void operator()(const Column&, std::size_t i, RecordState& v)
    {
        const int state = sqlite3_column_int(s, static_cast<int>(i));
        ok = ok && state >= 0 && state <= static_cast<int>(RecordState::cancelled);
        v = static_cast<RecordState>(state);
    }
};

// Binds a field as parameter ?(i+1). SQLITE_STATIC: the write outlives the
// step; nothing is copied. An empty key column binds NULL, so the partial
// unique index leaves the row out.
struct ColumnBinder {
    sqlite3_stmt* s;
    bool finish_only;  // only the id and the columns a finish writes
    bool wanted(const Column& c) const { return binds(c, finish_only); }
    void operator()(const Column& c, std::size_t i, const RecordId& v)
    {
        if (wanted(c)) sqlite3_bind_blob(s, static_cast<int>(i + 1), v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    }
    void operator()(const Column& c, std::size_t i, const std::string& v)
    {
        if (!wanted(c)) return;
        if (c.null_when_empty && v.empty()) sqlite3_bind_null(s, static_cast<int>(i + 1));
        else sqlite3_bind_text(s, static_cast<int>(i + 1), v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    }
    void operator()(const Column& c, std::size_t i, std::int64_t v)
    {
        if (wanted(c)) sqlite3_bind_int64(s, static_cast<int>(i + 1), v);
    }
    void operator()(const Column& c, std::size_t i, std::int32_t v)
    {
        if (wanted(c)) sqlite3_bind_int(s, static_cast<int>(i + 1), v);
    }
    void operator()(const Column& c, std::size_t i, RecordState v)
    {
        if (wanted(c)) sqlite3_bind_int(s, static_cast<int>(i + 1), static_cast<int>(v));
    }
};

// Fills r from a row of select_sql(); false when the row cannot be a job.
bool read_row(sqlite3_stmt* s, JobRecord& r)
{
    ColumnReader read{s};
    for_each_column(r, read);
    return read.ok;
}

struct DbCloser {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Owns the directory's file descriptor, whose flock marks the store in use.
struct DirLock {
    int fd = -1;
    DirLock() = default;
    explicit DirLock(int f) : fd(f) {}
    DirLock(DirLock&& o) noexcept : fd(o.fd) { o.fd = -1; }
    DirLock& operator=(DirLock&& o) noexcept
    {
        if (this != &o) {
            if (fd >= 0) ::close(fd);
            fd = o.fd;
            o.fd = -1;
        }
        return *this;
    }
    ~DirLock()
    {
        if (fd >= 0) ::close(fd);  // releases the flock
    }
};

class SqliteDriver final : public Driver {
public:
    SqliteDriver(const std::string& dir, std::chrono::milliseconds reconnect_interval,
                 std::chrono::milliseconds lock_timeout);
    ~SqliteDriver() override { close(); }
    SqliteDriver(const SqliteDriver&) = delete;
    SqliteDriver& operator=(const SqliteDriver&) = delete;

    std::string_view name() const override { return "sqlite"; }
    void load(const std::function<void(JobRecord&&)>& visit) override;
    bool commit(std::span<const Write* const> writes, std::string& error) override;
    bool sync() override;
    bool reconnect(std::string& error) override;
    std::chrono::milliseconds reconnect_interval() const override { return reconnect_interval_; }
    Availability& availability() override { return availability_; }
    void interrupt() override;
    void close() override;

private:
    [[noreturn]] void fail(const std::string& what) const;
    [[noreturn]] void fail_sqlite(const std::string& what, sqlite3* db) const;
    void lock_dir();
    Db open_db(int flags) const;
    void open_connection();
    void exec(const char* sql);
    std::int64_t query_int(const char* sql);
    std::string query_text(const char* sql);
    Stmt prepare(sqlite3* db, const char* sql) const;
    void configure();
    void migrate();
    void check_integrity();
    void prepare_writes();
    bool apply(const Write& w);
    bool step_reset(sqlite3_stmt* stmt);
    bool probe();
    std::string abandon();
    static int on_busy(void* self, int count);

    const std::string dir_;
    const std::string path_;  // dir_ + "/jobs.db"
    const std::chrono::milliseconds reconnect_interval_;
    // The longest a commit waits for another connection's write lock.
    const std::chrono::milliseconds lock_timeout_;
    std::chrono::steady_clock::time_point busy_since_{};  // the token holder's
    Availability availability_{"sqlite"};
    std::atomic<bool> interrupted_{false};
    // The lock and the connection are declared before the statements, so the
    // statements are finalized first.
    DirLock dir_lock_;
    // db_mutex_ (a leaf) guards the pointer against interrupt() while
    // reconnect() replaces it; the token holder alone uses the connection.
    mutable std::mutex db_mutex_;
    Db db_;
    Stmt create_, finish_, erase_, begin_, commit_, rollback_;
};

}  // namespace

// ---------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------

std::unique_ptr<Driver> open_sqlite_driver(const std::string& dir, std::chrono::milliseconds reconnect_interval,
                                           std::chrono::milliseconds lock_timeout)
{
    return std::make_unique<SqliteDriver>(dir, reconnect_interval, lock_timeout);
}

SqliteDriver::SqliteDriver(const std::string& dir, std::chrono::milliseconds reconnect_interval,
                           std::chrono::milliseconds lock_timeout)
    : dir_(dir), path_(dir + "/jobs.db"), reconnect_interval_(reconnect_interval), lock_timeout_(lock_timeout)
{
    lock_dir();
    prefetch(path_);
    open_connection();
    migrate();
    check_integrity();
    prepare_writes();
}

// The connection and its settings; the directory lock is kept across reopens.
void SqliteDriver::open_connection()
{
    Db db = open_db(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    sqlite3_busy_handler(db.get(), on_busy, this);  // instead of open_db's plain timeout
    std::lock_guard lock(db_mutex_);
    db_ = std::move(db);
    configure();
}

void SqliteDriver::prepare_writes()
{
    create_ = prepare(db_.get(), create_sql().c_str());
    finish_ = prepare(db_.get(), finish_sql().c_str());
    erase_ = prepare(db_.get(), "DELETE FROM jobs WHERE id = ?1");
    // IMMEDIATE takes the write lock up front, so a competing writer is met
    // by the busy timeout instead of failing the upgrade mid-transaction.
    begin_ = prepare(db_.get(), "BEGIN IMMEDIATE");
    commit_ = prepare(db_.get(), "COMMIT");
    rollback_ = prepare(db_.get(), "ROLLBACK");
}

void SqliteDriver::close()
{
    for (Stmt* s : {&create_, &finish_, &erase_, &begin_, &commit_, &rollback_}) s->reset();
    {
        std::lock_guard lock(db_mutex_);
        db_.reset();  // the last connection to close checkpoints and removes the WAL
    }
    dir_lock_ = DirLock();
}

void SqliteDriver::fail(const std::string& what) const
{
    throw StoreError("job store " + path_ + ": " + what);
}

void SqliteDriver::fail_sqlite(const std::string& what, sqlite3* db) const
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
void SqliteDriver::lock_dir()
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

Db SqliteDriver::open_db(int flags) const
{
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path_.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
    Db db(raw);  // closed on every path, even a failed open
    if (rc != SQLITE_OK) fail_sqlite("cannot open", db.get());
    sqlite3_busy_timeout(db.get(), static_cast<int>(lock_timeout_.count()));
    return db;
}

void SqliteDriver::exec(const char* sql)
{
    if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr) != SQLITE_OK)
        fail_sqlite(std::string("'") + sql + "' failed", db_.get());
}

std::int64_t SqliteDriver::query_int(const char* sql)
{
    Stmt s = prepare(db_.get(), sql);
    if (sqlite3_step(s.get()) != SQLITE_ROW) fail_sqlite(std::string("'") + sql + "' failed", db_.get());
    return sqlite3_column_int64(s.get(), 0);
}

std::string SqliteDriver::query_text(const char* sql)
{
    Stmt s = prepare(db_.get(), sql);
    if (sqlite3_step(s.get()) != SQLITE_ROW) fail_sqlite(std::string("'") + sql + "' failed", db_.get());
    return text_column(s.get(), 0);
}

Stmt SqliteDriver::prepare(sqlite3* db, const char* sql) const
{
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK)
        fail_sqlite(std::string("cannot prepare '") + sql + "'", db);
    return Stmt(raw);
}

void SqliteDriver::configure()
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
// must carry a version we know, or a later build's layout could be misread.
// Each step commits with its version, so a crash mid-way resumes there.
void SqliteDriver::migrate()
{
    std::int64_t version = query_int("PRAGMA user_version");
    if (version < 0 || version > schema_version)
        fail("schema version " + std::to_string(version) + " is unknown (this build reads version " +
             std::to_string(schema_version) + "); refusing to open it");
    if (version == 0 && query_int("SELECT count(*) FROM sqlite_master") != 0)
        fail("has tables but no zookeeper schema version; not a job store");
    for (; version < schema_version; ++version) {
        exec("BEGIN IMMEDIATE");
        exec(version == 0 ? schema_sql : migrations[version - 1]);
        exec(("PRAGMA user_version = " + std::to_string(version + 1)).c_str());
        exec("COMMIT");
        if (version > 0) log::info("store_migrated").kv("backend", "sqlite").kv("version", version + 1);
    }
}

// quick_check walks every page (O(size), no index cross-checks): it finds a
// torn or overwritten page at start-up, when refusing to start is still an
// option, rather than at the first write that touches it.
void SqliteDriver::check_integrity()
{
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
// Committing (the pipeline's token holder)
// ---------------------------------------------------------------------------

// One transaction for the whole batch, through the prepared statements.
// Whatever fails (a full disk, a read-only file system, an I/O error, a lock
// held past the busy timeout) makes the store unavailable until reconnect()
// proves a write works again.
bool SqliteDriver::commit(std::span<const Write* const> writes, std::string& error)
{
    if (interrupted_ || !commit_) {  // shutting down, or a reconnect that failed half way
        error = interrupted_ ? "interrupted (shutting down)" : path_ + ": not open";
        if (!interrupted_) availability_.failed(error);
        return false;
    }
    bool ok = step_reset(begin_.get());
    for (std::size_t k = 0; ok && k < writes.size(); ++k) ok = apply(*writes[k]);
    if (ok && !interrupted_ && step_reset(commit_.get())) {
        availability_.succeeded();
        return true;
    }
    error = abandon();
    availability_.failed(error);
    return false;
}

bool SqliteDriver::apply(const Write& w)
{
    sqlite3_stmt* s = w.kind == WriteKind::create ? create_.get() : w.kind == WriteKind::finish ? finish_.get() : erase_.get();
    ColumnBinder bind{s, w.kind != WriteKind::create};
    if (w.kind == WriteKind::erase) bind(columns[0], 0, w.record.id);
    else for_each_column(w.record, bind);
    if (!step_reset(s)) return false;
    w.skipped = w.kind != WriteKind::erase && sqlite3_changes(db_.get()) == 0;
    return true;
}

bool SqliteDriver::step_reset(sqlite3_stmt* stmt)
{
    const int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return rc == SQLITE_DONE;
}

// Rolls back what SQLite has not already; returns why the commit failed.
std::string SqliteDriver::abandon()
{
    std::string why = path_ + ": " + sqlite3_errmsg(db_.get());
    if (const int err = sqlite3_system_errno(db_.get()); err != 0) why += std::string(" (") + std::strerror(err) + ")";
    // Some errors (I/O, full disk) already rolled the transaction back.
    if (!sqlite3_get_autocommit(db_.get())) step_reset(rollback_.get());
    return why;
}

// Reopens the file (an I/O error may leave a connection unusable) and proves
// that a write reaches the disk again.
bool SqliteDriver::reconnect(std::string& error)
{
    if (interrupted_) return false;
    try {
        for (Stmt* s : {&create_, &finish_, &erase_, &begin_, &commit_, &rollback_}) s->reset();
        open_connection();
        prepare_writes();
        if (!probe()) throw StoreError(abandon());
    } catch (const StoreError& e) {
        error = e.what();
        availability_.failed(error);
        return false;
    }
    availability_.succeeded();
    return true;
}

// Room to grow the WAL on a writable file system, then a transaction that
// writes the header's user_version (unchanged): a page committed to the WAL.
bool SqliteDriver::probe()
{
    struct statvfs fs{};
    if (::statvfs(dir_.c_str(), &fs) != 0) throw StoreError(dir_ + ": " + std::strerror(errno));
    if (fs.f_flag & ST_RDONLY) throw StoreError(dir_ + ": read-only file system");
    const unsigned long long room = static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize;
    if (room < probe_room_bytes)
        throw StoreError(dir_ + ": " + std::to_string(room >> 10) + " KiB free, " +
                         std::to_string(probe_room_bytes >> 10) + " KiB wanted");
    const std::string sql = "PRAGMA user_version = " + std::to_string(schema_version);
    return step_reset(begin_.get()) && sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK &&
           step_reset(commit_.get());
}

// SQLite's busy handler: another connection holds the write lock. Retries
// at growing pauses until lock_timeout_ has passed since the first refusal,
// or at once gives up on an interrupt (sqlite3_interrupt alone does not end
// a busy wait).
int SqliteDriver::on_busy(void* self, int count)
{
    auto* d = static_cast<SqliteDriver*>(self);
    const auto now = std::chrono::steady_clock::now();
    if (count == 0) d->busy_since_ = now;
    if (d->interrupted_ || now - d->busy_since_ >= d->lock_timeout_) return 0;
    const auto pause = std::chrono::milliseconds(1) * (1 << std::min(count, 4));
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(pause, busy_pause_max));
    return 1;
}

void SqliteDriver::interrupt()
{
    interrupted_ = true;
    std::lock_guard lock(db_mutex_);
    if (db_) sqlite3_interrupt(db_.get());  // ends a busy-timeout wait at once
}

// A passive checkpoint fsyncs the WAL before copying it into the database:
// that fsync is what bounds the power-loss window.
// A checkpoint that fails (a full disk, an I/O error) leaves the WAL to
// grow until commits fail too: the store is unavailable from now on, until a
// reconnect's probe finds room again (one log line, as for any outage).
bool SqliteDriver::sync()
{
    if (!db_) return false;
    const int rc = sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc != SQLITE_OK) availability_.failed(path_ + ": checkpoint: " + sqlite3_errmsg(db_.get()));
    return rc == SQLITE_OK;
}

// ---------------------------------------------------------------------------
// Start-up scan
// ---------------------------------------------------------------------------

void SqliteDriver::load(const std::function<void(JobRecord&&)>& visit)
{
    Db db = open_db(SQLITE_OPEN_READONLY);
    Stmt s = prepare(db.get(), select_sql().c_str());
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
