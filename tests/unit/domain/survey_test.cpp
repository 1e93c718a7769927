// Survey outcomes derived from the id alone: determinism, the duration range
// and its spread, vocabulary coverage, independence of the picks, and the
// sentence's shape.

#include "domain/survey.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using zk::JobId;
using zk::Millis;
using zk::Vocabulary;
using zk::Workload;

namespace {

constexpr Millis t0 = 1'700'000'000'000;

// The shipped zookeeper.conf's words.
Vocabulary shipped()
{
    return Vocabulary({"aardvarks", "alpacas", "bisons", "crocodiles", "elks", "gorillas", "hippos", "koalas",
                       "kangaroos", "lions", "pandas", "tigers", "unicorns", "zebras"},
                      {"alert", "ambitious", "aggressive", "angry", "awesome", "bulky", "calm", "candid", "clumsy",
                       "cool", "determined", "nervous", "hungry", "sleepy", "sluggish", "thirsty"},
                      {"cry", "eat", "drink", "feel", "laugh", "run", "sing", "sleep", "smile"},
                      {"adventurously", "beautifully", "brilliantly", "carefully", "foolishly", "lazily", "properly",
                       "randomly", "strictly", "tidily", "wildly"});
}

std::vector<JobId> ids(int n)
{
    std::vector<JobId> out;
    for (int i = 0; i < n; ++i) out.push_back(JobId::generate(t0 + i / 16));
    return out;
}

std::vector<std::string> words_of(const std::string& sentence)
{
    std::istringstream in(sentence);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

std::string capitalised(std::string w)
{
    w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
    return w;
}

}  // namespace

TEST_CASE("the same id always yields the same duration and sentence")
{
    const Vocabulary v = shipped();
    const Workload w{10'000, 20'000};
    for (const JobId& id : ids(200)) {
        const JobId copy = *JobId::parse(id.str());
        CHECK(zk::survey_duration(id, w) == zk::survey_duration(copy, w));
        CHECK(zk::survey_sentence(id, "bisons", v) == zk::survey_sentence(copy, "bisons", v));
    }
}

TEST_CASE("durations stay within [min, max] and spread over the whole range")
{
    const Workload w{10'000, 20'000};
    const auto all = ids(10'000);
    std::array<int, 10> buckets{};  // one per second of the range
    Millis lo = w.max_ms, hi = w.min_ms;
    for (const JobId& id : all) {
        const Millis d = zk::survey_duration(id, w);
        REQUIRE(d >= w.min_ms);
        REQUIRE(d <= w.max_ms);
        lo = std::min(lo, d);
        hi = std::max(hi, d);
        ++buckets[static_cast<std::size_t>(std::min<Millis>((d - w.min_ms) / 1000, 9))];
    }
    for (int n : buckets) {
        CHECK(n > 850);  // 1000 expected each; a skew of 15 % fails
        CHECK(n < 1150);
    }
    CHECK(lo < w.min_ms + 20);
    CHECK(hi > w.max_ms - 20);
}

TEST_CASE("a short range is covered nearly value by value")
{
    const Workload w{200, 500};  // 301 possible values
    std::set<Millis> seen;
    for (const JobId& id : ids(10'000)) {
        const Millis d = zk::survey_duration(id, w);
        REQUIRE(d >= 200);
        REQUIRE(d <= 500);
        seen.insert(d);
    }
    CHECK(seen.size() >= 295);
    CHECK(seen.count(200) == 1);
    CHECK(seen.count(500) == 1);
}

TEST_CASE("min == max gives exactly that duration")
{
    for (const JobId& id : ids(100)) CHECK(zk::survey_duration(id, Workload{1234, 1234}) == 1234);
}

TEST_CASE("every adjective, verb and adverb gets picked, about equally often")
{
    const Vocabulary v = shipped();
    std::map<std::string, int> adjectives, verbs, adverbs;
    const int n = 20'000;
    for (const JobId& id : ids(n)) {
        const auto w = words_of(zk::survey_sentence(id, "bisons", v));
        REQUIRE(w.size() == 4);
        ++adjectives[w[0]];
        ++verbs[w[2]];
        ++adverbs[w[3]];
    }
    auto fair = [n](const std::map<std::string, int>& counts, std::size_t size) {
        const double expected = static_cast<double>(n) / static_cast<double>(size);
        CHECK(counts.size() == size);
        for (const auto& [word, count] : counts) {
            CAPTURE(word);
            CHECK(count > expected * 0.8);
            CHECK(count < expected * 1.2);
        }
    };
    fair(adjectives, v.adjectives().size());
    fair(verbs, v.verbs().size());
    fair(adverbs, v.adverbs().size());
    for (const auto& a : v.adjectives()) CHECK(adjectives.count(capitalised(a)) == 1);
    for (const auto& x : v.verbs()) CHECK(verbs.count(x) == 1);
    for (const auto& x : v.adverbs()) CHECK(adverbs.count(x) == 1);
}

TEST_CASE("the picks are independent of one another and of the duration")
{
    // Two words each: all four (adjective, verb) pairs, and both words with
    // short and long durations, must occur about a quarter of the time.
    const Vocabulary v({"owls"}, {"a", "b"}, {"x", "y"}, {"p", "q"});
    const Workload w{0, 1};
    std::map<std::string, int> pairs;
    const int n = 8000;
    for (const JobId& id : ids(n)) {
        const auto words = words_of(zk::survey_sentence(id, "owls", v));
        ++pairs[words[0] + words[2]];
        ++pairs[words[3] + std::to_string(zk::survey_duration(id, w))];
    }
    for (const char* key : {"Ax", "Ay", "Bx", "By", "p0", "p1", "q0", "q1"}) {
        CAPTURE(key);
        CHECK(pairs[key] > n / 4 * 0.85);
        CHECK(pairs[key] < n / 4 * 1.15);
    }
}

TEST_CASE("the sentence is '<Adjective> <animal> <verb> <adverb>'")
{
    const Vocabulary v = shipped();
    std::set<std::string> sentences;
    for (const JobId& id : ids(500)) {
        const std::string s = zk::survey_sentence(id, "kangaroos", v);
        sentences.insert(s);
        const auto w = words_of(s);
        REQUIRE(w.size() == 4);
        CHECK(s == w[0] + " " + w[1] + " " + w[2] + " " + w[3]);  // single spaces, no padding
        CHECK(std::isupper(static_cast<unsigned char>(w[0][0])));
        std::string lower = w[0];
        lower[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(lower[0])));
        CHECK(std::count(v.adjectives().begin(), v.adjectives().end(), lower) == 1);
        CHECK(w[1] == "kangaroos");  // the animal as given, not capitalised
        CHECK(std::count(v.verbs().begin(), v.verbs().end(), w[2]) == 1);
        CHECK(std::count(v.adverbs().begin(), v.adverbs().end(), w[3]) == 1);
    }
    CHECK(sentences.size() > 300);  // 1584 combinations: 500 ids rarely repeat
}

TEST_CASE("an adjective already capitalised, or not starting with a letter, is kept")
{
    const Vocabulary v({"owls"}, {"Grey"}, {"hoot"}, {"softly"});
    CHECK(zk::survey_sentence(JobId::generate(t0), "owls", v) == "Grey owls hoot softly");
    const Vocabulary digits({"owls"}, {"3-legged"}, {"hoot"}, {"softly"});
    CHECK(zk::survey_sentence(JobId::generate(t0), "owls", digits) == "3-legged owls hoot softly");
}
