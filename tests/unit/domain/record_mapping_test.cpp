// record_mapping: a Job and its stored JobRecord, field by field both ways;
// this worker's hold on a job (owned, writing, seen_in) is never stored, and
// a job read back starts without one.

#include "domain/record_mapping.h"

#include <doctest/doctest.h>

#include <string>

using namespace zk;
using storage::RecordState;

namespace {

constexpr Millis t0 = 1'700'000'000'000;

Job full_job()
{
    Job j;
    j.id = JobId::generate(t0);
    j.animal = "koalas";
    j.state = JobState::done;
    j.duration_ms = 12'345;
    j.created_ms = t0;
    j.started_ms = t0 + 1;
    j.deadline_ms = t0 + 12'345;
    j.finished_ms = t0 + 12'400;
    j.result = "Calm koalas sleep wildly";
    j.idem_scope = "10.0.0.1";
    j.idem_key = "k-1";
    j.owned = true;
    j.writing = JobState::cancelled;
    j.writing_seq = 42;
    j.seen_in = 7;
    return j;
}

}  // namespace

TEST_CASE("record mapping: every stored field goes to the record")
{
    const Job j = full_job();
    const storage::JobRecord r = to_record(j);
    CHECK(r.id == j.id.bytes());
    CHECK(r.animal == "koalas");
    CHECK(r.state == RecordState::done);
    CHECK(r.created_ms == t0);
    CHECK(r.started_ms == t0 + 1);
    CHECK(r.deadline_ms == t0 + 12'345);
    CHECK(r.finished_ms == t0 + 12'400);
    CHECK(r.duration_ms == 12'345);
    CHECK(r.result == "Calm koalas sleep wildly");
    CHECK(r.idem_scope == "10.0.0.1");
    CHECK(r.idem_key == "k-1");
}

TEST_CASE("record mapping: a record read back is the job, without this worker's hold")
{
    const Job j = full_job();
    const Job back = from_record(to_record(j));
    CHECK(back.id == j.id);
    CHECK(back.animal == j.animal);
    CHECK(back.state == j.state);
    CHECK(back.duration_ms == j.duration_ms);
    CHECK(back.created_ms == j.created_ms);
    CHECK(back.started_ms == j.started_ms);
    CHECK(back.deadline_ms == j.deadline_ms);
    CHECK(back.finished_ms == j.finished_ms);
    CHECK(back.result == j.result);
    CHECK(back.idem_scope == j.idem_scope);
    CHECK(back.idem_key == j.idem_key);
    CHECK_FALSE(back.owned);
    CHECK_FALSE(back.writing);
    CHECK(back.writing_seq == 0);
    CHECK(back.seen_in == 0);
}

TEST_CASE("record mapping: each state keeps its number (the stored column)")
{
    for (const JobState s : {JobState::queued, JobState::running, JobState::done, JobState::cancelled}) {
        Job j = full_job();
        j.state = s;
        const storage::JobRecord r = to_record(j);
        CHECK(static_cast<int>(r.state) == static_cast<int>(s));
        CHECK(r.finished() == j.finished());
        CHECK(from_record(storage::JobRecord(r)).state == s);
    }
}

TEST_CASE("record mapping: a job without a key stores empty key columns (NULL in the database)")
{
    Job j = full_job();
    j.idem_scope.clear();
    j.idem_key.clear();
    const storage::JobRecord r = to_record(j);
    CHECK(r.idem_scope.empty());
    CHECK(r.idem_key.empty());
    CHECK(from_record(storage::JobRecord(r)).idem_key.empty());
}
