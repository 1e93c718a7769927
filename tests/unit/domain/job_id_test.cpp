// JobId: UUIDv7 generation (version, variant, timestamp), time ordering,
// strict canonical parsing and the digest everything else is derived from.

#include "domain/job_id.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <unordered_set>
#include <vector>

using zk::JobId;
using zk::JobIdHash;
using zk::Millis;

namespace {

constexpr Millis t0 = 1'700'000'000'123;
const std::string sample = "018bcfe5-6800-7abc-8def-0123456789ab";

}  // namespace

TEST_CASE("generate yields a version 7, RFC 9562 variant id")
{
    for (int i = 0; i < 1000; ++i) {
        const JobId id = JobId::generate(t0 + i);
        CHECK((id.bytes()[6] >> 4) == 7);
        CHECK((id.bytes()[8] & 0xc0) == 0x80);
        const std::string s = id.str();
        CHECK(s[14] == '7');
        CHECK(std::string("89ab").find(s[19]) != std::string::npos);
    }
}

TEST_CASE("created_ms round-trips the timestamp, including the edges of 48 bits")
{
    for (Millis ms : {Millis{0}, Millis{1}, t0, Millis{0xffff'ffff'ffff}}) {
        CAPTURE(ms);
        const auto back = JobId::generate(ms).created_ms();
        REQUIRE(back.has_value());
        CHECK(*back == ms);
    }
    // And through the text form.
    const JobId id = JobId::generate(t0);
    CHECK(JobId::parse(id.str())->created_ms() == t0);
}

TEST_CASE("created_ms is nullopt for ids of other versions")
{
    CHECK_FALSE(JobId{}.created_ms().has_value());  // the nil UUID, version 0
    const auto v4 = JobId::parse("123e4567-e89b-42d3-a456-426614174000");
    REQUIRE(v4);
    CHECK_FALSE(v4->created_ms().has_value());
}

TEST_CASE("ids sort by creation time, as bytes and as text")
{
    std::vector<JobId> ids;
    for (int i = 0; i < 500; ++i) ids.push_back(JobId::generate(t0 + i * 7));
    CHECK(std::is_sorted(ids.begin(), ids.end()));
    std::vector<std::string> texts;
    for (const auto& id : ids) texts.push_back(id.str());
    CHECK(std::is_sorted(texts.begin(), texts.end()));
    // A millisecond later always sorts later, whatever the random bits.
    for (int i = 0; i < 200; ++i) CHECK(JobId::generate(t0) < JobId::generate(t0 + 1));
}

TEST_CASE("ids generated in the same millisecond differ")
{
    std::unordered_set<std::string> seen;
    for (int i = 0; i < 10'000; ++i) seen.insert(JobId::generate(t0).str());
    CHECK(seen.size() == 10'000);
}

TEST_CASE("str is the lowercase canonical form and parse inverts it")
{
    const JobId id = JobId::generate(t0);
    const std::string s = id.str();
    CHECK(s.size() == 36);
    CHECK(s[8] == '-');
    CHECK(s[13] == '-');
    CHECK(s[18] == '-');
    CHECK(s[23] == '-');
    CHECK(std::none_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'F'; }));
    const auto back = JobId::parse(s);
    REQUIRE(back);
    CHECK(*back == id);
    CHECK(JobId{}.str() == "00000000-0000-0000-0000-000000000000");
}

TEST_CASE("parse accepts either case and str answers lowercase")
{
    std::string upper = sample;
    std::transform(upper.begin(), upper.end(), upper.begin(), [](char c) { return static_cast<char>(std::toupper(c)); });
    const std::string mixed = "ABCDEF01-abcd-7EF0-8aBc-DEF012345678";
    const auto a = JobId::parse(sample), b = JobId::parse(upper), c = JobId::parse(mixed);
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(c);
    CHECK(*a == *b);
    CHECK(b->str() == sample);
    CHECK(c->str() == "abcdef01-abcd-7ef0-8abc-def012345678");
    CHECK(a->bytes()[0] == 0x01);
    CHECK(a->bytes()[15] == 0xab);
}

TEST_CASE("parse rejects everything but the canonical 8-4-4-4-12 form")
{
    const std::vector<std::string> bad = {
        "",
        sample.substr(0, 35),                               // one short
        sample + "0",                                       // one long
        "018bcfe56800-7abc-8def-0123456789ab-",             // dash moved to the end
        "018bcfe5-68007-abc-8def-0123456789ab",             // dash one place late
        "018bcfe5_6800_7abc_8def_0123456789ab",             // wrong separators
        "018bcfe568007abc8def0123456789ab",                 // no dashes (32 hex)
        "018bcfe5-6800-7abc-8def-0123456789ag",             // non-hex letter
        "018bcfe5-6800-7abc-8def-0123456789a ",             // trailing space inside length
        " 018bcfe5-6800-7abc-8def-0123456789ab",            // leading space
        "018bcfe5-6800-7abc-8def-0123456789ab\n",           // trailing newline
        "{018bcfe5-6800-7abc-8def-0123456789ab}",           // braces (Microsoft form)
        "{18bcfe5-6800-7abc-8def-0123456789a}",             // braces, right length
        "urn:uuid:018bcfe5-6800-7abc-8def-0123456789ab",    // URN form
        "+18bcfe5-6800-7abc-8def-0123456789ab",             // sign
        "018bcfe5-6800-7abc-8def-0123456789\xc3\xa9",       // non-ASCII
    };
    for (const auto& text : bad) {
        CAPTURE(text);
        CHECK_FALSE(JobId::parse(text).has_value());
    }
    // A NUL inside the 36 bytes must not end the string early.
    std::string with_nul = sample;
    with_nul[35] = '\0';
    CHECK_FALSE(JobId::parse(with_nul).has_value());
    // And a string_view of a longer buffer is judged by its own length.
    const std::string longer = sample + "ff";
    CHECK(JobId::parse(std::string_view(longer).substr(0, 36)).has_value());
}

TEST_CASE("digest: equal ids agree, distinct ids spread")
{
    const JobId id = JobId::generate(t0);
    CHECK(id.digest() == JobId::parse(id.str())->digest());
    CHECK(JobIdHash{}(id) == static_cast<std::size_t>(id.digest()));
    std::unordered_set<std::uint64_t> digests;
    std::array<int, 64> low_bits{};
    for (int i = 0; i < 6400; ++i) {
        const auto d = JobId::generate(t0).digest();  // ids differing only in random bits
        digests.insert(d);
        ++low_bits[d % 64];
    }
    CHECK(digests.size() == 6400);
    // The job table shards by digest % 64: every shard gets a fair share.
    for (int n : low_bits) {
        CHECK(n > 50);
        CHECK(n < 160);
    }
}
