// The FastCGI transport: N acceptor threads, each running FCGX_Accept_r on
// the listening socket spawn-fcgi passed us, turning each request into an
// http::Request value and writing the handler's http::Response back in one
// write.
//
// Shutdown: libfcgi offers no way to interrupt FCGX_Accept_r. stop() shuts
// down the listening socket, which fails every accept() blocked on it, and
// shuts down the read side of each connection an idle acceptor holds open
// for nginx's keep-alive (fastcgi_keep_conn), so every blocked read ends.
// Busy acceptors finish their request first; join() waits for all of them.
// Each kept connection pins its acceptor: keep nginx's keepalive below
// the acceptor count.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
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
    // What an acceptor is doing, so stop() knows which fd to shut down.
    struct Slot {
        std::mutex mutex;
        bool waiting = false;  // inside FCGX_Accept_r; guarded by mutex
        int kept_fd = -1;      // connection kept open for keep-alive; guarded by mutex
    };
    void accept_loop(Slot& slot);

    const int listen_fd_;
    const Handler handler_;
    std::function<void()> on_fatal_;
    std::atomic<bool> stopping_{false};
    std::vector<std::unique_ptr<Slot>> slots_;
    std::vector<std::thread> threads_;
};

// True when fd is a listening stream socket (what spawn-fcgi hands over).
bool is_listening_socket(int fd);

}  // namespace zk::transport
