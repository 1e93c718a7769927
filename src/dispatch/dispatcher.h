// The one place a request becomes a response: route, call the handler, and
// catch any exception (our bug) as a 500 problem. Logs one line per request.
#pragma once

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
    http::Response call(const http::Request& request, api::Endpoint& endpoint);

    api::Api& api_;
    api::Metrics& metrics_;
};

}  // namespace zk::dispatch
