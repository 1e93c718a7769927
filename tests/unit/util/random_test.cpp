// util/random: kernel randomness served from a per-thread buffer.

#include "util/random.h"

#include <doctest/doctest.h>

#include <array>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using zk::random_bytes;
using zk::random_refill_bytes;

namespace {

std::string draw(std::size_t n)
{
    std::string s(n, '\0');
    random_bytes(reinterpret_cast<unsigned char*>(s.data()), n);
    return s;
}

}  // namespace

TEST_CASE("random_bytes: no two draws repeat, across many buffer refills")
{
    std::set<std::string> seen;
    const std::size_t draws = 4 * random_refill_bytes / 10 + 7;  // crosses refills at odd offsets
    for (std::size_t i = 0; i < draws; ++i) seen.insert(draw(10));
    CHECK(seen.size() == draws);
}

TEST_CASE("random_bytes: every byte value turns up (not a constant or a short cycle)")
{
    std::array<int, 256> counts{};
    for (int i = 0; i < 200; ++i)
        for (unsigned char c : draw(1000)) ++counts[c];
    for (int v = 0; v < 256; ++v) CHECK_MESSAGE(counts[static_cast<std::size_t>(v)] > 0, "value " << v);
}

TEST_CASE("random_bytes: threads draw different bytes")
{
    std::vector<std::string> got(4);
    std::vector<std::thread> threads;
    for (auto& g : got) threads.emplace_back([&g] { g = draw(32); });
    for (auto& t : threads) t.join();
    CHECK(std::set<std::string>(got.begin(), got.end()).size() == got.size());
}

TEST_CASE("random_bytes: a whole buffer at once, and no more")
{
    CHECK(draw(random_refill_bytes).size() == random_refill_bytes);
    unsigned char big[random_refill_bytes + 1];
    CHECK_THROWS_AS(random_bytes(big, sizeof big), std::invalid_argument);
}
