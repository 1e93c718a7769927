// Checks the start of a FastCGI request before libfcgi reads it. libfcgi
// 2.4.2 trusts the name/value lengths inside PARAMS records: lengths whose
// sum passes INT_MAX make its allocator assert and abort the whole worker
// (a 32-byte input did it). So every request's records, up to the end of its
// STDIN, are inspected first, from a peek at the socket, and a connection
// that sends anything but a well-formed responder request is closed. Waiting
// for the whole request (nginx caps a body at 1 KiB) also means libfcgi never
// blocks in a read, so a thread serving a request is never held by its peer.
// A pure function of the bytes: unit-tested and fuzzed without sockets.
#pragma once

#include <cstddef>
#include <string>

namespace zk::transport {

// One whole request may not exceed this (nginx sends well under 4 KiB).
constexpr std::size_t max_request_head = 64 * 1024;

enum class Verdict {
    complete,   // BEGIN_REQUEST(responder), valid PARAMS and STDIN, each up to its empty record
    need_more,  // valid so far; the end of the STDIN has not arrived
    bad,        // close the connection; `why` says what was wrong
};

Verdict inspect_request_head(const unsigned char* data, std::size_t size, std::string& why);

}  // namespace zk::transport
