// The settings table: one row per key, every default valid for its own row,
// ranges that hold their default, and the parser reading values through it.

#include "config/settings.h"

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <utility>

#include "../support/repo_path.h"

using namespace zk;

TEST_CASE("settings: one row per section and key, each with a meaning")
{
    std::set<std::pair<std::string_view, std::string_view>> seen;
    for (const Setting& s : settings()) {
        CAPTURE(s.key);
        CHECK(seen.insert({s.section, s.key}).second);
        CHECK_FALSE(s.meaning.empty());
        CHECK(find_setting(s.section, s.key) == &s);
    }
    CHECK(find_setting("service", "nope") == nullptr);
    CHECK(find_setting("store", "max_jobs") == nullptr);  // keys belong to their section
}

TEST_CASE("settings: every default parses through its own row (kind and field agree)")
{
    for (const Setting& s : settings()) {
        CAPTURE(s.key);
        Config c;
        std::optional<std::string> problem;
        CHECK_NOTHROW(problem = apply_setting(s, s.default_text, c));
        CHECK_FALSE(problem);
    }
}

TEST_CASE("settings: values outside a row's range are refused with the range named")
{
    Config c;
    const Setting* threads = find_setting("service", "pool_threads");
    REQUIRE(threads);
    CHECK(apply_setting(*threads, "0", c) == std::optional<std::string>("'0' is out of range (1 to 256)"));
    CHECK(apply_setting(*threads, "3", c) == std::nullopt);
    CHECK(c.service.pool_threads == 3);
    const Setting* level = find_setting("service", "log_level");
    REQUIRE(level);
    CHECK(apply_setting(*level, "loud", c) ==
          std::optional<std::string>("log_level must be debug, info, warn or error, not 'loud'"));
}

TEST_CASE("default_config: every setting at its row's default")
{
    const Config d = default_config();
    CHECK(d.workload.min_seconds == 10);
    CHECK(d.workload.max_seconds == 20);
    CHECK(d.service.acceptor_threads == 8);
    CHECK(d.service.awake_acceptors == 1);
    CHECK(d.service.log_level == "info");
    CHECK(d.store.dir == "/var/lib/zookeeper");
    CHECK(d.store.commit_interval_ms == 0);
    CHECK(d.animals.empty());
}

TEST_CASE("the shipped zookeeper.conf writes every row as `key = default`")
{
    std::ifstream in(test::repo_path("zookeeper.conf"));
    const std::string text(std::istreambuf_iterator<char>(in), {});
    for (const Setting& s : settings()) {
        // An empty default is written "key =", without trailing blanks.
        const std::string value = s.default_text.empty() ? "" : " " + std::string(s.default_text);
        const std::string line = "\n" + std::string(s.key) + " =" + value + "\n";
        CHECK_MESSAGE(text.find(line) != std::string::npos, line);
        const auto header = text.find("\n[" + std::string(s.section) + "]\n");
        CHECK_MESSAGE((header != std::string::npos && header < text.find(line)), s.key);
    }
}
