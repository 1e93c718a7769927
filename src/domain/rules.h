// What a config reload may change about the pool, and the holder every
// reader takes its current copy from. The defaults are the config's
// (config/settings.cpp), in one place; app::rules_from fills them, so the
// zeros here only mean "not set".
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>

#include "domain/clock.h"
#include "domain/survey.h"
#include "domain/vocabulary.h"

namespace zk {

struct Rules {
    std::shared_ptr<const Vocabulary> vocabulary;
    Workload workload;
    std::size_t max_jobs = 0;   // this worker's queued + running surveys
    Millis result_ttl_ms = 0;   // how long finished jobs are kept
};

// The current rules; a reload swaps them whole, so a reader's copy never
// mixes two configs. The mutex is a leaf, held only to copy the pointer.
class CurrentRules {
public:
    explicit CurrentRules(Rules rules) : rules_(std::make_shared<const Rules>(std::move(rules))) {}
    std::shared_ptr<const Rules> get() const
    {
        std::lock_guard lock(mutex_);
        return rules_;
    }
    void set(Rules rules)
    {
        auto next = std::make_shared<const Rules>(std::move(rules));
        std::lock_guard lock(mutex_);
        rules_ = std::move(next);
    }

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const Rules> rules_;  // guarded by mutex_
};

}  // namespace zk
