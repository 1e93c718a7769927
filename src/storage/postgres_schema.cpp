// The prepared statements, made from the column table so that no column list
// is written out by hand.

#include "storage/postgres_schema.h"

#include "storage/job_record.h"

namespace zk::storage::pg {

namespace {

// $n with the cast a text parameter of that kind needs.
std::string param(std::size_t n, ColumnKind kind)
{
    const std::string p = "$" + std::to_string(n);
    switch (kind) {
    case ColumnKind::uuid: return p + "::uuid";
    case ColumnKind::bytes: return p + "::bytea";
    case ColumnKind::text:
    case ColumnKind::integer: break;
    }
    return p;
}

std::string select_from(const std::string& where) { return "SELECT " + column_list() + " FROM jobs " + where; }

// Every column, $1..$11.
std::string insert_values()
{
    std::string values;
    for (std::size_t i = 0; i < columns.size(); ++i) values += (i ? ", " : "") + param(i + 1, columns[i].kind);
    return "INSERT INTO jobs (" + column_list() + ") VALUES (" + values + ")";
}

// $1 the id, then the columns a finish writes, in column order.
std::string finish_update()
{
    std::string set;
    std::size_t n = 1;
    for (const Column& c : columns)
        if (c.changes_on_finish) set += (set.empty() ? "" : ", ") + std::string(c.name) + " = " + param(++n, c.kind);
    return "UPDATE jobs SET " + set + " WHERE id = $1::uuid AND state < 2";
}

// An Idempotency-Key's advisory lock: a 64-bit hash of scope and key (a
// clash only makes two keys wait for each other for a moment).
constexpr const char* key_lock = "hashtextextended(s || chr(31) || k, 0)";

std::vector<Prepared> make()
{
    return {
        // A creation: 0 rows (skipped) when its id or its key is taken.
        // ON CONFLICT without a target covers the key's unique index too, so
        // a clash is a skip, not an error that would fail the whole batch;
        // another worker's creation of the same key still in its transaction
        // makes this one wait for its outcome: the database serialises them.
        {"zk_create", insert_values() + " ON CONFLICT DO NOTHING"},
        // A completion: only over an unfinished row (0 rows: skipped), so a
        // job's state changes once, whichever worker writes first, and a
        // late write never brings back a purged row.
        {"zk_finish", finish_update()},
        // A cancel is a finish that also tells every worker (the cancel feed),
        // as its transaction commits; 0 rows when skipped.
        {"zk_cancel", "WITH f AS (" + finish_update() + " RETURNING id, finished_ms) SELECT pg_notify('" +
                          cancel_channel + "', id::text || ' ' || finished_ms) FROM f"},
        {"zk_erase", "DELETE FROM jobs WHERE id = $1::uuid"},
        {"zk_fetch", select_from("WHERE id = $1::uuid")},
        // Several jobs by id in one round trip; $1 is a uuid[] in its text
        // form ('{id,id}'), so the statement stays one prepared plan.
        {"zk_fetch_many", select_from("WHERE id = ANY($1::uuid[])")},
        {"zk_fetch_key", select_from("WHERE idem_scope = $1 AND idem_key = $2")},
        // A batch's keyed creations hold their keys' advisory locks from
        // before their insert until their transaction ends, in hash order
        // (two batches never wait for each other in a circle) ...
        {"zk_lock_keys", std::string("SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT ") + key_lock +
                             " AS h FROM unnest($1::text[], $2::text[]) AS t(s, k) ORDER BY h) AS keys"},
        // ... so a repeat on another worker that finds no row can tell a
        // creation being stored (the lock taken: 409 at once, as on one
        // worker) from none (the lock free, held for this read only).
        {"zk_key_in_flight", std::string("SELECT NOT pg_try_advisory_xact_lock(") + key_lock +
                                 ") FROM (SELECT $1::text AS s, $2::text AS k) AS t"},
        // Newest first; $1 state, $2 animal, $3 cursor (NULL for none), $4 limit.
        {"zk_list", select_from("WHERE ($1::smallint IS NULL OR state = $1::smallint) AND ($2::text IS NULL OR "
                                "animal = $2::text) AND ($3::uuid IS NULL OR id < $3::uuid) ORDER BY id DESC LIMIT $4")},
        // A rescue's transaction (rescue() sends them by name, in a pipeline).
        {"zk_begin", "BEGIN"},
        {"zk_commit", "COMMIT"},
        // Overdue unfinished jobs, claimed for the rescue's transaction: a row
        // another worker's sweep holds is skipped, not waited for, so the
        // sweepers share a backlog out; in one total order (ties on the
        // deadline broken by id). zk_finish stays conditional all the same.
        {"zk_overdue", select_from("WHERE state < 2 AND deadline_ms <= $1 ORDER BY deadline_ms, id LIMIT $2 "
                                   "FOR UPDATE SKIP LOCKED")},
        // Likewise, two sweepers purge different rows.
        {"zk_purge", "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state >= 2 AND finished_ms < $1 LIMIT $2 "
                     "FOR UPDATE SKIP LOCKED)"},
        {"zk_now", "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"},
        // Every job in id order, a page at a time after $1 (load(): tools, tests).
        {"zk_scan", select_from("WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2")},
    };
}

}  // namespace

const std::vector<Prepared>& statements()
{
    static const std::vector<Prepared> all = make();
    return all;
}

const Prepared* find_statement(std::string_view name)
{
    for (const Prepared& p : statements())
        if (p.name == name) return &p;
    return nullptr;
}

}  // namespace zk::storage::pg
