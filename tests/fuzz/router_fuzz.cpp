// libFuzzer target: zk::dispatch::route and zk::dispatch::decode_query.
//
// Input layout: the bytes before the first '\n' are the method, the rest is
// the raw request target (what nginx passes as REQUEST_URI); without a '\n'
// the whole input is the target and the method is "GET". The same target's
// query part is also fed to decode_query on its own.
//
// Beyond "no crash, no sanitizer report", each call is held to what the
// router promises its handlers (router.h): a matched route carries one clean
// segment, an error is one of 400/404/405/414 as problem+json whose body
// echoes no raw control character, 405 names its Allow list, and decoding is
// the inverse of percent-encoding.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "dispatch/router.h"

namespace {

void require(bool ok, const char* what)
{
    if (ok) return;
    std::fprintf(stderr, "router_fuzz: property violated: %s\n", what);
    std::abort();
}

bool has_control(std::string_view s)
{
    for (unsigned char c : s)
        if (c < ' ' || c == 0x7f) return true;
    return false;
}

void check_route(std::string_view method, std::string_view uri)
{
    auto result = zk::dispatch::route(method, uri);
    if (auto* m = std::get_if<zk::dispatch::RouteMatch>(&result)) {
        require(uri.size() <= zk::dispatch::max_uri_length, "an over-long target was routed");
        require(m->route != nullptr && m->handler != nullptr, "a match without a row or a handler");
        require(m->param.find('/') == std::string::npos, "a route parameter holds '/'");
        require(!has_control(m->param), "a route parameter holds a control character");
        require(m->param != "." && m->param != "..", "a route parameter is a dot segment");
        for (const auto& [k, v] : m->query)
            require(!has_control(k) && !has_control(v), "a decoded query holds a control character");
        return;
    }
    const auto& r = std::get<zk::http::Response>(result);
    require(r.status == 400 || r.status == 404 || r.status == 405 || r.status == 414, "unexpected error status");
    require(r.content_type == "application/problem+json", "an error is not problem+json");
    require(!has_control(r.body), "an error body holds a raw control character");
    if (r.status == 405) require(r.find_header("Allow") != nullptr, "405 without Allow");
    if (uri.size() > zk::dispatch::max_uri_length) require(r.status == 414, "an over-long target is not 414");
}

// decode_segment(percent_encode(x)) == x for any bytes x.
void check_segment_round_trip(std::string_view raw)
{
    static const char hex[] = "0123456789ABCDEF";
    std::string encoded;
    for (unsigned char c : raw) {
        encoded.push_back('%');
        encoded.push_back(hex[c >> 4]);
        encoded.push_back(hex[c & 15]);
    }
    std::string decoded;
    require(zk::dispatch::decode_segment(encoded, decoded), "a well-formed escape was refused");
    require(decoded == raw, "percent-decoding is not the inverse of percent-encoding");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    std::string_view method = "GET", uri = input;
    if (const auto nl = input.find('\n'); nl != std::string_view::npos) {
        method = input.substr(0, nl);
        uri = input.substr(nl + 1);
    }
    check_route(method, uri);
    if (const auto q = uri.find('?'); q != std::string_view::npos) {
        if (auto params = zk::dispatch::decode_query(uri.substr(q + 1)))
            for (const auto& [k, v] : *params)
                require(!has_control(k) && !has_control(v), "decode_query let a control character through");
    }
    std::string out;
    zk::dispatch::decode_segment(uri, out);
    check_segment_round_trip(uri.substr(0, 256));
    return 0;
}
