// UUIDv7 generation (kernel randomness) and strict parsing on top of libuuid.

#include "domain/job_id.h"

#include <uuid/uuid.h>

#include <cstring>

#include "util/random.h"

namespace zk {

namespace {

constexpr std::size_t uuid_text_length = 36;

bool is_canonical_shape(std::string_view text)
{
    if (text.size() != uuid_text_length) return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const bool dash_place = i == 8 || i == 13 || i == 18 || i == 23;
        const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (dash_place ? c != '-' : !hex) return false;
    }
    return true;
}

std::uint64_t mix(std::uint64_t x)  // splitmix64's finaliser
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

}  // namespace

JobId JobId::generate(Millis now_ms)
{
    // libuuid's uuid_generate_random costs five system calls per id (it
    // re-seeds random() from getpid, getuid, ... each time); the bytes it
    // would return come from getrandom all the same.
    Bytes b;
    random_bytes(b.data() + 6, b.size() - 6);
    const auto ts = static_cast<std::uint64_t>(now_ms);
    for (int i = 0; i < 6; ++i) b[static_cast<std::size_t>(i)] = static_cast<unsigned char>(ts >> (40 - 8 * i));
    b[6] = static_cast<unsigned char>(0x70 | (b[6] & 0x0f));  // version 7
    b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3f));  // RFC 9562 variant
    return JobId(b);
}

std::optional<JobId> JobId::parse(std::string_view text)
{
    if (!is_canonical_shape(text)) return std::nullopt;
    char buf[uuid_text_length + 1];
    std::memcpy(buf, text.data(), uuid_text_length);
    buf[uuid_text_length] = '\0';
    Bytes b;
    if (uuid_parse(buf, b.data()) != 0) return std::nullopt;
    return JobId(b);
}

std::string JobId::str() const
{
    char buf[uuid_text_length + 1];
    uuid_unparse_lower(bytes_.data(), buf);
    return std::string(buf, uuid_text_length);
}

std::optional<Millis> JobId::created_ms() const
{
    if ((bytes_[6] >> 4) != 7) return std::nullopt;
    std::uint64_t ts = 0;
    for (std::size_t i = 0; i < 6; ++i) ts = (ts << 8) | bytes_[i];
    return static_cast<Millis>(ts);
}

std::uint64_t JobId::digest() const
{
    std::uint64_t hi = 0, lo = 0;
    std::memcpy(&hi, bytes_.data(), 8);
    std::memcpy(&lo, bytes_.data() + 8, 8);
    return mix(hi ^ mix(lo));
}

}  // namespace zk
