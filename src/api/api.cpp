// Handlers for /animals, /animals/{animal}, /query/{id} and /jobs/{id}.
// Each reads as a chain of early returns: validate, act, answer.

#include "api/api.h"

#include <cctype>
#include <charconv>
#include <optional>
#include <variant>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "api/json.h"
#include "http/idempotency_key.h"
#include "http/problem.h"
#include "util/version.h"

namespace zk::api {

namespace {

using http::problem;
using http::ProblemKind;
using http::Response;

Response json(int status, std::string body)
{
    Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

Response busy(ProblemKind kind, std::string detail)
{
    auto r = problem(kind, detail);
    r.header("Retry-After", std::to_string(busy_retry_after_seconds));
    return r;
}

Response create_failed(CreateError error, const std::string& animal)
{
    switch (error) {
    case CreateError::unknown_animal:
        return problem(ProblemKind::unknown_animal, "there is no animal " + http::quote_user_text(animal) + "; see /animals");
    case CreateError::too_many_jobs: return busy(ProblemKind::too_many_jobs, "the survey limit is reached; retry later");
    case CreateError::stopping: return busy(ProblemKind::shutting_down, "the service is restarting; retry later");
    case CreateError::store_failed:
        return busy(ProblemKind::store_failed, "the survey could not be stored durably; retry later");
    case CreateError::key_reused:
        return problem(ProblemKind::idempotency_key_reused,
                       "this Idempotency-Key started a survey of another animal; use a new key for " +
                           http::quote_user_text(animal));
    case CreateError::key_in_flight: {
        auto r = problem(ProblemKind::idempotency_key_in_flight,
                         "the first request with this Idempotency-Key is still being stored; retry");
        r.header("Retry-After", std::to_string(key_in_flight_retry_after_seconds));
        return r;
    }
    case CreateError::none: break;
    }
    return problem(ProblemKind::internal, "unexpected create outcome");
}

// The request's key in its client's scope; nullopt without the header.
std::variant<std::optional<IdempotencyKey>, Response> idempotency_key(const http::Request& request)
{
    if (!request.idempotency_key) return std::optional<IdempotencyKey>();
    auto parsed = http::parse_idempotency_key(*request.idempotency_key);
    if (!parsed.error.empty()) return problem(ProblemKind::bad_idempotency_key, "Idempotency-Key: " + parsed.error);
    return std::optional<IdempotencyKey>(IdempotencyKey{request.client_scope, std::move(parsed.key)});
}

// The answer explaining why a lookup found no job; nullopt when it found one.
std::optional<Response> missing(const JobId& id, const Lookup& found)
{
    if (found.status == LookupStatus::expired)
        return problem(ProblemKind::result_expired, "job " + id.str() + " finished and its result has expired");
    if (found.status == LookupStatus::unknown) return problem(ProblemKind::unknown_job, "no job " + id.str());
    if (found.status == LookupStatus::unavailable)
        return busy(ProblemKind::store_failed, "the job store did not answer; retry later");
    return std::nullopt;
}

// Whether s is well-formed UTF-8 with no NUL: what a text filter may hold
// (anything else names no animal, and a database refuses it).
bool utf8_text(std::string_view s)
{
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        const std::size_t len = c == 0 ? 0 : c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        if (len == 0 || i + len > s.size()) return false;
        for (std::size_t k = 1; k < len; ++k)
            if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
        const std::uint32_t cp = len == 1 ? c
                               : len == 2 ? ((c & 0x1fu) << 6) | (s[i + 1] & 0x3f)
                               : len == 3 ? ((c & 0x0fu) << 12) | ((s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f)
                                          : ((c & 0x07u) << 18) | ((s[i + 1] & 0x3f) << 12) | ((s[i + 2] & 0x3f) << 6) | (s[i + 3] & 0x3f);
        const std::uint32_t min = len == 1 ? 0 : len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;  // overlong, too large, surrogate
        i += len;
    }
    return true;
}

std::variant<JobFilter, Response> job_filter(const QueryParams& params)
{
    JobFilter f;
    f.limit = default_page_size;
    for (const auto& [key, value] : params) {
        if (key == "state") {
            for (JobState s : {JobState::queued, JobState::running, JobState::done, JobState::cancelled})
                if (value == to_string(s)) f.state = s;
            if (!f.state)
                return problem(ProblemKind::bad_parameter, "state must be queued, running, done or cancelled");
        } else if (key == "animal") {
            if (!utf8_text(value)) return problem(ProblemKind::bad_parameter, "animal must be UTF-8 text");
            f.animal = value;
        } else if (key == "cursor") {
            f.before = JobId::parse(value);
            if (!f.before) return problem(ProblemKind::bad_parameter, "cursor must be a job id from a previous page");
        } else if (key == "limit") {
            const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), f.limit);
            if (ec != std::errc{} || end != value.data() + value.size() || f.limit < 1 || f.limit > max_page_size)
                return problem(ProblemKind::bad_parameter, "limit must be a whole number from 1 to " + std::to_string(max_page_size));
        } else {
            return problem(ProblemKind::bad_parameter,
                           "unknown parameter " + http::quote_user_text(key) + "; expected state, animal, limit, cursor");
        }
    }
    return f;
}

// Everything but RFC 3986 unreserved characters is escaped.
std::string percent_encode(std::string_view s)
{
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

std::string next_link(const QueryParams& params, const std::string& cursor)
{
    std::string link = "/jobs?";
    for (const auto& [key, value] : params)
        if (key != "cursor") link.append(percent_encode(key)).append("=").append(percent_encode(value)).append("&");
    return link.append("cursor=").append(cursor);
}

std::string retry_after(Millis remaining_ms)
{
    const Millis secs = (remaining_ms + 999) / 1000;
    return std::to_string(secs < 1 ? 1 : secs);
}

}  // namespace

Response bad_job_id(const std::string& id_text)
{
    return problem(ProblemKind::bad_job_id, http::quote_user_text(id_text) + " is not a UUID");
}

Response Api::list_animals() const
{
    auto vocabulary = pool_.rules()->vocabulary;
    std::shared_ptr<const AnimalsBody> body;
    {
        std::lock_guard lock(animals_mutex_);
        body = animals_;
    }
    if (!body || body->vocabulary != vocabulary) {
        // Rendered outside the lock; two threads may both render after a reload.
        body = std::make_shared<const AnimalsBody>(AnimalsBody{vocabulary, json_array(vocabulary->animals())});
        std::lock_guard lock(animals_mutex_);
        animals_ = body;
    }
    return json(200, body->json);
}

Response Api::start_survey(const std::string& animal, SurveyForm form, const http::Request& request)
{
    auto key = idempotency_key(request);
    if (auto* error = std::get_if<Response>(&key)) return std::move(*error);
    auto created = pool_.create(animal, std::get<std::optional<IdempotencyKey>>(key));
    if (!created.job) return create_failed(created.error, animal);
    const std::string id = created.job->id.str();
    auto r = json(form == SurveyForm::post ? 202 : 200, json_string(id));
    r.header("Location", "/query/" + id);
    if (created.replayed) r.header("Idempotent-Replayed", "true");
    else r.created_job = id;  // the log line names a job where it was created
    return r;
}

Response Api::poll(const std::string& id_text) const
{
    const auto id = JobId::parse(id_text);
    if (!id) return bad_job_id(id_text);
    return poll(*id, pool_.find(*id));
}

Response Api::poll(const JobId& id, const Lookup& found) const
{
    if (auto error = missing(id, found)) return std::move(*error);
    const Job& job = *found.job;
    switch (job.state) {
    case JobState::done: return json(200, json_string(job.result));
    case JobState::cancelled:
        return problem(ProblemKind::job_cancelled, "job " + job.id.str() + " was cancelled");
    case JobState::queued:
    case JobState::running: break;
    }
    auto r = json(202, json_string("..."));
    r.header("Retry-After", retry_after(job.remaining_ms(clock_.now_ms())));
    return r;
}

Response Api::cancel(const std::string& id_text)
{
    const auto id = JobId::parse(id_text);
    if (!id) return bad_job_id(id_text);
    switch (pool_.cancel(*id)) {
    case CancelOutcome::cancelled:
    case CancelOutcome::already_cancelled: {
        Response r;
        r.status = 204;
        r.content_type.clear();
        return r;
    }
    case CancelOutcome::already_done:
        return problem(ProblemKind::job_finished, "job " + id->str() + " is done and cannot be cancelled");
    case CancelOutcome::store_failed:
        return busy(ProblemKind::store_failed, "the cancellation could not be stored durably; retry");
    case CancelOutcome::unknown: break;
    }
    if (auto error = missing(*id, pool_.find(*id))) return std::move(*error);  // tells expired from unknown
    return problem(ProblemKind::unknown_job, "no job " + id->str());
}

Response Api::show_job(const std::string& id_text) const
{
    const auto id = JobId::parse(id_text);
    if (!id) return bad_job_id(id_text);
    return show_job(*id, pool_.find(*id));
}

Response Api::show_job(const JobId& id, const Lookup& found) const
{
    if (auto error = missing(id, found)) return std::move(*error);
    return json(200, job_json(*found.job, clock_.now_ms()));
}

Response Api::list_jobs(const QueryParams& params) const
{
    auto parsed = job_filter(params);
    if (auto* error = std::get_if<Response>(&parsed)) return std::move(*error);
    JobFilter filter = std::get<JobFilter>(parsed);
    ++filter.limit;  // one more than asked tells whether a next page exists
    auto listed = pool_.list(filter);
    if (!listed) return busy(ProblemKind::store_failed, "the job store did not answer; retry later");
    auto& jobs = *listed;
    const bool more = jobs.size() == filter.limit;
    if (more) jobs.pop_back();
    const Millis now = clock_.now_ms();
    std::string body = "{\"jobs\":[";
    for (std::size_t i = 0; i < jobs.size(); ++i) body.append(i ? "," : "").append(job_json(jobs[i], now));
    body.append("],\"next\":");
    body.append(more ? json_string(next_link(params, jobs.back().id.str())) : "null");
    body.append("}");
    return json(200, std::move(body));
}

Response Api::health() const
{
    const PoolStats s = pool_.stats();
    const Millis now = clock_.now_ms();
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("status");
    w.String(s.store_healthy ? "ok" : "unavailable");
    w.Key("version");
    w.String(version);
    w.Key("uptime_seconds");
    w.Double(static_cast<double>(now - s.started_ms) / 1000.0);
    w.Key("jobs");
    w.StartObject();
    w.Key("queued");
    w.Uint64(s.queued);
    w.Key("running");
    w.Uint64(s.running);
    w.Key("held");
    w.Uint64(s.held);
    w.EndObject();
    w.Key("store");
    w.String(s.store_healthy ? "ok" : "failed");
    w.Key("backend");
    w.String(s.backend.data(), static_cast<rapidjson::SizeType>(s.backend.size()));
    w.Key("worker");
    w.String(s.worker.c_str());
    w.EndObject();
    return json(s.store_healthy ? 200 : 503, std::string(buf.GetString(), buf.GetSize()));
}

Response Api::metrics() const
{
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_.render(pool_.stats());
    return r;
}

}  // namespace zk::api
