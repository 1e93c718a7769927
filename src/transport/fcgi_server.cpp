// Acceptor threads: our accept and wait loop around libfcgi's request parser.

#include "transport/fcgi_server.h"

#include <dirent.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <vector>

#include "http/problem.h"
#include "transport/fcgi_answer.h"
#include "transport/fcgi_guard.h"
#include "transport/fcgi_params.h"
#include "util/blocking.h"
#include "util/log.h"

namespace zk::transport {

namespace {

constexpr std::size_t drain_chunk = 4096;
// accept() can fail for passing reasons (EMFILE, ENOBUFS); give up on the
// socket only after this many failures in a row, pausing between them.
constexpr int max_accept_failures = 50;
constexpr auto accept_retry_pause = std::chrono::milliseconds(100);
// From a request's first byte to the end of its STDIN: nginx sends a request
// in one write (it buffers bodies first), so only a broken or hostile peer is
// slower; while it waits, its thread gives up its seat (util/seats.h).
constexpr auto request_head_timeout = std::chrono::seconds(2);
// Backoff while a request head is incomplete (poll cannot wait for "more").
constexpr auto head_poll_min = std::chrono::milliseconds(1);
constexpr auto head_poll_max = std::chrono::milliseconds(50);
// A stop's drain (join()): the threads answer until no request has come for
// drain_quiet, at most drain_limit after stop(). nginx keeps choosing a
// worker while it holds kept connections to it (each is closed after its
// next answer, so they run out, and nginx is then refused and goes
// elsewhere), a request every 20 ms or so each under moderate load: a 20 ms
// quiet ended while it still chose us (the stop test's 502s). The limit
// leaves the pool and the store the rest of the shutdown guard's second.
constexpr auto drain_quiet = std::chrono::milliseconds(150);
constexpr auto drain_limit = std::chrono::milliseconds(500);

using SteadyClock = std::chrono::steady_clock;
std::int64_t steady_ns() { return SteadyClock::now().time_since_epoch().count(); }
// epoll data of a parked connection: this bit and the parked id. Other
// entries carry their fd (upper bits zero).
constexpr std::uint64_t parked_tag = std::uint64_t{1} << 63;

http::Request read_request(FCGX_Request& req)
{
    http::Request r = request_from_params(req.envp);
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

// One event per connection until it is re-armed: a connection is served by
// one thread at a time, and its next request may go to any thread.
bool watch(int epoll_fd, int fd, int op)
{
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    ev.data.fd = fd;
    return epoll_ctl(epoll_fd, op, fd, &ev) == 0;
}

// A parked connection: only its hang-up (or an error) is of interest now.
bool watch_hangup(int epoll_fd, int fd, std::uint64_t parked_id)
{
    epoll_event ev{};
    ev.events = EPOLLRDHUP | EPOLLONESHOT;
    ev.data.u64 = parked_tag | parked_id;
    return epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &ev) == 0;
}

bool ring(int event_fd)
{
    const std::uint64_t one = 1;
    return ::write(event_fd, &one, sizeof one) == sizeof one;
}

void drain(int fd)
{
    std::uint64_t count = 0;
    [[maybe_unused]] auto n = ::read(fd, &count, sizeof count);
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

FcgiServer::FcgiServer(int listen_fd, std::size_t threads, std::size_t awake, Handler handler)
    : listen_fd_(listen_fd), threads_count_(threads), handler_(std::move(handler)), seats_(awake)
{
    // FCGX_Init is not thread-safe and must precede every FCGX_Accept_r.
    static std::once_flag initialised;
    std::call_once(initialised, [] {
        if (FCGX_Init() != 0) throw std::runtime_error("FCGX_Init failed");
    });
    // A name to tell our connections by (close_connections()): never an
    // unnamed one, which the database's client sockets have too.
    socklen_t len = sizeof listen_address_;
    if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&listen_address_), &len) == 0 &&
        len > sizeof(sa_family_t))
        listen_address_len_ = len;
    // Several threads may be told the socket is readable; only one wins each
    // accept, and the others must get EAGAIN rather than block in accept().
    const int flags = fcntl(listen_fd_, F_GETFL);
    if (flags < 0 || fcntl(listen_fd_, F_SETFL, flags | O_NONBLOCK) < 0)
        throw std::system_error(errno, std::generic_category(), "fcntl O_NONBLOCK");
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ready_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);  // steady_clock's clock
    parking_ = std::make_shared<Parking>([fd = ready_fd_] { ring(fd); });
    epoll_event wake{};
    wake.events = EPOLLIN;  // level-triggered and never read: wakes every thread
    wake.data.fd = wake_fd_;
    if (epoll_fd_ < 0 || wake_fd_ < 0 || epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake) != 0 ||
        !watch(epoll_fd_, listen_fd_, EPOLL_CTL_ADD) || ready_fd_ < 0 || timer_fd_ < 0 ||
        !watch(epoll_fd_, ready_fd_, EPOLL_CTL_ADD) || !watch(epoll_fd_, timer_fd_, EPOLL_CTL_ADD)) {
        const int err = errno;
        close_fds();
        throw std::system_error(err, std::generic_category(), "epoll setup");
    }
}

FcgiServer::~FcgiServer()
{
    stop();
    join();
    if (epoll_fd_ >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
    close_fds();
}

void FcgiServer::close_fds()
{
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (ready_fd_ >= 0) ::close(ready_fd_);
    if (timer_fd_ >= 0) ::close(timer_fd_);
    epoll_fd_ = wake_fd_ = ready_fd_ = timer_fd_ = -1;
}

void FcgiServer::start()
{
    try {
        for (std::size_t i = 0; i < threads_count_; ++i) threads_.emplace_back([this] { serve(); });
    } catch (...) {
        stop();
        join();
        throw;
    }
}

// nginx never passes a POST it has sent to another worker, so a request it
// wrote to a connection we then close unread becomes its 502. Stopping
// therefore: new connects are refused (nginx tries another worker), what
// already waits in the backlog is taken, and the threads keep answering on
// the connections they have, each answer the connection's last
// (answer_last()), until join().
void FcgiServer::stop()
{
    if (stopping_.exchange(true)) return;
    stopped_ns_ = last_request_ns_ = steady_ns();
    stop_listening();
    seats_.open();
    // Every waiting poll gets its answer now (202 with Retry-After while its
    // survey runs); nginx would otherwise hold them until its read timeout.
    for (Taken& t : parking_->close()) finish(std::move(t));
}

// A unix socket shut for reading refuses connects but keeps its backlog to
// accept; a TCP one would reset its backlog, so that is taken first.
void FcgiServer::stop_listening()
{
    std::lock_guard lock(listen_mutex_);
    if (listen_closed_) return;
    take_backlog();
    ::shutdown(listen_fd_, SHUT_RD);
    take_backlog();
    listen_closed_ = true;
}

// Drains (the threads answering until the connections are quiet), wakes and
// joins the threads, answers what they left readable, then closes the
// connections at once, so that nginx sees them close now rather than write
// to them until the process has exited.
void FcgiServer::join()
{
    stop();
    if (joining_.exchange(true)) return;
    const auto limit = SteadyClock::time_point(SteadyClock::duration(stopped_ns_.load())) + drain_limit;
    for (;;) {
        const auto quiet_until = SteadyClock::time_point(SteadyClock::duration(last_request_ns_.load())) + drain_quiet;
        const auto until = std::min(quiet_until, limit);
        if (SteadyClock::now() >= until) break;
        std::this_thread::sleep_until(until);
    }
    leaving_ = true;
    ring(wake_fd_);
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    if (epoll_fd_ < 0) return;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, wake_fd_, nullptr);  // level-triggered: every wait would end at once
    FCGX_Request req;
    FCGX_InitRequest(&req, -1, 0);
    epoll_event ev{};
    while (epoll_wait(epoll_fd_, &ev, 1, 0) == 1) dispatch_event(req, ev.data.u64);
    FCGX_Free(&req, 0);
    close_connections();
}

// Our connections are the sockets whose local address is the listening
// socket's (an accepted socket shares it; the database's client sockets do
// not): the kernel's list, read once at the end, so the request path keeps
// none of its own. Without /proc the process's exit closes them instead.
void FcgiServer::close_connections()
{
    if (listen_address_len_ == 0) return;
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir) return;
    std::vector<int> ours;
    while (const dirent* e = ::readdir(dir)) {
        int fd = -1;
        const std::string_view name = e->d_name;
        if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc{} || fd == listen_fd_ ||
            fd == ::dirfd(dir))
            continue;
        sockaddr_storage a{};
        socklen_t len = sizeof a;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0 && len == listen_address_len_ &&
            std::memcmp(&a, &listen_address_, len) == 0)
            ours.push_back(fd);
    }
    ::closedir(dir);
    for (const int fd : ours) ::close(fd);
}

// Each thread waits on the shared epoll set for whichever comes first: a new
// connection or the next request on a connection nginx kept open. It sleeps
// there only with a seat (util/seats.h); without one it takes what is ready
// and otherwise stands by. Before it blocks (a commit, a slow peer) it gives
// its seat up.
//
// The thread's log lines (a request line each) go out in batches
// (util/log.h): before it waits for work, stands by or blocks, and while it
// keeps serving, at the latest log::max_delay after the oldest. A seated
// thread with lines gathered waits no longer than that, then writes them.
void FcgiServer::serve()
{
    FCGX_Request req;
    FCGX_InitRequest(&req, -1, 0);  // -1: libfcgi must never accept by itself
    util::Seat seat(seats_);
    const log::Batch log_batch;
    const util::BlockingHook hook([&seat] {
        log::flush();
        seat.block();
    });
    while (!leaving_) {
        seat.resume();
        const bool seated = seat.try_take();
        epoll_event ev{};
        const auto log_due = log::flush_due();
        const int n = epoll_wait(epoll_fd_, &ev, 1, !seated ? 0 : log_due ? static_cast<int>(log_due->count()) : -1);
        if (n == 0) {  // nothing ready (or the log delay ran out): the lines go out before the thread waits
            log::flush();
            if (!seated) seat.take();
            continue;
        }
        if (n < 0 && errno != EINTR) {
            fail("epoll_wait");
            break;
        }
        // An event taken is served even when leaving: its one-shot is spent,
        // and the connection would otherwise go unanswered to the end.
        if (n <= 0 || ev.data.u64 == static_cast<std::uint64_t>(wake_fd_)) continue;
        if (stopping_) last_request_ns_ = steady_ns();  // the drain waits for quiet
        dispatch_event(req, ev.data.u64);
    }
    FCGX_Free(&req, 0);
}

// One request on a connection whose bytes have arrived; the connection then
// goes back to the epoll set if nginx keeps it, or is closed.
void FcgiServer::dispatch_event(FCGX_Request& req, std::uint64_t data)
{
    if (data & parked_tag) {  // nginx closed a waiting request's connection: the client left
        if (auto t = parking_->take(data & ~parked_tag, Wake::hangup)) finish(std::move(*t));
        return;
    }
    const int fd = static_cast<int>(data);
    if (fd == listen_fd_) accept_connections();
    else if (fd == ready_fd_) on_ready();
    else if (fd == timer_fd_) on_timer();
    else serve_request(req, fd);
}

void FcgiServer::serve_request(FCGX_Request& req, int fd)
{
    if (!await_request(fd)) {
        ::close(fd);
        return;
    }
    req.ipcFd = fd;
    // Without this, FCGX_Accept_r's opening FCGX_Finish_r would close a
    // connection it did not accept; libfcgi then sets it from the request.
    req.keepConnection = 1;
    if (FCGX_Accept_r(&req) < 0) {  // libfcgi refused the request and closed it
        req.ipcFd = -1;
        return;
    }
    const http::Request request = read_request(req);
    const http::Response response = handler_(request);
    if (response.park && park(req, request, response)) return;
    const std::string out = serialise(response, request.request_id);
    if (stopping_) return answer_last(req, out);
    FCGX_PutStr(out.data(), static_cast<int>(out.size()), req.out);
    FCGX_Finish_r(&req);  // closes unless nginx asked to keep the connection
    if (req.ipcFd >= 0 && !watch(epoll_fd_, req.ipcFd, EPOLL_CTL_MOD)) ::close(req.ipcFd);
    req.ipcFd = -1;
}

// Stopping: the connection's last answer (fcgi_answer.h), so that nginx
// closes it instead of choosing it again; then we close it too (not through
// libfcgi, whose close lingers up to 2 s).
void FcgiServer::answer_last(FCGX_Request& req, const std::string& out)
{
    const int fd = req.ipcFd;
    const auto id = static_cast<std::uint16_t>(req.requestId);
    FCGX_Free(&req, 0);  // 0: the fd stays open
    req.ipcFd = -1;
    send_all(fd, encode_answer(id, out, ConnectionAfter::closed));
    ::close(fd);
}

// Parks the request: false if it cannot (stopping), and `response` is sent.
// Arming (parking.h) covers the time until the subscription is made, so a
// hang-up or a completion in between is finished, not lost.
bool FcgiServer::park(FCGX_Request& req, const http::Request& request, const http::Response& response)
{
    const int fd = req.ipcFd;
    Parked p;
    p.fd = fd;
    p.fcgi_id = static_cast<std::uint16_t>(req.requestId);
    p.keep = req.keepConnection != 0;
    p.request_id = request.request_id;
    p.deadline = std::chrono::steady_clock::now() + response.park->wait;
    p.park = response.park;
    p.answer_at_park = serialise(response, request.request_id);
    const auto id = parking_->add(std::move(p));
    if (!id) return false;
    FCGX_Free(&req, 0);  // libfcgi's stream buffers go now; 0: the fd stays open
    req.ipcFd = -1;
    if (!watch_hangup(epoll_fd_, fd, *id)) parking_->take(*id, Wake::hangup);  // recorded while arming
    const auto subscription = response.park->subscribe([parking = parking_, id = *id] { parking->wake(id); });
    auto taken = parking_->activate(*id, subscription);
    if (!taken && !subscription) taken = parking_->take(*id, Wake::event);  // no room: answer as without wait
    if (taken) finish(std::move(*taken));
    else arm_timer();
    return true;
}

// Answers a parked request with the answer as of now, or closes it if the
// client left; a kept connection goes back to the epoll set for its next request.
void FcgiServer::finish(Taken taken)
{
    Parked& p = taken.parked;
    if (taken.why != Wake::event && p.subscription) p.park->unsubscribe(*p.subscription);
    if (taken.why == Wake::hangup) {
        ::close(p.fd);
        return;
    }
    std::string body = std::move(p.answer_at_park);
    if (taken.why != Wake::shutdown) {
        http::Response answer;
        try {  // the dispatcher's boundary is long gone: this is its stand-in for a late answer
            answer = p.park->answer();
        } catch (const std::exception& e) {
            log::error("handler_failed").kv("id", p.request_id).kv("what", e.what());
            answer = http::problem(http::ProblemKind::internal, "the request failed; it is logged as " + p.request_id);
        }
        body = serialise(answer, p.request_id);
    }
    const auto then = stopping_ ? ConnectionAfter::closed : ConnectionAfter::kept;
    const bool sent = send_all(p.fd, encode_answer(p.fcgi_id, body, then));
    if (sent && p.keep && then == ConnectionAfter::kept && watch(epoll_fd_, p.fd, EPOLL_CTL_MOD)) return;
    ::close(p.fd);
}

void FcgiServer::on_ready()
{
    drain(ready_fd_);
    if (!watch(epoll_fd_, ready_fd_, EPOLL_CTL_MOD)) fail("epoll_ctl on the ready eventfd");
    for (Taken& t : parking_->ready()) finish(std::move(t));
}

void FcgiServer::on_timer()
{
    drain(timer_fd_);
    if (!watch(epoll_fd_, timer_fd_, EPOLL_CTL_MOD)) fail("epoll_ctl on the timerfd");
    for (Taken& t : parking_->due(std::chrono::steady_clock::now())) finish(std::move(t));
    arm_timer();
}

// Sets the timerfd to the earliest deadline. Under timer_mutex_ so that the
// last caller, whose read of the parked set is the newest, sets it last.
void FcgiServer::arm_timer()
{
    std::lock_guard lock(timer_mutex_);
    itimerspec spec{};  // all zero: disarmed
    if (const auto next = parking_->next_deadline()) {
        constexpr std::int64_t ns_per_s = 1'000'000'000;
        const std::int64_t ns = std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::nanoseconds>(next->time_since_epoch()).count());
        spec.it_value.tv_sec = static_cast<time_t>(ns / ns_per_s);
        spec.it_value.tv_nsec = static_cast<long>(ns % ns_per_s);
    }
    if (timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr) != 0) fail("timerfd_settime");
}

// Takes every waiting connection into the epoll set, then re-arms the socket
// (not once stopping: stop_listening() took the rest).
void FcgiServer::accept_connections()
{
    std::lock_guard lock(listen_mutex_);
    if (listen_closed_) return;
    if (!take_backlog()) return;  // gave up: the socket stays unarmed
    if (!watch(epoll_fd_, listen_fd_, EPOLL_CTL_MOD)) fail("epoll_ctl on the listening socket");
}

// Accepts until none waits; false when accept() keeps failing. Called with
// listen_mutex_ held.
bool FcgiServer::take_backlog()
{
    for (;;) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
            accept_failures_ = 0;
            if (!watch(epoll_fd_, fd, EPOLL_CTL_ADD)) ::close(fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EAGAIN) return true;
        if (!accept_failed(errno)) return false;
    }
}

// accept() can fail for passing reasons (EMFILE, ENOBUFS): pause and retry,
// up to a limit. Only the thread holding the socket's event gets here.
bool FcgiServer::accept_failed(int error)
{
    if (stopping_) return false;  // stop_listening() waits for this thread
    const char* why = std::strerror(error);
    const int failures = ++accept_failures_;
    if (failures == 1) log::warn("accept_failed").kv("error", why);
    if (failures < max_accept_failures) {
        util::will_block();
        std::this_thread::sleep_for(accept_retry_pause);
        return true;
    }
    log::error("accept_gave_up").kv("error", why).kv("failures", failures);
    if (on_fatal_) on_fatal_();
    return false;
}

void FcgiServer::fail(const char* what)
{
    log::error("transport_failed").kv("call", what).kv("error", std::strerror(errno));
    if (on_fatal_) on_fatal_();
}

// The connection is readable (or closed): waits until its request head is
// complete and valid. Only a slow or broken peer makes this wait at all.
bool FcgiServer::await_request(int fd)
{
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
        util::will_block();
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::duration_cast<std::chrono::milliseconds>(head_poll_max));
    }
}

}  // namespace zk::transport
