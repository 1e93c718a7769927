// FastCGI record walking (FastCGI 1.0 spec, sections 3.3, 3.4, 5.1).

#include "transport/fcgi_guard.h"

#include <cstdint>
#include <vector>

namespace zk::transport {

namespace {

constexpr std::size_t header_size = 8;
constexpr unsigned char fcgi_version = 1;
constexpr unsigned char type_begin_request = 1;
constexpr unsigned char type_params = 4;
constexpr unsigned char type_stdin = 5;
constexpr std::size_t begin_body_size = 8;
constexpr unsigned role_responder = 1;

struct Header {
    unsigned char version, type;
    unsigned request_id, content_length, padding_length;
};

unsigned u16(const unsigned char* p) { return static_cast<unsigned>(p[0]) << 8 | p[1]; }

Header read_header(const unsigned char* p)
{
    return {p[0], p[1], u16(p + 2), u16(p + 4), p[6]};
}

Verdict bad(std::string& why, const char* what)
{
    why = what;
    return Verdict::bad;
}

// One name or value length: 1 byte below 128, else 4 bytes with the top bit set.
bool read_length(const unsigned char* s, std::size_t size, std::size_t& at, std::size_t& out)
{
    if (at >= size) return false;
    if (s[at] < 0x80) {
        out = s[at++];
        return true;
    }
    if (at + 4 > size) return false;
    out = (static_cast<std::size_t>(s[at] & 0x7f) << 24) | (static_cast<std::size_t>(s[at + 1]) << 16) |
          (static_cast<std::size_t>(s[at + 2]) << 8) | s[at + 3];
    at += 4;
    return true;
}

// Where a walk over the name/value pairs received so far stopped.
enum class Walk { whole, cut_length, cut_pair, too_long };

Walk walk_params(const unsigned char* stream, std::size_t size)
{
    std::size_t at = 0;
    while (at < size) {
        std::size_t name = 0, value = 0;
        if (!read_length(stream, size, at, name) || !read_length(stream, size, at, value)) return Walk::cut_length;
        if (name > max_request_head || value > max_request_head) return Walk::too_long;
        if (name + value > size - at) return Walk::cut_pair;
        at += name + value;
    }
    return Walk::whole;
}

// With the whole stream (`ended`), every pair must fit inside it; before
// that, a declared length no request head could hold is already enough to refuse.
Verdict check_params(Walk walk, bool ended, std::string& why)
{
    switch (walk) {
    case Walk::too_long: return bad(why, "param length over the limit");
    case Walk::cut_length: return ended ? bad(why, "truncated param length") : Verdict::need_more;
    case Walk::cut_pair: return ended ? bad(why, "param length past the end of the params") : Verdict::need_more;
    case Walk::whole: break;
    }
    return ended ? Verdict::complete : Verdict::need_more;
}

}  // namespace

Verdict inspect_request_head(const unsigned char* data, std::size_t size, std::string& why)
{
    // The PARAMS stream so far. nginx sends it in one record, checked where
    // it lies; a stream split over several records is joined (copied) first,
    // since a pair may straddle records.
    const unsigned char* params = nullptr;
    std::size_t params_size = 0;
    std::vector<unsigned char> joined;
    Walk walk = Walk::whole;  // of the stream so far: walked again only when it grows
    std::size_t at = 0;
    unsigned request_id = 0;
    bool params_ended = false;
    for (bool first = true;; first = false) {
        if (size - at < header_size) return at + header_size > max_request_head ? bad(why, "request head too large") : Verdict::need_more;
        const Header h = read_header(data + at);
        if (h.version != fcgi_version) return bad(why, "unknown FastCGI version");
        const std::size_t record = header_size + h.content_length + h.padding_length;
        if (at + record > max_request_head) return bad(why, "request head too large");
        if (first) {
            if (h.type != type_begin_request || h.content_length != begin_body_size || h.request_id == 0)
                return bad(why, "first record is not BEGIN_REQUEST");
            request_id = h.request_id;
        } else if (h.request_id != request_id || h.type != (params_ended ? type_stdin : type_params)) {
            return bad(why, params_ended ? "expected STDIN of the same request" : "expected PARAMS of the same request");
        }
        if (size - at < record) return Verdict::need_more;
        const unsigned char* body = data + at + header_size;
        if (first && u16(body) != role_responder) return bad(why, "role is not RESPONDER");
        if (params_ended && h.content_length == 0) return Verdict::complete;
        if (!first && !params_ended) {
            params_ended = h.content_length == 0;
            if (h.content_length > 0 && params_size == 0) {
                params = body;
                params_size = h.content_length;
            } else if (h.content_length > 0) {
                if (joined.empty()) joined.assign(params, params + params_size);
                joined.insert(joined.end(), body, body + h.content_length);
                params = joined.data();
                params_size = joined.size();
            }
            if (h.content_length > 0) walk = walk_params(params, params_size);
            const Verdict v = check_params(walk, params_ended, why);
            if (v == Verdict::bad) return v;
        }
        at += record;
    }
}

}  // namespace zk::transport
