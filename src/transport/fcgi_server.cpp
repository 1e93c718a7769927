// Acceptor threads over libfcgi's FCGX_Accept_r.

#include "transport/fcgi_server.h"

#include <fcgiapp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "util/log.h"

namespace zk::transport {

namespace {

constexpr std::size_t drain_chunk = 4096;
// accept() can fail for passing reasons (EMFILE, ENOBUFS); give up on the
// socket only after this many failures in a row, pausing between them.
constexpr int max_accept_failures = 50;
constexpr auto accept_retry_pause = std::chrono::milliseconds(100);

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
    : listen_fd_(listen_fd), handler_(std::move(handler))
{
    // FCGX_Init is not thread-safe and must precede every FCGX_Accept_r.
    static std::once_flag initialised;
    std::call_once(initialised, [] {
        if (FCGX_Init() != 0) throw std::runtime_error("FCGX_Init failed");
    });
    for (std::size_t i = 0; i < acceptors; ++i) slots_.push_back(std::make_unique<Slot>());
}

FcgiServer::~FcgiServer()
{
    stop();
    join();
}

void FcgiServer::start()
{
    try {
        for (auto& slot : slots_) threads_.emplace_back([this, s = slot.get()] { accept_loop(*s); });
    } catch (...) {
        stop();
        join();
        throw;
    }
}

void FcgiServer::stop()
{
    if (stopping_.exchange(true)) return;
    // Fails every accept() blocked on this socket (Linux returns EINVAL).
    ::shutdown(listen_fd_, SHUT_RDWR);
    for (auto& slot : slots_) {
        std::lock_guard lock(slot->mutex);
        if (slot->waiting && slot->kept_fd >= 0) ::shutdown(slot->kept_fd, SHUT_RD);
    }
}

void FcgiServer::join()
{
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

void FcgiServer::accept_loop(Slot& slot)
{
    FCGX_Request req;
    FCGX_InitRequest(&req, listen_fd_, 0);
    int failures = 0;
    for (;;) {
        {
            std::lock_guard lock(slot.mutex);
            if (stopping_) break;
            slot.waiting = true;
            slot.kept_fd = req.ipcFd;  // >= 0 only while nginx keeps the connection
        }
        const int rc = FCGX_Accept_r(&req);
        {
            std::lock_guard lock(slot.mutex);
            slot.waiting = false;
        }
        if (rc < 0) {
            if (stopping_) break;
            // libfcgi returns -errno, or its own codes below -9000.
            const char* why = rc > -9000 ? std::strerror(-rc) : "libfcgi error";
            if (++failures == 1) log::warn("accept_failed").kv("error", why).kv("code", rc);
            if (failures < max_accept_failures) {
                std::this_thread::sleep_for(accept_retry_pause);
                continue;
            }
            log::error("accept_gave_up").kv("error", why).kv("failures", failures);
            if (on_fatal_) on_fatal_();
            break;
        }
        failures = 0;
        const http::Request request = read_request(req);
        const std::string out = serialise(handler_(request), request.request_id);
        FCGX_PutStr(out.data(), static_cast<int>(out.size()), req.out);
        FCGX_Finish_r(&req);
    }
    FCGX_Free(&req, 1);
}

}  // namespace zk::transport
