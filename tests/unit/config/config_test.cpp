// The zookeeper.conf parser: the shipped and the original files, defaults,
// comments and line endings, and every error naming file, line and problem.

#include "config/config.h"

#include "config/settings.h"

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "../support/repo_path.h"

using zk::Config;
using zk::ConfigError;
using zk::load_config;
using zk::parse_config;

namespace {

const std::string words = "[animals]\nbisons\nelks\n[verbs]\nsing\n[adjectives]\ncalm\n[adverbs]\nwildly\n";  // lines 1-9

Config ok(const std::string& text)
{
    auto r = parse_config(text, "test.conf");
    if (auto* e = std::get_if<ConfigError>(&r)) FAIL("unexpected error: " << e->str());
    return std::get<Config>(r);
}

ConfigError error(const std::string& text)
{
    auto r = parse_config(text, "test.conf");
    if (std::holds_alternative<Config>(r)) FAIL("parsed, but an error was expected");
    return std::get<ConfigError>(r);
}

// The error is on `line` and its problem mentions `what`.
void check_error(const std::string& text, int line, const std::string& what)
{
    const ConfigError e = error(text);
    CAPTURE(text);
    CAPTURE(e.str());
    CHECK(e.file == "test.conf");
    CHECK(e.line == line);
    CHECK(e.problem.find(what) != std::string::npos);
    CHECK(e.str() == "test.conf:" + std::to_string(line) + ": " + e.problem);
}

struct TempFile {
    std::string path;
    explicit TempFile(const std::string& text)
    {
        char tmpl[] = "/tmp/zk-config-test-XXXXXX";
        const int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        ::close(fd);
        path = tmpl;
        std::ofstream(path, std::ios::binary) << text;
    }
    ~TempFile() { std::remove(path.c_str()); }
};

}  // namespace

TEST_CASE("the shipped zookeeper.conf lists every setting at exactly its default")
{
    auto r = load_config(zk::test::repo_path("zookeeper.conf"));
    if (auto* e = std::get_if<ConfigError>(&r)) FAIL(e->str());
    const Config& c = std::get<Config>(r);
    const Config d = zk::default_config();
    CHECK(c.workload.min_seconds == d.workload.min_seconds);
    CHECK(c.workload.max_seconds == d.workload.max_seconds);
    CHECK(c.service.acceptor_threads == d.service.acceptor_threads);
    CHECK(c.service.awake_acceptors == d.service.awake_acceptors);
    CHECK(c.service.pool_threads == d.service.pool_threads);
    CHECK(c.service.queue_capacity == d.service.queue_capacity);
    CHECK(c.service.max_jobs == d.service.max_jobs);
    CHECK(c.service.result_ttl == d.service.result_ttl);
    CHECK(c.service.log_level == d.service.log_level);
    CHECK(c.store.dir == d.store.dir);
    CHECK(c.store.commit_interval_ms == d.store.commit_interval_ms);
    // That it spells every key out is settings_test's.
}

TEST_CASE("the shipped zookeeper.conf parses with the documented values")
{
    const std::string path = zk::test::repo_path("zookeeper.conf");
    auto r = load_config(path);
    if (auto* e = std::get_if<ConfigError>(&r)) FAIL(e->str());
    const Config& c = std::get<Config>(r);
    CHECK(c.path == path);
    CHECK(c.animals.size() == 14);
    CHECK(c.animals.front() == "aardvarks");
    CHECK(c.animals.back() == "zebras");
    CHECK(c.verbs.size() == 9);
    CHECK(c.adjectives.size() == 16);
    CHECK(c.adverbs.size() == 11);
    CHECK(c.workload.min_seconds == 10);
    CHECK(c.workload.max_seconds == 20);
    CHECK(c.service.acceptor_threads == 8);
    CHECK(c.service.awake_acceptors == 1);
    CHECK(c.service.pool_threads == 2);
    CHECK(c.service.max_jobs == 100'000);
    CHECK(c.service.queue_capacity == 4096);
    CHECK(c.service.result_ttl == 3600);
    CHECK(c.service.max_wait_seconds == 30);
    CHECK(c.service.max_waiters == 0);
    CHECK(c.service.log_level == "info");
    CHECK(c.store.dir == "/var/lib/zookeeper");
}

TEST_CASE("the original service's file parses unchanged and gets the defaults")
{
    // A byte-for-byte copy of ../shared/reference/original-zookeeper.conf.
    auto r = load_config(zk::test::repo_path("tests/unit/config/original-zookeeper.conf"));
    if (auto* e = std::get_if<ConfigError>(&r)) FAIL(e->str());
    const Config& c = std::get<Config>(r);
    CHECK(c.animals.size() == 14);
    CHECK(c.animals[2] == "bisons");
    CHECK(c.verbs.size() == 9);
    CHECK(c.adjectives.size() == 16);
    CHECK(c.adverbs.size() == 11);
    const Config defaults = zk::default_config();
    CHECK(c.workload.min_seconds == defaults.workload.min_seconds);
    CHECK(c.workload.max_seconds == defaults.workload.max_seconds);
    CHECK(c.service.acceptor_threads == defaults.service.acceptor_threads);
    CHECK(c.service.max_jobs == defaults.service.max_jobs);
    CHECK(c.store.dir == defaults.store.dir);
}

TEST_CASE("word lists keep config order; settings are read")
{
    const Config c = ok(words +
                        "[workload]\nmin_seconds = 0.2\nmax_seconds=0.5\n"
                        "[service]\nacceptor_threads = 3\nawake_acceptors = 2\npool_threads = 4\nqueue_capacity = 5\n"
                        "max_jobs = 6\nresult_ttl = 1.5\nlog_level = debug\n"
                        "[store]\ndir = /srv/zk\ncommit_interval_ms = 0\n");
    CHECK(c.animals == std::vector<std::string>{"bisons", "elks"});
    CHECK(c.verbs == std::vector<std::string>{"sing"});
    CHECK(c.adjectives == std::vector<std::string>{"calm"});
    CHECK(c.adverbs == std::vector<std::string>{"wildly"});
    CHECK(c.workload.min_seconds == doctest::Approx(0.2));
    CHECK(c.workload.max_seconds == doctest::Approx(0.5));
    CHECK(c.service.acceptor_threads == 3);
    CHECK(c.service.awake_acceptors == 2);
    CHECK(c.service.pool_threads == 4);
    CHECK(c.service.queue_capacity == 5);
    CHECK(c.service.max_jobs == 6);
    CHECK(c.service.result_ttl == doctest::Approx(1.5));
    CHECK(c.service.log_level == "debug");
    CHECK(c.store.dir == "/srv/zk");
    CHECK(c.store.commit_interval_ms == 0);
}

TEST_CASE("comments, blank lines, indentation, CRLF and trailing spaces")
{
    const Config c = ok("# a comment\r\n"
                        "; another\r\n"
                        "\r\n"
                        "  [ animals ]  \r\n"
                        "\tbisons \t\r\n"
                        "   # indented comment\r\n"
                        "elks   \r\n"
                        "[verbs]\r\nsing\r\n[adjectives]\r\ncalm\r\n[adverbs]\r\nwildly\r\n"
                        "[workload]\r\n  min_seconds   =   1  \r\nmax_seconds = 2\r\n");
    CHECK(c.animals == std::vector<std::string>{"bisons", "elks"});
    CHECK(c.adverbs == std::vector<std::string>{"wildly"});
    CHECK(c.workload.min_seconds == 1);
    CHECK(c.workload.max_seconds == 2);
    // No newline at the end of the file.
    CHECK(ok("[animals]\nbisons\n[verbs]\nsing\n[adjectives]\ncalm\n[adverbs]\nwildly").adverbs.size() == 1);
}

TEST_CASE("missing and empty word sections")
{
    check_error("[animals]\nbisons\n[verbs]\nsing\n[adjectives]\ncalm\n", 6, "missing section [adverbs]");
    check_error("[verbs]\nsing\n[adjectives]\ncalm\n[adverbs]\nwildly\n", 6, "missing section [animals]");
    check_error("[animals]\n# only a comment\n[verbs]\nsing\n[adjectives]\ncalm\n[adverbs]\nwildly\n", 1,
                "section [animals] is empty");
    check_error("[animals]\nbisons\n[verbs]\nsing\n[adjectives]\ncalm\n[adverbs]\n", 7, "section [adverbs] is empty");
    check_error("", 0, "missing section [animals]");
}

TEST_CASE("duplicates name the first occurrence")
{
    check_error("[animals]\nbisons\nelks\nbisons\n[verbs]\nsing\n[adjectives]\ncalm\n[adverbs]\nwildly\n", 4,
                "duplicate animal 'bisons' (first on line 2)");
    check_error(words + "[verbs]\n", 10, "section [verbs] repeated (first on line 4)");
    check_error(words + "[service]\nmax_jobs = 5\nmax_jobs = 6\n", 12, "'max_jobs' set twice in [service] (first on line 11)");
    check_error("[animals]\nbisons\n[verbs]\nsing\nsing\n", 5, "duplicate verb 'sing' (first on line 4)");
    // Names are case-sensitive, so these are two animals.
    CHECK(ok("[animals]\nbisons\nBisons\n[verbs]\nsing\n[adjectives]\ncalm\n[adverbs]\nwildly\n").animals.size() == 2);
}

TEST_CASE("unknown sections and keys")
{
    check_error(words + "[colours]\nred\n", 10, "unknown section [colours]");
    check_error(words + "[Animals]\n", 10, "unknown section [Animals]");
    check_error(words + "[workload]\nmin_secs = 1\n", 11, "unknown key 'min_secs' in [workload]");
    check_error(words + "[service]\nthreads = 1\n", 11, "unknown key 'threads' in [service]");
    check_error(words + "[store]\npath = /x\n", 11, "unknown key 'path' in [store]");
    check_error(words + "[animals\n", 10, "section header must end with ']'");
}

TEST_CASE("lines in the wrong place")
{
    check_error("bisons\n[animals]\nbisons\n", 1, "line outside any section");
    check_error("# comment first\n\nmin_seconds = 1\n", 3, "line outside any section");
    check_error("[animals]\nbisons = 1\n", 2, "[animals] takes one word per line, not key = value");
    check_error(words + "[workload]\nmin_seconds\n", 11, "expected key = value in [workload]");
    check_error(words + "[service]\n8\n", 11, "expected key = value in [service]");
}

TEST_CASE("bad and out-of-range numbers")
{
    const std::string w = words + "[workload]\n";  // the setting is on line 11
    check_error(w + "min_seconds = ten\n", 11, "'ten' is not a number");
    check_error(w + "min_seconds =\n", 11, "'' is not a number");
    check_error(w + "min_seconds = 1s\n", 11, "'1s' is not a number");
    check_error(w + "min_seconds = 1 2\n", 11, "'1 2' is not a number");
    check_error(w + "min_seconds = 0\n", 11, "out of range");
    check_error(w + "min_seconds = -1\n", 11, "out of range");
    check_error(w + "max_seconds = 86401\n", 11, "out of range");
    check_error(w + "max_seconds = nan\n", 11, "out of range");
    check_error(w + "max_seconds = inf\n", 11, "out of range");
    const std::string s = words + "[service]\n";
    check_error(s + "pool_threads = 0\n", 11, "'0' is out of range (1 to 256)");
    check_error(s + "pool_threads = 257\n", 11, "out of range");
    check_error(s + "acceptor_threads = -1\n", 11, "'-1' is not a whole number");
    check_error(s + "acceptor_threads = 2.5\n", 11, "'2.5' is not a whole number");
    check_error(s + "max_jobs = 99999999999999999999999\n", 11, "is not a whole number");
    check_error(s + "queue_capacity = 0\n", 11, "out of range");
    check_error(s + "result_ttl = 0\n", 11, "out of range");
    check_error(s + "max_wait_seconds = 0\n", 11, "'0' is out of range (1 to 3600)");
    check_error(s + "max_wait_seconds = 2.5\n", 11, "'2.5' is not a whole number");
    check_error(s + "max_waiters = -1\n", 11, "'-1' is not a whole number");
    check_error(s + "log_level = verbose\n", 11, "log_level must be debug, info, warn or error, not 'verbose'");
    check_error(s + "awake_acceptors = -1\n", 11, "'-1' is not a whole number");
    check_error(s + "awake_acceptors = 0\n", 11, "'0' is out of range (1 to 256)");
    check_error(s + "awake_acceptors = 257\n", 11, "out of range");
    const std::string st = words + "[store]\n";
    check_error(st + "commit_interval_ms = 1001\n", 11, "out of range");
    check_error(st + "dir = relative/path\n", 11, "[store] dir must be an absolute path");
    check_error(st + "dir =\n", 11, "[store] dir must be an absolute path");
}

TEST_CASE("min_seconds greater than max_seconds names the [workload] header")
{
    check_error(words + "[workload]\nmin_seconds = 5\nmax_seconds = 4\n", 10, "min_seconds is greater than max_seconds");
    check_error(words + "\n[workload]\nmin_seconds = 30\n", 11, "min_seconds is greater than max_seconds");  // max defaults to 20
    CHECK(ok(words + "[workload]\nmin_seconds = 3\nmax_seconds = 3\n").workload.max_seconds == 3);
}

TEST_CASE("more awake acceptors than acceptors names the [service] header")
{
    check_error(words + "[service]\nacceptor_threads = 2\nawake_acceptors = 3\n", 10,
                "awake_acceptors is greater than acceptor_threads");
    check_error(words + "[service]\nawake_acceptors = 9\n", 10, "awake_acceptors is greater than acceptor_threads");
    CHECK(ok(words + "[service]\nacceptor_threads = 2\nawake_acceptors = 2\n").service.awake_acceptors == 2);
}

TEST_CASE("animals must be URL-safe; words must be single printable words")
{
    const std::string tail = "[verbs]\nsing\n[adjectives]\ncalm\n[adverbs]\nwildly\n";
    for (const char* bad : {"bi/sons", "bi%73ons", "bi?sons", "bi#sons", "bisons!", "caf\xc3\xa9", "..", "."}) {
        CAPTURE(bad);
        check_error(std::string("[animals]\n") + bad + "\n" + tail, 2, "must use only letters, digits");
    }
    CHECK(ok("[animals]\nred-deer\nsea_lions\nv1.2\nx~y\n" + tail).animals.size() == 4);
    check_error("[animals]\nbisons\n[verbs]\nsing loudly\n", 4, "must be one word");
    check_error("[animals]\nbisons\n[verbs]\nsi\"ng\n", 4, "must be one word");
    check_error("[animals]\nbisons\n[verbs]\nsi\\ng\n", 4, "must be one word");
    check_error("[animals]\nbisons\n[verbs]\nsi\x01ng\n", 4, "must be one word");
    check_error("[animals]\n" + std::string(65, 'a') + "\n", 2, "animal longer than 64 characters");
    CHECK(ok("[animals]\n" + std::string(64, 'a') + "\n" + tail).animals[0].size() == 64);
    check_error(std::string("[animals]\nbi\0sons\n", 17), 2, "NUL byte");
}

TEST_CASE("the first error wins")
{
    check_error("[animals]\nbisons\nbisons\n[nope]\n", 3, "duplicate animal");
}

TEST_CASE("load_config: unreadable files are line 0")
{
    const ConfigError missing = std::get<ConfigError>(load_config("/nonexistent/zookeeper.conf"));
    CHECK(missing.line == 0);
    CHECK(missing.file == "/nonexistent/zookeeper.conf");
    CHECK(missing.problem == "cannot read the file");
    CHECK(missing.str() == "/nonexistent/zookeeper.conf:0: cannot read the file");
}

// Regression: opening a directory succeeds on Linux and only reading fails
// (EISDIR); the failure went unnoticed and the directory parsed as an empty
// file, answering "missing section [animals]".
TEST_CASE("load_config: a directory given as the file cannot be read")
{
    const std::string dir = std::filesystem::temp_directory_path().string();
    const auto r = load_config(dir);
    REQUIRE(std::holds_alternative<ConfigError>(r));
    const ConfigError& e = std::get<ConfigError>(r);
    CHECK(e.line == 0);
    CHECK(e.problem == "cannot read the file");
}

TEST_CASE("load_config: a file's errors carry its path")
{
    TempFile f(words + "[service]\nmax_jobs = lots\n");
    const auto r = load_config(f.path);
    REQUIRE(std::holds_alternative<ConfigError>(r));
    CHECK(std::get<ConfigError>(r).str() == f.path + ":11: 'lots' is not a whole number");
    TempFile good(words);
    const auto g = load_config(good.path);
    REQUIRE(std::holds_alternative<Config>(g));
    CHECK(std::get<Config>(g).path == good.path);
    CHECK(std::get<Config>(g).animals.size() == 2);
}

TEST_CASE("[service] max_wait_seconds and max_waiters (waiting polls) are read")
{
    const auto parsed = zk::parse_config(std::string(words) + "[service]\nmax_wait_seconds = 5\nmax_waiters = 123\n", "t.conf");
    REQUIRE(std::holds_alternative<zk::Config>(parsed));
    CHECK(std::get<zk::Config>(parsed).service.max_wait_seconds == 5);
    CHECK(std::get<zk::Config>(parsed).service.max_waiters == 123);
}
