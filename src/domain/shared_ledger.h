// Several workers on one database (PostgreSQL): the database is the truth.
// Memory holds copies, and vouches for an unfinished one only while the
// database's cancel feed is connected and the copy was read or written in the
// feed's current session (its epoch), and only until its deadline: then the
// only news it can miss is a cancel, which the feed delivers. Past the
// deadline the completion is read, even of this worker's own survey: its
// completion write may have failed with an unknown outcome (a connection
// lost mid-commit, a failover) and have landed all the same, and another
// worker would already answer done. A finished copy is final. Everything
// else is read from the database.
//
// Besides: waiting polls on jobs this worker may not see finish are re-read
// at their deadline and every period_ms (RemoteWatches), and the sweep
// (Sweeper) completes late surveys of dead workers, deletes expired ones and
// keeps the cluster clock. Threads: the sweeper's own; the feed's callbacks
// run on the store's listener thread; recheck() on a pool thread.
#pragma once

#include <atomic>
#include <memory>

#include "domain/cluster_clock.h"
#include "domain/ledger.h"
#include "domain/remote_watches.h"
#include "domain/sweeper.h"
#include "storage/shared_store.h"

namespace zk {

struct SharedShape {
    SweepShape sweep;
    RemoteTiming remote;
};

class SharedLedger final : public Ledger {
public:
    SharedLedger(storage::SharedStore& store, ClusterClock& clock, SharedShape shape);
    ~SharedLedger() override;

    void restore(const std::function<void(Job&&)>&) override {}  // read per request instead
    void start(LedgerEvents& events) override;
    void stop() override;
    bool vouches(const Job& held, Millis now) const override;
    std::uint64_t epoch() const override { return epoch_; }
    std::uint64_t stamp(const Fetched& read) const override;
    Fetched fetch(const JobId& id) override;
    Fetched fetch_key(const IdempotencyKey& key) override;
    std::optional<std::vector<Job>> list(const JobFilter& filter, const JobTable& held) const override;
    bool expired(const Job&) override { return false; }
    void watched(const JobId& id, Millis deadline_ms) override;
    void unwatched(const JobId& id, std::size_t watchers) override { remote_.release(id, watchers); }
    void recheck() override;

private:
    Fetched begin_read() const;
    static void end_read(Fetched& f, bool answered, std::optional<storage::JobRecord>& record);
    void resumed();
    void finish_late(storage::JobRecord& record) const;

    storage::SharedStore& store_;
    ClusterClock& clock_;
    LedgerEvents* events_ = nullptr;  // set by start()
    // Bumped each time the cancel feed (re)connects; copies of an older one
    // may have missed a cancel. 0: never connected.
    std::atomic<std::uint64_t> epoch_{0};
    // Cancels the feed delivered, counted before each is applied: a read
    // that began before one may predate it (stamp()).
    std::atomic<std::uint64_t> cancels_{0};
    RemoteWatches remote_;
    std::atomic<bool> rechecking_{false};  // one re-read at a time
    std::unique_ptr<Sweeper> sweeper_;
};

}  // namespace zk
