// Request metrics and the /metrics page. The dispatcher records every
// request here (lock-free); render() joins them with the job pool's and the
// job store's figures into the Prometheus text format.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "domain/clock.h"
#include "domain/job_pool.h"
#include "storage/job_store.h"
#include "util/histogram.h"

namespace zk::api {

// The "route" label: one per route of the API, and `none` for requests that
// matched no route (400/404/405/414 from the router).
enum class Endpoint { animals, animal, query, job, jobs, healthz, metrics, none };
constexpr std::size_t endpoint_count = 8;

class Metrics {
public:
    // `store` may be null (memory only): no store write families then. It
    // must outlive the Metrics.
    explicit Metrics(Millis process_start_ms, const storage::JobStore* store = nullptr);

    void record_request(Endpoint endpoint, int status, double seconds);
    std::string render(const PoolStats& pool) const;
    Millis start_ms() const { return start_ms_; }

private:
    // Statuses the service answers with; anything else counts as "other".
    static constexpr std::array<int, 13> statuses{200, 202, 204, 400, 404, 405, 409, 410, 413, 414, 429, 500, 503};
    static constexpr std::size_t status_slots = statuses.size() + 1;

    const Millis start_ms_;
    const storage::JobStore* const store_;
    std::array<std::array<std::atomic<std::uint64_t>, status_slots>, endpoint_count> counts_{};
    std::array<std::unique_ptr<Histogram>, endpoint_count> durations_;
};

}  // namespace zk::api
