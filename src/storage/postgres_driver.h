// The job store's PostgreSQL driver, for several workers on one database.
// Writes arrive in batches from the commit pipeline and go out pipelined:
// every statement of a batch, then one Sync, in one round trip; the
// statements between two Syncs are one implicit transaction, committed
// synchronously (synchronous_commit as the server has it, on by default).
// Completions and cancellations are conditional ("only if unfinished"), so
// a job's state changes exactly once whichever worker writes first. Reads
// (SharedStore) go through a small pool of other connections.
//
// Failure is not final here, unlike SQLite's: a lost connection fails the
// batch in flight (its waiters answer 503), and the next commit reconnects;
// until a connect succeeds the store reports itself unhealthy.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "storage/job_record.h"
#include "storage/pg_connection.h"
#include "storage/pg_pool.h"
#include "storage/shared_store.h"

namespace zk::storage {

struct PostgresOptions {
    std::string conninfo;                               // libpq connection string or URI
    std::size_t read_connections = 4;                   // the read pool's size
    std::chrono::milliseconds statement_timeout{5000};  // server-side, per statement
    std::chrono::seconds connect_timeout{5};
    std::chrono::milliseconds retry_after{1000};        // after a failed connect, fail fast this long
};

// One write as the pipeline hands it over.
struct PgWrite {
    const JobRecord* record;
    bool erase;
};
enum class PgOutcome { applied, skipped, failed };

class PostgresDriver final : public SharedStore {
public:
    // Connects, migrates the schema (safe when workers start together) and
    // prepares. Throws StoreError naming the database on failure.
    explicit PostgresDriver(PostgresOptions options);
    ~PostgresDriver() override;

    // Applies a batch in order; outcomes gets one entry per write. False
    // when the batch could not be committed (every outcome failed or
    // unknown); the next call reconnects first.
    bool commit(const std::vector<PgWrite>& batch, std::vector<PgOutcome>& outcomes);
    // The writes a shared store keeps are the database's: nothing is loaded.
    const std::string& name() const { return name_; }
    const std::string& where() const { return where_; }
    bool commit_connected() const { return commit_conn_.connected(); }

    bool fetch(const RecordId& id, std::optional<JobRecord>& out) override;
    bool list(const ListQuery& query, std::vector<JobRecord>& out) override;
    std::optional<std::size_t> rescue(std::int64_t due_ms, std::size_t limit,
                                      const std::function<void(JobRecord&)>& finish) override;
    std::optional<std::size_t> purge(std::int64_t finished_before_ms, std::size_t limit) override;
    std::optional<std::int64_t> now_ms() override;
    bool reachable() const override;

private:
    bool connect_commit(std::string& error);
    void migrate();
    bool apply_chunk(const std::vector<PgWrite>& batch, std::size_t from, std::size_t to,
                     std::vector<PgOutcome>& outcomes);

    const PostgresOptions options_;
    const std::string conninfo_;  // with our timeouts added
    const std::string name_ = "postgresql";
    const std::string where_;     // the database named, without a password
    const pg::Pool::Prepare setup_;  // run on every new connection
    pg::Connection commit_conn_;  // the commit token holder's alone
    std::vector<pg::Connection::Statement> statements_;  // reused by commit()
    std::vector<pg::Result> results_;
    pg::Pool pool_;
};

}  // namespace zk::storage
