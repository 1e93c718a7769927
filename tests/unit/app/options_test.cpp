// Command-line parsing of zookeeper-fcgi.

#include "app/options.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace zk::app;

namespace {

std::variant<Options, UsageError> parse(std::vector<const char*> args)
{
    args.insert(args.begin(), "zookeeper-fcgi");
    return parse_options(static_cast<int>(args.size()), args.data());
}

Options ok(std::vector<const char*> args)
{
    auto r = parse(std::move(args));
    if (auto* e = std::get_if<UsageError>(&r)) FAIL("usage error: " << e->message);
    return std::get<Options>(r);
}

std::string usage_error(std::vector<const char*> args)
{
    auto r = parse(std::move(args));
    REQUIRE(std::holds_alternative<UsageError>(r));
    return std::get<UsageError>(r).message;
}

}  // namespace

TEST_CASE("no arguments: serve with the default config")
{
    const Options o = ok({});
    CHECK(o.mode == Mode::serve);
    CHECK(o.config_path == "/etc/zookeeper/zookeeper.conf");
    CHECK_FALSE(o.state_dir.has_value());
    CHECK_FALSE(o.log_level.has_value());
}

TEST_CASE("each option sets what it names")
{
    const Options o = ok({"--config", "/tmp/z.conf", "--state-dir", "/tmp/state", "--log-level", "debug"});
    CHECK(o.mode == Mode::serve);
    CHECK(o.config_path == "/tmp/z.conf");
    CHECK(o.state_dir == "/tmp/state");
    CHECK(o.log_level == "debug");

    const Options c = ok({"--check-config", "/tmp/other.conf"});
    CHECK(c.mode == Mode::check_config);
    CHECK(c.config_path == "/tmp/other.conf");

    CHECK(ok({"--help"}).mode == Mode::help);
    CHECK(ok({"-h"}).mode == Mode::help);
    CHECK(ok({"--version"}).mode == Mode::version);
}

TEST_CASE("later options override earlier ones")
{
    CHECK(ok({"--config", "a", "--config", "b"}).config_path == "b");
    CHECK(ok({"--log-level", "warn", "--log-level", "error"}).log_level == "error");
}

TEST_CASE("every log level name is accepted, anything else refused")
{
    for (const char* level : {"debug", "info", "warn", "error"}) CHECK(ok({"--log-level", level}).log_level == level);
    CHECK(usage_error({"--log-level", "verbose"}) == "--log-level must be debug, info, warn or error");
    CHECK(usage_error({"--log-level", "INFO"}) == "--log-level must be debug, info, warn or error");
}

TEST_CASE("an option missing its value is refused")
{
    CHECK(usage_error({"--config"}) == "--config needs a value");
    CHECK(usage_error({"--check-config"}) == "--check-config needs a value");
    CHECK(usage_error({"--state-dir"}) == "--state-dir needs a value");
    CHECK(usage_error({"--log-level"}) == "--log-level needs a value");
    CHECK(usage_error({"--config=/tmp/z.conf"}) == "--config=/tmp/z.conf needs a value");
}

TEST_CASE("unknown options and stray arguments are refused")
{
    CHECK(usage_error({"--verbose"}) == "unknown option --verbose");
    CHECK(usage_error({"-c", "x"}) == "unknown option -c");
    CHECK(usage_error({"zookeeper.conf"}) == "unknown option zookeeper.conf");
    CHECK(usage_error({"--help", "--bogus"}) == "unknown option --bogus");
}

TEST_CASE("the usage text names every option")
{
    const std::string u = usage_text();
    for (const char* option : {"--config", "--state-dir", "--log-level", "--check-config", "--help", "--version"}) {
        CAPTURE(option);
        CHECK(u.find(option) != std::string::npos);
    }
    CHECK(u.rfind("usage: zookeeper-fcgi", 0) == 0);
    CHECK(u.back() == '\n');
}
