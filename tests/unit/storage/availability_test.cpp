// Availability: it starts up; many failures make one store_unavailable line;
// while down, a store_still_unavailable reminder at most every remind_every
// (on an injected clock); one store_available when it comes back, which
// also counts an epoch; concurrent reports keep those counts.

#include "storage/availability.h"

#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "../support/capture_stderr.h"

using zk::storage::Availability;
using zk::test::CaptureStderr;
using namespace std::chrono_literals;

namespace {

// A clock the test moves by hand.
struct ManualClock {
    std::chrono::steady_clock::time_point t{};
    Availability::Now now()
    {
        return [this] { return t; };
    }
};

int count(const std::string& text, const std::string& what)
{
    int n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

// The first line holding `what`, or empty.
std::string line_with(const std::string& text, const std::string& what)
{
    const auto at = text.find(what);
    if (at == std::string::npos) return {};
    const auto begin = text.rfind('\n', at);
    const auto from = begin == std::string::npos ? 0 : begin + 1;
    return text.substr(from, text.find('\n', at) - from);
}

}  // namespace

TEST_SUITE("availability") {

TEST_CASE("availability: many failures make one store_unavailable line, the return one store_available")
{
    CaptureStderr capture;
    ManualClock clock;
    Availability a("host=/db dbname=zk", 10s, clock.now());
    CHECK(a.up());
    CHECK(a.epoch() == 0);
    CHECK(a.reason().empty());
    for (int i = 0; i < 100; ++i) {
        a.failed("connection refused " + std::to_string(i));
        clock.t += 10ms;
    }
    CHECK_FALSE(a.up());
    CHECK(a.reason() == "connection refused 99");
    CHECK(a.epoch() == 0);
    a.succeeded();
    a.succeeded();
    CHECK(a.up());
    CHECK(a.reason().empty());
    CHECK(a.epoch() == 1);
    const std::string text = capture.text();
    capture.restore();
    CHECK(count(text, "event=store_unavailable") == 1);
    CHECK(count(text, "event=store_still_unavailable") == 0);  // 1 s down, reminders every 10 s
    CHECK(count(text, "event=store_available") == 1);
    CHECK(count(text, "level=warn") == 1);  // the failures while down are not warnings
    const std::string down = line_with(text, "event=store_unavailable");
    CHECK(down.find("level=warn") != std::string::npos);
    CHECK(down.find("store=\"host=/db dbname=zk\"") != std::string::npos);
    CHECK(down.find("error=\"connection refused 0\"") != std::string::npos);
    const std::string back = line_with(text, "event=store_available");
    CHECK(back.find("level=info") != std::string::npos);
    CHECK(back.find("down_s=1.0") != std::string::npos);
}

TEST_CASE("availability: while down, a reminder at most once every remind_every")
{
    CaptureStderr capture;
    ManualClock clock;
    Availability a("db", 10s, clock.now());
    // A failure every 100 ms for 25 s: reminders at 10 s and 20 s, no more.
    for (int i = 0; i <= 250; ++i) {
        a.failed("timeout");
        clock.t += 100ms;
    }
    const std::string text = capture.text();
    capture.restore();
    CHECK(count(text, "event=store_unavailable") == 1);
    CHECK(count(text, "event=store_still_unavailable") == 2);
    const std::string reminder = line_with(text, "event=store_still_unavailable");
    CHECK(reminder.find("level=warn") != std::string::npos);
    CHECK(reminder.find("store=db") != std::string::npos);
    CHECK(reminder.find("for_s=10.0") != std::string::npos);
    CHECK(reminder.find("error=timeout") != std::string::npos);
}

TEST_CASE("availability: each outage is told once and each return counts an epoch")
{
    CaptureStderr capture;
    ManualClock clock;
    Availability a("db", 10s, clock.now());
    for (int outage = 1; outage <= 3; ++outage) {
        a.failed("down");
        a.failed("still down");
        clock.t += 2s;
        a.succeeded();
        CHECK(a.epoch() == static_cast<std::uint64_t>(outage));
    }
    a.succeeded();  // up already: nothing changes
    CHECK(a.epoch() == 3);
    const std::string text = capture.text();
    capture.restore();
    CHECK(count(text, "event=store_unavailable") == 3);
    CHECK(count(text, "event=store_available") == 3);
    CHECK(line_with(text, "event=store_available").find("down_s=2.0") != std::string::npos);
}

TEST_CASE("availability: concurrent reports from many threads give one line each way")
{
    CaptureStderr capture;
    Availability a("db");  // the real clock
    constexpr int threads = 8, reports = 500;
    auto all = [&](auto report) {
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t)
            ts.emplace_back([&] {
                for (int i = 0; i < reports; ++i) report();
            });
        for (auto& t : ts) t.join();
    };
    all([&] { a.failed("refused"); });
    CHECK_FALSE(a.up());
    std::atomic<bool> down_after_success{false};
    all([&] {
        a.succeeded();
        if (!a.up()) down_after_success = true;
    });
    CHECK_FALSE(down_after_success);
    CHECK(a.epoch() == 1);
    const std::string text = capture.text();
    capture.restore();
    CHECK(count(text, "event=store_unavailable") == 1);
    CHECK(count(text, "event=store_available") == 1);
}

}  // TEST_SUITE
