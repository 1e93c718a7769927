// The problem catalogue and its JSON rendering.

#include "http/problem.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace zk::http {

namespace {

constexpr std::size_t max_echo_length = 64;

}  // namespace

const ProblemInfo& info(ProblemKind kind)
{
    static const ProblemInfo table[] = {
        {400, Cause::bad_input, "bad-path", "The request path cannot be decoded"},
        {400, Cause::bad_input, "bad-job-id", "Not a job id"},
        {400, Cause::bad_input, "bad-parameter", "A query parameter is invalid"},
        {414, Cause::bad_input, "uri-too-long", "The request path is too long"},
        {404, Cause::bad_input, "no-route", "No such resource"},
        {404, Cause::bad_input, "unknown-animal", "No such animal"},
        {404, Cause::bad_input, "unknown-job", "No such job"},
        {404, Cause::job_state, "result-expired", "The result has expired"},
        {405, Cause::bad_input, "method-not-allowed", "Method not allowed"},
        {410, Cause::job_state, "job-cancelled", "The survey was cancelled"},
        {409, Cause::job_state, "job-finished", "The survey has already finished"},
        {503, Cause::limit, "too-many-jobs", "Too many surveys in flight"},
        {503, Cause::limit, "shutting-down", "The service is shutting down"},
        {503, Cause::our_bug, "store-failed", "The job store failed"},
        {500, Cause::our_bug, "internal", "Internal error"},
    };
    return table[static_cast<int>(kind)];
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
