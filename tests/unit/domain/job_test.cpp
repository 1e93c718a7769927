// Job: state names, finished(), and the derived progress and time left.

#include "domain/job.h"

#include <doctest/doctest.h>

#include <string>

using zk::Job;
using zk::JobState;
using zk::Millis;

namespace {

Job job(JobState state, Millis created = 1000, Millis deadline = 11'000)
{
    Job j;
    j.state = state;
    j.created_ms = created;
    j.deadline_ms = deadline;
    j.duration_ms = static_cast<std::int32_t>(deadline - created);
    return j;
}

}  // namespace

TEST_CASE("state names")
{
    CHECK(std::string(zk::to_string(JobState::queued)) == "queued");
    CHECK(std::string(zk::to_string(JobState::running)) == "running");
    CHECK(std::string(zk::to_string(JobState::done)) == "done");
    CHECK(std::string(zk::to_string(JobState::cancelled)) == "cancelled");
    CHECK(std::string(zk::to_string(static_cast<JobState>(42))) == "unknown");
}

TEST_CASE("state values are persisted and must not change")
{
    CHECK(static_cast<int>(JobState::queued) == 0);
    CHECK(static_cast<int>(JobState::running) == 1);
    CHECK(static_cast<int>(JobState::done) == 2);
    CHECK(static_cast<int>(JobState::cancelled) == 3);
}

TEST_CASE("finished means done or cancelled")
{
    CHECK_FALSE(job(JobState::queued).finished());
    CHECK_FALSE(job(JobState::running).finished());
    CHECK(job(JobState::done).finished());
    CHECK(job(JobState::cancelled).finished());
}

TEST_CASE("progress of an unfinished job is the elapsed fraction, clamped to 0..1")
{
    for (JobState s : {JobState::queued, JobState::running}) {
        const Job j = job(s);
        CHECK(j.progress(1000) == doctest::Approx(0.0));
        CHECK(j.progress(3500) == doctest::Approx(0.25));
        CHECK(j.progress(6000) == doctest::Approx(0.5));
        CHECK(j.progress(11'000) == doctest::Approx(1.0));
        CHECK(j.progress(50'000) == doctest::Approx(1.0));  // overdue
        CHECK(j.progress(0) == doctest::Approx(0.0));       // clock behind creation
    }
}

TEST_CASE("progress of a done job is 1, of a cancelled job frozen at cancellation")
{
    Job d = job(JobState::done);
    d.finished_ms = 11'000;
    CHECK(d.progress(0) == doctest::Approx(1.0));
    CHECK(d.progress(5000) == doctest::Approx(1.0));

    Job c = job(JobState::cancelled);
    c.finished_ms = 3500;
    CHECK(c.progress(3500) == doctest::Approx(0.25));
    CHECK(c.progress(10'000) == doctest::Approx(0.25));
    CHECK(c.progress(1'000'000) == doctest::Approx(0.25));
}

TEST_CASE("a zero-length or inverted window reports no progress instead of dividing by zero")
{
    CHECK(job(JobState::running, 1000, 1000).progress(5000) == doctest::Approx(0.0));
    CHECK(job(JobState::running, 1000, 500).progress(5000) == doctest::Approx(0.0));
}

TEST_CASE("remaining_ms counts down to the deadline and never goes negative")
{
    for (JobState s : {JobState::queued, JobState::running}) {
        const Job j = job(s);
        CHECK(j.remaining_ms(1000) == 10'000);
        CHECK(j.remaining_ms(10'999) == 1);
        CHECK(j.remaining_ms(11'000) == 0);
        CHECK(j.remaining_ms(20'000) == 0);
    }
    CHECK(job(JobState::done).remaining_ms(1000) == 0);
    CHECK(job(JobState::cancelled).remaining_ms(1000) == 0);
}
