// The FastCGI transport: N acceptor threads serve the listening socket that
// spawn-fcgi passed us. Each thread accepts its own connections, checks each
// request's head (fcgi_guard) before libfcgi parses it, lets libfcgi read the
// request, turns it into an http::Request value and writes the handler's
// http::Response back in one write.
//
// Why accept ourselves: libfcgi's FCGX_Accept_r blocks in accept() or read()
// where nothing can interrupt it, and trusts lengths it should not (see
// fcgi_guard.h). Here every wait is a poll() that also watches a wake-up
// eventfd, so stop() ends idle waits at once; busy acceptors finish their
// request first, and join() waits for all of them. libfcgi gets a connection
// through FCGX_Request's public ipcFd field and never sees the listening
// socket (its requests are initialised with -1 there).
//
// Each connection nginx keeps open (fastcgi_keep_conn) is served by one
// acceptor for its life: keep nginx's keepalive below the acceptor count.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <thread>
#include <vector>

#include "http/message.h"

namespace zk::transport {

class FcgiServer {
public:
    using Handler = std::function<http::Response(const http::Request&)>;

    // Takes the listening socket (not owned: the process got it from spawn-fcgi).
    FcgiServer(int listen_fd, std::size_t acceptors, Handler handler);
    ~FcgiServer();
    FcgiServer(const FcgiServer&) = delete;
    FcgiServer& operator=(const FcgiServer&) = delete;

    void start();
    // Stops accepting and wakes idle acceptors; returns at once.
    void stop();
    // Waits until every acceptor has answered its request and exited.
    void join();

    // Called from an acceptor that hits an unrecoverable accept error.
    void on_fatal(std::function<void()> callback) { on_fatal_ = std::move(callback); }

private:
    void serve();
    int accept_connection();
    bool await_request(int fd);
    bool wait_readable(int fd, int timeout_ms) const;

    const int listen_fd_;
    const std::size_t acceptors_;
    const Handler handler_;
    int wake_fd_ = -1;  // eventfd, readable once stop() has run
    std::function<void()> on_fatal_;
    std::atomic<bool> stopping_{false};
    std::vector<std::thread> threads_;
};

// True when fd is a listening stream socket (what spawn-fcgi hands over).
bool is_listening_socket(int fd);

}  // namespace zk::transport
