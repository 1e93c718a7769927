// A database several workers share, in memory: SharedDatabase holds the rows
// and outlives every SharedMemoryDriver on it, each driver being one
// worker's storage::Driver + storage::SharedStore, so the real CommitPipeline
// and SharedLedger run in unit tests without PostgreSQL. Writes follow
// WriteKind's rules as every backend's do (the same as MemoryDriver's), and a
// committed cancel is announced to every listening driver's cancel feed, as
// PostgreSQL's NOTIFY is (to the worker that made it too).
//
// What a test may do to it:
//   - hold commits at a gate (a write stays in flight until the test opens
//     it), or at the exit gate (applied, readers see it, but the commit has
//     not returned: its settled callbacks have not run); fail commits (the
//     driver's Availability goes down) or reconnects;
//   - fail reads (fetch, fetch_key, fetch_many, list: a database that does not
//     answer), and count them;
//   - the cancel feed: notifications queue until deliver() (or, with
//     deliver_at_commit, are delivered inside the commit, before the
//     committer runs its callbacks: the listener winning the race);
//     drop_feed() ends every session (queued notices are lost: missed),
//     resume_feed() starts new ones (each announced by `resumed`);
//   - write as another worker (write_as_other, a WriteKind over the rows, in
//     its own transaction, past the gate), or forget a row (another's purge);
//   - answer now_ms() from a clock of its own (set_clock; none: no answer,
//     so a sweep leaves the cluster clock's offset at 0);
//   - count the purges asked for (every sweep ends with one).
// Lock order: SharedDatabase::mutex is a leaf; feed callbacks run after it is
// released, on the thread that called deliver() (or committed).
#pragma once

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "domain/clock.h"
#include "storage/driver.h"
#include "storage/shared_store.h"

namespace zk::test {

class SharedDatabase {
public:
    using Id = storage::RecordId;
    struct Reads {
        int fetch = 0, fetch_key = 0, fetch_many = 0, list = 0;
    };

    // --- what the tests turn -----------------------------------------------
    void close_gate()
    {
        std::lock_guard lock(mutex);
        gate_closed_ = true;
    }
    void open_gate()
    {
        {
            std::lock_guard lock(mutex);
            gate_closed_ = false;
        }
        gate_opened.notify_all();
    }
    int waiting_at_gate() const
    {
        std::lock_guard lock(mutex);
        return at_gate_;
    }
    // The ids of every write that reached the gate (closed or not), in order.
    std::vector<Id> gated() const
    {
        std::lock_guard lock(mutex);
        return gated_;
    }
    // The exit gate: a commit that has applied its writes (readers see them)
    // waits there before it returns, so its callbacks have not run yet.
    void close_exit_gate()
    {
        std::lock_guard lock(mutex);
        exit_closed_ = true;
    }
    void open_exit_gate()
    {
        {
            std::lock_guard lock(mutex);
            exit_closed_ = false;
        }
        gate_opened.notify_all();
    }
    int waiting_at_exit() const
    {
        std::lock_guard lock(mutex);
        return at_exit_;
    }
    void fail_commits(bool on)
    {
        std::lock_guard lock(mutex);
        fail_commits_ = on;
    }
    void fail_reconnects(bool on)
    {
        std::lock_guard lock(mutex);
        fail_reconnects_ = on;
    }
    void fail_reads(bool on)
    {
        std::lock_guard lock(mutex);
        fail_reads_ = on;
    }
    Reads reads() const
    {
        std::lock_guard lock(mutex);
        return reads_;
    }
    // Purges asked for: the last step of every sweep.
    int purges() const
    {
        std::lock_guard lock(mutex);
        return purges_;
    }
    void set_clock(const Clock* clock)
    {
        std::lock_guard lock(mutex);
        clock_ = clock;
    }

    // Another worker's write, committed in a transaction of its own; true
    // when it changed the rows. Its cancel is queued for the feeds.
    bool write_as_other(storage::WriteKind kind, const storage::JobRecord& r)
    {
        bool applied = false;
        bool deliver_now = false;
        {
            std::lock_guard lock(mutex);
            applied = apply_locked(kind, r);
            deliver_now = deliver_at_commit_;
        }
        if (deliver_now) deliver();
        return applied;
    }
    void forget(const Id& id)
    {
        std::lock_guard lock(mutex);
        rows_.erase(id);
    }
    std::optional<storage::JobRecord> row(const Id& id) const
    {
        std::lock_guard lock(mutex);
        const auto it = rows_.find(id);
        return it == rows_.end() ? std::nullopt : std::optional(it->second);
    }
    std::size_t size() const
    {
        std::lock_guard lock(mutex);
        return rows_.size();
    }
    // Each commit's ids, in order (one entry per transaction of a driver).
    std::vector<std::vector<Id>> commits() const
    {
        std::lock_guard lock(mutex);
        return commits_;
    }

    // The cancel feed. deliver(): every queued notification reaches its
    // feed (on the calling thread); returns how many did.
    std::size_t deliver()
    {
        std::vector<std::pair<std::shared_ptr<Listener>, std::pair<Id, std::int64_t>>> out;
        {
            std::lock_guard lock(mutex);
            for (auto& l : listeners_) {
                for (auto& n : l->queued) out.emplace_back(l, n);
                l->queued.clear();
            }
        }
        for (auto& [l, n] : out) l->feed.cancelled(n.first, n.second);
        return out.size();
    }
    std::size_t queued_notices() const
    {
        std::lock_guard lock(mutex);
        std::size_t n = 0;
        for (const auto& l : listeners_) n += l->queued.size();
        return n;
    }
    void drop_feed()
    {
        std::lock_guard lock(mutex);
        for (auto& l : listeners_) {
            l->listening = false;
            l->queued.clear();  // missed
        }
    }
    void resume_feed()
    {
        std::vector<std::shared_ptr<Listener>> resumed;
        {
            std::lock_guard lock(mutex);
            for (auto& l : listeners_)
                if (!l->listening && !l->closed) {
                    l->listening = true;
                    resumed.push_back(l);
                }
        }
        for (auto& l : resumed) l->feed.resumed();
    }
    // Deliver each notice inside the commit that made it, before the commit
    // returns (the listener beats the committer's callbacks).
    void deliver_at_commit(bool on)
    {
        std::lock_guard lock(mutex);
        deliver_at_commit_ = on;
    }

private:
    friend class SharedMemoryDriver;
    struct Listener {
        storage::CancelFeed feed;
        bool listening = false;  // guarded by the database's mutex
        bool closed = false;     // guarded by the database's mutex
        std::deque<std::pair<Id, std::int64_t>> queued;  // guarded by the database's mutex
    };

    // Must be called with mutex held.
    // WriteKind's rules over the rows; true when the write changed them
    // (false: skipped). A committed cancel is queued for every listening feed.
    bool apply_locked(storage::WriteKind kind, const storage::JobRecord& r)
    {
        auto it = rows_.find(r.id);
        switch (kind) {
        case storage::WriteKind::create: {
            if (it != rows_.end()) return false;
            if (!r.idem_key.empty())
                for (const auto& [id, row] : rows_)
                    if (row.idem_scope == r.idem_scope && row.idem_key == r.idem_key) return false;
            rows_[r.id] = r;
            return true;
        }
        case storage::WriteKind::finish:
            if (it == rows_.end() || it->second.finished()) return false;
            it->second.state = r.state;
            it->second.started_ms = r.started_ms;
            it->second.finished_ms = r.finished_ms;
            it->second.result = r.result;
            if (r.state == storage::RecordState::cancelled)
                for (auto& l : listeners_)
                    if (l->listening) l->queued.emplace_back(r.id, r.finished_ms);
            return true;
        case storage::WriteKind::erase: rows_.erase(r.id); return true;
        }
        return false;
    }


    mutable std::mutex mutex;
    std::condition_variable gate_opened;
    std::map<Id, storage::JobRecord> rows_;          // guarded by mutex
    std::multiset<std::string> keys_in_flight_;      // guarded by mutex: keyed creations being committed
    std::vector<std::vector<Id>> commits_;           // guarded by mutex
    std::vector<Id> gated_;                          // guarded by mutex
    std::vector<std::shared_ptr<Listener>> listeners_;  // guarded by mutex
    Reads reads_;                                    // guarded by mutex
    int purges_ = 0;                                 // guarded by mutex
    const Clock* clock_ = nullptr;                   // guarded by mutex
    bool gate_closed_ = false, fail_commits_ = false, fail_reconnects_ = false, fail_reads_ = false;
    bool deliver_at_commit_ = false;                 // guarded by mutex
    bool exit_closed_ = false;                       // guarded by mutex
    int at_gate_ = 0, at_exit_ = 0;                  // guarded by mutex
};

// One worker's connection to the SharedDatabase.
class SharedMemoryDriver final : public storage::Driver, public storage::SharedStore {
public:
    using Id = storage::RecordId;

    explicit SharedMemoryDriver(std::shared_ptr<SharedDatabase> db,
                                std::chrono::milliseconds reconnect_interval = std::chrono::milliseconds(20))
        : db_(std::move(db)), reconnect_interval_(reconnect_interval)
    {
    }
    ~SharedMemoryDriver() override { stop_listening(); }

    // Driver.
    std::string_view name() const override { return "memory-shared"; }
    void load(const std::function<void(storage::JobRecord&&)>& visit) override
    {
        std::vector<storage::JobRecord> copy;
        {
            std::lock_guard lock(db_->mutex);
            for (const auto& [id, r] : db_->rows_) copy.push_back(r);
        }
        for (auto& r : copy) visit(std::move(r));
    }
    bool commit(std::span<const storage::Write* const> writes, std::string& error) override
    {
        std::unique_lock lock(db_->mutex);
        for (const storage::Write* w : writes) db_->gated_.push_back(w->record.id);
        // A keyed creation holds its key from here until its transaction
        // ends, as zk_lock_keys does on PostgreSQL.
        std::vector<std::string> keys;
        for (const storage::Write* w : writes)
            if (w->kind == storage::WriteKind::create && !w->record.idem_key.empty())
                keys.push_back(w->record.idem_scope + '\x1f' + w->record.idem_key);
        for (const auto& k : keys) db_->keys_in_flight_.insert(k);
        struct Release {
            SharedDatabase& db;
            const std::vector<std::string>& keys;
            ~Release()
            {
                for (const auto& k : keys) db.keys_in_flight_.erase(db.keys_in_flight_.find(k));
            }
        } release{*db_, keys};  // runs with the lock held (destroyed before `lock`)
        ++db_->at_gate_;
        db_->gate_opened.wait(lock, [&] { return !db_->gate_closed_; });
        --db_->at_gate_;
        if (db_->fail_commits_) {
            error = "injected commit failure";
            lock.unlock();
            availability_.failed(error);
            return false;
        }
        std::vector<Id> ids;
        for (const storage::Write* w : writes) {
            ids.push_back(w->record.id);
            w->skipped = !db_->apply_locked(w->kind, w->record);
        }
        db_->commits_.push_back(std::move(ids));
        ++db_->at_exit_;
        db_->gate_opened.wait(lock, [&] { return !db_->exit_closed_; });
        --db_->at_exit_;
        const bool deliver_now = db_->deliver_at_commit_;
        lock.unlock();
        availability_.succeeded();
        if (deliver_now) db_->deliver();
        return true;
    }
    bool sync() override { return true; }
    bool reconnect(std::string& error) override
    {
        bool ok = false;
        {
            std::lock_guard lock(db_->mutex);
            ok = !db_->fail_reconnects_ && !db_->fail_commits_;
        }
        if (ok) availability_.succeeded();
        else {
            error = "injected reconnect failure";
            availability_.failed(error);
        }
        return ok;
    }
    std::chrono::milliseconds reconnect_interval() const override { return reconnect_interval_; }
    storage::Availability& availability() override { return availability_; }
    void interrupt() override
    {
        db_->open_gate();
        db_->open_exit_gate();
    }
    void close() override { stop_listening(); }
    SharedStore* shared() override { return this; }

    // SharedStore.
    bool fetch(const Id& id, std::optional<storage::JobRecord>& out) override
    {
        std::lock_guard lock(db_->mutex);
        ++db_->reads_.fetch;
        if (db_->fail_reads_) return false;
        const auto it = db_->rows_.find(id);
        out = it == db_->rows_.end() ? std::nullopt : std::optional(it->second);
        return true;
    }
    bool fetch_many(const std::vector<Id>& ids, std::vector<storage::JobRecord>& out) override
    {
        std::lock_guard lock(db_->mutex);
        ++db_->reads_.fetch_many;
        if (db_->fail_reads_) return false;
        out.clear();
        for (const Id& id : ids)
            if (const auto it = db_->rows_.find(id); it != db_->rows_.end()) out.push_back(it->second);
        return true;
    }
    bool fetch_key(const std::string& scope, const std::string& key, std::optional<storage::JobRecord>& out,
                   bool& in_flight) override
    {
        std::lock_guard lock(db_->mutex);
        ++db_->reads_.fetch_key;
        if (db_->fail_reads_) return false;
        out.reset();
        for (const auto& [id, r] : db_->rows_)
            if (!key.empty() && r.idem_scope == scope && r.idem_key == key) out = r;
        in_flight = !out && db_->keys_in_flight_.count(scope + '\x1f' + key) > 0;
        return true;
    }
    bool list(const storage::ListQuery& q, std::vector<storage::JobRecord>& out) override
    {
        std::lock_guard lock(db_->mutex);
        ++db_->reads_.list;
        if (db_->fail_reads_) return false;
        out.clear();
        for (auto it = db_->rows_.rbegin(); it != db_->rows_.rend() && out.size() < q.limit; ++it) {
            const storage::JobRecord& r = it->second;
            if (q.state && r.state != *q.state) continue;
            if (q.animal && r.animal != *q.animal) continue;
            if (q.before && !(r.id < *q.before)) continue;
            out.push_back(r);
        }
        return true;
    }
    std::optional<std::size_t> rescue(std::int64_t due_ms, std::size_t limit,
                                      const std::function<void(storage::JobRecord&)>& finish) override
    {
        std::vector<storage::JobRecord> overdue;
        {
            std::lock_guard lock(db_->mutex);
            if (db_->fail_reads_) return std::nullopt;
            for (const auto& [id, r] : db_->rows_)
                if (!r.finished() && r.deadline_ms <= due_ms) overdue.push_back(r);
        }
        std::sort(overdue.begin(), overdue.end(),
                  [](const auto& a, const auto& b) { return a.deadline_ms < b.deadline_ms; });
        if (overdue.size() > limit) overdue.resize(limit);
        std::size_t finished = 0;
        for (auto& r : overdue) {
            finish(r);
            std::lock_guard lock(db_->mutex);
            if (db_->apply_locked(storage::WriteKind::finish, r)) ++finished;
        }
        return finished;
    }
    std::optional<std::size_t> purge(std::int64_t finished_before_ms, std::size_t limit) override
    {
        std::lock_guard lock(db_->mutex);
        ++db_->purges_;
        if (db_->fail_reads_) return std::nullopt;
        std::size_t purged = 0;
        for (auto it = db_->rows_.begin(); it != db_->rows_.end() && purged < limit;) {
            if (it->second.finished() && it->second.finished_ms < finished_before_ms) {
                it = db_->rows_.erase(it);
                ++purged;
            } else {
                ++it;
            }
        }
        return purged;
    }
    std::optional<std::int64_t> now_ms() override
    {
        std::lock_guard lock(db_->mutex);
        if (db_->fail_reads_ || !db_->clock_) return std::nullopt;
        return db_->clock_->now_ms();
    }
    // Listening at once: the session is announced (resumed) before anything else.
    void listen(storage::CancelFeed feed) override
    {
        auto l = std::make_shared<SharedDatabase::Listener>();
        l->feed = std::move(feed);
        l->listening = true;
        {
            std::lock_guard lock(db_->mutex);
            db_->listeners_.push_back(l);
            listener_ = l;
        }
        l->feed.resumed();
    }
    bool listening() const override
    {
        std::lock_guard lock(db_->mutex);
        return listener_ && listener_->listening;
    }

private:
    void stop_listening()
    {
        std::lock_guard lock(db_->mutex);
        if (!listener_) return;
        listener_->listening = false;
        listener_->closed = true;
        listener_->queued.clear();
        auto& all = db_->listeners_;
        all.erase(std::remove(all.begin(), all.end(), listener_), all.end());
        listener_.reset();
    }

    std::shared_ptr<SharedDatabase> db_;
    const std::chrono::milliseconds reconnect_interval_;
    storage::Availability availability_{"memory-shared"};
    std::shared_ptr<SharedDatabase::Listener> listener_;  // guarded by the database's mutex
};

}  // namespace zk::test
