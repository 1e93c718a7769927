// Path decoding and matching against the route table.

#include "dispatch/router.h"

#include <vector>

#include "http/problem.h"

using zk::http::problem;
using zk::http::ProblemKind;
using zk::http::quote_user_text;
using zk::http::Response;

namespace zk::dispatch {

namespace {

bool clean(std::string_view s)
{
    for (unsigned char c : s)
        if (c < ' ' || c == 0x7f) return false;
    return true;
}

int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Splits "/a/b" into decoded segments, or explains why it cannot.
std::variant<std::vector<std::string>, Response> segments(std::string_view path)
{
    std::vector<std::string> out;
    if (path.empty() || path[0] != '/') return problem(ProblemKind::bad_path, "the path must start with '/'");
    path.remove_prefix(1);
    for (;;) {
        const auto slash = path.find('/');
        std::string seg;
        if (!decode_segment(path.substr(0, slash), seg))
            return problem(ProblemKind::bad_path, "malformed percent-encoding in the path");
        for (unsigned char c : seg)
            if (c < ' ' || c == 0x7f || c == '/')
                return problem(ProblemKind::bad_path, "the path holds an encoded '/' or a control character");
        if (seg == "." || seg == "..") return problem(ProblemKind::bad_path, "dot segments are not allowed in paths");
        out.push_back(std::move(seg));
        if (slash == std::string_view::npos) return out;
        path.remove_prefix(slash + 1);
    }
}

}  // namespace

bool decode_segment(std::string_view in, std::string& out)
{
    out.clear();
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (i + 2 >= in.size()) return false;
        const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return true;
}

std::optional<QueryParams> decode_query(std::string_view query)
{
    QueryParams out;
    while (!query.empty()) {
        const auto amp = query.find('&');
        std::string pair(query.substr(0, amp));
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty()) continue;
        for (char& c : pair)
            if (c == '+') c = ' ';
        const auto eq = pair.find('=');
        std::string key, value;
        if (!decode_segment(std::string_view(pair).substr(0, eq), key)) return std::nullopt;
        if (eq != std::string::npos && !decode_segment(std::string_view(pair).substr(eq + 1), value)) return std::nullopt;
        if (!clean(key) || !clean(value)) return std::nullopt;
        out.emplace_back(std::move(key), std::move(value));
    }
    return out;
}

std::variant<RouteMatch, Response> route(std::string_view method, std::string_view uri)
{
    return route(api::routes(), method, uri);
}

std::variant<RouteMatch, Response> route(std::span<const api::Route> table, std::string_view method, std::string_view uri)
{
    const auto qmark = uri.find('?');
    const auto path = uri.substr(0, qmark);
    if (uri.size() > max_uri_length)
        return problem(ProblemKind::uri_too_long, "request targets are limited to " + std::to_string(max_uri_length) + " bytes");
    auto split = segments(path);
    if (auto* error = std::get_if<Response>(&split)) return std::move(*error);
    auto& segs = std::get<std::vector<std::string>>(split);
    for (std::size_t i = 0; i < table.size(); ++i) {
        const api::Route& row = table[i];
        if (segs[0] != row.segment || segs.size() != (row.has_param ? 2u : 1u)) continue;
        if (row.has_param && segs[1].empty()) continue;
        const api::Verb* verb = row.find(method);
        if (!verb) {
            const std::string allow = row.allow();
            auto r = problem(ProblemKind::method_not_allowed, quote_user_text(method) + " is not allowed here; allowed: " + allow);
            r.header("Allow", allow);
            return r;
        }
        auto query = decode_query(qmark == std::string_view::npos ? std::string_view{} : uri.substr(qmark + 1));
        if (!query) return problem(ProblemKind::bad_parameter, "the query string cannot be decoded");
        return RouteMatch{i, &row, verb->handler, row.has_param ? std::move(segs[1]) : std::string{}, std::move(*query)};
    }
    return problem(ProblemKind::no_route, "no resource at " + quote_user_text(path));
}

}  // namespace zk::dispatch
