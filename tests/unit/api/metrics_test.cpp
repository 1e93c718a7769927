// Unit tests for api::Metrics: its route labels are the route table's, and
// it renders the job store's write figures (carried by PoolStats) as
// well-formed histograms next to zookeeper_store_up, left out for a store
// that keeps none.

#include "api/metrics.h"

#include "api/routes.h"

#include <doctest/doctest.h>

#include <string>


using namespace zk;

namespace {

constexpr Millis t0 = 1'700'000'000'000;

// A store that takes nothing and keeps no figures (JobStore's default stats()).
class QuietStore : public storage::JobStore {
public:
    void load(const std::function<void(storage::JobRecord&&)>&) override {}
    std::optional<Seq> put(storage::WriteKind, const storage::JobRecord&, Committer, Settled) override
    {
        return std::nullopt;
    }
    storage::Durability wait(Seq, Deadline) override { return storage::Durability::failed; }
    bool available() const override { return true; }
    std::string_view backend() const override { return "quiet"; }
    void interrupt() override {}
    void close() override {}
};

// A store whose stats() are whatever the test observed into its histograms.
class StatsStore final : public QuietStore {
public:
    std::optional<storage::StoreStats> stats() const override
    {
        return storage::StoreStats{commit.snapshot(), batch.snapshot()};
    }

    Histogram commit{{0.001, 0.01}};
    Histogram batch{{1, 2, 4}};
};

// The pool's histograms need bounds to render; the rest may stay zero.
PoolStats pool_stats(const storage::JobStore* store = nullptr)
{
    PoolStats s;
    s.started_ms = t0;
    if (store) s.store = store->stats();
    s.survey_seconds = Histogram({10}).snapshot();
    s.completion_lag_seconds = Histogram({1}).snapshot();
    return s;
}

bool has(const std::string& text, const std::string& line) { return text.find("\n" + line + "\n") != std::string::npos; }

}  // namespace

TEST_CASE("metrics: the store's commit time and batch size are histograms")
{
    StatsStore store;
    store.commit.observe(0.0005);
    store.commit.observe(0.002);
    store.batch.observe(1);
    store.batch.observe(3);
    const api::Metrics metrics;
    const std::string text = metrics.render(pool_stats(&store));
    CAPTURE(text);

    CHECK(has(text, "# TYPE zookeeper_store_commit_seconds histogram"));
    CHECK(has(text, "zookeeper_store_commit_seconds_bucket{le=\"0.001\"} 1"));
    CHECK(has(text, "zookeeper_store_commit_seconds_bucket{le=\"0.01\"} 2"));
    CHECK(has(text, "zookeeper_store_commit_seconds_bucket{le=\"+Inf\"} 2"));
    CHECK(has(text, "zookeeper_store_commit_seconds_sum 0.0025"));
    CHECK(has(text, "zookeeper_store_commit_seconds_count 2"));

    CHECK(has(text, "# TYPE zookeeper_store_batch_operations histogram"));
    CHECK(has(text, "zookeeper_store_batch_operations_bucket{le=\"1\"} 1"));
    CHECK(has(text, "zookeeper_store_batch_operations_bucket{le=\"2\"} 1"));
    CHECK(has(text, "zookeeper_store_batch_operations_bucket{le=\"4\"} 2"));
    CHECK(has(text, "zookeeper_store_batch_operations_bucket{le=\"+Inf\"} 2"));
    CHECK(has(text, "zookeeper_store_batch_operations_sum 4"));
    CHECK(has(text, "zookeeper_store_batch_operations_count 2"));

    // Grouped with the store's other family.
    const auto up = text.find("# TYPE zookeeper_store_up gauge");
    const auto commit = text.find("# HELP zookeeper_store_commit_seconds ");
    const auto batch = text.find("# HELP zookeeper_store_batch_operations ");
    REQUIRE(up != std::string::npos);
    CHECK(up < commit);
    CHECK(commit < batch);
    CHECK(batch < text.find("# HELP process_start_time_seconds "));
}

TEST_CASE("metrics: no store families without a store or with one that keeps no figures")
{
    QuietStore quiet;
    for (const storage::JobStore* store : {static_cast<const storage::JobStore*>(nullptr),
                                           static_cast<const storage::JobStore*>(&quiet)}) {
        const std::string text = api::Metrics().render(pool_stats(store));
        CAPTURE(text);
        CHECK(text.find("zookeeper_store_commit_seconds") == std::string::npos);
        CHECK(text.find("zookeeper_store_batch_operations") == std::string::npos);
        CHECK(has(text, "zookeeper_store_up 1"));
    }
}

TEST_CASE("metrics: the route labels are the route table's, then none")
{
    const api::Metrics metrics;
    const auto labels = metrics.labels();
    const auto table = api::routes();
    REQUIRE(labels.size() == table.size() + 1);
    for (std::size_t i = 0; i < table.size(); ++i) CHECK(labels[i] == table[i].label);
    CHECK(labels.back() == api::unrouted_label);
}

TEST_CASE("metrics: a request is counted under its row's label; an unknown index under none")
{
    api::Metrics metrics;
    metrics.record_request(0, 200, 0.001);
    metrics.record_request(api::routes().size(), 404, 0.001);
    metrics.record_request(api::routes().size() + 7, 404, 0.001);
    const std::string text = metrics.render(pool_stats());
    CAPTURE(text);
    const std::string first(api::routes()[0].label);
    CHECK(has(text, "zookeeper_http_requests_total{route=\"" + first + "\",status=\"200\"} 1"));
    CHECK(has(text, "zookeeper_http_requests_total{route=\"none\",status=\"404\"} 2"));
}

TEST_CASE("metrics: the start time is the pool's")
{
    PoolStats stats = pool_stats();
    stats.started_ms = 1'700'000'000'500;
    const std::string text = api::Metrics().render(stats);
    CAPTURE(text);
    CHECK(text.find("\nprocess_start_time_seconds 1700000000.5") != std::string::npos);
}

TEST_CASE("metrics: job totals; expired counts deleted results; rescued only with a shared store; no purged")
{
    PoolStats stats = pool_stats();
    stats.created_total = 7;
    stats.completed_total = 4;
    stats.cancelled_total = 2;
    stats.expired_total = 3;
    stats.rescued_total = 5;
    stats.queued = 1;
    stats.running = 2;
    stats.held = 9;
    stats.finished = 6;
    stats.worker = "w-1";
    stats.backend = "sqlite";
    std::string text = api::Metrics().render(stats);
    CAPTURE(text);
    CHECK(has(text, "zookeeper_jobs_created_total 7"));
    CHECK(has(text, "zookeeper_jobs_completed_total 4"));
    CHECK(has(text, "zookeeper_jobs_cancelled_total 2"));
    CHECK(has(text, "zookeeper_jobs_expired_total 3"));
    CHECK(text.find("# HELP zookeeper_jobs_expired_total Finished surveys whose results expired and were deleted") !=
          std::string::npos);
    CHECK(has(text, "zookeeper_jobs{state=\"queued\"} 1"));
    CHECK(has(text, "zookeeper_jobs{state=\"running\"} 2"));
    CHECK(has(text, "zookeeper_jobs{state=\"finished\"} 6"));
    CHECK(has(text, "zookeeper_worker_info{worker=\"w-1\",backend=\"sqlite\"} 1"));
    CHECK(text.find("zookeeper_jobs_rescued_total") == std::string::npos);  // one worker: nobody to rescue
    CHECK(text.find("purged") == std::string::npos);

    stats.shared = true;
    stats.backend = "postgresql";
    text = api::Metrics().render(stats);
    CHECK(has(text, "zookeeper_jobs_rescued_total 5"));
    CHECK(text.find("purged") == std::string::npos);
}

TEST_CASE("metrics: zookeeper_store_up follows the store's health")
{
    PoolStats stats = pool_stats();
    stats.store_healthy = false;
    const std::string text = api::Metrics().render(stats);
    CAPTURE(text);
    CHECK(has(text, "zookeeper_store_up 0"));
}
