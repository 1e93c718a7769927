// The Idempotency-Key request header (IETF httpapi draft "The
// Idempotency-Key HTTP Header Field"): validated here, at the boundary, into
// the key the domain stores, or an error naming what is wrong.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace zk::http {

constexpr std::size_t max_idempotency_key_length = 255;

struct ParsedIdempotencyKey {
    std::string key;    // the key, unquoted; empty when error is set
    std::string error;  // what is wrong, for a 400's detail; empty when valid
};

// The draft makes the value a Structured Field sf-string ("..." with \" and
// \\ escapes); the bare form most clients send (Stripe's) is accepted too.
// Either way the key is 1-255 printable ASCII characters (0x20-0x7E), and
// "abc" and abc are the same key. A bare key may not begin with a quote.
ParsedIdempotencyKey parse_idempotency_key(std::string_view value);

}  // namespace zk::http
