// RFC 3339 UTC timestamps with milliseconds, for logs and API answers.
#pragma once

#include <cstdint>
#include <string>

namespace zk {

// 1700000000123 → "2023-11-14T22:13:20.123Z"
std::string rfc3339(std::int64_t unix_ms);

}  // namespace zk
