// The FastCGI transport: a few threads serve the listening socket that
// spawn-fcgi passed us. They share one epoll set holding the socket and every
// open connection (one-shot events), so whichever thread is free serves the
// next request on any connection. Only `awake` threads may sleep waiting for
// work (util::Seats): a request that has to wake a sleeping thread costs
// nginx's write that wake-up, and with every thread asleep in epoll_wait
// nearly every request did. The others stand in for a thread that blocks (a
// creation waiting for its commit, a slow peer), which says so through
// util::will_block(). Each whole request is checked (fcgi_guard) before
// libfcgi parses it; libfcgi reads the request, which becomes an
// http::Request value, and the handler's http::Response goes back in one write.
//
// Why not FCGX_Accept_r's own loop: it blocks in accept() or read() where
// nothing can interrupt it, trusts lengths it should not (fcgi_guard.h), and
// pins a thread to each connection nginx keeps open, so kept connections
// could starve new ones. Here an idle kept connection costs no thread. A
// stop refuses new connections but answers what nginx has already sent
// (stop(), join()); join() wakes every waiting thread through an eventfd in
// the set, busy threads finish their request first.
// libfcgi gets a connection through FCGX_Request's public ipcFd field and
// never sees the listening socket (its requests are initialised with -1).
//
// Parking (waiting polls): a response carrying an http::Park is not sent.
// The request's fd, FastCGI id and flags go into the parked set
// (transport/parking.h), libfcgi's request is freed without closing the fd,
// and the fd goes back to the epoll set watched for hang-up only, tagged with
// the parked id. Three more fds in the same set finish parked requests on
// whichever thread is free: an eventfd rung when a subscription fires, a
// timerfd at the earliest deadline, and the connection's own hang-up event.
// stop() answers every parked request at once, on the calling thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>

#include "http/message.h"
#include "transport/parking.h"
#include "util/seats.h"

struct FCGX_Request;

namespace zk::transport {

class FcgiServer {
public:
    using Handler = std::function<http::Response(const http::Request&)>;

    // Takes the listening socket (not owned: the process got it from spawn-fcgi).
    // `threads` serve it; at most `awake` of them sleep waiting for work.
    FcgiServer(int listen_fd, std::size_t threads, std::size_t awake, Handler handler);
    ~FcgiServer();
    FcgiServer(const FcgiServer&) = delete;
    FcgiServer& operator=(const FcgiServer&) = delete;

    void start();
    // Stops taking connections (nginx's next connect is refused and goes to
    // another worker) and answers the waiting polls; the threads go on
    // answering requests on the connections already open, each answer the
    // connection's last (nginx closes it). Returns at once.
    void stop();
    // Stops (if not yet); the threads answer until the connections have been
    // quiet for 150 ms (at most 500 ms after stop()), then finish their
    // request and exit; what they left readable is answered on this thread,
    // and every connection is closed.
    void join();

    // Called from a thread that hits an unrecoverable socket error.
    void on_fatal(std::function<void()> callback) { on_fatal_ = std::move(callback); }
    // Requests parked now (waiting polls).
    std::size_t parked() const { return parking_->size(); }

private:
    void serve();
    void serve_request(FCGX_Request& req, int fd);
    void answer_last(FCGX_Request& req, const std::string& out);
    void accept_connections();
    bool take_backlog();
    bool accept_failed(int error);
    void stop_listening();
    void close_connections();
    bool await_request(int fd);
    void fail(const char* what);
    void close_fds();
    void dispatch_event(FCGX_Request& req, std::uint64_t data);
    bool park(FCGX_Request& req, const http::Request& request, const http::Response& response);
    void finish(Taken taken);
    void on_ready();
    void on_timer();
    void arm_timer();

    const int listen_fd_;
    const std::size_t threads_count_;
    const Handler handler_;
    int epoll_fd_ = -1;
    int wake_fd_ = -1;  // eventfd in the epoll set, readable once stop() has run
    int ready_fd_ = -1;  // eventfd rung when a parked request's subscription fires
    int timer_fd_ = -1;  // timerfd at the earliest parked deadline
    std::mutex timer_mutex_;  // a leaf: orders timerfd settings with the parked set's state
    // Shared with subscriptions, which may fire on any thread.
    std::shared_ptr<Parking> parking_;
    std::function<void()> on_fatal_;
    std::mutex listen_mutex_;    // a leaf: one thread accepts at a time, and stop() shuts the socket between
    bool listen_closed_ = false;  // guarded by listen_mutex_
    std::atomic<bool> stopping_{false};  // stop() ran: answers close their connection
    std::atomic<bool> joining_{false};   // join() ran (once)
    std::atomic<bool> leaving_{false};   // the drain is over: the threads exit
    std::atomic<std::int64_t> stopped_ns_{0};       // steady clock: when stop() ran
    std::atomic<std::int64_t> last_request_ns_{0};  // steady clock; from stop() on: when a request last came
    sockaddr_storage listen_address_{};  // the listening socket's, which its accepted connections share
    socklen_t listen_address_len_ = 0;
    std::atomic<int> accept_failures_{0};  // in a row
    util::Seats seats_;
    std::vector<std::thread> threads_;
};

// True when fd is a listening stream socket (what spawn-fcgi hands over).
bool is_listening_socket(int fd);

}  // namespace zk::transport
