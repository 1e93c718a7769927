// What a survey will take and what it will say, derived only from its id:
// the same id always yields the same duration and sentence, and ids spread
// evenly over the duration range and the vocabulary. And a new survey: its
// id, and so its deadline, made at its creation.
#pragma once

#include <string>
#include <string_view>

#include "domain/clock.h"
#include "domain/job.h"
#include "domain/job_id.h"
#include "domain/vocabulary.h"

namespace zk {

// The configured survey length range, inclusive, in milliseconds; its
// default is the config's ([workload] in config/config.h).
struct Workload {
    Millis min_ms = 0;
    Millis max_ms = 0;
};

Millis survey_duration(const JobId& id, const Workload& workload);

// A new survey of `animal` created at `now`, ours, not yet stored (queued).
Job new_survey(std::string_view animal, Millis now, const Workload& workload);

// "<Adjective> <animal> <verb> <adverb>", the adjective capitalised.
std::string survey_sentence(const JobId& id, std::string_view animal, const Vocabulary& words);

}  // namespace zk
