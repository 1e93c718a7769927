// Checks the start of a FastCGI request before libfcgi reads it. libfcgi
// 2.4.2 trusts the name/value lengths inside PARAMS records: lengths whose
// sum passes INT_MAX make its allocator assert and abort the whole worker
// (a 32-byte input did it). So every request's records, up to the end of its
// params, are inspected first, from a peek at the socket, and a connection
// that sends anything but a well-formed responder request is closed.
// A pure function of the bytes: unit-tested and fuzzed without sockets.
#pragma once

#include <cstddef>
#include <string>

namespace zk::transport {

// The params of one request may not exceed this (nginx sends well under 4 KiB).
constexpr std::size_t max_request_head = 64 * 1024;

enum class Verdict {
    complete,   // BEGIN_REQUEST(responder) and all PARAMS up to the empty one are valid
    need_more,  // valid so far; the end of the params has not arrived
    bad,        // close the connection; `why` says what was wrong
};

Verdict inspect_request_head(const unsigned char* data, std::size_t size, std::string& why);

}  // namespace zk::transport
