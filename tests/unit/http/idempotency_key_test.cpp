// The Idempotency-Key header's validation: both forms, the length limit and
// every kind of invalid value, each with the reason a 400 will carry.

#include "http/idempotency_key.h"

#include <doctest/doctest.h>

#include <string>

using zk::http::max_idempotency_key_length;
using zk::http::parse_idempotency_key;

namespace {

std::string key_of(std::string_view value)
{
    const auto parsed = parse_idempotency_key(value);
    INFO(value, ": ", parsed.error);
    CHECK(parsed.error.empty());
    return parsed.key;
}

std::string error_of(std::string_view value)
{
    const auto parsed = parse_idempotency_key(value);
    CHECK(parsed.key.empty());
    return parsed.error;
}

}  // namespace

TEST_SUITE("idempotency_key") {

TEST_CASE("idempotency key: the bare form is the key as sent")
{
    CHECK(key_of("8e03978e-40d5-43e8-bc93-6894a57f9324") == "8e03978e-40d5-43e8-bc93-6894a57f9324");
    CHECK(key_of("a") == "a");
    CHECK(key_of("with space ~!") == "with space ~!");
    CHECK(key_of(std::string(max_idempotency_key_length, 'k')).size() == max_idempotency_key_length);
}

TEST_CASE("idempotency key: the sf-string form is unquoted and unescaped")
{
    CHECK(key_of("\"8e03978e\"") == "8e03978e");
    CHECK(key_of("\"8e03978e\"") == key_of("8e03978e"));  // one key, two spellings
    CHECK(key_of(R"("say \"hi\" \\ bye")") == R"(say "hi" \ bye)");
    CHECK(key_of("\"" + std::string(max_idempotency_key_length, 'k') + "\"").size() == max_idempotency_key_length);
}

TEST_CASE("idempotency key: empty, too long, or not printable ASCII is refused")
{
    CHECK(error_of("") == "the key is empty");
    CHECK(error_of("\"\"") == "the key is empty");
    CHECK(error_of(std::string(max_idempotency_key_length + 1, 'k')).find("longer than 255") != std::string::npos);
    CHECK(error_of("tab\there") == "the key must be printable ASCII");
    CHECK(error_of("caf\xc3\xa9") == "the key must be printable ASCII");
    CHECK(error_of(std::string("nul\0", 4)) == "the key must be printable ASCII");
    CHECK(error_of("del\x7f") == "the key must be printable ASCII");
}

TEST_CASE("idempotency key: a malformed sf-string is refused")
{
    CHECK(error_of("\"open") == "a quoted key must end with a quote");
    CHECK(error_of("\"") == "a quoted key must end with a quote");
    CHECK(error_of("\"a\"b\"").find("must be escaped") != std::string::npos);
    CHECK(error_of(R"("a\nb")").find("only") != std::string::npos);
    CHECK(error_of(R"("a\")").find("end with a quote") == std::string::npos);  // a dangling escape
}

}  // TEST_SUITE
