// Jobs watched here that this worker may not finish itself (a shared store:
// another worker runs the survey, or a cancel comes through another worker),
// and when to read them from the database again. A pool thread (the ledger's
// re-check timer) asks take_due() and makes one round trip for every id it returns
// (SharedStore::fetch_many); a job found finished fires its watchers, and
// release() drops the entry with its last watcher.
//
// Two kinds of check:
//   - at the deadline, plus settle_ms for the owner's completion write to
//     commit; if the job is not finished yet, again after retry_ms, doubling,
//     `retries` times (the owner was a little late), then only:
//   - every period_ms, every entry at once: a cancel through another worker
//     has no deadline to aim at, so this bounds how long it goes unseen.
// Counted per watcher, so a watch added while the last one of the same job
// leaves keeps its entry. Thread-safe: one mutex, a leaf.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "domain/clock.h"
#include "domain/job_id.h"

namespace zk {

struct RemoteTiming {
    Millis settle_ms = 5;   // the owner's completion lag (~1 ms) and its commit (~1-2 ms)
    Millis retry_ms = 10;   // first retry after the settle check; doubles after each
    int retries = 5;        // 10+20+40+80+160: the owner may be up to ~0.3 s late
    Millis period_ms = 500; // without the cancel feed, a cancel elsewhere is seen within this and one round trip
};

class RemoteWatches {
public:
    explicit RemoteWatches(RemoteTiming timing) : timing_(timing) {}

    // One more watcher of `id`, whose deadline is deadline_ms (0: unknown,
    // periodic checks only). Returns a time the caller must arm a timer at,
    // when it is sooner than the one already armed.
    std::optional<Millis> add(const JobId& id, Millis deadline_ms, Millis now);
    // `watchers` watchers of `id` left (fired or taken back); the entry goes
    // with the last.
    void release(const JobId& id, std::size_t watchers = 1);
    // The ids to read now: those whose deadline check is due, or every entry
    // when the periodic check is due. Each due one moves to its next retry.
    // The armed timer counts as fired.
    std::vector<JobId> take_due(Millis now);
    // The next take_due() returns every entry (the cancel feed reconnected:
    // cancels may have been missed).
    void all_due();
    // When to look next (recorded as the armed timer); nullopt when empty.
    std::optional<Millis> rearm();
    std::size_t size() const;

private:
    struct Entry {
        std::size_t watchers = 0;
        Millis check_at = 0;  // 0: periodic checks only
        Millis retry_ms = 0;
        int retries_left = 0;
    };
    std::optional<Millis> next_due_locked() const;
    void schedule_locked(const JobId& id, Entry& e, Millis at);

    const RemoteTiming timing_;
    mutable std::mutex mutex_;                      // a leaf
    std::map<JobId, Entry> entries_;                // guarded by mutex_
    std::set<std::pair<Millis, JobId>> schedule_;   // deadline checks; guarded by mutex_
    Millis period_at_ = 0;                          // guarded by mutex_
    std::optional<Millis> armed_at_;                // the pool's pending timer; guarded by mutex_
};

}  // namespace zk
