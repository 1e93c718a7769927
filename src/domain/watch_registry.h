// Who waits for which job: callbacks fired exactly once when a job finishes
// (done or cancelled). The pool fires them after its state change, outside
// every lock of its own; watch() checks the job's state after adding, so a
// finish racing a watch is seen by one side or the other, and removal from
// the map under mutex_ decides which side fires. Bounded: beyond `capacity`
// watch() refuses, and the caller answers without waiting.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "domain/job_id.h"

namespace zk {

class WatchRegistry {
public:
    using Token = std::uint64_t;
    using Callback = std::function<void()>;

    explicit WatchRegistry(std::size_t capacity) : capacity_(capacity) {}
    // A reload's new limit; watches already held stay.
    void set_capacity(std::size_t capacity)
    {
        std::lock_guard lock(mutex_);
        capacity_ = capacity;
    }

    // nullopt when full.
    std::optional<Token> add(const JobId& id, Callback callback);
    // Takes the watch back; false if it had already fired or been removed.
    bool remove(Token token) { return take(token).has_value(); }
    // As remove(), naming the job the watch was on (nullopt: it was not there).
    std::optional<JobId> take(Token token);
    // Fires (outside the lock) and removes every watch on that job; returns
    // how many fired.
    std::size_t fire(const JobId& id);
    // Fires one watch if it is still registered (watch()'s own check);
    // false if it was not.
    bool fire_one(Token token);
    // Whether anyone watches the job. May be called under a job table shard
    // lock (the registry's mutex is a leaf).
    bool watching(const JobId& id) const;
    std::size_t size() const;

private:
    struct Entry {
        Token token;
        Callback callback;
    };
    struct Taken {
        JobId job;
        Callback callback;
    };
    std::optional<Taken> take_locked(Token token);

    mutable std::mutex mutex_;
    std::size_t capacity_;                              // guarded by mutex_  // a leaf: callbacks always run after it is released
    std::map<JobId, std::vector<Entry>> by_job_;       // guarded by mutex_
    std::unordered_map<Token, JobId> jobs_;             // guarded by mutex_
    Token next_token_ = 1;                              // guarded by mutex_
    std::size_t count_ = 0;                             // guarded by mutex_
};

}  // namespace zk
