// Metric names follow Prometheus conventions: base units, _total counters.

#include "api/metrics.h"

#include "api/routes.h"
#include "util/prometheus.h"

namespace zk::api {

namespace {

const std::vector<double> request_buckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
std::string label(std::string_view name, std::string_view value)
{
    return std::string(name).append("=\"").append(value).append("\"");
}

void render_jobs(PrometheusText& p, const PoolStats& s)
{
    p.family("zookeeper_jobs_created_total", "counter", "Surveys accepted.");
    p.sample("zookeeper_jobs_created_total", "", s.created_total);
    p.family("zookeeper_jobs_completed_total", "counter", "Surveys that finished with a sentence.");
    p.sample("zookeeper_jobs_completed_total", "", s.completed_total);
    p.family("zookeeper_jobs_cancelled_total", "counter", "Surveys cancelled before they finished.");
    p.sample("zookeeper_jobs_cancelled_total", "", s.cancelled_total);
    p.family("zookeeper_jobs_expired_total", "counter", "Finished surveys whose results expired and were deleted (shared store: by this worker's sweep).");
    p.sample("zookeeper_jobs_expired_total", "", s.expired_total);
    p.family("zookeeper_jobs", "gauge", "Surveys held, by state.");
    p.sample("zookeeper_jobs", "state=\"queued\"", static_cast<std::uint64_t>(s.queued));
    p.sample("zookeeper_jobs", "state=\"running\"", static_cast<std::uint64_t>(s.running));
    p.sample("zookeeper_jobs", "state=\"finished\"", static_cast<std::uint64_t>(s.finished));
    p.family("zookeeper_survey_duration_seconds", "histogram", "Time from a survey's creation to its completion.");
    p.histogram("zookeeper_survey_duration_seconds", "", s.survey_seconds);
    p.family("zookeeper_survey_completion_lag_seconds", "histogram", "How late a survey completed after its deadline.");
    p.histogram("zookeeper_survey_completion_lag_seconds", "", s.completion_lag_seconds);
}

void render_pool(PrometheusText& p, const PoolStats& s)
{
    p.family("zookeeper_pool_threads", "gauge", "Worker threads of the job pool.");
    p.sample("zookeeper_pool_threads", "", static_cast<std::uint64_t>(s.pool_threads));
    p.family("zookeeper_pool_busy_threads", "gauge", "Job pool threads running a task now.");
    p.sample("zookeeper_pool_busy_threads", "", static_cast<std::uint64_t>(s.pool_busy));
    p.family("zookeeper_pool_queue_depth", "gauge", "Tasks waiting for a job pool thread.");
    p.sample("zookeeper_pool_queue_depth", "", static_cast<std::uint64_t>(s.pool_queue_depth));
    p.family("zookeeper_timers", "gauge", "Pending completion and expiry timers.");
    p.sample("zookeeper_timers", "", static_cast<std::uint64_t>(s.timers));
    p.family("zookeeper_worker_info", "gauge", "Always 1: which worker answered and which store backend it uses.");
    p.sample("zookeeper_worker_info", "worker=\"" + s.worker + "\",backend=\"" + std::string(s.backend) + "\"",
             static_cast<std::uint64_t>(1));
    if (s.shared) {
        p.family("zookeeper_jobs_rescued_total", "counter", "Late surveys of other workers this one completed.");
        p.sample("zookeeper_jobs_rescued_total", "", s.rescued_total);
    }
    p.family("zookeeper_store_up", "gauge", "1 while the job store's database answers, 0 while it does not (writes then answer 503).");
    p.sample("zookeeper_store_up", "", static_cast<std::uint64_t>(s.store_healthy ? 1 : 0));
}

// The store's group commit: how long each transaction took and how many
// writes it carried. Together they tell a slow disk (long commits) from a
// busy service (large batches).
void render_store(PrometheusText& p, const storage::StoreStats& s)
{
    p.family("zookeeper_store_commit_seconds", "histogram",
             "Time the job store's writer took to commit one transaction (group commit).");
    p.histogram("zookeeper_store_commit_seconds", "", s.commit_seconds);
    p.family("zookeeper_store_batch_operations", "histogram",
             "Writes (puts and erases) committed per job store transaction.");
    p.histogram("zookeeper_store_batch_operations", "", s.batch_operations);
}

}  // namespace

Metrics::Metrics()
{
    for (const Route& r : routes()) labels_.push_back(r.label);
    labels_.push_back(unrouted_label);
    counts_ = std::make_unique<Counts[]>(labels_.size());
    for (std::size_t i = 0; i < labels_.size(); ++i) durations_.push_back(std::make_unique<Histogram>(request_buckets));
}

void Metrics::record_request(std::size_t route, int status, double seconds)
{
    const std::size_t e = route < labels_.size() - 1 ? route : labels_.size() - 1;
    std::size_t slot = statuses.size();
    for (std::size_t i = 0; i < statuses.size(); ++i)
        if (statuses[i] == status) slot = i;
    counts_[e][slot].fetch_add(1, std::memory_order_relaxed);
    durations_[e]->observe(seconds);
}

std::string Metrics::render(const PoolStats& pool) const
{
    PrometheusText p;
    p.family("zookeeper_http_requests_total", "counter", "Requests answered by the worker, by route and status.");
    for (std::size_t e = 0; e < labels_.size(); ++e)
        for (std::size_t s = 0; s < status_slots; ++s) {
            const auto n = counts_[e][s].load(std::memory_order_relaxed);
            if (n == 0) continue;
            const std::string code = s < statuses.size() ? std::to_string(statuses[s]) : "other";
            p.sample("zookeeper_http_requests_total", label("route", labels_[e]) + "," + label("status", code), n);
        }
    p.family("zookeeper_http_request_duration_seconds", "histogram", "Time the worker spent on a request, by route.");
    for (std::size_t e = 0; e < labels_.size(); ++e)
        p.histogram("zookeeper_http_request_duration_seconds", label("route", labels_[e]), durations_[e]->snapshot());
    render_jobs(p, pool);
    render_pool(p, pool);  // ends with zookeeper_store_up
    if (pool.store) render_store(p, *pool.store);
    p.family("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.");
    p.sample("process_start_time_seconds", "", static_cast<double>(pool.started_ms) / 1000.0);
    return p.text();
}

}  // namespace zk::api
