// What a store shared by several workers answers besides taking writes: the
// database, not any worker's memory, is then the truth about a job. Every
// call may wait for the database (each wait has a deadline: the store's
// statement timeout) and reports failure as a value, so the caller answers
// 503 rather than freezes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "storage/job_record.h"

namespace zk::storage {

// Newest first; `before` is the keyset cursor (the last id of a page).
struct ListQuery {
    std::optional<RecordState> state;
    std::optional<std::string> animal;
    std::optional<RecordId> before;
    std::size_t limit = 50;
};

// Cancels committed through any worker, as the database announces them.
struct CancelFeed {
    // A job was cancelled (its finished_ms). Runs on the store's listener
    // thread; must not block.
    std::function<void(const RecordId& id, std::int64_t finished_ms)> cancelled;
    // The feed (re)connected: cancels made while it was down were missed.
    // Runs on the listener thread before any cancel of the new session.
    std::function<void()> resumed;
};

class SharedStore {
public:
    virtual ~SharedStore() = default;

    // false: the database did not answer (down, timed out, no connection free).
    virtual bool fetch(const RecordId& id, std::optional<JobRecord>& out) = 0;
    // The records of those of `ids` that exist, in no particular order, in
    // one round trip. An id with no record is simply absent from `out`.
    virtual bool fetch_many(const std::vector<RecordId>& ids, std::vector<JobRecord>& out) = 0;
    // The job created with that Idempotency-Key in that client scope. When
    // there is none, in_flight says whether another worker's creation with
    // that key is being stored right now (its transaction holds the key).
    virtual bool fetch_key(const std::string& scope, const std::string& key, std::optional<JobRecord>& out,
                           bool& in_flight) = 0;
    virtual bool list(const ListQuery& query, std::vector<JobRecord>& out) = 0;

    // Finishes up to `limit` unfinished jobs whose deadline is at or before
    // due_ms: `finish` turns each into its done record (a survey's result is
    // a function of its id, so any worker gives the same one), written only
    // if the job is still unfinished. Returns how many it finished.
    virtual std::optional<std::size_t> rescue(std::int64_t due_ms, std::size_t limit,
                                              const std::function<void(JobRecord&)>& finish) = 0;
    // Deletes up to `limit` jobs finished before finished_before_ms.
    virtual std::optional<std::size_t> purge(std::int64_t finished_before_ms, std::size_t limit) = 0;
    // The database's clock (ms since the epoch): the one clock all workers share.
    virtual std::optional<std::int64_t> now_ms() = 0;

    // Starts delivering cancels (once; the store stops it on close()).
    virtual void listen(CancelFeed feed) = 0;
    // True while the feed is connected: a cancel anywhere reaches this
    // worker within a round trip. False before listen() and while it reconnects.
    virtual bool listening() const = 0;
};

}  // namespace zk::storage
