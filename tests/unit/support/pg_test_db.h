// A PostgreSQL schema of its own for one test: created in the database that
// ZK_TEST_PG_URL names (make unit starts a throwaway cluster and sets it),
// dropped afterwards. A test without the variable fails; it is never skipped.
// Its connections carry the schema's name as application_name, so a test
// finds (and terminates) exactly the backends its own store opened.
//
// PgSession: a connection a test holds (a lock, a transaction) while the
// code under test runs. PgProxy: a unix-socket relay between the code under
// test and the server, to cut its connections, refuse new ones, or freeze
// them (nothing passes either way, as with a hung server or a partition),
// and to count connection attempts.
#pragma once

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace zk::test {

inline std::string pg_test_url()
{
    const char* url = std::getenv("ZK_TEST_PG_URL");
    return url ? url : "";
}

// Runs one statement on a connection of its own; the server's message, or
// empty on success.
inline std::string pg_exec(const std::string& conninfo, const std::string& sql)
{
    PGconn* c = PQconnectdb(conninfo.c_str());
    PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);  // DROP ... CASCADE's notices are noise here
    std::string error;
    if (PQstatus(c) != CONNECTION_OK) {
        error = PQerrorMessage(c);
    } else {
        PGresult* r = PQexec(c, sql.c_str());
        const auto st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) error = PQresultErrorMessage(r);
        PQclear(r);
    }
    PQfinish(c);
    return error;
}

// A connection the test keeps open across statements.
class PgSession {
public:
    explicit PgSession(const std::string& conninfo) : c_(PQconnectdb(conninfo.c_str()))
    {
        REQUIRE_MESSAGE(PQstatus(c_) == CONNECTION_OK, PQerrorMessage(c_));
        PQsetNoticeProcessor(c_, [](void*, const char*) {}, nullptr);
    }
    ~PgSession() { PQfinish(c_); }
    PgSession(const PgSession&) = delete;
    PgSession& operator=(const PgSession&) = delete;

    // The server's message, or empty on success.
    std::string exec(const std::string& sql)
    {
        PGresult* r = PQexec(c_, sql.c_str());
        const auto st = PQresultStatus(r);
        std::string error;
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) error = PQresultErrorMessage(r);
        PQclear(r);
        return error;
    }
    // Every row's values, as text ("" for NULL); REQUIREs success.
    std::vector<std::vector<std::optional<std::string>>> rows(const std::string& sql)
    {
        PGresult* r = PQexec(c_, sql.c_str());
        const auto st = PQresultStatus(r);
        INFO(sql, ": ", PQresultErrorMessage(r));
        const bool ok = st == PGRES_TUPLES_OK;
        std::vector<std::vector<std::optional<std::string>>> out;
        for (int i = 0; ok && i < PQntuples(r); ++i) {
            out.emplace_back();
            for (int j = 0; j < PQnfields(r); ++j)
                out.back().push_back(PQgetisnull(r, i, j) ? std::nullopt
                                                          : std::optional<std::string>(PQgetvalue(r, i, j)));
        }
        PQclear(r);
        REQUIRE(ok);
        return out;
    }
    // The first row's first value.
    std::string value(const std::string& sql)
    {
        const auto r = rows(sql);
        REQUIRE(!r.empty());
        REQUIRE(!r[0].empty());
        return r[0][0].value_or("");
    }
    int backend_pid() const { return PQbackendPID(c_); }

private:
    PGconn* c_;
};

class PgTestSchema {
public:
    PgTestSchema()
    {
        static std::atomic<int> counter{0};
        url_ = pg_test_url();
        REQUIRE_MESSAGE(!url_.empty(), "ZK_TEST_PG_URL is not set: run the unit tests with make unit");
        name_ = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
                std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1'000'000);
        const std::string err = pg_exec(url_, "CREATE SCHEMA " + name_);
        REQUIRE_MESSAGE(err.empty(), err);
    }
    ~PgTestSchema() { pg_exec(url_, "DROP SCHEMA IF EXISTS " + name_ + " CASCADE"); }
    PgTestSchema(const PgTestSchema&) = delete;
    PgTestSchema& operator=(const PgTestSchema&) = delete;

    // The test database with this schema first on the search path; its
    // sessions are named after the schema (application_name).
    std::string conninfo() const
    {
        return url_ + " options='-c search_path=" + name_ + "' application_name=" + name_;
    }
    const std::string& name() const { return name_; }
    std::string exec(const std::string& sql) const { return pg_exec(conninfo(), sql); }

    // Terminates this schema's sessions (other than the asking one) that
    // match `where` (SQL over pg_stat_activity); how many it ended.
    int terminate(const std::string& where = "true") const
    {
        PgSession s(url_);
        return std::stoi(s.value("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '" +
                                 name_ + "' AND pid <> pg_backend_pid() AND (" + where + ")"));
    }
    // How many of this schema's sessions match `where`.
    int sessions(const std::string& where = "true") const
    {
        PgSession s(url_);
        return std::stoi(s.value("SELECT count(*) FROM pg_stat_activity WHERE application_name = '" + name_ +
                                 "' AND pid <> pg_backend_pid() AND (" + where + ")"));
    }

private:
    std::string url_, name_;
};

// Relays connections from a unix socket of its own to the server that a
// connection string names (host is the socket folder, as deploy/pg-cluster.sh
// prints it). One thread, poll-driven; the test switches its mode.
class PgProxy {
public:
    enum class Mode { pass, refuse, freeze };

    explicit PgProxy(const std::string& target = pg_test_url())
    {
        char* err = nullptr;
        PQconninfoOption* opts = PQconninfoParse(target.c_str(), &err);
        REQUIRE_MESSAGE(opts != nullptr, (err ? err : "bad connection string"));
        for (PQconninfoOption* o = opts; o->keyword; ++o) {
            if (!o->val) continue;
            if (std::string(o->keyword) == "host") host_ = o->val;
            if (std::string(o->keyword) == "port") port_ = o->val;
        }
        PQconninfoFree(opts);
        INFO("the proxy relays unix sockets only: ", target);
        REQUIRE((!host_.empty() && host_[0] == '/'));
        if (port_.empty()) port_ = "5432";
        char tmpl[] = "/tmp/zk-pgproxy-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir_ = tmpl;
        listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        REQUIRE(listen_fd_ >= 0);
        const sockaddr_un addr = address();
        REQUIRE(::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listen_fd_, 64) == 0);
        REQUIRE(::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) == 0);
        thread_ = std::thread([this] { run(); });
    }
    ~PgProxy()
    {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake();
        thread_.join();
        for (Pair& p : pairs_) close_pair(p);
        ::close(listen_fd_);
        ::close(wake_[0]);
        ::close(wake_[1]);
        ::unlink(listen_path().c_str());
        ::rmdir(dir_.c_str());
    }
    PgProxy(const PgProxy&) = delete;
    PgProxy& operator=(const PgProxy&) = delete;

    // `base` (a connection string of the target server) through the proxy.
    std::string conninfo(const std::string& base) const { return base + " host=" + dir_ + " port=" + port_; }

    void set_mode(Mode m)
    {
        {
            std::lock_guard lock(mutex_);
            mode_ = m;
        }
        wake();
    }
    void pass() { set_mode(Mode::pass); }
    void refuse() { set_mode(Mode::refuse); }
    void freeze() { set_mode(Mode::freeze); }
    // Closes both ends of every connection open now; returns once done.
    void cut()
    {
        std::unique_lock lock(mutex_);
        const auto asked = ++cuts_asked_;
        lock.unlock();
        wake();
        lock.lock();
        changed_.wait(lock, [&] { return cuts_done_ >= asked; });
    }
    int accepted() const
    {
        std::lock_guard lock(mutex_);
        return accepted_;
    }
    // Until `n` connections have been accepted in all; false if `limit` passes.
    bool await_accepted(int n, std::chrono::milliseconds limit) const
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, limit, [&] { return accepted_ >= n; });
    }

private:
    struct Pair {
        int client = -1, server = -1;
        std::string to_server, to_client;
    };

    std::string listen_path() const { return dir_ + "/.s.PGSQL." + port_; }
    sockaddr_un address() const
    {
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        const std::string path = listen_path();
        REQUIRE(path.size() < sizeof a.sun_path);
        path.copy(a.sun_path, path.size());
        return a;
    }
    void wake() const
    {
        const char c = 1;
        [[maybe_unused]] const auto n = ::write(wake_[1], &c, 1);
    }
    static void close_pair(Pair& p)
    {
        if (p.client >= 0) ::close(p.client);
        if (p.server >= 0) ::close(p.server);
        p.client = p.server = -1;
    }
    int connect_server() const
    {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        const std::string path = host_ + "/.s.PGSQL." + port_;
        path.copy(a.sun_path, std::min(path.size(), sizeof a.sun_path - 1));
        if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
            if (fd >= 0) ::close(fd);
            return -1;
        }
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        return fd;
    }
    // Reads what `from` has into `buffer`; false at its end or an error.
    static bool pull(int from, std::string& buffer)
    {
        char buf[65536];
        const ssize_t n = ::read(from, buf, sizeof buf);
        if (n > 0) buffer.append(buf, static_cast<std::size_t>(n));
        return n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR));
    }
    static bool push(int to, std::string& buffer)
    {
        const ssize_t n = ::send(to, buffer.data(), buffer.size(), MSG_NOSIGNAL);
        if (n > 0) buffer.erase(0, static_cast<std::size_t>(n));
        return n >= 0 || errno == EAGAIN || errno == EINTR;
    }

    void run()
    {
        for (;;) {
            Mode mode;
            {
                std::lock_guard lock(mutex_);
                if (stopping_) return;
                mode = mode_;
                if (cuts_done_ < cuts_asked_) {
                    for (Pair& p : pairs_) close_pair(p);
                    pairs_.clear();
                    cuts_done_ = cuts_asked_;
                    changed_.notify_all();
                }
            }
            if (mode == Mode::pass)
                for (Pair& p : pairs_)
                    if (p.server < 0 && (p.server = connect_server()) < 0) close_pair(p);
            std::erase_if(pairs_, [](const Pair& p) { return p.client < 0; });

            std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
            for (const Pair& p : pairs_) {
                const bool flowing = mode == Mode::pass && p.server >= 0;
                fds.push_back({p.client, static_cast<short>(flowing ? POLLIN | (p.to_client.empty() ? 0 : POLLOUT) : 0), 0});
                fds.push_back({p.server, static_cast<short>(flowing ? POLLIN | (p.to_server.empty() ? 0 : POLLOUT) : 0), 0});
            }
            if (::poll(fds.data(), fds.size(), 1000) < 0) continue;
            if (fds[0].revents) {
                char buf[64];
                while (::read(wake_[0], buf, sizeof buf) > 0) {
                }
            }
            const std::size_t polled = pairs_.size();  // those accepted now join the next round
            if (fds[1].revents & POLLIN) accept_all(mode);
            for (std::size_t i = 0; i < polled; ++i) {
                Pair& p = pairs_[i];
                const short c = fds[2 + 2 * i].revents, s = fds[3 + 2 * i].revents;
                if (mode != Mode::pass || p.server < 0) {
                    if (c & (POLLHUP | POLLERR)) close_pair(p);  // the client gave up on a frozen connection
                    continue;
                }
                bool ok = true;
                if (c & (POLLIN | POLLHUP | POLLERR)) ok = pull(p.client, p.to_server);
                if (ok && (s & (POLLIN | POLLHUP | POLLERR))) ok = pull(p.server, p.to_client);
                if (ok && !p.to_server.empty()) ok = push(p.server, p.to_server);
                if (ok && !p.to_client.empty()) ok = push(p.client, p.to_client);
                if (!ok) {
                    if (!p.to_client.empty()) push(p.client, p.to_client);  // the server's last words (FATAL)
                    close_pair(p);
                }
            }
        }
    }
    void accept_all(Mode mode)
    {
        for (;;) {
            const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0) return;
            {
                std::lock_guard lock(mutex_);
                ++accepted_;
            }
            changed_.notify_all();
            if (mode == Mode::refuse) ::close(fd);
            else pairs_.push_back({fd, -1, {}, {}});
        }
    }

    std::string host_, port_, dir_;
    int listen_fd_ = -1;
    int wake_[2] = {-1, -1};
    std::vector<Pair> pairs_;  // the proxy thread's alone

    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    Mode mode_ = Mode::pass;  // guarded by mutex_
    bool stopping_ = false;   // guarded by mutex_
    int accepted_ = 0;        // guarded by mutex_
    std::uint64_t cuts_asked_ = 0, cuts_done_ = 0;  // guarded by mutex_
    std::thread thread_;
};

}  // namespace zk::test
