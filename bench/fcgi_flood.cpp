// fcgi-flood: sends requests straight to the worker's FastCGI unix socket,
// bypassing nginx and TLS, as fast as the worker answers them.
//
// Used by bench/bench.py to put a million surveys in flight (over HTTPS that
// would take minutes of nginx and wrk CPU) and by bench/profile.sh to load
// the worker alone. One thread, epoll, C connections with FCGI_KEEP_CONN, one
// request outstanding on each: libfcgi reads every request through a fresh
// buffer, so pipelining on a connection would lose requests.
//
//   fcgi-flood --socket PATH --count N [--connections C] [--method M]
//              [--retry-busy] [--progress] [--nginx-params] URI...
//
// By default a request carries the six params the worker reads or logs.
// --nginx-params sends the 22 that nginx sends for a wrk request through
// nginx/zookeeper-locations.conf (same names, order and value sizes), so
// that per-request costs measured behind it (bench/profile.py) include
// parsing and storing every param, as they do under nginx.
//
// URIs are used in turn. --count counts 2xx answers; with --retry-busy a 503
// (queue full, job limit) is counted and the request sent again, otherwise it
// counts towards N. --progress prints "progress <2xx> <seconds>" every second.
// The last line is JSON: {"ok":..,"status":{"202":..},"errors":..,"seconds":..,"rate":..}.
// Exit 0 when N answers were 2xx, 1 otherwise, 2 on bad usage.

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned char fcgi_version = 1;
constexpr unsigned char type_begin = 1, type_end = 3, type_params = 4, type_stdin = 5, type_stdout = 6;
constexpr int max_errors = 1000;  // connection failures before giving up

struct Options {
    std::string socket, method = "POST";
    std::vector<std::string> uris;
    long long count = 0;
    int connections = 4;
    bool retry_busy = false, progress = false, nginx_params = false;
};

struct Conn {
    int fd = -1;
    std::string out;     // bytes of the request not yet written
    std::string in;      // bytes read, not yet parsed
    std::string answer;  // the answer's STDOUT stream so far
    bool busy = false;
    bool broken = false;  // a write failed; the loop reconnects
};

struct Totals {
    long long ok = 0, sent = 0;
    int errors = 0;
    std::map<int, long long> status;
};

void record(std::string& out, unsigned char type, const std::string& body)
{
    const unsigned char h[8] = {fcgi_version, type, 0, 1, static_cast<unsigned char>(body.size() >> 8),
                                static_cast<unsigned char>(body.size() & 0xff), 0, 0};
    out.append(reinterpret_cast<const char*>(h), sizeof h).append(body);
}

void pair(std::string& out, const std::string& name, const std::string& value)
{
    out.push_back(static_cast<char>(name.size()));  // every name and value here is < 128 bytes
    out.push_back(static_cast<char>(value.size()));
    out.append(name).append(value);
}

// The params nginx sends for a body-less wrk request, in
// zookeeper-locations.conf's order (values of the same sizes; nginx's own
// REQUEST_ID is 32 hex digits). wrk sends no header but Host, which
// HTTP_HOST shadows.
void nginx_params(std::string& params, const std::string& method, const std::string& uri)
{
    const std::string path = uri.substr(0, uri.find('?'));
    const std::string query = uri.size() > path.size() ? uri.substr(path.size() + 1) : "";
    pair(params, "QUERY_STRING", query);
    pair(params, "REQUEST_METHOD", method);
    pair(params, "CONTENT_TYPE", "");
    pair(params, "CONTENT_LENGTH", method == "POST" ? "0" : "");
    pair(params, "SCRIPT_NAME", path);
    pair(params, "REQUEST_URI", uri);
    pair(params, "DOCUMENT_URI", path);
    pair(params, "DOCUMENT_ROOT", "/work/build/bench/throughput/html");
    pair(params, "SERVER_PROTOCOL", "HTTP/1.1");
    pair(params, "REQUEST_SCHEME", "https");
    pair(params, "HTTPS", "on");
    pair(params, "GATEWAY_INTERFACE", "CGI/1.1");
    pair(params, "SERVER_SOFTWARE", "nginx");
    pair(params, "REMOTE_ADDR", "127.0.0.1");
    pair(params, "REMOTE_PORT", "54321");
    pair(params, "SERVER_ADDR", "127.0.0.1");
    pair(params, "SERVER_PORT", "38443");
    pair(params, "SERVER_NAME", "localhost");
    pair(params, "HTTP_HOST", "127.0.0.1");
    pair(params, "REQUEST_ID", "0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    pair(params, "ZK_CLIENT_SCOPE", "127.0.0.1");
    pair(params, "HTTP_PROXY", "");
}

// A body-less request: by default the params the worker reads or logs.
std::string request_bytes(const std::string& method, const std::string& uri, bool as_nginx)
{
    std::string out, params;
    record(out, type_begin, std::string("\0\1\1\0\0\0\0\0", 8));  // responder, FCGI_KEEP_CONN
    if (as_nginx) {
        nginx_params(params, method, uri);
    } else {
        pair(params, "REQUEST_METHOD", method);
        pair(params, "REQUEST_URI", uri);
        pair(params, "QUERY_STRING", "");
        pair(params, "CONTENT_LENGTH", "");
        pair(params, "REQUEST_ID", "fcgi-flood");
        pair(params, "SERVER_PROTOCOL", "HTTP/1.1");
    }
    record(out, type_params, params);
    record(out, type_params, "");
    record(out, type_stdin, "");
    return out;
}

int connect_unix(const std::string& path)
{
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    // A unix socket connects at once or fails; EAGAIN means a full backlog.
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int status_of(const std::string& answer)
{
    if (answer.compare(0, 8, "Status: ") != 0) return 200;  // CGI default
    return std::atoi(answer.c_str() + 8);
}

class Flood {
public:
    explicit Flood(Options o) : o_(std::move(o))
    {
        for (const auto& u : o_.uris) requests_.push_back(request_bytes(o_.method, u, o_.nginx_params));
    }

    int run();

private:
    bool open(Conn& c);
    void fail(Conn& c);
    void send_next(Conn& c);
    bool flush(Conn& c);
    bool drain(Conn& c);
    void answered(Conn& c);
    // Without --retry-busy every answer counts; with it, only 2xx ones.
    bool can_send() const { return o_.retry_busy ? t_.ok + inflight() < o_.count : t_.sent < o_.count; }
    long long inflight() const;
    void report(Clock::time_point start) const;

    Options o_;
    std::vector<std::string> requests_;
    std::vector<Conn> conns_;
    Totals t_;
    int ep_ = -1;
    std::size_t next_uri_ = 0;
};

bool Flood::open(Conn& c)
{
    c = Conn{};
    c.fd = connect_unix(o_.socket);
    if (c.fd < 0) return false;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.ptr = &c;
    return epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) == 0;
}

// A lost connection loses its request (a survey may or may not exist); reconnect.
void Flood::fail(Conn& c)
{
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
    c.busy = false;
    if (++t_.errors >= max_errors) return;
    usleep(1000);
    if (open(c)) send_next(c);
    if (c.broken) {
        close(c.fd);
        c.fd = -1;
        c.busy = false;
    }
}

void Flood::send_next(Conn& c)
{
    if (!can_send()) return;
    c.out = requests_[next_uri_++ % requests_.size()];
    c.answer.clear();
    c.busy = true;
    ++t_.sent;
    if (!flush(c)) c.broken = true;
}

bool Flood::flush(Conn& c)
{
    while (!c.out.empty()) {
        const ssize_t n = write(c.fd, c.out.data(), c.out.size());
        if (n < 0) return errno == EAGAIN;
        c.out.erase(0, static_cast<std::size_t>(n));
    }
    return true;
}

// Reads what is there and handles every complete record; false on EOF or error.
bool Flood::drain(Conn& c)
{
    char buf[16384];
    for (;;) {
        const ssize_t n = read(c.fd, buf, sizeof buf);
        if (n == 0) return false;
        if (n < 0) {
            if (errno != EAGAIN) return false;
            break;
        }
        c.in.append(buf, static_cast<std::size_t>(n));
    }
    std::size_t at = 0;
    while (c.in.size() - at >= 8) {
        const auto* h = reinterpret_cast<const unsigned char*>(c.in.data() + at);
        const std::size_t len = (std::size_t{h[4]} << 8) | h[5], total = 8 + len + h[6];
        if (c.in.size() - at < total) break;
        if (h[1] == type_stdout) c.answer.append(c.in, at + 8, len);
        at += total;
        if (h[1] == type_end) answered(c);
    }
    c.in.erase(0, at);
    return !c.broken;
}

void Flood::answered(Conn& c)
{
    const int status = status_of(c.answer);
    ++t_.status[status];
    c.busy = false;
    if (status >= 200 && status < 300) ++t_.ok;
    else if (status == 503 && o_.retry_busy) usleep(200);  // let the pool catch up
    send_next(c);
}

long long Flood::inflight() const
{
    long long n = 0;
    for (const auto& c : conns_) n += c.busy ? 1 : 0;
    return n;
}

void Flood::report(Clock::time_point start) const
{
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("{\"ok\":%lld,\"sent\":%lld,\"errors\":%d,\"seconds\":%.3f,\"rate\":%.1f,\"status\":{", t_.ok, t_.sent,
                t_.errors, s, static_cast<double>(t_.ok) / s);
    const char* sep = "";
    for (const auto& [code, n] : t_.status) {
        std::printf("%s\"%d\":%lld", sep, code, n);
        sep = ",";
    }
    std::printf("}}\n");
}

int Flood::run()
{
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    conns_.resize(static_cast<std::size_t>(o_.connections));
    const auto start = Clock::now();
    for (auto& c : conns_) {
        if (!open(c)) {
            std::fprintf(stderr, "fcgi-flood: cannot connect to %s: %s\n", o_.socket.c_str(), std::strerror(errno));
            return 1;
        }
        send_next(c);
        if (c.broken) fail(c);
    }
    auto next_progress = start + std::chrono::seconds(1);
    std::vector<epoll_event> events(conns_.size());
    while ((can_send() || inflight() > 0) && t_.errors < max_errors) {
        for (auto& c : conns_)
            if (c.fd < 0 && can_send()) fail(c);  // reconnect a slot whose reconnect failed
        const int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 200);
        for (int i = 0; i < n; ++i) {
            auto& c = *static_cast<Conn*>(events[static_cast<std::size_t>(i)].data.ptr);
            if (c.fd < 0) continue;
            if (!flush(c) || !drain(c)) fail(c);
        }
        if (o_.progress && Clock::now() >= next_progress) {
            std::printf("progress %lld %.3f\n", t_.ok, std::chrono::duration<double>(Clock::now() - start).count());
            std::fflush(stdout);
            next_progress += std::chrono::seconds(1);
        }
    }
    report(start);
    return t_.ok >= o_.count ? 0 : 1;
}

bool parse(int argc, char** argv, Options& o)
{
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--socket" && has_value) o.socket = argv[++i];
        else if (a == "--count" && has_value) o.count = std::atoll(argv[++i]);
        else if (a == "--connections" && has_value) o.connections = std::atoi(argv[++i]);
        else if (a == "--method" && has_value) o.method = argv[++i];
        else if (a == "--retry-busy") o.retry_busy = true;
        else if (a == "--progress") o.progress = true;
        else if (a == "--nginx-params") o.nginx_params = true;
        else if (a.rfind("--", 0) == 0) return false;
        else o.uris.push_back(a);
    }
    return !o.socket.empty() && o.count > 0 && o.connections > 0 && !o.uris.empty();
}

}  // namespace

int main(int argc, char** argv)
{
    Options o;
    if (!parse(argc, argv, o)) {
        std::fprintf(stderr,
                     "usage: fcgi-flood --socket PATH --count N [--connections C] [--method M] "
                     "[--retry-busy] [--progress] [--nginx-params] URI...\n");
        return 2;
    }
    return Flood(std::move(o)).run();
}
