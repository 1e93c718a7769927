// The `wait` parameter and the Park that holds a waiting poll. The pool's
// watch registry is the subscription; the transport finishes the request.

#include "api/waiting.h"

#include <charconv>
#include <memory>
#include <optional>
#include <variant>

#include "http/park.h"
#include "http/problem.h"

namespace zk::api {

namespace {

using http::problem;
using http::ProblemKind;
using http::Response;

// The seconds asked for, none (no `wait`), or the 400 saying what is allowed.
std::variant<std::optional<int>, Response> wait_seconds(const QueryParams& params, int max)
{
    const std::string allowed = "wait must be a whole number of seconds from 1 to " + std::to_string(max);
    std::optional<int> seconds;
    for (const auto& [key, value] : params) {
        if (key != "wait") continue;
        if (seconds) return problem(ProblemKind::bad_parameter, allowed + ", given once");
        int v = 0;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
        if (value.empty() || ec != std::errc{} || end != value.data() + value.size() || v < 1 || v > max)
            return problem(ProblemKind::bad_parameter, allowed + ", not " + http::quote_user_text(value));
        seconds = v;
    }
    return seconds;
}

}  // namespace

Response WaitingPolls::poll(const std::string& id_text, const QueryParams& params) const
{
    return wait_for(id_text, params, [&api = api_](const JobId& id, const Lookup& found) { return api.poll(id, found); });
}

Response WaitingPolls::show(const std::string& id_text, const QueryParams& params) const
{
    return wait_for(id_text, params,
                    [&api = api_](const JobId& id, const Lookup& found) { return api.show_job(id, found); });
}

// One lookup decides both the answer now and whether to wait: a survey that
// finishes after it is seen by watch() (which fires at once), never answered
// with a stale "not yet".
Response WaitingPolls::wait_for(const std::string& id_text, const QueryParams& params, Answer answer) const
{
    auto parsed = wait_seconds(params, max_wait_seconds_.load());
    if (auto* error = std::get_if<Response>(&parsed)) return std::move(*error);
    const auto id = JobId::parse(id_text);
    if (!id) return bad_job_id(id_text);
    const Lookup found = pool_.find(*id);
    Response now = answer(*id, found);
    const auto seconds = std::get<std::optional<int>>(parsed);
    // Only a job that is still queued or running is worth waiting for.
    if (!seconds || !found.job || found.job->finished()) return now;
    auto park = std::make_shared<http::Park>();
    park->wait = std::chrono::seconds(*seconds);
    park->answer = [&pool = pool_, answer, job = *id] { return answer(job, pool.find(job)); };
    // The deadline tells a worker that does not run the survey when to look
    // for its completion in a shared store.
    park->subscribe = [&pool = pool_, job = *id, deadline = found.job->deadline_ms](std::function<void()> wake) {
        return pool.watch(job, std::move(wake), deadline);
    };
    park->unsubscribe = [&pool = pool_](std::uint64_t token) { pool.unwatch(token); };
    now.park = std::move(park);
    return now;
}

}  // namespace zk::api
