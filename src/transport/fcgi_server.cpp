// Acceptor threads: our accept and wait loop around libfcgi's request parser.

#include "transport/fcgi_server.h"

#include <fcgiapp.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <system_error>

#include "transport/fcgi_guard.h"
#include "util/log.h"

namespace zk::transport {

namespace {

constexpr std::size_t drain_chunk = 4096;
// accept() can fail for passing reasons (EMFILE, ENOBUFS); give up on the
// socket only after this many failures in a row, pausing between them.
constexpr int max_accept_failures = 50;
constexpr auto accept_retry_pause = std::chrono::milliseconds(100);
// From a request's first byte to the end of its params: nginx sends them in
// one write, so only a broken or hostile peer is slower, and while it waits
// it holds an acceptor.
constexpr auto request_head_timeout = std::chrono::seconds(2);
// Backoff while a request head is incomplete (poll cannot wait for "more").
constexpr auto head_poll_min = std::chrono::milliseconds(1);
constexpr auto head_poll_max = std::chrono::milliseconds(50);

std::string param(FCGX_Request& req, const char* name)
{
    const char* v = FCGX_GetParam(name, req.envp);
    return v ? v : "";
}

http::Request read_request(FCGX_Request& req)
{
    http::Request r;
    r.method = param(req, "REQUEST_METHOD");
    r.uri = param(req, "REQUEST_URI");
    r.request_id = param(req, "REQUEST_ID");
    // No route takes a body, but a kept connection must not carry unread
    // STDIN records into the next request; nginx caps the size.
    char sink[drain_chunk];
    while (FCGX_GetStr(sink, sizeof sink, req.in) > 0) {
    }
    return r;
}

// Status line, headers and body in one buffer, so libfcgi sends one record.
std::string serialise(const http::Response& res, const std::string& request_id)
{
    std::string out;
    out.reserve(160 + res.body.size());
    out.append("Status: ").append(std::to_string(res.status)).append(" ").append(http::reason_phrase(res.status));
    if (!res.content_type.empty()) out.append("\r\nContent-Type: ").append(res.content_type);
    out.append("\r\nContent-Length: ").append(std::to_string(res.body.size()));
    if (!request_id.empty()) out.append("\r\nX-Request-Id: ").append(request_id);
    for (const auto& [name, value] : res.headers) out.append("\r\n").append(name).append(": ").append(value);
    out.append("\r\n\r\n").append(res.body);
    return out;
}

// Peeking never reports the end of the stream while unread bytes remain.
bool peer_hung_up(int fd)
{
    pollfd p{fd, POLLRDHUP, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void close_connection(FCGX_Request& req)
{
    if (req.ipcFd >= 0) ::close(req.ipcFd);
    req.ipcFd = -1;
}

}  // namespace

bool is_listening_socket(int fd)
{
    struct stat st{};
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
    int listening = 0;
    socklen_t len = sizeof listening;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening == 1;
}

FcgiServer::FcgiServer(int listen_fd, std::size_t acceptors, Handler handler)
    : listen_fd_(listen_fd), acceptors_(acceptors), handler_(std::move(handler))
{
    // FCGX_Init is not thread-safe and must precede every FCGX_Accept_r.
    static std::once_flag initialised;
    std::call_once(initialised, [] {
        if (FCGX_Init() != 0) throw std::runtime_error("FCGX_Init failed");
    });
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    // Several threads poll the socket; only one wins each accept, and the
    // others must get EAGAIN rather than block where stop() cannot reach.
    const int flags = fcntl(listen_fd_, F_GETFL);
    if (flags < 0 || fcntl(listen_fd_, F_SETFL, flags | O_NONBLOCK) < 0)
        throw std::system_error(errno, std::generic_category(), "fcntl O_NONBLOCK");
}

FcgiServer::~FcgiServer()
{
    stop();
    join();
    ::close(wake_fd_);
}

void FcgiServer::start()
{
    try {
        for (std::size_t i = 0; i < acceptors_; ++i) threads_.emplace_back([this] { serve(); });
    } catch (...) {
        stop();
        join();
        throw;
    }
}

void FcgiServer::stop()
{
    if (stopping_.exchange(true)) return;
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);  // never read: stays readable
}

void FcgiServer::join()
{
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

void FcgiServer::serve()
{
    FCGX_Request req;
    FCGX_InitRequest(&req, -1, 0);  // -1: libfcgi must never accept by itself
    while (!stopping_) {
        if (req.ipcFd < 0 && (req.ipcFd = accept_connection()) < 0) break;
        if (!await_request(req.ipcFd)) {
            close_connection(req);
            continue;
        }
        // Without this, FCGX_Accept_r's opening FCGX_Finish_r would close a
        // connection it did not accept; libfcgi then sets it from the request.
        req.keepConnection = 1;
        if (FCGX_Accept_r(&req) < 0) continue;  // libfcgi refused the request and closed it
        const http::Request request = read_request(req);
        const std::string out = serialise(handler_(request), request.request_id);
        FCGX_PutStr(out.data(), static_cast<int>(out.size()), req.out);
        FCGX_Finish_r(&req);  // closes unless nginx asked to keep the connection
    }
    close_connection(req);
    FCGX_Free(&req, 0);
}

// A new connection, or -1 when stopping (or after giving up on the socket).
int FcgiServer::accept_connection()
{
    for (int failures = 0; !stopping_;) {
        if (!wait_readable(listen_fd_, -1)) return -1;
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) return fd;
        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) continue;  // another acceptor won
        const char* why = std::strerror(errno);
        if (++failures == 1) log::warn("accept_failed").kv("error", why);
        if (failures < max_accept_failures) {
            std::this_thread::sleep_for(accept_retry_pause);
            continue;
        }
        log::error("accept_gave_up").kv("error", why).kv("failures", failures);
        if (on_fatal_) on_fatal_();
        return -1;
    }
    return -1;
}

// Waits, without limit, for the next request on a connection (nginx keeps
// them open between requests), then until its head is complete and valid.
bool FcgiServer::await_request(int fd)
{
    if (!wait_readable(fd, -1)) return false;
    thread_local std::unique_ptr<unsigned char[]> head(new unsigned char[max_request_head]);
    const auto deadline = std::chrono::steady_clock::now() + request_head_timeout;
    auto pause = head_poll_min;
    for (;;) {
        const ssize_t n = recv(fd, head.get(), max_request_head, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0) return false;  // nginx closed the connection
        if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
        std::string why;
        const Verdict v = n > 0 ? inspect_request_head(head.get(), static_cast<std::size_t>(n), why) : Verdict::need_more;
        if (v == Verdict::complete) return true;
        if (v == Verdict::bad) {
            log::warn("bad_fastcgi_input").kv("error", why);
            return false;
        }
        if (peer_hung_up(fd)) {  // the rest can never come
            log::warn("bad_fastcgi_input").kv("error", "connection closed inside a request head");
            return false;
        }
        if (stopping_ || std::chrono::steady_clock::now() >= deadline) {
            if (!stopping_) log::warn("bad_fastcgi_input").kv("error", "request head incomplete at the time limit");
            return false;
        }
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::duration_cast<std::chrono::milliseconds>(head_poll_max));
    }
}

// False when stop() was called (or the wait failed or timed out).
bool FcgiServer::wait_readable(int fd, int timeout_ms) const
{
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    for (;;) {
        const int n = poll(fds, 2, timeout_ms);
        if (n < 0 && errno == EINTR) continue;
        return n > 0 && fds[1].revents == 0 && !stopping_;
    }
}

}  // namespace zk::transport
