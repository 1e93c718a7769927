// The one place a request becomes a response: route, call the handler, and
// catch any exception (our bug) as a 500 problem. Logs one line per request.
#pragma once

#include "api/api.h"
#include "api/metrics.h"
#include "api/waiting.h"
#include "http/message.h"

namespace zk::dispatch {

class Dispatcher {
public:
    // `waits` (optional) serves ?wait= on /query/{id} and /jobs/{id}.
    Dispatcher(api::Api& api, api::Metrics& metrics, const api::WaitingPolls* waits = nullptr)
        : api_(api), metrics_(metrics), waits_(waits)
    {
    }
    // Never throws.
    http::Response dispatch(const http::Request& request) noexcept;

private:
    http::Response call(const http::Request& request, api::Endpoint& endpoint);

    api::Api& api_;
    api::Metrics& metrics_;
    const api::WaitingPolls* waits_;
};

}  // namespace zk::dispatch
