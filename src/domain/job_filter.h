// Which jobs a listing (GET /jobs) shows: newest first, older than `before`
// if given, at most `limit`.
#pragma once

#include <cstddef>
#include <limits>
#include <optional>
#include <string>

#include "domain/job.h"

namespace zk {

struct JobFilter {
    std::optional<JobState> state;
    std::optional<std::string> animal;
    std::optional<JobId> before;
    // All matches unless set; the API sets its page size (api/api.h).
    std::size_t limit = std::numeric_limits<std::size_t>::max();
};

}  // namespace zk
