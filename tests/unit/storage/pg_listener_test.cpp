// pg::Listener, the cancel feed's listening end, against the real test
// cluster: payloads delivered verbatim and in commit order, a new session
// announced (resumed) before its first notification, a terminated session
// replaced, retries every reconnect_interval while it cannot connect (a proxy
// refusing), a frozen server found out by the heartbeat, and stop() ending
// the thread promptly whatever it is doing. Each test listens on a channel of
// its own, so no other test's notifications reach it.

#include "storage/pg_listener.h"

#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "../support/pg_test_db.h"
#include "../support/wait.h"

using zk::storage::pg::Listener;
using zk::storage::pg::ListenerTiming;
using zk::test::PgProxy;
using zk::test::PgSession;
using zk::test::PgTestSchema;
using namespace std::chrono_literals;

namespace {

// Everything a listener reported, in order: "resumed" or "n:<payload>".
class Events {
public:
    Listener::Notified notified()
    {
        return [this](std::string_view payload) { add("n:" + std::string(payload)); };
    }
    Listener::Resumed resumed()
    {
        return [this] { add("resumed"); };
    }
    std::vector<std::string> all() const
    {
        std::lock_guard lock(mutex_);
        return events_;
    }
    int count(const std::string& prefix) const
    {
        std::lock_guard lock(mutex_);
        int n = 0;
        for (const auto& e : events_) n += e.rfind(prefix, 0) == 0;
        return n;
    }
    bool await(const std::string& prefix, int n, std::chrono::milliseconds limit = 5s) const
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, limit, [&] {
            int k = 0;
            for (const auto& e : events_) k += e.rfind(prefix, 0) == 0;
            return k >= n;
        });
    }

private:
    void add(std::string e)
    {
        {
            std::lock_guard lock(mutex_);
            events_.push_back(std::move(e));
        }
        changed_.notify_all();
    }
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::vector<std::string> events_;
};

// A short heartbeat, so that stop() (which waits one out) is quick too.
ListenerTiming quick(std::chrono::milliseconds heartbeat = 1s)
{
    return ListenerTiming{1000ms, 1000ms, heartbeat, 50ms};
}

// Sends on the channel through a connection of its own, as a committing cancel does.
void notify(const PgTestSchema& schema, const std::string& channel, const std::string& payload)
{
    PgSession s(schema.conninfo());
    REQUIRE(s.exec("SELECT pg_notify('" + channel + "', $$" + payload + "$$)").empty());
}

constexpr const char* listener_session = "query LIKE 'LISTEN %' OR query = 'SELECT 1'";

}  // namespace

TEST_SUITE("pg_listener") {

TEST_CASE("pg_listener: announces its session, then delivers each payload verbatim, in commit order; a rolled-back one never")
{
    PgTestSchema schema;
    const std::string channel = "zk_" + schema.name();
    Events events;  // outlives the listener, whose thread calls it
    Listener listener(schema.conninfo(), channel, quick());
    CHECK_FALSE(listener.listening());  // before start()
    listener.start(events.notified(), events.resumed());
    REQUIRE(events.await("resumed", 1));
    CHECK(listener.listening());

    PgSession s(schema.conninfo());
    REQUIRE(s.exec("BEGIN").empty());
    REQUIRE(s.exec("NOTIFY " + channel + ", 'first'").empty());
    REQUIRE(s.exec("NOTIFY " + channel + ", 'second, with spaces and \xc3\xa9'").empty());
    REQUIRE(s.exec("COMMIT").empty());
    REQUIRE(s.exec("BEGIN").empty());
    REQUIRE(s.exec("NOTIFY " + channel + ", 'rolled back'").empty());
    REQUIRE(s.exec("ROLLBACK").empty());
    notify(schema, channel, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b 1700000000123");
    REQUIRE(events.await("n:", 3));
    CHECK(events.all() == std::vector<std::string>{"resumed", "n:first", "n:second, with spaces and \xc3\xa9",
                                                   "n:0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b 1700000000123"});
    listener.stop();
    CHECK_FALSE(listener.listening());
}

TEST_CASE("pg_listener: a terminated session is replaced, and the new one is announced before its first notification")
{
    PgTestSchema schema;
    const std::string channel = "zk_" + schema.name();
    Events events;  // outlives the listener, whose thread calls it
    Listener listener(schema.conninfo(), channel, quick());
    listener.start(events.notified(), events.resumed());
    REQUIRE(events.await("resumed", 1));
    notify(schema, channel, "one");
    REQUIRE(events.await("n:", 1));
    REQUIRE(zk::test::wait_until([&] { return schema.sessions(listener_session) == 1; }, 5000ms));
    REQUIRE(schema.terminate(listener_session) == 1);
    REQUIRE(events.await("resumed", 2));
    CHECK(listener.listening());
    notify(schema, channel, "two");
    REQUIRE(events.await("n:", 2));
    CHECK(events.all() == std::vector<std::string>{"resumed", "n:one", "resumed", "n:two"});
}

TEST_CASE("pg_listener: while it cannot connect it is not listening and tries again every reconnect_interval; then it resumes")
{
    PgTestSchema schema;
    PgProxy proxy;
    proxy.refuse();
    const std::string channel = "zk_" + schema.name();
    ListenerTiming timing = quick();
    timing.reconnect_interval = 100ms;
    Events events;  // outlives the listener, whose thread calls it
    Listener listener(proxy.conninfo(schema.conninfo()), channel, timing);
    const auto begun = std::chrono::steady_clock::now();
    listener.start(events.notified(), events.resumed());
    REQUIRE(proxy.await_accepted(4, 5000ms));
    const auto took = std::chrono::steady_clock::now() - begun;
    CHECK_FALSE(listener.listening());
    CHECK(events.count("resumed") == 0);
    CHECK(took >= 3 * 100ms - 20ms);  // four attempts, a pause between each
    proxy.pass();
    REQUIRE(events.await("resumed", 1));
    CHECK(listener.listening());
    notify(schema, channel, "after");
    CHECK(events.await("n:", 1));
}

TEST_CASE("pg_listener: a frozen server is found out by the heartbeat within its deadline; the listener resumes once it answers")
{
    PgTestSchema schema;
    PgProxy proxy;
    const std::string channel = "zk_" + schema.name();
    const ListenerTiming timing{1000ms, 300ms, 300ms, 50ms};  // connect, statement, heartbeat, reconnect
    Events events;  // outlives the listener, whose thread calls it
    Listener listener(proxy.conninfo(schema.conninfo()), channel, timing);
    listener.start(events.notified(), events.resumed());
    REQUIRE(events.await("resumed", 1));
    proxy.freeze();
    const auto begun = std::chrono::steady_clock::now();
    REQUIRE(zk::test::wait_until([&] { return !listener.listening(); }, 5000ms));
    const auto took = std::chrono::steady_clock::now() - begun;
    CHECK(took < 1500ms);  // silence (300 ms), then a heartbeat unanswered (300 ms)
    CHECK(events.count("resumed") == 1);
    proxy.pass();
    REQUIRE(events.await("resumed", 2));
    notify(schema, channel, "back");
    CHECK(events.await("n:", 1));
}

TEST_CASE("pg_listener: stop() returns promptly while it waits for notifications")
{
    PgTestSchema schema;
    Events events;  // outlives the listener, whose thread calls it
    Listener listener(schema.conninfo(), "zk_" + schema.name(), quick(5s));  // a long heartbeat
    listener.start(events.notified(), events.resumed());
    REQUIRE(events.await("resumed", 1));
    const auto begun = std::chrono::steady_clock::now();
    listener.stop();
    const auto took = std::chrono::steady_clock::now() - begun;
    INFO("stop() took ", std::chrono::duration<double>(took).count(), " s");
    CHECK(took < 1s);
    CHECK_FALSE(listener.listening());
}

TEST_CASE("pg_listener: stop() returns promptly while it pauses between failed connects")
{
    PgTestSchema schema;
    PgProxy proxy;
    proxy.refuse();
    ListenerTiming timing = quick();
    timing.reconnect_interval = 30s;
    Events events;  // outlives the listener, whose thread calls it
    Listener listener(proxy.conninfo(schema.conninfo()), "zk_" + schema.name(), timing);
    listener.start(events.notified(), events.resumed());
    REQUIRE(proxy.await_accepted(1, 5000ms));
    const auto begun = std::chrono::steady_clock::now();
    listener.stop();
    CHECK(std::chrono::steady_clock::now() - begun < 1s);
    CHECK(events.count("resumed") == 0);
}

}  // TEST_SUITE
