// fcgi-ceiling: the benchmark's second ceiling, "the FastCGI hop with a free
// worker". The same nginx location config as the worker's (bench/bench.py
// renders it) in front of the least a libfcgi responder does per request:
// FCGX_Accept_r, read its params, drain STDIN, write headers and body,
// FCGX_Finish_r. No routing, no log line, no guard, no store.
//
//   fcgi-ceiling [--loop epoll|accept] [--threads N] [--streams] NAME=FILE...
//
// Started by spawn-fcgi like the worker (the listening socket is fd 0). Each
// FILE holds one answer as the worker wrote it (CGI headers, a blank line,
// the body), captured by bench.py from the running worker. A request whose
// REQUEST_URI's last path segment is NAME gets it, with X-Request-Id set to
// the request's REQUEST_ID param, as the worker echoes it (nginx's ids all
// have one length, so the answer keeps the worker's size); any other gets 404.
//
// --loop epoll (default; what bench.py uses): an epoll set of the listening
//   socket and every connection, FCGX_Accept_r on whichever is readable, the
//   way the worker hands libfcgi a connection (minus its guard and seats).
//   One thread (--threads 1, the default) waits level-triggered for up to 64
//   events at a time; several share the set with one-shot events, one event
//   each, re-armed after each request, as the worker's threads do.
//   docs/performance.md says which bench.py uses and why.
// --loop accept: N threads (--threads, default 1), each in libfcgi's classic
//   loop, FCGX_Accept_r on the listening socket. libfcgi then holds a thread
//   on each connection nginx keeps (fastcgi_keep_conn) for the connection's
//   life, so N must exceed the connections nginx opens (bench.py passes twice
//   the largest wrk connection count, plus 16), and every request wakes the
//   thread asleep in read() on its connection: 2 context switches and about
//   3 times the epoll loop's CPU per request in a smoke run. Kept to show it.
// --streams: STDIN drained and the answer written through libfcgi's C++
//   layer (fcgio.h: fcgi_streambuf under std::istream / std::ostream) instead
//   of FCGX_GetStr / FCGX_PutStr: the fcgi++ measurement (issue 19).
//
// Exit 0 on SIGTERM or SIGINT, 2 on bad usage or an unreadable FILE, 1 if
// the socket fails.

#include <fcgiapp.h>
#include <fcgio.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr int listen_fd = 0;  // where spawn-fcgi puts the socket

// One captured answer, split around the X-Request-Id line that each request fills in.
struct Answer {
    std::string head;  // "Status: ...\r\n...": every header but X-Request-Id, no trailing CRLF
    std::string tail;  // "\r\n\r\n" and the body
};

struct Options {
    bool epoll = true, streams = false;
    int threads = 1;
    std::map<std::string, Answer, std::less<>> answers;
};

const Answer not_found{"Status: 404 Not Found\r\nContent-Length: 0", "\r\n\r\n"};

bool load(const std::string& name, const std::string& path, Options& o)
{
    std::ifstream f(path, std::ios::binary);
    const std::string raw{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    const auto end = raw.find("\r\n\r\n");
    if (!f.good() && !f.eof()) return false;
    if (end == std::string::npos) return false;
    Answer a;
    a.tail = raw.substr(end);
    std::string_view head(raw.data(), end);
    while (!head.empty()) {
        const auto eol = std::min(head.find("\r\n"), head.size());
        const std::string_view line = head.substr(0, eol);
        if (line.substr(0, 13) != "X-Request-Id:") a.head.append(a.head.empty() ? "" : "\r\n").append(line);
        head.remove_prefix(std::min(eol + 2, head.size()));
    }
    o.answers.emplace(name, std::move(a));
    return true;
}

const Answer& answer_for(const Options& o, const char* uri)
{
    std::string_view path = uri ? uri : "";
    path = path.substr(0, path.find('?'));
    const auto it = o.answers.find(path.substr(path.rfind('/') + 1));
    return it == o.answers.end() ? not_found : it->second;
}

// One request, through the C API: what the worker's transport does.
void respond_c(const Options& o, FCGX_Request& req)
{
    const Answer& a = answer_for(o, FCGX_GetParam("REQUEST_URI", req.envp));
    const char* id = FCGX_GetParam("REQUEST_ID", req.envp);
    char sink[4096];
    while (FCGX_GetStr(sink, sizeof sink, req.in) > 0) {
    }
    FCGX_PutStr(a.head.data(), static_cast<int>(a.head.size()), req.out);
    FCGX_PutS("\r\nX-Request-Id: ", req.out);
    FCGX_PutS(id ? id : "", req.out);
    FCGX_PutStr(a.tail.data(), static_cast<int>(a.tail.size()), req.out);
}

// The same request through fcgi++ (unbuffered fcgi_streambuf, as libfcgi's
// C++ examples use it: each insertion reaches FCGX_PutStr). The streams live
// as long as the thread and are attached to each request's FCGX_Streams:
// constructing a std::istream and a std::ostream per request (basic_ios::init,
// its locale cache and dynamic_casts) cost 3,100 more instructions a request
// under callgrind, which no application need pay.
void respond_streams(const Options& o, FCGX_Request& req)
{
    struct Streams {
        fcgi_streambuf in_buf, out_buf;
        std::istream in{&in_buf};
        std::ostream out{&out_buf};
    };
    thread_local Streams s;
    s.in_buf.attach(req.in);
    s.out_buf.attach(req.out);
    s.in.clear();
    s.out.clear();
    const Answer& a = answer_for(o, FCGX_GetParam("REQUEST_URI", req.envp));
    const char* id = FCGX_GetParam("REQUEST_ID", req.envp);
    s.in.ignore(std::numeric_limits<std::streamsize>::max());
    s.out << a.head << "\r\nX-Request-Id: " << (id ? id : "") << a.tail;
    s.out.flush();
}

void respond(const Options& o, FCGX_Request& req)
{
    if (o.streams) respond_streams(o, req);
    else respond_c(o, req);
    FCGX_Finish_r(&req);  // flushes: one write of STDOUT, its end and END_REQUEST
}

void accept_loop(const Options& o)
{
    FCGX_Request req;
    FCGX_InitRequest(&req, listen_fd, 0);
    while (FCGX_Accept_r(&req) >= 0) respond(o, req);
    std::fprintf(stderr, "fcgi-ceiling: FCGX_Accept_r failed: %s\n", std::strerror(errno));
    std::exit(1);
}

// One thread needs no one-shot events; several do, so that a connection is
// served by one thread at a time (re-armed after each request).
bool watch(int ep, int fd, bool oneshot, int op = EPOLL_CTL_ADD)
{
    epoll_event ev{};
    ev.events = EPOLLIN | (oneshot ? EPOLLONESHOT : 0u);
    ev.data.fd = fd;
    return epoll_ctl(ep, op, fd, &ev) == 0;
}

int epoll_set(bool oneshot)
{
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    const int flags = fcntl(listen_fd, F_GETFL);
    if (ep < 0 || flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) != 0 || !watch(ep, listen_fd, oneshot)) {
        std::perror("fcgi-ceiling: epoll setup");
        std::exit(1);
    }
    return ep;
}

void epoll_loop(const Options& o, int ep)
{
    const bool oneshot = o.threads > 1;
    FCGX_Request req;
    FCGX_InitRequest(&req, -1, 0);  // -1: libfcgi never accepts by itself
    epoll_event events[64];
    for (;;) {
        const int n = epoll_wait(ep, events, oneshot ? 1 : 64, -1);
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == listen_fd) {
                for (int c; (c = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;)
                    if (!watch(ep, c, oneshot)) close(c);
                if (oneshot) watch(ep, listen_fd, true, EPOLL_CTL_MOD);
                continue;
            }
            req.ipcFd = fd;
            req.keepConnection = 1;  // or FCGX_Accept_r's opening FCGX_Finish_r closes it
            if (FCGX_Accept_r(&req) < 0) {  // nginx closed it: libfcgi has closed it too
                req.ipcFd = -1;
                continue;
            }
            respond(o, req);  // closes the connection unless nginx keeps it
            if (oneshot && req.ipcFd >= 0 && !watch(ep, req.ipcFd, true, EPOLL_CTL_MOD)) close(req.ipcFd);
            req.ipcFd = -1;
        }
    }
}

bool parse(int argc, char** argv, Options& o)
{
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--loop" && has_value) {
            const std::string v = argv[++i];
            if (v != "accept" && v != "epoll") return false;
            o.epoll = v == "epoll";
        } else if (a == "--threads" && has_value) {
            o.threads = std::atoi(argv[++i]);
        } else if (a == "--streams") {
            o.streams = true;
        } else if (const auto eq = a.find('='); eq != std::string::npos && eq > 0 && a[0] != '-') {
            if (!load(a.substr(0, eq), a.substr(eq + 1), o)) {
                std::fprintf(stderr, "fcgi-ceiling: %s: no CGI answer (headers, blank line, body)\n", a.c_str() + eq + 1);
                return false;
            }
        } else {
            return false;
        }
    }
    return o.threads > 0 && !o.answers.empty();
}

}  // namespace

int main(int argc, char** argv)
{
    Options o;
    if (!parse(argc, argv, o)) {
        std::fprintf(stderr, "usage: fcgi-ceiling [--loop epoll|accept] [--threads N] [--streams] NAME=FILE...\n");
        return 2;
    }
    if (FCGX_Init() != 0) {
        std::fprintf(stderr, "fcgi-ceiling: FCGX_Init failed\n");
        return 1;
    }
    // SIGTERM or SIGINT ends it, taken by sigwait here while threads serve (a
    // SIGTERM never reached a thread asleep in epoll_wait under valgrind).
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    std::vector<std::thread> threads;
    const int ep = o.epoll ? epoll_set(o.threads > 1) : -1;
    for (int i = 0; i < o.threads; ++i)
        threads.emplace_back([&o, ep] {
            if (ep >= 0) epoll_loop(o, ep);
            else accept_loop(o);
        });
    int sig = 0;
    sigwait(&stop, &sig);
    std::_Exit(0);  // mid-request threads and all: nothing to save
}
