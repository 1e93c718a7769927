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
#include <span>
#include <string>
#include <vector>

#include "storage/driver.h"
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

class PostgresDriver final : public Driver, public SharedStore {
public:
    // Connects, migrates the schema (safe when workers start together) and
    // prepares. Throws StoreError naming the database on failure.
    explicit PostgresDriver(PostgresOptions options);
    ~PostgresDriver() override;

    // Driver. Writes go out in order, chunk_size per round trip; a write
    // that found its job finished is marked skipped. A failed commit drops
    // the connection; reconnect() makes a new one.
    std::string_view name() const override { return "postgresql"; }
    void load(const std::function<void(JobRecord&&)>& visit) override;
    bool commit(std::span<const Write* const> writes) override;
    bool sync() override { return true; }  // commits are synchronous already
    void close() override;
    bool recovers() const override { return true; }
    bool reconnect() override;
    std::chrono::milliseconds reconnect_interval() const override { return options_.retry_after; }
    SharedStore* shared() override { return this; }

    // SharedStore: through the read pool.
    bool fetch(const RecordId& id, std::optional<JobRecord>& out) override;
    bool fetch_many(const std::vector<RecordId>& ids, std::vector<JobRecord>& out) override;
    bool fetch_key(const std::string& scope, const std::string& key, std::optional<JobRecord>& out) override;
    bool list(const ListQuery& query, std::vector<JobRecord>& out) override;
    std::optional<std::size_t> rescue(std::int64_t due_ms, std::size_t limit,
                                      const std::function<void(JobRecord&)>& finish) override;
    std::optional<std::size_t> purge(std::int64_t finished_before_ms, std::size_t limit) override;
    std::optional<std::int64_t> now_ms() override;
    bool reachable() const override;

private:
    bool connect_commit(std::string& error);
    bool fetch_one(const char* statement, const pg::Params& params, std::optional<JobRecord>& out);
    void migrate();
    bool apply_chunk(std::span<const Write* const> chunk);

    const PostgresOptions options_;
    const std::string conninfo_;  // with our timeouts added
    const std::string where_;     // the database named, without a password
    const pg::Pool::Prepare setup_;  // run on every new connection
    pg::Connection commit_conn_;  // the commit token holder's alone
    std::vector<pg::Connection::Statement> statements_;  // reused by commit()
    std::vector<pg::Result> results_;
    pg::Pool pool_;
};

}  // namespace zk::storage
