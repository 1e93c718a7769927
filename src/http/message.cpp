// Reason phrases for the statuses this service answers with, and cause names.

#include "http/message.h"

namespace zk::http {

const char* reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    }
    return "Unknown";
}

const char* to_string(Cause cause)
{
    switch (cause) {
    case Cause::bad_input: return "bad_input";
    case Cause::job_state: return "job_state";
    case Cause::limit: return "limit";
    case Cause::unavailable: return "unavailable";
    case Cause::our_bug: return "our_bug";
    }
    return "unknown";
}

}  // namespace zk::http
