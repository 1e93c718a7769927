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
    char buf[80];  // room for any int fields, so the compiler can prove no truncation
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    return buf;
}

}  // namespace zk
