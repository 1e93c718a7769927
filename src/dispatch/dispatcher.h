// The one place a request becomes a response: route (api/routes.h), call the
// matched row's handler, and catch any exception (our bug) as a 500 problem.
// Logs one line per request, its level from the answer's cause.
#pragma once

#include <cstddef>

#include "api/api.h"
#include "api/metrics.h"
#include "http/message.h"

namespace zk::dispatch {

class Dispatcher {
public:
    Dispatcher(api::Api& api, api::Metrics& metrics) : api_(api), metrics_(metrics) {}
    // Never throws.
    http::Response dispatch(const http::Request& request) noexcept;

private:
    // `route` gets the matched row's index, for the request metrics.
    http::Response call(const http::Request& request, std::size_t& route);

    api::Api& api_;
    api::Metrics& metrics_;
};

}  // namespace zk::dispatch
