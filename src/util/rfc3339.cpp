// Formatting without locale or time-zone state: gmtime_r is thread-safe.

#include "util/rfc3339.h"

#include <cstdio>
#include <ctime>

namespace zk {

std::string rfc3339(std::int64_t unix_ms)
{
    // Floored, not truncated: -1 ms is 23:59:59.999 the day before, not ".-01".
    const std::int64_t ms = ((unix_ms % 1000) + 1000) % 1000;
    const std::time_t secs = static_cast<std::time_t>((unix_ms - ms) / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    const int year = tm.tm_year + 1900;
    if (year < 0 || year > 9999) {  // never for real times; snprintf handles the width
        char buf[80];  // room for any int fields, so the compiler can prove no truncation
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
        return buf;
    }
    // By hand: every log line and job carries a timestamp, and snprintf was
    // a sixth of a request's instructions.
    std::string out = "0000-00-00T00:00:00.000Z";
    auto put = [&out](std::size_t at, int value, int digits) {
        for (int i = digits - 1; i >= 0; --i, value /= 10) out[at + static_cast<std::size_t>(i)] = static_cast<char>('0' + value % 10);
    };
    put(0, year, 4);
    put(5, tm.tm_mon + 1, 2);
    put(8, tm.tm_mday, 2);
    put(11, tm.tm_hour, 2);
    put(14, tm.tm_min, 2);
    put(17, tm.tm_sec, 2);
    put(20, static_cast<int>(ms), 3);
    return out;
}

}  // namespace zk
