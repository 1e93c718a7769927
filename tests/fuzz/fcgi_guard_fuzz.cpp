// libFuzzer target: zk::transport::inspect_request_head, the check that runs
// on every FastCGI request head before libfcgi parses it.
//
// Properties beyond "no crash, no sanitizer report":
//   - a verdict is stable: inspecting the same bytes twice gives the same one;
//   - `bad` always says why; `complete` and `need_more` never do;
//   - `complete` is final: appending bytes never turns it into something else
//     (the head ends where the params end; what follows is the body's).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "transport/fcgi_guard.h"

namespace {

void require(bool ok, const char* what)
{
    if (ok) return;
    std::fprintf(stderr, "fcgi_guard_fuzz: property violated: %s\n", what);
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using zk::transport::inspect_request_head;
    using zk::transport::Verdict;
    std::string why, again;
    const Verdict v = inspect_request_head(data, size, why);
    require(inspect_request_head(data, size, again) == v && again == why, "the verdict is not stable");
    require((v == Verdict::bad) == !why.empty(), "a bad verdict without a reason, or a reason without one");
    if (v == Verdict::complete) {
        std::vector<unsigned char> longer(data, data + size);
        longer.insert(longer.end(), {5, 5, 0, 0, 0xff, 0xff, 0, 0});
        std::string w;
        require(inspect_request_head(longer.data(), longer.size(), w) == Verdict::complete, "appending changed a complete head");
    }
    return 0;
}
