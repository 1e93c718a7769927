// The configured words: animals (the things that can be surveyed) and the
// adjectives, verbs and adverbs a survey's sentence is built from. Immutable
// once built; a config reload swaps in a whole new Vocabulary.
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace zk {

class Vocabulary {
public:
    Vocabulary(std::vector<std::string> animals, std::vector<std::string> adjectives,
               std::vector<std::string> verbs, std::vector<std::string> adverbs);
    // The index views the strings in place: a copy would view the source's
    // strings (and dangle once it is gone), so copying is refused. A move
    // hands over the vectors' buffers, and the strings stay where they are.
    Vocabulary(const Vocabulary&) = delete;
    Vocabulary& operator=(const Vocabulary&) = delete;
    Vocabulary(Vocabulary&&) noexcept = default;
    Vocabulary& operator=(Vocabulary&&) noexcept = default;

    const std::vector<std::string>& animals() const { return animals_; }
    const std::vector<std::string>& adjectives() const { return adjectives_; }
    const std::vector<std::string>& verbs() const { return verbs_; }
    const std::vector<std::string>& adverbs() const { return adverbs_; }

    // Exact, case-sensitive match, as configured.
    bool has_animal(std::string_view name) const;

private:
    std::vector<std::string> animals_, adjectives_, verbs_, adverbs_;
    std::unordered_set<std::string_view> animal_index_;  // views into animals_
};

}  // namespace zk
