// An in-memory storage::JobStore for the job pool's tests. It keeps the
// records (so a second pool can restore them), logs every write in the order
// it arrived, and can be told to misbehave: refuse durability, hold callers
// in wait_durable() or in put() before the write is recorded, report itself
// unhealthy, or throw from put() (an exception inside a handler).
#pragma once

#include <algorithm>
#include <array>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "storage/job_store.h"

namespace zk::test {

class MemoryJobStore final : public storage::JobStore {
public:
    using Id = std::array<unsigned char, 16>;
    struct Write {
        bool erase = false;
        Id id{};
        storage::RecordState state = storage::RecordState::queued;  // of a put
        Seq seq = 0;
    };

    // Adds a record as if written by an earlier run.
    void seed(const storage::JobRecord& r)
    {
        std::lock_guard lock(mutex_);
        records_[r.id] = r;
    }

    void load(const std::function<void(storage::JobRecord&&)>& visit) override
    {
        std::vector<storage::JobRecord> copy;
        {
            std::lock_guard lock(mutex_);
            for (const auto& [id, r] : records_) copy.push_back(r);  // id order, as the interface promises
        }
        for (auto& r : copy) visit(std::move(r));
    }

    Seq put(const storage::JobRecord& r, Committer) override
    {
        std::unique_lock lock(mutex_);
        if (park_state_ && *park_state_ == r.state) {
            park_state_.reset();  // only the first such put parks
            parked_id_ = r.id;
            ++parked_;
            puts_released_cv_.wait(lock, [&] { return puts_released_; });
            --parked_;
        }
        if (throw_on_put_ && (!throw_only_ || *throw_only_ == r.state))
            throw std::runtime_error("memory store: put refused");
        records_[r.id] = r;
        writes_.push_back({false, r.id, r.state, ++seq_});
        return seq_;
    }

    Seq erase(const Id& id) override
    {
        std::lock_guard lock(mutex_);
        records_.erase(id);
        writes_.push_back({true, id, storage::RecordState::queued, ++seq_});
        return seq_;
    }

    bool wait_durable(Seq seq) override
    {
        std::unique_lock lock(mutex_);
        max_waited_ = std::max(max_waited_, seq);
        if (holder_ && *holder_ != std::this_thread::get_id()) {
            ++held_;
            released_cv_.wait(lock, [&] { return !holder_; });
            --held_;
        }
        return durable_;
    }

    bool healthy() const override
    {
        std::lock_guard lock(mutex_);
        return healthy_;
    }

    void close() override {}

    // --- for the tests -----------------------------------------------------
    void set_durable(bool ok)
    {
        std::lock_guard lock(mutex_);
        durable_ = ok;
    }
    // While held, wait_durable() blocks in every thread but the caller's: a
    // creation parks with its job still queued.
    void hold_durability()
    {
        std::lock_guard lock(mutex_);
        holder_ = std::this_thread::get_id();
    }
    void release_durability()
    {
        {
            std::lock_guard lock(mutex_);
            holder_.reset();
        }
        released_cv_.notify_all();
    }
    // Threads parked in wait_durable() right now.
    int held() const
    {
        std::lock_guard lock(mutex_);
        return held_;
    }
    // The next put() of a record in `state` parks before it is recorded,
    // until release_puts(): its caller stands between deciding the write and
    // queuing it, while other threads' puts go through.
    void park_next_put(storage::RecordState state)
    {
        std::lock_guard lock(mutex_);
        park_state_ = state;
        puts_released_ = false;
    }
    void release_puts()
    {
        {
            std::lock_guard lock(mutex_);
            puts_released_ = true;
        }
        puts_released_cv_.notify_all();
    }
    // Threads parked in put() right now, and the id the last one was writing.
    int parked() const
    {
        std::lock_guard lock(mutex_);
        return parked_;
    }
    Id parked_id() const
    {
        std::lock_guard lock(mutex_);
        return parked_id_;
    }
    void set_healthy(bool ok)
    {
        std::lock_guard lock(mutex_);
        healthy_ = ok;
    }
    // Makes put() throw: for every record, or only for records in state `only`.
    void set_throw_on_put(bool on, std::optional<storage::RecordState> only = std::nullopt)
    {
        std::lock_guard lock(mutex_);
        throw_on_put_ = on;
        throw_only_ = only;
    }
    std::optional<storage::JobRecord> record(const Id& id) const
    {
        std::lock_guard lock(mutex_);
        auto it = records_.find(id);
        if (it == records_.end()) return std::nullopt;
        return it->second;
    }
    std::size_t size() const
    {
        std::lock_guard lock(mutex_);
        return records_.size();
    }
    // Every write concerning `id`, in arrival order.
    std::vector<Write> writes_for(const Id& id) const
    {
        std::lock_guard lock(mutex_);
        std::vector<Write> out;
        for (const auto& w : writes_)
            if (w.id == id) out.push_back(w);
        return out;
    }
    Seq max_waited() const
    {
        std::lock_guard lock(mutex_);
        return max_waited_;
    }

private:
    mutable std::mutex mutex_;
    std::map<Id, storage::JobRecord> records_;  // guarded by mutex_
    std::vector<Write> writes_;                 // guarded by mutex_
    Seq seq_ = 0, max_waited_ = 0;              // guarded by mutex_
    bool durable_ = true, healthy_ = true, throw_on_put_ = false;  // guarded by mutex_
    std::optional<storage::RecordState> throw_only_;                // guarded by mutex_
    std::optional<std::thread::id> holder_;                          // guarded by mutex_
    int held_ = 0;                                                   // guarded by mutex_
    std::optional<storage::RecordState> park_state_;                 // guarded by mutex_
    bool puts_released_ = true;                                      // guarded by mutex_
    int parked_ = 0;                                                 // guarded by mutex_
    Id parked_id_{};                                                 // guarded by mutex_
    std::condition_variable released_cv_;
    std::condition_variable puts_released_cv_;
};

}  // namespace zk::test
