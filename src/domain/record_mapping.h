// Between the domain's Job and storage's JobRecord: the one place that maps
// their fields (the record's columns are listed once, in storage/job_record.h).
#pragma once

#include "domain/job.h"
#include "storage/job_record.h"

namespace zk {

// The stored form; the fields this worker's hold adds (owned, writing, ...) are not stored.
storage::JobRecord to_record(const Job& job);
// A job read from storage; held fields start empty.
Job from_record(storage::JobRecord&& record);

}  // namespace zk
