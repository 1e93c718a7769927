// The job store's PostgreSQL driver, for several workers on one database.
// Writes arrive in batches from the commit pipeline and go out pipelined:
// every statement of a batch, then one Sync, in one round trip and one
// implicit transaction, committed synchronously (synchronous_commit as the
// server has it, on by default; with a synchronous standby a commit waits
// for it too). WriteKind's rules are conditional statements, so a job's
// state changes exactly once whichever worker writes first. Reads
// (SharedStore) go through a small pool of other connections; cancels reach
// every worker through LISTEN/NOTIFY (pg_listener.h).
//
// Every wait has a deadline: a connect connect_timeout, a round trip the
// statement timeout plus deadline_margin (store_factory.h). Availability
// (availability.h) is the one judge of whether the database answers: a
// connect that fails or a round trip that times out makes it unavailable
// (writes and reads then fail at once), and the pipeline's writer
// reconnects every reconnect_interval until a connect succeeds. A connection
// lost on its own (the server ended the session) is replaced at the next use.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "storage/availability.h"
#include "storage/driver.h"
#include "storage/job_record.h"
#include "storage/pg_connection.h"
#include "storage/pg_listener.h"
#include "storage/pg_pool.h"
#include "storage/shared_store.h"

namespace zk::storage {

struct PostgresOptions {
    std::string conninfo;                                // libpq connection string or URI
    std::size_t read_connections = 4;                    // the read pool's size
    std::chrono::milliseconds statement_timeout{5000};   // server-side, per statement
    std::chrono::seconds connect_timeout{5};
    std::chrono::milliseconds reconnect_interval{1000};  // between reconnects while the database is down
};

class PostgresDriver final : public Driver, public SharedStore {
public:
    // Connects, migrates the schema (safe when workers start together) and
    // prepares. Throws StoreError naming the database for a connection string
    // that does not parse and for a database that answers but cannot be used
    // (a newer schema, a failed migration); one that does not answer leaves
    // the store unavailable until the pipeline's reconnect() migrates it.
    explicit PostgresDriver(PostgresOptions options);
    ~PostgresDriver() override;

    // Driver.
    std::string_view name() const override { return "postgresql"; }
    void load(const std::function<void(JobRecord&&)>& visit) override;
    bool commit(std::span<const Write* const> writes, std::string& error) override;
    bool sync() override { return true; }  // commits are synchronous already
    bool reconnect(std::string& error) override;
    std::chrono::milliseconds reconnect_interval() const override { return options_.reconnect_interval; }
    Availability& availability() override { return availability_; }
    void interrupt() override { interrupt_.fire(); }
    void close() override;
    SharedStore* shared() override { return this; }

    // SharedStore: through the read pool.
    bool fetch(const RecordId& id, std::optional<JobRecord>& out) override;
    bool fetch_many(const std::vector<RecordId>& ids, std::vector<JobRecord>& out) override;
    bool fetch_key(const std::string& scope, const std::string& key, std::optional<JobRecord>& out,
                   bool& in_flight) override;
    bool list(const ListQuery& query, std::vector<JobRecord>& out) override;
    std::optional<std::size_t> rescue(std::int64_t due_ms, std::size_t limit,
                                      const std::function<void(JobRecord&)>& finish) override;
    std::optional<std::size_t> purge(std::int64_t finished_before_ms, std::size_t limit) override;
    std::optional<std::int64_t> now_ms() override;
    void listen(CancelFeed feed) override;
    bool listening() const override { return listener_.listening(); }

private:
    pg::Deadline round_trip_deadline() const;
    void plan(std::span<const Write* const> writes);
    std::optional<pg::Connection::Statement> lock_keys(std::span<const Write* const> writes) const;
    bool connect_commit(std::string& error);
    bool prepare_commit(pg::Deadline deadline, std::string& error);
    bool read(const char* statement, const pg::Params& params, std::vector<JobRecord>& out);
    bool read_one(const char* statement, const pg::Params& params, std::optional<JobRecord>& out);
    bool rescue_in(pg::Connection& c, pg::Deadline deadline, std::int64_t due_ms, std::size_t limit,
                   const std::function<void(JobRecord&)>& finish, std::size_t& finished, std::string& error);
    bool migrate(std::string& error);

    const PostgresOptions options_;
    const std::string conninfo_;  // with our connect timeout and application name added
    const std::string where_;     // the database named, without a password
    pg::Interrupt interrupt_;
    Availability availability_;
    const pg::Pool::Prepare setup_;  // run on every new connection
    pg::Connection commit_conn_;     // the commit token holder's alone
    bool migrated_ = false;          // the schema is current; the token holder's alone
    // commit()'s scratch, reused batch after batch.
    std::vector<pg::Connection::Statement> statements_;
    std::vector<pg::Result> results_;
    pg::Pool pool_;
    pg::Listener listener_;
    CancelFeed feed_;  // set by listen(), before the listener starts
};

}  // namespace zk::storage
