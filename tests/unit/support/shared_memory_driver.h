// A storage::Driver that is also a SharedStore, in memory: the real
// CommitPipeline runs over it, so JobPool's shared mode (several workers on
// one database) is tested without PostgreSQL. Writes are conditional as the
// PostgreSQL driver's are (a finished row never changes; such a write is
// marked skipped); other workers' writes are simulated with write_as_other().
// It can fail its reads (a database that does not answer), slow its commits
// (so a reader racing a commit sees the row as it was), and counts reads.
#pragma once

#include <array>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "storage/driver.h"
#include "storage/shared_store.h"

namespace zk::test {

class SharedMemoryDriver final : public storage::Driver, public storage::SharedStore {
public:
    using Id = storage::RecordId;

    std::string_view name() const override { return "memory-shared"; }
    void load(const std::function<void(storage::JobRecord&&)>&) override {}
    bool commit(std::span<const storage::Write* const> writes) override
    {
        if (commit_delay_.count()) std::this_thread::sleep_for(commit_delay_);
        std::lock_guard lock(mutex_);
        for (const storage::Write* w : writes) {
            if (w->erase) rows_.erase(w->record.id);
            else w->skipped = !apply_locked(w->record);
        }
        return true;
    }
    bool sync() override { return true; }
    void close() override {}
    SharedStore* shared() override { return this; }

    bool fetch(const Id& id, std::optional<storage::JobRecord>& out) override
    {
        std::lock_guard lock(mutex_);
        if (down_) return false;
        const auto it = rows_.find(id);
        out = it == rows_.end() ? std::nullopt : std::optional(it->second);
        return true;
    }
    bool fetch_key(const std::string& scope, const std::string& key, std::optional<storage::JobRecord>& out) override
    {
        std::lock_guard lock(mutex_);
        if (down_) return false;
        out.reset();
        for (const auto& [id, r] : rows_)
            if (!key.empty() && r.idem_scope == scope && r.idem_key == key) out = r;
        return true;
    }
    bool fetch_many(const std::vector<Id>& ids, std::vector<storage::JobRecord>& out) override
    {
        std::lock_guard lock(mutex_);
        ++fetch_many_calls_;
        if (down_) return false;
        out.clear();
        for (const Id& id : ids)
            if (const auto it = rows_.find(id); it != rows_.end()) out.push_back(it->second);
        return true;
    }
    bool list(const storage::ListQuery&, std::vector<storage::JobRecord>& out) override
    {
        out.clear();
        return true;
    }
    std::optional<std::size_t> rescue(std::int64_t, std::size_t,
                                      const std::function<void(storage::JobRecord&)>&) override
    {
        return 0;
    }
    std::optional<std::size_t> purge(std::int64_t, std::size_t) override { return 0; }
    std::optional<std::int64_t> now_ms() override { return std::nullopt; }
    bool reachable() const override { return true; }

    // --- for the tests -----------------------------------------------------
    // Another worker's write (a creation, a completion, a cancel), committed.
    void write_as_other(const storage::JobRecord& r)
    {
        std::lock_guard lock(mutex_);
        apply_locked(r);
    }
    void forget(const Id& id)  // a purge by another worker
    {
        std::lock_guard lock(mutex_);
        rows_.erase(id);
    }
    std::optional<storage::JobRecord> row(const Id& id) const
    {
        std::lock_guard lock(mutex_);
        const auto it = rows_.find(id);
        return it == rows_.end() ? std::nullopt : std::optional(it->second);
    }
    void set_down(bool down)
    {
        std::lock_guard lock(mutex_);
        down_ = down;
    }
    int fetch_many_calls() const
    {
        std::lock_guard lock(mutex_);
        return fetch_many_calls_;
    }
    // Set before the pipeline starts committing.
    void set_commit_delay(std::chrono::milliseconds d) { commit_delay_ = d; }

private:
    // Must be called with mutex_ held. False: the row was finished already.
    bool apply_locked(const storage::JobRecord& r)
    {
        const auto it = rows_.find(r.id);
        if (it != rows_.end() && it->second.state >= storage::RecordState::done) return false;
        rows_[r.id] = r;
        return true;
    }

    mutable std::mutex mutex_;
    std::map<Id, storage::JobRecord> rows_;  // guarded by mutex_
    bool down_ = false;                      // guarded by mutex_
    int fetch_many_calls_ = 0;               // guarded by mutex_
    std::chrono::milliseconds commit_delay_{0};
};

}  // namespace zk::test
