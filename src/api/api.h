// The HTTP API's handlers: each turns a routed request into a response value,
// backed by the job pool. No FastCGI and no routing here: the dispatcher
// calls these through the route table (api/routes.h) with decoded path
// parameters, and the unit tests call them directly.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "domain/clock.h"
#include "api/metrics.h"
#include "domain/job_pool.h"
#include "http/message.h"

namespace zk::api {

// Seconds a client is told to wait when the pool is at a limit.
constexpr int busy_retry_after_seconds = 2;
// Seconds a repeat is told to wait while its key's first creation commits
// (milliseconds, normally).
constexpr int key_in_flight_retry_after_seconds = 1;
// Page sizes of GET /jobs.
constexpr std::size_t default_page_size = 50;
constexpr std::size_t max_page_size = 500;

using http::QueryParams;

class WaitingPolls;

// The 400 for a path segment that is not a job id (every /query and /jobs route).
http::Response bad_job_id(const std::string& id_text);

class Api {
public:
    Api(JobPool& pool, const Clock& clock, const Metrics& metrics) : pool_(pool), clock_(clock), metrics_(metrics) {}

    http::Response list_animals() const;
    // GET is the original's form and keeps its 200; POST is the correct one
    // and answers 202. Either way the survey is created, and either way an
    // Idempotency-Key makes a repeat answer the first creation's job, with
    // Idempotent-Replayed: true (docs/design.md, "Creations safe to retry").
    enum class SurveyForm { get, post };
    http::Response start_survey(const std::string& animal, SurveyForm form, const http::Request& request = {});
    http::Response poll(const std::string& id_text) const;
    http::Response cancel(const std::string& id_text);
    http::Response show_job(const std::string& id_text) const;
    // The same answers for a lookup already made (a waiting poll decides
    // whether to wait from the very lookup it answers with).
    http::Response poll(const JobId& id, const Lookup& found) const;
    http::Response show_job(const JobId& id, const Lookup& found) const;
    // Operator endpoints (nginx restricts who may call them).
    http::Response list_jobs(const QueryParams& params) const;
    http::Response health() const;
    http::Response metrics() const;

    // ?wait= on /query/{id} and /jobs/{id} (api/waiting.h); without it the
    // parameter is refused like any unknown one would be ignored today.
    void set_waiting(const WaitingPolls* waits) { waits_ = waits; }
    const WaitingPolls* waiting() const { return waits_; }

private:
    JobPool& pool_;
    const Clock& clock_;
    const Metrics& metrics_;
    const WaitingPolls* waits_ = nullptr;

    // GET /animals, rendered once per vocabulary (a reload brings a new one).
    struct AnimalsBody {
        std::shared_ptr<const Vocabulary> vocabulary;
        std::string json;
    };
    mutable std::mutex animals_mutex_;  // a leaf: held only to read or swap the cache
    mutable std::shared_ptr<const AnimalsBody> animals_;
};

}  // namespace zk::api
