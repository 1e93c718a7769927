// The route table. HEAD is listed only where GET is safe: GET on
// /animals/{animal} creates a survey (the original's form), so it has no HEAD.

#include "api/routes.h"

#include "api/api.h"
#include "api/waiting.h"

namespace zk::api {

namespace {

using http::Response;

Response animals(Api& a, const Call&) { return a.list_animals(); }
Response survey_get(Api& a, const Call& c) { return a.start_survey(c.param, Api::SurveyForm::get, c.request); }
Response survey_post(Api& a, const Call& c) { return a.start_survey(c.param, Api::SurveyForm::post, c.request); }
Response poll(Api& a, const Call& c) { return a.waiting() ? a.waiting()->poll(c.param, c.query) : a.poll(c.param); }
Response cancel(Api& a, const Call& c) { return a.cancel(c.param); }
Response job(Api& a, const Call& c) { return a.waiting() ? a.waiting()->show(c.param, c.query) : a.show_job(c.param); }
Response jobs(Api& a, const Call& c) { return a.list_jobs(c.query); }
Response health(Api& a, const Call&) { return a.health(); }
Response metrics(Api& a, const Call&) { return a.metrics(); }

// Rows sharing a first segment differ in has_param, so order does not matter.
constexpr Route table[] = {
    {"animals", false, "animals", {{{"GET", animals}, {"HEAD", animals}}}},
    {"animals", true, "animal", {{{"GET", survey_get}, {"POST", survey_post}}}},
    {"query", true, "query", {{{"GET", poll}, {"HEAD", poll}, {"DELETE", cancel}}}},
    {"jobs", true, "job", {{{"GET", job}, {"HEAD", job}}}},
    {"jobs", false, "jobs", {{{"GET", jobs}, {"HEAD", jobs}}}},
    {"healthz", false, "healthz", {{{"GET", health}, {"HEAD", health}}}},
    {"metrics", false, "metrics", {{{"GET", metrics}, {"HEAD", metrics}}}},
};

}  // namespace

const Verb* Route::find(std::string_view method) const
{
    for (const Verb& v : verbs)
        if (v.handler && v.method == method) return &v;
    return nullptr;
}

std::string Route::allow() const
{
    std::string out;
    for (const Verb& v : verbs)
        if (v.handler) out.append(out.empty() ? "" : ", ").append(v.method);
    return out;
}

std::span<const Route> routes() { return table; }

}  // namespace zk::api
