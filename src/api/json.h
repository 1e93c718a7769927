// JSON bodies of the API, written with RapidJSON.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "domain/clock.h"
#include "domain/job.h"

namespace zk::api {

std::string json_string(std::string_view s);
std::string json_array(const std::vector<std::string>& items);
// The whole job as GET /jobs/{id} shows it, times and progress as of `now`.
std::string job_json(const Job& job, Millis now);

}  // namespace zk::api
