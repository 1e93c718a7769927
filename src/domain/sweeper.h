// Each worker of a shared store sweeps it, so nothing depends on any one
// worker staying alive: every sweep_interval it completes the surveys that
// are rescue_after late (their worker died: a survey's result is a function
// of its id, so any worker gives the same one, and the write only lands on
// an unfinished job, so it cannot race a completion or a cancel into a
// second state change), deletes those finished more than result_ttl ago,
// and measures the cluster clock's offset from the database's. No heartbeat
// table: lateness is read off the deadline alone.
// Threads: one of its own, started by start(), joined by stop().
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "domain/cluster_clock.h"
#include "storage/shared_store.h"

namespace zk {

struct SweepShape {
    Millis interval_ms = 0;
    Millis rescue_after_ms = 0;
    std::size_t batch = 500;  // rows per statement, so one sweep never holds the database long
};

class Sweeper {
public:
    // finish: turns a late record into its done record; ttl_ms: the current
    // result TTL; swept: how many late surveys one pass finished and how many
    // expired ones it deleted.
    struct Hooks {
        std::function<void(storage::JobRecord&)> finish;
        std::function<Millis()> ttl_ms;
        std::function<void(std::size_t rescued, std::size_t purged)> swept;
    };
    Sweeper(storage::SharedStore& store, ClusterClock& clock, SweepShape shape, Hooks hooks);
    ~Sweeper();
    Sweeper(const Sweeper&) = delete;
    Sweeper& operator=(const Sweeper&) = delete;

    void start();
    void stop();  // idempotent
    // One pass, on the calling thread (tests; start() runs them on its own).
    void sweep();

private:
    void run();
    void sync_clock();

    storage::SharedStore& store_;
    ClusterClock& clock_;
    const SweepShape shape_;
    const Hooks hooks_;

    std::mutex mutex_;  // a leaf: guards stopping_ for the sleep
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace zk
