// Deterministic survey outcomes. Each choice draws from its own slice of a
// re-mixed digest so the picks are independent of one another.

#include "domain/survey.h"

#include <cctype>
#include <cstdint>
#include <vector>

namespace zk {

namespace {

std::uint64_t draw(const JobId& id, std::uint64_t salt)
{
    std::uint64_t x = id.digest() + salt * 0x9e3779b97f4a7c15ULL;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

const std::string& pick(const std::vector<std::string>& words, std::uint64_t r)
{
    return words[static_cast<std::size_t>(r % words.size())];
}

}  // namespace

Job new_survey(std::string_view animal, Millis now, const Workload& workload)
{
    Job job;
    job.created_ms = now;
    job.id = JobId::generate(now);
    job.animal = animal;
    job.duration_ms = static_cast<std::int32_t>(survey_duration(job.id, workload));
    job.deadline_ms = job.created_ms + job.duration_ms;
    job.owned = true;
    return job;
}

Millis survey_duration(const JobId& id, const Workload& workload)
{
    const auto span = static_cast<std::uint64_t>(workload.max_ms - workload.min_ms) + 1;
    return workload.min_ms + static_cast<Millis>(draw(id, 0) % span);
}

std::string survey_sentence(const JobId& id, std::string_view animal, const Vocabulary& words)
{
    std::string s = pick(words.adjectives(), draw(id, 1));
    if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    s.append(" ").append(animal);
    s.append(" ").append(pick(words.verbs(), draw(id, 2)));
    s.append(" ").append(pick(words.adverbs(), draw(id, 3)));
    return s;
}

}  // namespace zk
