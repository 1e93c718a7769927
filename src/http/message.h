// Request and response values: what the transport hands the dispatcher and
// what every handler returns. No sockets, no FastCGI: handlers are functions
// from one value to the other and are tested that way.
#pragma once

#include <optional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace zk::http {

struct Park;  // http/park.h

// Decoded query parameters, in the order sent.
using QueryParams = std::vector<std::pair<std::string, std::string>>;

// Why an answer is an error, as the problem catalogue (problem.h) sorts them:
// the client's input, the state of a job, a limit of ours, a dependency that
// is unavailable (the job store), or our own bug.
enum class Cause { bad_input, job_state, limit, unavailable, our_bug };

const char* to_string(Cause cause);

struct Request {
    std::string method;      // "GET", as sent
    std::string uri;         // raw request target, still percent-encoded, with query
    std::string request_id;  // from nginx's $request_id; echoed as X-Request-Id
    // The Idempotency-Key header as sent (nullopt when absent), and the
    // client scope nginx names for it (ZK_CLIENT_SCOPE, docs/design.md).
    std::optional<std::string> idempotency_key;
    std::string client_scope;
};

struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    // Not sent: the job this request created, for the request's log line, so
    // a job's id leads to the request (and request id) that started it.
    std::string created_job;
    // Not sent: set on problem answers, for the log line's level and cause.
    std::optional<Cause> cause;
    // Set: hold the request and answer later (http/park.h); this response is
    // the answer for a transport that cannot hold it.
    std::shared_ptr<Park> park;

    Response& header(std::string name, std::string value)
    {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }
    // The first header of that name, or nullptr.
    const std::string* find_header(const std::string& name) const
    {
        for (const auto& [k, v] : headers)
            if (k == name) return &v;
        return nullptr;
    }
};

// "OK", "Not Found", …; "Unknown" for codes the service never sends.
const char* reason_phrase(int status);

}  // namespace zk::http
