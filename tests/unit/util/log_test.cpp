// The logfmt logger: level names and filtering, the line format, quoting of
// values that could break a line, cutting long values, whole lines under
// concurrent writers, and batches (what waits, what writes at once, order).
// Output is captured from file descriptor 2.

#include "util/log.h"

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "util/rfc3339.h"

#include "../support/capture_stderr.h"
#include "../support/timestamp.h"

using namespace zk;
using zk::test::CaptureStderr;

namespace {

// Restores the default level whatever a test set.
struct LevelGuard {
    ~LevelGuard() { log::set_level(log::Level::info); }
};

std::vector<std::string> lines(const std::string& text)
{
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

// Everything after "ts=… level=… " of the only line written by `write`.
template <class Write>
std::string logged(Write write)
{
    CaptureStderr capture;
    write();
    const std::string text = capture.text();
    capture.restore();
    REQUIRE(!text.empty());
    REQUIRE(text.back() == '\n');
    const auto all = lines(text);
    REQUIRE(all.size() == 1);
    const auto event = all[0].find(" event=");
    REQUIRE(event != std::string::npos);
    return all[0].substr(event + 1);
}

}  // namespace

TEST_CASE("parse_level knows exactly the four level names")
{
    CHECK(log::parse_level("debug") == log::Level::debug);
    CHECK(log::parse_level("info") == log::Level::info);
    CHECK(log::parse_level("warn") == log::Level::warn);
    CHECK(log::parse_level("error") == log::Level::error);
    for (const char* bad : {"", "INFO", "Info", "warning", "err", "debug ", " info", "trace", "fatal"}) {
        CAPTURE(bad);
        CHECK_FALSE(log::parse_level(bad).has_value());
    }
}

TEST_CASE("set_level filters lower levels")
{
    LevelGuard guard;
    log::set_level(log::Level::warn);
    CHECK_FALSE(log::enabled(log::Level::debug));
    CHECK_FALSE(log::enabled(log::Level::info));
    CHECK(log::enabled(log::Level::warn));
    CHECK(log::enabled(log::Level::error));
    log::set_level(log::Level::debug);
    CHECK(log::enabled(log::Level::debug));
    CaptureStderr capture;
    log::set_level(log::Level::error);
    log::warn("suppressed").kv("k", "v");
    log::info("suppressed");
    CHECK(capture.text().empty());
    log::error("shown");
    CHECK(capture.text().find("event=shown") != std::string::npos);
}

TEST_CASE("a line is ts, level, event, then the pairs in order, ending in one newline")
{
    LevelGuard guard;
    CaptureStderr capture;
    log::info("request").kv("id", "abc123").kv("method", "GET").kv("status", 200).kv("dur_us", std::int64_t{-5});
    const std::string text = capture.text();
    capture.restore();
    CAPTURE(text);
    REQUIRE(text.size() > 27);
    CHECK(text.substr(0, 3) == "ts=");
    CHECK(test::is_rfc3339_ms(text.substr(3, 24)));
    CHECK(text.substr(27) == " level=info event=request id=abc123 method=GET status=200 dur_us=-5\n");
}

TEST_CASE("the timestamp is the line's own time, to the millisecond")
{
    LevelGuard guard;
    using namespace std::chrono;
    const auto ms = [] { return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count(); };
    for (int i = 0; i < 3; ++i) {  // the second's text is cached per thread: more than one line, over a second's edge too
        CaptureStderr capture;
        const auto before = ms();
        log::info("e");
        const auto after = ms();
        const std::string ts = capture.text().substr(3, 24);
        capture.restore();
        CHECK((ts == rfc3339(before) || ts == rfc3339(after) || (ts > rfc3339(before) && ts < rfc3339(after))));
        if (i == 1) std::this_thread::sleep_for(milliseconds(1000 - after % 1000));
    }
}

TEST_CASE("each level writes its own name")
{
    LevelGuard guard;
    log::set_level(log::Level::debug);
    for (const char* name : {"debug", "info", "warn", "error"}) {
        CaptureStderr capture;
        log::Line(*log::parse_level(name), "e");
        const std::string text = capture.text();
        capture.restore();
        CHECK(text.find(std::string(" level=") + name + " event=e\n") != std::string::npos);
    }
}

TEST_CASE("values that could break the line are quoted and escaped")
{
    CHECK(logged([] { log::info("e").kv("k", "plain/path-1.2_~"); }) == "event=e k=plain/path-1.2_~");
    CHECK(logged([] { log::info("e").kv("k", ""); }) == "event=e k=\"\"");
    CHECK(logged([] { log::info("e").kv("k", "a b"); }) == "event=e k=\"a b\"");
    CHECK(logged([] { log::info("e").kv("k", "a=b"); }) == "event=e k=\"a=b\"");
    CHECK(logged([] { log::info("e").kv("k", "say \"hi\""); }) == "event=e k=\"say \\\"hi\\\"\"");
    CHECK(logged([] { log::info("e").kv("k", "back\\slash"); }) == "event=e k=\"back\\\\slash\"");
    CHECK(logged([] { log::info("e").kv("k", "two\nlines\r"); }) == "event=e k=\"two\\x0alines\\x0d\"");
    CHECK(logged([] { log::info("e").kv("k", "tab\there"); }) == "event=e k=\"tab\\x09here\"");
    CHECK(logged([] { log::info("e").kv("k", std::string("nul\0", 4)); }) == "event=e k=\"nul\\x00\"");
    CHECK(logged([] { log::info("e").kv("k", "del\x7f"); }) == "event=e k=\"del\\x7f\"");
    // UTF-8 passes through unquoted: it cannot break a line.
    CHECK(logged([] { log::info("e").kv("k", "caf\xc3\xa9"); }) == "event=e k=caf\xc3\xa9");
    // The event name is a value too.
    CHECK(logged([] { log::info("odd event"); }) == "event=\"odd event\"");
}

TEST_CASE("long values are cut at 256 bytes, quoted, with '...'")
{
    const std::string at_limit(256, 'x');
    CHECK(logged([&] { log::info("e").kv("k", at_limit); }) == "event=e k=" + at_limit);
    CHECK(logged([&] { log::info("e").kv("k", at_limit + "y"); }) == "event=e k=\"" + at_limit + "...\"");
    // Escapes count after cutting: a cut line stays one line.
    const std::string newlines(1000, '\n');
    const std::string out = logged([&] { log::info("e").kv("k", newlines); });
    CHECK(out.size() == std::string("event=e k=\"").size() + 256 * 4 + 4);
}

TEST_CASE("lines from concurrent threads never interleave")
{
    LevelGuard guard;
    CaptureStderr capture;
    constexpr int threads = 4, per_thread = 300;
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t)
        writers.emplace_back([t] {
            const std::string filler(100, static_cast<char>('a' + t));
            for (int i = 0; i < per_thread; ++i) log::info("concurrent").kv("thread", t).kv("i", i).kv("filler", filler);
        });
    for (auto& w : writers) w.join();
    const std::string text = capture.text();
    capture.restore();
    const auto all = lines(text);
    CHECK(all.size() == threads * per_thread);
    // Every line whole: its own timestamp, its fields, and a filler of its thread's letter.
    int bad = 0;
    std::vector<int> per(threads);
    for (const auto& l : all) {
        const std::string head = " level=info event=concurrent thread=";
        const auto filler = l.find(" filler=");
        const bool shaped = l.size() > 27 + head.size() && l.substr(0, 3) == "ts=" &&
                            test::is_rfc3339_ms(l.substr(3, 24)) && l.compare(27, head.size(), head) == 0 &&
                            filler != std::string::npos && l.size() == filler + 8 + 100;
        const int t = shaped ? l[27 + head.size()] - '0' : -1;
        if (t < 0 || t >= threads || l.substr(filler + 8) != std::string(100, static_cast<char>('a' + t))) {
            ++bad;
            continue;
        }
        ++per[static_cast<std::size_t>(t)];
    }
    CHECK(bad == 0);
    for (int n : per) CHECK(n == per_thread);
}

TEST_CASE("in a batch, lines wait for flush() and go out whole and in order")
{
    LevelGuard guard;
    CaptureStderr capture;
    {
        log::Batch batch(std::chrono::hours(1));
        CHECK_FALSE(log::flush_due().has_value());
        log::info("one").kv("n", 1);
        log::info("two").kv("n", 2);
        CHECK(capture.text().empty());
        const auto due = log::flush_due();
        REQUIRE(due.has_value());
        CHECK(*due > std::chrono::minutes(59));
        log::flush();
        const auto all = lines(capture.text());
        REQUIRE(all.size() == 2);
        CHECK(all[0].find(" event=one n=1") != std::string::npos);
        CHECK(all[1].find(" event=two n=2") != std::string::npos);
        CHECK_FALSE(log::flush_due().has_value());
    }
    capture.restore();
}

TEST_CASE("a warn or error line writes the batch at once, after the lines gathered before it")
{
    LevelGuard guard;
    for (auto level : {log::Level::warn, log::Level::error}) {
        CaptureStderr capture;
        log::Batch batch(std::chrono::hours(1));
        log::info("gathered");
        log::Line(level, "urgent");
        const auto all = lines(capture.text());
        capture.restore();
        REQUIRE(all.size() == 2);
        CHECK(all[0].find("event=gathered") != std::string::npos);
        CHECK(all[1].find("event=urgent") != std::string::npos);
    }
}

TEST_CASE("the end of a batch writes what it gathered; a nested batch changes nothing")
{
    LevelGuard guard;
    CaptureStderr capture;
    {
        log::Batch batch(std::chrono::hours(1));
        {
            log::Batch nested(std::chrono::milliseconds(0));
            log::info("a");
        }
        CHECK(capture.text().empty());  // the nested one neither set its delay nor wrote at its end
        log::info("b");
        CHECK(capture.text().empty());
    }
    CHECK(lines(capture.text()).size() == 2);
    // Without a batch, every line at once.
    log::info("c");
    CHECK(lines(capture.text()).size() == 3);
    capture.restore();
}

TEST_CASE("a batch is written before it passes batch_bytes, in whole lines")
{
    LevelGuard guard;
    CaptureStderr capture;
    log::Batch batch(std::chrono::hours(1));
    const std::string filler(200, 'f');
    std::size_t logged = 0;
    while (capture.text().empty() && logged < 10 * log::batch_bytes) {
        log::info("fill").kv("filler", filler);
        logged += 250;
    }
    const std::string first = capture.text();
    CHECK(!first.empty());
    CHECK(first.size() <= log::batch_bytes);
    CHECK(first.back() == '\n');
    log::flush();
    capture.restore();
}

TEST_CASE("a gathered line older than the delay goes out with the next line")
{
    LevelGuard guard;
    CaptureStderr capture;
    log::Batch batch(std::chrono::milliseconds(5));
    log::info("old");
    CHECK(capture.text().empty());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(log::flush_due() == std::chrono::milliseconds(0));
    log::info("new");
    CHECK(lines(capture.text()).size() == 2);
    capture.restore();
}

TEST_CASE("a line built while another is open goes out on its own, after the lines gathered before")
{
    LevelGuard guard;
    for (bool batched : {false, true}) {
        CAPTURE(batched);
        CaptureStderr capture;
        {
            std::optional<log::Batch> batch;
            if (batched) batch.emplace(std::chrono::hours(1));
            log::info("gathered");
            {
                log::Line outer(log::Level::info, "outer");
                outer.kv("k", "v");
                log::info("inner").kv("k", "w");
                outer.kv("after", "x");
            }
        }
        const auto all = lines(capture.text());
        capture.restore();
        REQUIRE(all.size() == 3);
        CHECK(all[0].find("event=gathered") != std::string::npos);
        CHECK(all[1].find("event=inner k=w") != std::string::npos);
        CHECK(all[2].find("event=outer k=v after=x") != std::string::npos);
    }
}

TEST_CASE("batched lines from concurrent threads never interleave")
{
    LevelGuard guard;
    CaptureStderr capture;
    constexpr int threads = 4, per_thread = 300;
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t)
        writers.emplace_back([t] {
            log::Batch batch;
            const std::string filler(100, static_cast<char>('a' + t));
            for (int i = 0; i < per_thread; ++i) log::info("concurrent").kv("thread", t).kv("i", i).kv("filler", filler);
        });
    for (auto& w : writers) w.join();
    const auto all = lines(capture.text());
    capture.restore();
    CHECK(all.size() == threads * per_thread);
    std::vector<int> next(threads);  // each thread's lines in its own order
    int bad = 0;
    for (const auto& l : all) {
        const auto at = l.find(" thread=");
        const auto i_at = l.find(" i=");
        if (at == std::string::npos || i_at == std::string::npos) {
            ++bad;
            continue;
        }
        const int t = l[at + 8] - '0';
        const int i = std::stoi(l.substr(i_at + 3));
        if (t < 0 || t >= threads || i != next[static_cast<std::size_t>(t)]++ ||
            l.substr(l.size() - 100) != std::string(100, static_cast<char>('a' + t)))
            ++bad;
    }
    CHECK(bad == 0);
}
