// Routing to handlers, the exception boundary, and the request log line.

#include "dispatch/dispatcher.h"

#include <chrono>
#include <exception>

#include "dispatch/router.h"
#include "http/problem.h"
#include "util/log.h"

namespace zk::dispatch {

namespace {

log::Level level_for(int status)
{
    if (status >= 500) return log::Level::warn;
    return log::Level::info;
}

api::Endpoint endpoint_of(Route route)
{
    switch (route) {
    case Route::animals: return api::Endpoint::animals;
    case Route::animal: return api::Endpoint::animal;
    case Route::query: return api::Endpoint::query;
    case Route::job: return api::Endpoint::job;
    case Route::jobs: return api::Endpoint::jobs;
    case Route::healthz: return api::Endpoint::healthz;
    case Route::metrics: return api::Endpoint::metrics;
    }
    return api::Endpoint::none;
}

}  // namespace

http::Response Dispatcher::call(const http::Request& request, api::Endpoint& endpoint)
{
    auto routed = route(request.method, request.uri);
    if (auto* error = std::get_if<http::Response>(&routed)) return std::move(*error);
    const RouteMatch& m = std::get<RouteMatch>(routed);
    endpoint = endpoint_of(m.route);
    switch (m.route) {
    case Route::animals: return api_.list_animals();
    case Route::animal: return api_.start_survey(m.param, request.method == "POST");
    case Route::query:
        if (request.method == "DELETE") return api_.cancel(m.param);
        return waits_ ? waits_->poll(m.param, m.query) : api_.poll(m.param);
    case Route::job: return waits_ ? waits_->show(m.param, m.query) : api_.show_job(m.param);
    case Route::jobs: return api_.list_jobs(m.query);
    case Route::healthz: return api_.health();
    case Route::metrics: return api_.metrics();
    }
    return http::problem(http::ProblemKind::internal, "unrouted request");
}

http::Response Dispatcher::dispatch(const http::Request& request) noexcept
{
    const auto start = std::chrono::steady_clock::now();
    http::Response response;
    api::Endpoint endpoint = api::Endpoint::none;
    try {
        response = call(request, endpoint);
    } catch (const std::exception& e) {
        log::error("handler_failed").kv("id", request.request_id).kv("what", e.what());
        response = http::problem(http::ProblemKind::internal, "the request failed; it is logged as " + request.request_id);
    } catch (...) {
        log::error("handler_failed").kv("id", request.request_id).kv("what", "unknown exception");
        response = http::problem(http::ProblemKind::internal, "the request failed; it is logged as " + request.request_id);
    }
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
    metrics_.record_request(endpoint, response.status, static_cast<double>(us.count()) / 1e6);
    log::Line line(level_for(response.status), "request");
    line.kv("id", request.request_id)
        .kv("method", request.method)
        .kv("path", request.uri)
        .kv("status", response.status)
        .kv("dur_us", us.count());
    if (!response.created_job.empty()) line.kv("job", response.created_job);
    if (response.park) line.kv("parked", "yes");  // status is the answer it would get now
    return response;
}

}  // namespace zk::dispatch
