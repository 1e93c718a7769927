// RFC 3339 UTC timestamps with milliseconds.

#include "util/rfc3339.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include "../support/timestamp.h"

using zk::rfc3339;

TEST_CASE("known instants")
{
    CHECK(rfc3339(0) == "1970-01-01T00:00:00.000Z");
    CHECK(rfc3339(1) == "1970-01-01T00:00:00.001Z");
    CHECK(rfc3339(999) == "1970-01-01T00:00:00.999Z");
    CHECK(rfc3339(1000) == "1970-01-01T00:00:01.000Z");
    CHECK(rfc3339(1'700'000'000'123) == "2023-11-14T22:13:20.123Z");
    CHECK(rfc3339(951'782'400'000) == "2000-02-29T00:00:00.000Z");          // leap day of a century leap year
    CHECK(rfc3339(1'709'251'199'999) == "2024-02-29T23:59:59.999Z");        // last ms of a leap day
    CHECK(rfc3339(1'735'689'599'999) == "2024-12-31T23:59:59.999Z");        // last ms of a year
    CHECK(rfc3339(2'147'483'648'000) == "2038-01-19T03:14:08.000Z");        // past 32-bit time_t
    CHECK(rfc3339(253'402'300'799'999) == "9999-12-31T23:59:59.999Z");
}

TEST_CASE("the form is fixed: 24 characters, UTC 'Z', three fraction digits")
{
    for (std::int64_t ms = 0; ms < 4'000'000'000'000; ms += 123'456'789'011) {
        const std::string s = rfc3339(ms);
        CAPTURE(ms);
        CHECK(s.size() == 24);
        CHECK(zk::test::is_rfc3339_ms(s));
    }
    CHECK_FALSE(zk::test::is_rfc3339_ms("2023-11-14T22:13:20.123"));  // the checker itself can fail
}

TEST_CASE("formatting does not depend on the TZ variable")
{
    const char* old = std::getenv("TZ");
    const std::string saved = old ? old : "";
    ::setenv("TZ", "America/New_York", 1);
    ::tzset();
    const std::string s = rfc3339(1'700'000'000'123);
    if (old) ::setenv("TZ", saved.c_str(), 1);
    else ::unsetenv("TZ");
    ::tzset();
    CHECK(s == "2023-11-14T22:13:20.123Z");
}

// Regression: C++ division truncates toward zero, so -1 ms came out as
// "1970-01-01T00:00:00.-01Z". Instants before the epoch round down.
TEST_CASE("instants before 1970 are formatted correctly")
{
    CHECK(rfc3339(-1) == "1969-12-31T23:59:59.999Z");
    CHECK(rfc3339(-1000) == "1969-12-31T23:59:59.000Z");
    CHECK(rfc3339(-1001) == "1969-12-31T23:59:58.999Z");
}
