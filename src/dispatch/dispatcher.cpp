// Routing to handlers, the exception boundary, and the request log line.

#include "dispatch/dispatcher.h"

#include <chrono>
#include <exception>

#include "dispatch/router.h"
#include "http/problem.h"
#include "util/log.h"

namespace zk::dispatch {

namespace {

// Our bugs are errors; a missing dependency or a limit is worth a warning
// (an operator acts on it); the client's mistakes are ordinary traffic.
log::Level level_for(const http::Response& response)
{
    if (!response.cause) return response.status >= 500 ? log::Level::warn : log::Level::info;
    switch (*response.cause) {
    case http::Cause::our_bug: return log::Level::error;
    case http::Cause::unavailable:
    case http::Cause::limit: return log::Level::warn;
    case http::Cause::bad_input:
    case http::Cause::job_state: break;
    }
    return log::Level::info;
}

}  // namespace

http::Response Dispatcher::call(const http::Request& request, std::size_t& route_index)
{
    auto routed = route(api::routes(), request.method, request.uri);
    if (auto* error = std::get_if<http::Response>(&routed)) return std::move(*error);
    const RouteMatch& m = std::get<RouteMatch>(routed);
    route_index = m.index;
    return m.handler(api_, api::Call{request, m.param, m.query});
}

http::Response Dispatcher::dispatch(const http::Request& request) noexcept
{
    const auto start = std::chrono::steady_clock::now();
    http::Response response;
    std::size_t route_index = api::routes().size();  // unrouted until the router says otherwise
    try {
        response = call(request, route_index);
    } catch (const std::exception& e) {
        log::error("handler_failed").kv("id", request.request_id).kv("what", e.what());
        response = http::problem(http::ProblemKind::internal, "the request failed; it is logged as " + request.request_id);
    } catch (...) {
        log::error("handler_failed").kv("id", request.request_id).kv("what", "unknown exception");
        response = http::problem(http::ProblemKind::internal, "the request failed; it is logged as " + request.request_id);
    }
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
    metrics_.record_request(route_index, response.status, static_cast<double>(us.count()) / 1e6);
    log::Line line(level_for(response), "request");
    line.kv("id", request.request_id)
        .kv("method", request.method)
        .kv("path", request.uri)
        .kv("status", response.status)
        .kv("dur_us", us.count());
    if (response.cause) line.kv("cause", http::to_string(*response.cause));
    if (!response.created_job.empty()) line.kv("job", response.created_job);
    if (response.park) line.kv("parked", "yes");  // status is the answer it would get now
    return response;
}

}  // namespace zk::dispatch
