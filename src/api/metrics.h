// Request metrics and the /metrics page. The dispatcher records every
// request here (lock-free) under its route's label; render() joins them with
// the job pool's figures (the store's among them) into the Prometheus text
// format. Metrics only records and renders: it reads no other layer.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "domain/job_pool.h"
#include "util/histogram.h"

namespace zk::api {

class Metrics {
public:
    // One "route" label per row of the route table (api/routes.h), in table
    // order, then "none" for requests that matched no route.
    Metrics();

    // `route` is the row's index in api::routes(); any other value counts
    // as unrouted.
    void record_request(std::size_t route, int status, double seconds);
    std::string render(const PoolStats& pool) const;
    // The "route" label values, in slot order ("none" last).
    std::span<const std::string_view> labels() const { return labels_; }

private:
    // Statuses the service answers with; anything else counts as "other".
    static constexpr std::array<int, 13> statuses{200, 202, 204, 400, 404, 405, 409, 410, 413, 414, 429, 500, 503};
    static constexpr std::size_t status_slots = statuses.size() + 1;
    using Counts = std::array<std::atomic<std::uint64_t>, status_slots>;

    std::vector<std::string_view> labels_;
    std::unique_ptr<Counts[]> counts_;  // one per label
    std::vector<std::unique_ptr<Histogram>> durations_;  // one per label
};

}  // namespace zk::api
