// An in-memory storage::Driver, so the real CommitPipeline runs in unit tests
// without a disk: the storage contract suite's third backend, and the store
// under the job pool's tests. It applies WriteKind's rules as the real
// backends do. Its Disk outlives the driver, so a reopen sees the rows, and
// lets a test misbehave it: fail commits (as a database that is gone, or as
// one statement refused while the database stays up), fail reconnects, or
// hold commits at a gate (a write then stays in flight until the test opens
// it). Like the real drivers, after interrupt() the commit in flight and
// every later one fail at once.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "storage/driver.h"

namespace zk::test {

class MemoryDriver final : public storage::Driver {
public:
    using Id = std::array<unsigned char, 16>;
    using Clock = std::chrono::steady_clock;
    // What survives the driver: the rows, and what the tests inspect and set.
    struct Disk {
        mutable std::mutex mutex;
        std::condition_variable gate_opened;    // also: a commit arrived at the gate
        std::map<Id, storage::JobRecord> rows;  // guarded by mutex
        std::vector<std::vector<Id>> commits;   // each commit's ids, in order; guarded by mutex
        // Each committed batch's writes as the driver got them (kind, record,
        // and the skipped mark it set); guarded by mutex.
        std::vector<std::vector<storage::Write>> batches;
        int syncs = 0, closes = 0, reconnects = 0;  // guarded by mutex
        int failed_commits = 0;                 // guarded by mutex: commits that returned false
        std::vector<Clock::time_point> reconnect_times;  // guarded by mutex
        bool fail_commits = false;              // guarded by mutex: fail, and report the database gone
        int quiet_failures = 0;                 // guarded by mutex: the next this many commits fail, the database still up (a refused statement)
        bool fail_reconnects = false;           // guarded by mutex
        bool gate_closed = false;               // guarded by mutex: commits wait while set
        int at_gate = 0;                        // guarded by mutex: commits waiting there

        void close_gate()
        {
            std::lock_guard lock(mutex);
            gate_closed = true;
        }
        void open_gate()
        {
            {
                std::lock_guard lock(mutex);
                gate_closed = false;
            }
            gate_opened.notify_all();
        }
        int waiting_at_gate() const
        {
            std::lock_guard lock(mutex);
            return at_gate;
        }
        // Until n commits wait at the gate; false if `limit` passes first.
        bool await_at_gate(int n, std::chrono::milliseconds limit = std::chrono::seconds(5))
        {
            std::unique_lock lock(mutex);
            return gate_opened.wait_for(lock, limit, [&] { return at_gate >= n; });
        }
        template <class F>
        void set(F&& f)
        {
            std::lock_guard lock(mutex);
            f(*this);
        }
        template <class F>
        auto get(F&& f) const
        {
            std::lock_guard lock(mutex);
            return f(*this);
        }
    };

    // statement_timeout: how long a commit waits at a closed gate before it
    // fails, as a real driver's deadline ends a commit a lock holds up.
    explicit MemoryDriver(std::shared_ptr<Disk> disk,
                          std::chrono::milliseconds reconnect_interval = std::chrono::milliseconds(20),
                          std::chrono::milliseconds statement_timeout = std::chrono::hours(1))
        : disk_(std::move(disk)), reconnect_interval_(reconnect_interval), statement_timeout_(statement_timeout)
    {
    }

    std::string_view name() const override { return "memory"; }

    void load(const std::function<void(storage::JobRecord&&)>& visit) override
    {
        std::vector<storage::JobRecord> copy;
        {
            std::lock_guard lock(disk_->mutex);
            for (const auto& [id, r] : disk_->rows) copy.push_back(r);  // id order
        }
        for (auto& r : copy) visit(std::move(r));
    }

    bool commit(std::span<const storage::Write* const> writes, std::string& error) override
    {
        std::unique_lock lock(disk_->mutex);
        ++disk_->at_gate;
        disk_->gate_opened.notify_all();  // await_at_gate
        const bool passed = disk_->gate_opened.wait_for(lock, statement_timeout_,
                                                        [&] { return !disk_->gate_closed || interrupted_; });
        --disk_->at_gate;
        if (!passed) {  // held past the deadline: the statement fails, the store stays up
            error = "held at the gate past the statement timeout";
            ++disk_->failed_commits;
            return false;
        }
        const bool gone = disk_->fail_commits;
        const bool quiet = !gone && !interrupted_ && disk_->quiet_failures > 0;
        if (quiet) --disk_->quiet_failures;
        if (gone || quiet || interrupted_) {
            error = interrupted_ ? "interrupted (shutting down)" : "injected commit failure";
            ++disk_->failed_commits;
            lock.unlock();
            if (gone) availability_.failed(error);
            return false;
        }
        std::vector<Id> ids;
        std::vector<storage::Write> batch;
        for (const storage::Write* w : writes) {
            ids.push_back(w->record.id);
            apply(*w);
            batch.push_back(*w);
        }
        disk_->commits.push_back(std::move(ids));
        disk_->batches.push_back(std::move(batch));
        lock.unlock();
        availability_.succeeded();
        return true;
    }

    bool sync() override
    {
        std::lock_guard lock(disk_->mutex);
        ++disk_->syncs;
        return true;
    }

    bool reconnect(std::string& error) override
    {
        std::unique_lock lock(disk_->mutex);
        ++disk_->reconnects;
        disk_->reconnect_times.push_back(Clock::now());
        const bool ok = !disk_->fail_reconnects && !disk_->fail_commits && !interrupted_;
        lock.unlock();
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
        {
            std::lock_guard lock(disk_->mutex);
            interrupted_ = true;
        }
        disk_->gate_opened.notify_all();
    }

    void close() override
    {
        std::lock_guard lock(disk_->mutex);
        ++disk_->closes;
    }

private:
    // WriteKind's rules, on the rows (disk_->mutex held).
    void apply(const storage::Write& w)
    {
        auto it = disk_->rows.find(w.record.id);
        switch (w.kind) {
        case storage::WriteKind::create: {
            bool taken = it != disk_->rows.end();
            for (const auto& [id, r] : disk_->rows)
                taken = taken || (!w.record.idem_key.empty() && r.idem_scope == w.record.idem_scope &&
                                  r.idem_key == w.record.idem_key);
            w.skipped = taken;
            if (!taken) disk_->rows[w.record.id] = w.record;
            break;
        }
        case storage::WriteKind::finish:
            w.skipped = it == disk_->rows.end() || it->second.finished();
            if (!w.skipped) {
                it->second.state = w.record.state;
                it->second.started_ms = w.record.started_ms;
                it->second.finished_ms = w.record.finished_ms;
                it->second.result = w.record.result;
            }
            break;
        case storage::WriteKind::erase:
            if (it != disk_->rows.end()) disk_->rows.erase(it);
            break;
        }
    }

    std::shared_ptr<Disk> disk_;
    const std::chrono::milliseconds reconnect_interval_;
    const std::chrono::milliseconds statement_timeout_;
    bool interrupted_ = false;  // guarded by disk_->mutex
    storage::Availability availability_{"memory"};
};

}  // namespace zk::test
