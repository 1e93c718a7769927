// The problem catalogue and its JSON rendering.

#include "http/problem.h"

#include <iterator>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace zk::http {

namespace {

constexpr std::size_t max_echo_length = 64;

constexpr ProblemInfo catalogue[] = {
    {ProblemKind::bad_path, 400, Cause::bad_input, "bad-path", "The request path cannot be decoded"},
    {ProblemKind::bad_job_id, 400, Cause::bad_input, "bad-job-id", "Not a job id"},
    {ProblemKind::bad_parameter, 400, Cause::bad_input, "bad-parameter", "A query parameter is invalid"},
    {ProblemKind::uri_too_long, 414, Cause::bad_input, "uri-too-long", "The request path is too long"},
    {ProblemKind::no_route, 404, Cause::bad_input, "no-route", "No such resource"},
    {ProblemKind::unknown_animal, 404, Cause::bad_input, "unknown-animal", "No such animal"},
    {ProblemKind::unknown_job, 404, Cause::bad_input, "unknown-job", "No such job"},
    {ProblemKind::result_expired, 404, Cause::job_state, "result-expired", "The result has expired"},
    {ProblemKind::method_not_allowed, 405, Cause::bad_input, "method-not-allowed", "Method not allowed"},
    {ProblemKind::job_cancelled, 410, Cause::job_state, "job-cancelled", "The survey was cancelled"},
    {ProblemKind::job_finished, 409, Cause::job_state, "job-finished", "The survey has already finished"},
    {ProblemKind::too_many_jobs, 503, Cause::limit, "too-many-jobs", "Too many surveys in flight"},
    {ProblemKind::shutting_down, 503, Cause::limit, "shutting-down", "The service is shutting down"},
    {ProblemKind::store_failed, 503, Cause::unavailable, "store-failed", "The job store failed"},
    {ProblemKind::bad_idempotency_key, 400, Cause::bad_input, "bad-idempotency-key",
     "The Idempotency-Key header is invalid"},
    {ProblemKind::idempotency_key_reused, 422, Cause::bad_input, "idempotency-key-reused",
     "The Idempotency-Key was used for another request"},
    {ProblemKind::idempotency_key_in_flight, 409, Cause::job_state, "idempotency-key-in-flight",
     "A request with this Idempotency-Key is still being processed"},
    {ProblemKind::internal, 500, Cause::our_bug, "internal", "Internal error"},
};

// info() indexes the catalogue by kind: one row per kind, in enum order.
constexpr bool indexed_by_kind()
{
    for (std::size_t i = 0; i < std::size(catalogue); ++i)
        if (static_cast<std::size_t>(catalogue[i].kind) != i) return false;
    return std::size(catalogue) == static_cast<std::size_t>(ProblemKind::internal) + 1;
}
static_assert(indexed_by_kind(), "the problem catalogue must list every ProblemKind once, in enum order");

}  // namespace

const ProblemInfo& info(ProblemKind kind)
{
    return catalogue[static_cast<std::size_t>(kind)];
}


Response problem(ProblemKind kind, std::string_view detail)
{
    const ProblemInfo& p = info(kind);
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    const std::string type = std::string("/problems/") + p.slug;
    w.StartObject();
    w.Key("type");
    w.String(type.c_str(), static_cast<rapidjson::SizeType>(type.size()));
    w.Key("title");
    w.String(p.title);
    w.Key("status");
    w.Int(p.status);
    w.Key("detail");
    w.String(detail.data(), static_cast<rapidjson::SizeType>(detail.size()));
    w.EndObject();
    Response r;
    r.status = p.status;
    r.content_type = "application/problem+json";
    r.cause = p.cause;
    r.body.assign(buf.GetString(), buf.GetSize());
    return r;
}

std::string quote_user_text(std::string_view text)
{
    std::string out = "'";
    for (std::size_t i = 0; i < text.size() && i < max_echo_length; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        // Non-ASCII is replaced too, so the JSON body stays valid UTF-8.
        out.push_back(c < ' ' || c >= 0x7f ? '?' : static_cast<char>(c));
    }
    if (text.size() > max_echo_length) out.append("...");
    return out + "'";
}

}  // namespace zk::http
