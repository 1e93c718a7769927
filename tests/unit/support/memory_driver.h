// An in-memory storage::Driver, so the real CommitPipeline runs in unit tests
// without a disk: the contract suite's second backend and the pipeline tests'
// recording driver. Its Disk outlives the driver, so a reopen sees the rows.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "storage/driver.h"

namespace zk::test {

class MemoryDriver final : public storage::Driver {
public:
    using Id = std::array<unsigned char, 16>;
    // What survives the driver: the rows, and what the tests inspect.
    struct Disk {
        mutable std::mutex mutex;
        std::map<Id, storage::JobRecord> rows;  // guarded by mutex
        std::vector<std::vector<Id>> commits;   // each commit's ids, in order; guarded by mutex
        int syncs = 0, closes = 0;              // guarded by mutex
        bool fail_commits = false;              // guarded by mutex
    };

    explicit MemoryDriver(std::shared_ptr<Disk> disk) : disk_(std::move(disk)) {}

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

    bool commit(std::span<const storage::Write* const> writes) override
    {
        std::lock_guard lock(disk_->mutex);
        if (disk_->fail_commits) return false;
        std::vector<Id> ids;
        for (const storage::Write* w : writes) {
            ids.push_back(w->record.id);
            if (w->erase) disk_->rows.erase(w->record.id);
            else disk_->rows[w->record.id] = w->record;
        }
        disk_->commits.push_back(std::move(ids));
        return true;
    }

    bool sync() override
    {
        std::lock_guard lock(disk_->mutex);
        ++disk_->syncs;
        return true;
    }

    void close() override
    {
        std::lock_guard lock(disk_->mutex);
        ++disk_->closes;
    }

private:
    std::shared_ptr<Disk> disk_;
};

}  // namespace zk::test
