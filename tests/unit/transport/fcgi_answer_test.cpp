// The FastCGI records written for a parked request's answer.

#include "transport/fcgi_answer.h"

#include <doctest/doctest.h>

#include <string>

using namespace zk::transport;

namespace {

unsigned byte(const std::string& s, std::size_t i) { return static_cast<unsigned char>(s[i]); }

}  // namespace

TEST_CASE("fcgi answer for a waiting poll: STDOUT, empty STDOUT, END_REQUEST complete, on the request's id")
{
    const std::string out = encode_answer(0x0102, "Status: 200 OK\r\n\r\nhi");
    const std::size_t n = 20;
    REQUIRE(out.size() == 8 + n + 8 + 8 + 8);
    CHECK(byte(out, 0) == 1);  // version
    CHECK(byte(out, 1) == 6);  // FCGI_STDOUT
    CHECK(byte(out, 2) == 1);
    CHECK(byte(out, 3) == 2);
    CHECK(byte(out, 5) == n);
    CHECK(out.substr(8, n) == "Status: 200 OK\r\n\r\nhi");
    CHECK(byte(out, 8 + n + 1) == 6);  // the empty STDOUT ends the stream
    CHECK(byte(out, 8 + n + 5) == 0);
    CHECK(byte(out, 16 + n + 1) == 3);  // FCGI_END_REQUEST
    CHECK(byte(out, 16 + n + 5) == 8);
    CHECK(byte(out, 24 + n + 4) == 0);  // FCGI_REQUEST_COMPLETE
}

TEST_CASE("fcgi answer for a waiting poll: content over 65535 bytes is split into records")
{
    const std::string body(max_record_content + 10, 'x');
    const std::string out = encode_answer(1, body);
    REQUIRE(out.size() == body.size() + 8 * 4 + 8);
    CHECK(byte(out, 4) == 0xff);
    CHECK(byte(out, 5) == 0xff);
    const std::size_t second = 8 + max_record_content;
    CHECK(byte(out, second + 1) == 6);
    CHECK(byte(out, second + 5) == 10);
}

TEST_CASE("fcgi last answer: the same records, then one empty STDOUT after END_REQUEST, so nginx does not keep the connection")
{
    const std::string answer = encode_answer(7, "Status: 503 Service Unavailable\r\n\r\n");
    const std::string last = encode_answer(7, "Status: 503 Service Unavailable\r\n\r\n", ConnectionAfter::closed);
    REQUIRE(last.size() == answer.size() + 8);
    CHECK(last.substr(0, answer.size()) == answer);
    CHECK(byte(last, answer.size() + 1) == 6);  // FCGI_STDOUT
    CHECK(byte(last, answer.size() + 3) == 7);  // the request's id
    CHECK(byte(last, answer.size() + 5) == 0);  // empty
}
