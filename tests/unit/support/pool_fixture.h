// Small vocabularies and pool settings shared by the domain, api and
// dispatch tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "domain/job_pool.h"
#include "domain/vocabulary.h"

namespace zk::test {

// An arbitrary fixed wall-clock start: 2023-11-14T22:13:20Z.
constexpr Millis t0 = 1'700'000'000'000;

inline std::shared_ptr<const Vocabulary> small_vocabulary()
{
    return std::make_shared<const Vocabulary>(std::vector<std::string>{"bisons", "elks", "koalas"},
                                              std::vector<std::string>{"thirsty", "calm"},
                                              std::vector<std::string>{"sing", "sleep"},
                                              std::vector<std::string>{"carefully", "wildly"});
}

inline Rules test_rules(Millis min_ms = 10'000, Millis max_ms = 20'000, std::size_t max_jobs = 1000,
                        Millis ttl_ms = 60'000)
{
    Rules r;
    r.vocabulary = small_vocabulary();
    r.workload = {min_ms, max_ms};
    r.max_jobs = max_jobs;
    r.result_ttl_ms = ttl_ms;
    return r;
}

// The timer thread re-reads the clock every 5 ms, so tests never depend on
// a single wake() arriving. A store wait gives up after store_wait_ms.
inline PoolShape test_shape(std::size_t threads = 2, std::size_t capacity = 256, Millis store_wait_ms = 2000)
{
    PoolShape s;
    s.timers.threads = threads;
    s.timers.queue_capacity = capacity;
    s.timers.max_wait_ms = 5;
    s.store_wait_ms = store_wait_ms;
    s.retry_ms = 20;
    return s;
}

}  // namespace zk::test
