// The SQLite backend: one table in DIR/jobs.db keyed by the 16-byte job id,
// behind the Driver interface. The class itself is private to the .cpp.
//
// Durability (WAL journal, synchronous=NORMAL). A commit returns once its
// WAL frames are written with write(2), not yet fsynced.
//   - Process crash (kill -9, abort, OOM kill): nothing acknowledged is lost.
//     The frames sit in the kernel's page cache and the next open replays the
//     WAL. Writes still queued and not waited for are lost; callers that
//     answer a client wait first.
//   - Power loss or kernel crash: commits since the last fsync of the WAL may
//     roll back; the file stays consistent (SQLite drops a torn WAL tail by
//     checksum). sync() fsyncs the WAL by a passive checkpoint, which the
//     pipeline runs once its sync interval (1 s) has passed since the oldest
//     unsynced commit, at the writer's next pause between batches. So the
//     window is the acknowledged writes of the last 1 s, plus one batch's
//     commit time and the fsync's own duration (a few ms here). SQLite's
//     auto-checkpoint (every 1000 WAL pages, about 4 MB) syncs sooner under
//     load. A clean close() checkpoints and fsyncs everything.
//   Rejected: synchronous=FULL, an fsync per commit: it cost more than half
//   the creation rate (docs/performance.md, "Storage measurements").
//
// One process per directory: opening takes flock(2) on DIR and refuses a
// second opener, so two workers never write one database.
//
// A commit that fails (disk full, file system read-only, I/O error, a lock
// held past the busy timeout) fails its batch and makes the store
// unavailable: writes answer 503. Every reconnect_interval the writer reopens
// the file and commits a probe write; once one succeeds the store takes
// writes again. Nothing acknowledged is lost: a write is acknowledged only
// once committed, and the worker's memory changes only with it.
//
// Recovery from a corrupt store (the worker exits 2 and names the file): stop
// the worker and move jobs.db, jobs.db-wal and jobs.db-shm aside together
// (the WAL holds recent commits). Then either start with an empty directory,
// losing the stored jobs, or salvage the readable rows (tested with Debian
// 12's sqlite3 shell, whose .recover is not built in):
//   sqlite3 bad/jobs.db .dump >dump.sql   # ends in "ROLLBACK; -- due to errors"
//   sed -i 's/^ROLLBACK; -- due to errors$/COMMIT;/' dump.sql
//   sqlite3 DIR/jobs.db <dump.sql && sqlite3 DIR/jobs.db 'PRAGMA user_version = 2'
// Rows on a damaged page are lost (one 4 KiB page holds about 70 jobs); the
// rest come back.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "storage/driver.h"

namespace zk::storage {

// Creates dir and dir/jobs.db if missing. Throws StoreError (naming the
// path) when the directory or file cannot be used, is in use by another
// process, is not a database, fails its integrity check or has a schema
// version this build does not know.
// lock_timeout: the longest a commit waits for another connection's write
// lock (an operator's sqlite3 shell) before it fails.
std::unique_ptr<Driver> open_sqlite_driver(const std::string& dir, std::chrono::milliseconds reconnect_interval,
                                           std::chrono::milliseconds lock_timeout = std::chrono::seconds(5));

}  // namespace zk::storage
