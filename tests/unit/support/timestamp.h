// Shape check for "2023-11-14T22:13:20.123Z". (Hand-written: GCC 12's
// <regex> trips -Werror=maybe-uninitialized in the sanitizer builds.)
#pragma once

#include <cstddef>
#include <string_view>

namespace zk::test {

inline bool is_rfc3339_ms(std::string_view s)
{
    constexpr std::string_view shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (s.size() != shape.size()) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const bool ok = shape[i] == 'd' ? (s[i] >= '0' && s[i] <= '9') : s[i] == shape[i];
        if (!ok) return false;
    }
    return true;
}

}  // namespace zk::test
