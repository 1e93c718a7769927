// Word lists and the animal lookup used on every survey start.

#include "domain/vocabulary.h"

#include <stdexcept>

namespace zk {

Vocabulary::Vocabulary(std::vector<std::string> animals, std::vector<std::string> adjectives,
                       std::vector<std::string> verbs, std::vector<std::string> adverbs)
    : animals_(std::move(animals)),
      adjectives_(std::move(adjectives)),
      verbs_(std::move(verbs)),
      adverbs_(std::move(adverbs))
{
    // The config parser reports these with file and line; this guards other callers.
    if (animals_.empty() || adjectives_.empty() || verbs_.empty() || adverbs_.empty())
        throw std::invalid_argument("vocabulary: every word list needs at least one word");
    for (const auto& a : animals_) animal_index_.insert(a);
}

bool Vocabulary::has_animal(std::string_view name) const
{
    return animal_index_.count(name) != 0;
}

}  // namespace zk
