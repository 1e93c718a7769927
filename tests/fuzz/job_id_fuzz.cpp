// libFuzzer target: zk::JobId::parse and the id's text form.
//
// Properties beyond "no crash, no sanitizer report":
//   - parse accepts exactly the canonical 8-4-4-4-12 hex shape (either case);
//   - round trip: for an accepted text, parse(id.str()) == id and str() is
//     the input lowercased; for any 16 bytes, parse(JobId(bytes).str()) is
//     that id again;
//   - generate(now) makes a version-7, RFC 9562 variant id whose
//     created_ms() is now.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "domain/job_id.h"

namespace {

void require(bool ok, const char* what)
{
    if (ok) return;
    std::fprintf(stderr, "job_id_fuzz: property violated: %s\n", what);
    std::abort();
}

bool canonical(std::string_view t)
{
    if (t.size() != 36) return false;
    for (std::size_t i = 0; i < t.size(); ++i) {
        const char c = t[i];
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (dash ? c != '-' : !hex) return false;
    }
    return true;
}

std::string lower(std::string_view t)
{
    std::string s(t);
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

void check_text(std::string_view text)
{
    const auto id = zk::JobId::parse(text);
    require(id.has_value() == canonical(text), "parse disagrees with the canonical shape");
    if (!id) return;
    const std::string s = id->str();
    require(s == lower(text), "str() is not the input lowercased");
    const auto again = zk::JobId::parse(s);
    require(again && *again == *id, "parse(str()) != id");
}

void check_bytes(const std::uint8_t* data)
{
    zk::JobId::Bytes b;
    std::memcpy(b.data(), data, b.size());
    const zk::JobId id(b);
    const std::string s = id.str();
    require(canonical(s) && s == lower(s), "str() is not canonical lowercase");
    const auto again = zk::JobId::parse(s);
    require(again && *again == id && again->bytes() == b, "bytes -> str -> parse is not the identity");
    require(id.created_ms().has_value() == ((b[6] >> 4) == 7), "created_ms() disagrees with the version nibble");
}

void check_generate(const std::uint8_t* data)
{
    std::uint64_t raw = 0;
    std::memcpy(&raw, data, 6);
    const zk::Millis now = static_cast<zk::Millis>(raw & 0xffffffffffffULL);  // 48 bits, as v7 holds
    const zk::JobId id = zk::JobId::generate(now);
    require((id.bytes()[6] >> 4) == 7, "a generated id is not version 7");
    require((id.bytes()[8] & 0xc0) == 0x80, "a generated id has the wrong variant");
    require(id.created_ms() == now, "created_ms() of a generated id is not its creation time");
    const auto again = zk::JobId::parse(id.str());
    require(again && *again == id, "a generated id does not round-trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    check_text(std::string_view(reinterpret_cast<const char*>(data), size));
    if (size >= 16) check_bytes(data);
    if (size >= 6) check_generate(data);
    return 0;
}
