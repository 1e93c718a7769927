// Record encoding for answers to parked requests and a stopping worker's.

#include "transport/fcgi_answer.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace zk::transport {

namespace {

constexpr unsigned char fcgi_version = 1;
constexpr unsigned char fcgi_end_request = 3;
constexpr unsigned char fcgi_stdout = 6;
constexpr unsigned char fcgi_request_complete = 0;
constexpr std::size_t end_request_body = 8;

void header(std::string& out, unsigned char type, std::uint16_t id, std::size_t length)
{
    const unsigned char h[8] = {fcgi_version, type, static_cast<unsigned char>(id >> 8), static_cast<unsigned char>(id & 0xff),
                                static_cast<unsigned char>(length >> 8), static_cast<unsigned char>(length & 0xff), 0, 0};
    out.append(reinterpret_cast<const char*>(h), sizeof h);
}

}  // namespace

std::string encode_answer(std::uint16_t request_id, std::string_view data, ConnectionAfter then)
{
    std::string out;
    out.reserve(data.size() + 3 * 8 + end_request_body + 8 * (data.size() / max_record_content));
    while (!data.empty()) {
        const std::size_t n = std::min(data.size(), max_record_content);
        header(out, fcgi_stdout, request_id, n);
        out.append(data.substr(0, n));
        data.remove_prefix(n);
    }
    header(out, fcgi_stdout, request_id, 0);  // end of the stream
    header(out, fcgi_end_request, request_id, end_request_body);
    // appStatus 0 (four bytes), protocolStatus, three reserved bytes.
    const char body[end_request_body] = {0, 0, 0, 0, static_cast<char>(fcgi_request_complete), 0, 0, 0};
    out.append(body, sizeof body);
    if (then == ConnectionAfter::closed) header(out, fcgi_stdout, request_id, 0);
    return out;
}

bool send_all(int fd, std::string_view data)
{
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

}  // namespace zk::transport
