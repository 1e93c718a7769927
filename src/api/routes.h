// The API's one route table: each row is a path pattern, its metrics label,
// and the handler for each method it allows. Adding a route is adding a row
// to routes.cpp; the router, the Allow header and the metrics labels follow.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "http/message.h"

namespace zk::api {

class Api;

// What a handler gets: the routed request, its decoded {animal}/{id}
// segment and its decoded query. A handler that answers later (a waiting
// poll parking its request) will get its completion hook here, so the rows
// and the handlers that answer at once need not change.
struct Call {
    const http::Request& request;
    const std::string& param;  // empty for a route without a parameter
    const http::QueryParams& query;
};

using Handler = http::Response (*)(Api& api, const Call& call);

// One method a route allows and who answers it.
struct Verb {
    std::string_view method;  // "GET", as sent; empty for an unused slot
    Handler handler = nullptr;
};

// The most methods one path takes (GET, HEAD, DELETE on /query/{id}).
constexpr std::size_t max_verbs = 3;

struct Route {
    std::string_view segment;  // the path's first segment
    bool has_param;            // one more, non-empty segment: {animal} or {id}
    std::string_view label;    // the "route" label of the request metrics
    std::array<Verb, max_verbs> verbs;  // in the order the Allow header lists them

    // The verb for `method` (case-sensitive, as HTTP says), or nullptr.
    const Verb* find(std::string_view method) const;
    // The Allow header: "GET, HEAD".
    std::string allow() const;
};

// Every route of the API, in match order.
std::span<const Route> routes();

// The metrics label of requests that matched no route (400/404/405/414).
constexpr std::string_view unrouted_label = "none";

}  // namespace zk::api
