// Vocabulary: word lists in config order, exact animal lookup, refusal of
// empty lists, and an index that stays valid when the vocabulary moves.

#include "domain/vocabulary.h"

#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using zk::Vocabulary;

namespace {

Vocabulary make()
{
    return Vocabulary({"zebras", "aardvarks", "bisons"}, {"thirsty"}, {"sing"}, {"carefully"});
}

}  // namespace

TEST_CASE("the lists are kept in config order")
{
    const Vocabulary v = make();
    CHECK(v.animals() == std::vector<std::string>{"zebras", "aardvarks", "bisons"});
    CHECK(v.adjectives() == std::vector<std::string>{"thirsty"});
    CHECK(v.verbs() == std::vector<std::string>{"sing"});
    CHECK(v.adverbs() == std::vector<std::string>{"carefully"});
}

TEST_CASE("has_animal matches exactly and case-sensitively")
{
    const Vocabulary v = make();
    CHECK(v.has_animal("bisons"));
    CHECK(v.has_animal("zebras"));
    CHECK_FALSE(v.has_animal("Bisons"));
    CHECK_FALSE(v.has_animal("BISONS"));
    CHECK_FALSE(v.has_animal("bison"));
    CHECK_FALSE(v.has_animal("bisonss"));
    CHECK_FALSE(v.has_animal("bisons "));
    CHECK_FALSE(v.has_animal(""));
    CHECK_FALSE(v.has_animal("thirsty"));  // other lists are not animals
    const std::string longer = "bisons-and-more";
    CHECK(v.has_animal(std::string_view(longer).substr(0, 6)));
}

TEST_CASE("every list needs at least one word")
{
    CHECK_THROWS_AS(Vocabulary({}, {"a"}, {"v"}, {"d"}), std::invalid_argument);
    CHECK_THROWS_AS(Vocabulary({"x"}, {}, {"v"}, {"d"}), std::invalid_argument);
    CHECK_THROWS_AS(Vocabulary({"x"}, {"a"}, {}, {"d"}), std::invalid_argument);
    CHECK_THROWS_AS(Vocabulary({"x"}, {"a"}, {"v"}, {}), std::invalid_argument);
    CHECK_NOTHROW(Vocabulary({"x"}, {"a"}, {"v"}, {"d"}));
}

// Regression: the animal index holds string_views into the vocabulary's own
// strings; an implicit copy kept views into the source, dangling once the
// source was gone (heap-use-after-free under ASan). Copying is now refused;
// moving keeps the strings where they are.
TEST_CASE("vocabulary copy would dangle: copying is refused, moving keeps the index valid")
{
    static_assert(!std::is_copy_constructible_v<Vocabulary>);
    static_assert(!std::is_copy_assignable_v<Vocabulary>);
    auto source = std::make_unique<Vocabulary>(
        std::vector<std::string>{"a-rather-long-animal-name-beyond-sso", "elks"}, std::vector<std::string>{"calm"},
        std::vector<std::string>{"sing"}, std::vector<std::string>{"wildly"});
    Vocabulary moved(std::move(*source));
    source.reset();
    CHECK(moved.has_animal("a-rather-long-animal-name-beyond-sso"));
    CHECK(moved.has_animal("elks"));
    CHECK_FALSE(moved.has_animal("owls"));

    Vocabulary target = make();
    {
        Vocabulary other({"owls", "emus"}, {"grey"}, {"hoot"}, {"softly"});
        target = std::move(other);
    }
    CHECK(target.has_animal("owls"));
    CHECK(target.has_animal("emus"));
    CHECK_FALSE(target.has_animal("bisons"));
}
