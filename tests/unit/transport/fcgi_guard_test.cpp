// Tests for the FastCGI request check that runs before libfcgi parses.

#include "transport/fcgi_guard.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using zk::transport::inspect_request_head;
using zk::transport::max_request_head;
using zk::transport::Verdict;

namespace {

using Bytes = std::vector<unsigned char>;

Bytes record(unsigned char type, unsigned id, const Bytes& body, unsigned char padding = 0, unsigned char version = 1)
{
    Bytes r{version, type, static_cast<unsigned char>(id >> 8), static_cast<unsigned char>(id),
            static_cast<unsigned char>(body.size() >> 8), static_cast<unsigned char>(body.size()), padding, 0};
    r.insert(r.end(), body.begin(), body.end());
    r.insert(r.end(), padding, 0);
    return r;
}

Bytes begin(unsigned id = 1, unsigned role = 1) { return record(1, id, {0, static_cast<unsigned char>(role), 1, 0, 0, 0, 0, 0}); }

Bytes pair(const std::string& name, const std::string& value)
{
    Bytes b{static_cast<unsigned char>(name.size()), static_cast<unsigned char>(value.size())};
    b.insert(b.end(), name.begin(), name.end());
    b.insert(b.end(), value.begin(), value.end());
    return b;
}

Bytes join(std::initializer_list<Bytes> parts)
{
    Bytes out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

Verdict check(const Bytes& b, std::string* why_out = nullptr)
{
    std::string why;
    const Verdict v = inspect_request_head(b.data(), b.size(), why);
    if (why_out) *why_out = why;
    return v;
}

}  // namespace

TEST_CASE("a request head as nginx sends it is complete")
{
    const Bytes params = join({pair("REQUEST_METHOD", "GET"), pair("REQUEST_URI", "/animals")});
    const Bytes head = join({begin(), record(4, 1, params, 3), record(4, 1, {}), record(5, 1, {})});
    CHECK(check(head) == Verdict::complete);
}

TEST_CASE("every prefix of a valid head needs more, never fails")
{
    const Bytes head = join({begin(), record(4, 1, pair("A", "b")), record(4, 1, {}), record(5, 1, {'x'}), record(5, 1, {})});
    for (std::size_t n = 0; n < head.size(); ++n) {
        CAPTURE(n);
        CHECK(check(Bytes(head.begin(), head.begin() + static_cast<long>(n))) == Verdict::need_more);
    }
}

TEST_CASE("params may span records")
{
    const Bytes p = pair("REQUEST_URI", "/query/abc");
    const Bytes a(p.begin(), p.begin() + 5), b(p.begin() + 5, p.end());
    CHECK(check(join({begin(), record(4, 1, a), record(4, 1, b), record(4, 1, {}), record(5, 1, {})})) == Verdict::complete);
}

TEST_CASE("params split over several records are joined in order, a length straddling two")
{
    const std::string value(200, 'v');
    Bytes p{3, 0x80, 0, 0, 200, 'K', 'E', 'Y'};
    p.insert(p.end(), value.begin(), value.end());
    const Bytes all = join({pair("REQUEST_URI", "/animals"), p});
    // Cuts inside the first pair, inside the four-byte length, and inside the value.
    const Bytes a(all.begin(), all.begin() + 4), b(all.begin() + 4, all.begin() + 23), c(all.begin() + 23, all.end());
    const Bytes head = join({begin(), record(4, 1, a), record(4, 1, b), record(4, 1, c), record(4, 1, {})});
    CHECK(check(join({head, record(5, 1, {})})) == Verdict::complete);
    CHECK(check(head) == Verdict::need_more);
    // The same split with the last record one byte short: the value runs past the end.
    const Bytes short_c(c.begin(), c.end() - 1);
    std::string why;
    CHECK(check(join({begin(), record(4, 1, a), record(4, 1, b), record(4, 1, short_c), record(4, 1, {})}), &why) ==
          Verdict::bad);
    CHECK(why == "param length past the end of the params");
}

TEST_CASE("the request is complete only with the end of its STDIN, so libfcgi never waits for a body")
{
    const Bytes head = join({begin(), record(4, 1, pair("REQUEST_METHOD", "POST")), record(4, 1, {})});
    CHECK(check(head) == Verdict::need_more);
    CHECK(check(join({head, record(5, 1, {'a', 'b'}, 6)})) == Verdict::need_more);
    CHECK(check(join({head, record(5, 1, {'a', 'b'}, 6), record(5, 1, {})})) == Verdict::complete);
    std::string why;
    CHECK(check(join({head, record(5, 2, {})}), &why) == Verdict::bad);
    CHECK(why == "expected STDIN of the same request");
    CHECK(check(join({head, record(4, 1, pair("A", "b"))}), &why) == Verdict::bad);  // params after their end
    CHECK(why == "expected STDIN of the same request");
}

TEST_CASE("a body too large for the limit is refused")
{
    Bytes request = join({begin(), record(4, 1, pair("A", "b")), record(4, 1, {})});
    while (request.size() <= max_request_head) request = join({request, record(5, 1, Bytes(60000, 'x'))});
    std::string why;
    CHECK(check(request, &why) == Verdict::bad);
    CHECK(why == "request head too large");
}

TEST_CASE("four-byte lengths are read with the top bit cleared")
{
    const std::string value(200, 'v');
    Bytes p{1, 0x80, 0, 0, 200, 'K'};
    p.insert(p.end(), value.begin(), value.end());
    CHECK(check(join({begin(), record(4, 1, p), record(4, 1, {}), record(5, 1, {})})) == Verdict::complete);
}

TEST_CASE("lengths libfcgi would overflow on are refused at once")
{
    // The 32-byte input that made libfcgi 2.4.2 abort: two 0x40000000 lengths.
    const Bytes head = join({begin(), record(4, 1, {0xc0, 0, 0, 0, 0xc0, 0, 0, 0})});
    std::string why;
    CHECK(check(head, &why) == Verdict::bad);
    CHECK(why == "param length over the limit");
}

TEST_CASE("a pair running past the end of the params is refused")
{
    std::string why;
    CHECK(check(join({begin(), record(4, 1, {5, 5, 'a', 'b'}), record(4, 1, {})}), &why) == Verdict::bad);
    CHECK(why == "param length past the end of the params");
    CHECK(check(join({begin(), record(4, 1, {0x80, 0}), record(4, 1, {})}), &why) == Verdict::bad);
    CHECK(why == "truncated param length");
}

TEST_CASE("malformed records are refused")
{
    CHECK(check(record(1, 1, {0, 1, 0, 0, 0, 0, 0, 0}, 0, 2)) == Verdict::bad);                           // version 2
    CHECK(check(record(4, 1, {})) == Verdict::bad);                                                      // no BEGIN_REQUEST
    CHECK(check(record(1, 1, {0, 1, 0})) == Verdict::bad);                                               // short BEGIN body
    CHECK(check(begin(0)) == Verdict::bad);                                                              // management id
    CHECK(check(begin(1, 2)) == Verdict::bad);                                                           // AUTHORIZER
    CHECK(check(join({begin(1), record(4, 2, pair("A", "b"))})) == Verdict::bad);                        // other request
    CHECK(check(join({begin(1), record(5, 1, {})})) == Verdict::bad);                                    // STDIN before params end
    CHECK(check(join({begin(1), record(9, 0, {})})) == Verdict::bad);                                    // GET_VALUES
}

TEST_CASE("a head larger than the limit is refused")
{
    Bytes head = begin();
    const Bytes chunk = record(4, 1, Bytes(60000, 0));  // a pair (0, 0) repeated: valid but huge
    while (head.size() <= max_request_head) head = join({head, chunk});
    CHECK(check(head) == Verdict::bad);
}
