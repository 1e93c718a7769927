// Maps a method and a raw request path to a row of the route table
// (api/routes.h) and the handler for that method. The path is percent-decoded
// segment by segment here, once, so handlers only ever see clean segments;
// anything ambiguous (dot segments, encoded '/', NUL, malformed escapes) is
// refused before any handler runs.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <variant>

#include "api/routes.h"
#include "http/message.h"

namespace zk::dispatch {

using http::QueryParams;

struct RouteMatch {
    std::size_t index;          // the row's position in the table (its metrics slot)
    const api::Route* route;    // the row
    api::Handler handler;       // the row's handler for the request's method
    std::string param;  // the decoded {animal} or {id} segment; empty otherwise
    QueryParams query;  // decoded name=value pairs, in order
};

// Path and query together; nginx's own header limit is larger.
constexpr std::size_t max_uri_length = 2048;

// Either the matched row of `table` or the error answer (400, 404, 405 with
// Allow, 414). The first overload routes over the API's table, api::routes().
std::variant<RouteMatch, http::Response> route(std::string_view method, std::string_view uri);
std::variant<RouteMatch, http::Response> route(std::span<const api::Route> table, std::string_view method,
                                               std::string_view uri);

// Percent-decodes one path segment; false on a malformed escape.
bool decode_segment(std::string_view in, std::string& out);
// Decodes "a=1&b=x%20y" ('+' is a space, as forms send it); nullopt when
// malformed or holding control characters.
std::optional<QueryParams> decode_query(std::string_view query);

}  // namespace zk::dispatch
