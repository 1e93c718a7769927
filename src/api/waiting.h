// Waiting polls: GET /query/{id}?wait=S and GET /jobs/{id}?wait=S. The
// answer is the one Api::poll or Api::show_job gives; with `wait`, one that
// says "not yet" (the survey still runs) comes back holding an http::Park, so
// the transport holds the request until the job finishes, is cancelled, or S
// runs out, then answers with the same handler's answer as of then. S is a
// whole number of seconds, 1 to max_wait_seconds, like Retry-After.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "api/api.h"
#include "domain/job_pool.h"
#include "http/message.h"

namespace zk::api {

class WaitingPolls {
public:
    WaitingPolls(const Api& api, JobPool& pool, int max_wait_seconds)
        : api_(api), pool_(pool), max_wait_seconds_(max_wait_seconds)
    {
    }

    http::Response poll(const std::string& id_text, const QueryParams& params) const;
    http::Response show(const std::string& id_text, const QueryParams& params) const;
    // A config reload's new limit, for waits asked from now on.
    void set_max_wait_seconds(int seconds) { max_wait_seconds_ = seconds; }

private:
    using Answer = std::function<http::Response(const JobId&, const Lookup&)>;
    http::Response wait_for(const std::string& id_text, const QueryParams& params, Answer answer) const;

    const Api& api_;
    JobPool& pool_;
    std::atomic<int> max_wait_seconds_;
};

}  // namespace zk::api
