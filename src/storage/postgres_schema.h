// The PostgreSQL schema and its versioned migrations, and the statements
// the driver prepares. Kept apart from the driver so a reader finds the whole
// data model in one place.
#pragma once

#include <array>

namespace zk::storage::pg {

// Held for the migration's transaction: two workers starting at once on an
// empty database migrate one after the other, and the second finds it done.
constexpr long long migration_lock_key = 0x7a6b'0001;  // "zk", lock 1

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
    const char* sql;
};
constexpr std::array<Prepared, 11> statements{{
    // Every write of a job is its whole record: a creation inserts it, a
    // completion or cancellation replaces an unfinished one, so a job's state
    // changes once, whichever worker writes first; a finished row is never
    // touched again (0 rows: the write was skipped). One statement for both,
    // because the pipeline keeps only a job's last write of a batch: a cancel
    // may arrive in the same batch as the creation it cancels.
    {"zk_put",
     "INSERT INTO jobs (id, animal, state, created_ms, started_ms, deadline_ms, finished_ms, duration_ms, result,"
     " idem_scope, idem_key) VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO UPDATE SET"
     " state = EXCLUDED.state, started_ms = EXCLUDED.started_ms, finished_ms = EXCLUDED.finished_ms,"
     " result = EXCLUDED.result WHERE jobs.state < 2"},
    // A creation with an Idempotency-Key. ON CONFLICT without a target
    // turns a clash on jobs_idempotency into 0 rows (the write is skipped:
    // the creator reads back the job holding the key, zk_fetch_key) instead
    // of an error that would abort the whole pipelined batch. Another
    // worker's insert of the same key still in its transaction makes this
    // one wait for its outcome: the database serialises the two.
    {"zk_create_keyed",
     "INSERT INTO jobs (id, animal, state, created_ms, started_ms, deadline_ms, finished_ms, duration_ms, result,"
     " idem_scope, idem_key) VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING"},
    {"zk_fetch_key",
     "SELECT id, animal, state, created_ms, started_ms, deadline_ms, finished_ms, duration_ms, result,"
     " coalesce(idem_scope, ''), coalesce(idem_key, '') FROM jobs WHERE idem_scope = $1 AND idem_key = $2"},
    {"zk_erase", "DELETE FROM jobs WHERE id = $1::uuid"},
    {"zk_fetch",
     "SELECT id, animal, state, created_ms, started_ms, deadline_ms, finished_ms, duration_ms, result,"
     " coalesce(idem_scope, ''), coalesce(idem_key, '') FROM jobs WHERE id = $1::uuid"},
    // Several jobs by id in one round trip; $1 is a uuid[] in its text form
    // ('{id,id}'), so the statement stays one prepared plan whatever the count.
    {"zk_fetch_many",
     "SELECT id, animal, state, created_ms, started_ms, deadline_ms, finished_ms, duration_ms, result,"
     " coalesce(idem_scope, ''), coalesce(idem_key, '') FROM jobs WHERE id = ANY($1::uuid[])"},
    // Newest first; $1 state, $2 animal, $3 cursor (NULL for none), $4 limit.
    {"zk_list",
     "SELECT id, animal, state, created_ms, started_ms, deadline_ms, finished_ms, duration_ms, result,"
     " coalesce(idem_scope, ''), coalesce(idem_key, '') FROM jobs WHERE ($1::smallint IS NULL OR state = $1::smallint) AND ($2::text IS NULL OR animal = $2::text)"
     " AND ($3::uuid IS NULL OR id < $3::uuid) ORDER BY id DESC LIMIT $4"},
    // Overdue unfinished jobs. Not locked: finishing is conditional (zk_put)
    // and a result is a function of the id, so two sweepers racing agree.
    {"zk_overdue",
     "SELECT id, animal, state, created_ms, started_ms, deadline_ms, finished_ms, duration_ms, result,"
     " coalesce(idem_scope, ''), coalesce(idem_key, '') FROM jobs WHERE state < 2 AND deadline_ms <= $1 ORDER BY deadline_ms LIMIT $2"},
    {"zk_purge",
     "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state >= 2 AND finished_ms < $1 LIMIT $2)"},
    {"zk_now", "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"},
    // Every job in id order, a page at a time after $1 (load(): tools, tests).
    {"zk_scan",
     "SELECT id, animal, state, created_ms, started_ms, deadline_ms, finished_ms, duration_ms, result,"
     " coalesce(idem_scope, ''), coalesce(idem_key, '') FROM jobs WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2"},
}};

}  // namespace zk::storage::pg
