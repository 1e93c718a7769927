// Idempotency-Key parsing: the sf-string form (RFC 8941 section 3.3.3) and
// the bare form, each checked character by character.

#include "http/idempotency_key.h"

namespace zk::http {

namespace {

constexpr char first_printable = 0x20;  // space
constexpr char last_printable = 0x7e;   // '~'

bool printable(char c) { return c >= first_printable && c <= last_printable; }

ParsedIdempotencyKey invalid(std::string why) { return {{}, std::move(why)}; }

// What is inside the quotes: printable, with only \" and \\ escaped.
ParsedIdempotencyKey unquote(std::string_view inner)
{
    std::string key;
    for (std::size_t i = 0; i < inner.size(); ++i) {
        char c = inner[i];
        if (c == '"') return invalid("a quote inside a quoted key must be escaped as \\\"");
        if (c == '\\') {
            if (++i == inner.size() || (inner[i] != '"' && inner[i] != '\\'))
                return invalid("only \\\" and \\\\ may be escaped in a quoted key");
            c = inner[i];
        } else if (!printable(c)) {
            return invalid("the key must be printable ASCII");
        }
        key.push_back(c);
    }
    return {std::move(key), {}};
}

}  // namespace

ParsedIdempotencyKey parse_idempotency_key(std::string_view value)
{
    ParsedIdempotencyKey parsed;
    if (!value.empty() && value.front() == '"') {
        if (value.size() < 2 || value.back() != '"') return invalid("a quoted key must end with a quote");
        parsed = unquote(value.substr(1, value.size() - 2));
        if (!parsed.error.empty()) return parsed;
    } else {
        for (char c : value)
            if (!printable(c)) return invalid("the key must be printable ASCII");
        parsed.key = std::string(value);
    }
    if (parsed.key.empty()) return invalid("the key is empty");
    if (parsed.key.size() > max_idempotency_key_length)
        return invalid("the key is longer than " + std::to_string(max_idempotency_key_length) + " characters");
    return parsed;
}

}  // namespace zk::http
