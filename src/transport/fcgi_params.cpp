// One pass over libfcgi's param array (see fcgi_params.h).

#include "transport/fcgi_params.h"

#include <cstring>
#include <string_view>

namespace zk::transport {

namespace {

// Sets `out` from `value` unless an earlier entry of the same name did.
void take(bool& seen, std::string& out, const char* value)
{
    if (seen) return;
    seen = true;
    out = value;
}

}  // namespace

http::Request request_from_params(const char* const* envp)
{
    http::Request r;
    bool method = false, uri = false, id = false, key = false, scope = false;
    for (const char* const* p = envp; p && *p; ++p) {
        const char* eq = std::strchr(*p, '=');
        if (!eq) continue;
        const std::string_view name(*p, static_cast<std::size_t>(eq - *p));
        const char* value = eq + 1;
        if (name == "REQUEST_METHOD") take(method, r.method, value);
        else if (name == "REQUEST_URI") take(uri, r.uri, value);
        else if (name == "REQUEST_ID") take(id, r.request_id, value);
        // Set by nginx alone (a client header would arrive as HTTP_ZK_CLIENT_SCOPE).
        else if (name == "ZK_CLIENT_SCOPE") take(scope, r.client_scope, value);
        // nginx passes every request header as HTTP_*; absent and empty differ.
        else if (name == "HTTP_IDEMPOTENCY_KEY" && !key) {
            key = true;
            r.idempotency_key = value;
        }
    }
    return r;
}

}  // namespace zk::transport
