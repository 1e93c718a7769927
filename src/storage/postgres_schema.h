// The PostgreSQL schema, its versioned migrations, and the statements the
// driver prepares on every connection (made from the record's column table,
// storage/job_record.h). Kept apart from the driver so a reader finds the
// whole data model in one place.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace zk::storage::pg {

// Held for the migration's transaction: two workers starting at once on an
// empty database migrate one after the other, and the second finds it done.
constexpr long long migration_lock_key = 0x7a6b'0001;  // "zk", lock 1

// Every cancel notifies this channel with "<id> <finished_ms>" as it commits
// (the cancel feed: storage/pg_listener.h).
constexpr const char* cancel_channel = "zookeeper_cancels";

// Migration N brings the schema from version N-1 to N. Append only.
constexpr std::array<const char*, 2> migrations{
    // 1: the jobs table. Ids are UUIDv7 (time-ordered), so the primary key
    // doubles as the listing's keyset cursor. The partial indexes serve the
    // sweeps: unfinished jobs by deadline (rescue), finished ones by when
    // they finished (retention). The result is bytes, as in the SQLite
    // store: the store keeps what it is given (psql: convert_from(result, 'UTF8')).
    "CREATE TABLE jobs ("
    " id uuid PRIMARY KEY,"
    " animal text NOT NULL,"
    " state smallint NOT NULL CHECK (state BETWEEN 0 AND 3),"
    " created_ms bigint NOT NULL,"
    " started_ms bigint NOT NULL,"
    " deadline_ms bigint NOT NULL,"
    " finished_ms bigint NOT NULL,"
    " duration_ms integer NOT NULL,"
    " result bytea NOT NULL);"
    "CREATE INDEX jobs_unfinished ON jobs (deadline_ms) WHERE state < 2;"
    "CREATE INDEX jobs_finished ON jobs (finished_ms) WHERE state >= 2;"
    "CREATE INDEX jobs_state ON jobs (state, id);",
    // 2: a creation's Idempotency-Key and its client scope (NULL without
    // one). The unique index is what makes a key unique across workers.
    "ALTER TABLE jobs ADD COLUMN idem_scope text;"
    "ALTER TABLE jobs ADD COLUMN idem_key text;"
    "CREATE UNIQUE INDEX jobs_idempotency ON jobs (idem_scope, idem_key) WHERE idem_key IS NOT NULL;",
};

// Prepared on every connection, by name.
struct Prepared {
    const char* name;
    std::string sql;
};
// Every statement; parameters are text, in the order the driver binds them.
// Each connection prepares a statement the first time it uses it, so a
// read connection never prepares a write (whose parsing would wait behind
// a lock on the table) and a new connection costs one round trip.
const std::vector<Prepared>& statements();
const Prepared* find_statement(std::string_view name);

}  // namespace zk::storage::pg
