// Field by field, both ways.

#include "domain/record_mapping.h"

namespace zk {

storage::JobRecord to_record(const Job& j)
{
    storage::JobRecord r;
    r.id = j.id.bytes();
    r.animal = j.animal;
    r.state = static_cast<storage::RecordState>(j.state);
    r.created_ms = j.created_ms;
    r.started_ms = j.started_ms;
    r.deadline_ms = j.deadline_ms;
    r.finished_ms = j.finished_ms;
    r.duration_ms = j.duration_ms;
    r.result = j.result;
    r.idem_scope = j.idem_scope;
    r.idem_key = j.idem_key;
    return r;
}

Job from_record(storage::JobRecord&& r)
{
    Job j;
    j.id = JobId(r.id);
    j.animal = std::move(r.animal);
    j.state = static_cast<JobState>(r.state);
    j.created_ms = r.created_ms;
    j.started_ms = r.started_ms;
    j.deadline_ms = r.deadline_ms;
    j.finished_ms = r.finished_ms;
    j.duration_ms = r.duration_ms;
    j.result = std::move(r.result);
    j.idem_scope = std::move(r.idem_scope);
    j.idem_key = std::move(r.idem_key);
    return j;
}

}  // namespace zk
