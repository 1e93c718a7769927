// Every error answer is built here, as RFC 9457 application/problem+json.
// Problems are sorted by cause (http::Cause): the client's input, the state
// of a job, a limit of ours, an unavailable dependency, or our own bug; each
// kind has one status and one type URI.
#pragma once

#include <string>
#include <string_view>

#include "http/message.h"

namespace zk::http {

enum class ProblemKind {
    bad_path,            // 400: undecodable or ambiguous path
    bad_job_id,          // 400
    bad_parameter,       // 400: a query parameter
    uri_too_long,        // 414
    no_route,            // 404
    unknown_animal,      // 404
    unknown_job,         // 404
    result_expired,      // 404
    method_not_allowed,  // 405: caller adds Allow
    job_cancelled,       // 410
    job_finished,        // 409
    too_many_jobs,       // 503 + Retry-After
    shutting_down,       // 503
    store_failed,        // 503
    bad_idempotency_key,   // 400: the Idempotency-Key header
    idempotency_key_reused,     // 422: the key created a survey of another animal
    idempotency_key_in_flight,  // 409 + Retry-After: its first creation is not yet durable
    internal,            // 500; keep it last (the catalogue checks its size against it)
};

struct ProblemInfo {
    ProblemKind kind;  // the row's own kind: the catalogue checks it is indexed by it
    int status;
    Cause cause;
    const char* slug;   // type is "/problems/<slug>"
    const char* title;  // fixed per kind; `detail` says what happened this time
};

const ProblemInfo& info(ProblemKind kind);

Response problem(ProblemKind kind, std::string_view detail);

// User text echoed in a detail: cut short and stripped of control characters.
std::string quote_user_text(std::string_view text);

}  // namespace zk::http
