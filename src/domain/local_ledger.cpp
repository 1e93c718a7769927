// Restoring from the store, listing from memory, deleting expired rows.

#include "domain/local_ledger.h"

#include <algorithm>

#include "domain/record_mapping.h"

namespace zk {

void LocalLedger::restore(const std::function<void(Job&&)>& hold)
{
    store_.load([&](storage::JobRecord&& r) { hold(from_record(std::move(r))); });
}

// A min-heap on id keeps the newest `limit` matches (v7 ids sort by time).
// Scans every held job: meant for operators, not for the hot path.
std::optional<std::vector<Job>> LocalLedger::list(const JobFilter& filter, const JobTable& held) const
{
    if (filter.limit == 0) return std::vector<Job>{};  // the heap test below reads front()
    auto older = [](const Job& a, const Job& b) { return a.id > b.id; };
    std::vector<Job> heap;
    held.for_each([&](const Job& j) {
        if (filter.state && j.state != *filter.state) return;
        if (filter.animal && j.animal != *filter.animal) return;
        if (filter.before && !(j.id < *filter.before)) return;
        if (heap.size() == filter.limit && !(heap.front().id < j.id)) return;
        heap.push_back(j);
        std::push_heap(heap.begin(), heap.end(), older);
        if (heap.size() > filter.limit) {
            std::pop_heap(heap.begin(), heap.end(), older);
            heap.pop_back();
        }
    });
    std::sort(heap.begin(), heap.end(), [](const Job& a, const Job& b) { return b.id < a.id; });
    return heap;
}

// Nobody waits. A store that refuses it now keeps the row (not counted):
// the next start restores it already expired, to be expired then.
bool LocalLedger::expired(const Job& job)
{
    storage::JobRecord r;
    r.id = job.id.bytes();
    return store_.put(storage::WriteKind::erase, r, storage::JobStore::Committer::writer).has_value();
}

}  // namespace zk
