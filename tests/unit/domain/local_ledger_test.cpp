// LocalLedger: one worker whose memory is the truth. It hands over every
// stored job at start (restore), vouches for every held copy, never reads the
// store again (fetch and fetch_key say absent), lists from memory, and erases
// an expired result's row. Over the real CommitPipeline on MemoryDriver.

#include "domain/local_ledger.h"

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <vector>

#include "../support/memory_driver.h"
#include "../support/wait.h"
#include "domain/record_mapping.h"
#include "storage/commit_pipeline.h"

using namespace zk;
using test::wait_until;

namespace {

constexpr Millis t0 = 1'700'000'000'000;

struct Fixture {
    Fixture() = default;
    ~Fixture() { store.close(); }

    std::shared_ptr<test::MemoryDriver::Disk> disk = std::make_shared<test::MemoryDriver::Disk>();
    storage::CommitPipeline store{std::make_unique<test::MemoryDriver>(disk), std::chrono::milliseconds(0)};
    LocalLedger ledger{store};
};

Job job(Millis created, const char* animal = "elks", JobState state = JobState::running)
{
    Job j;
    j.id = JobId::generate(created);
    j.animal = animal;
    j.state = state;
    j.created_ms = j.started_ms = created;
    j.deadline_ms = created + 10'000;
    return j;
}

}  // namespace

TEST_CASE("local ledger: restore hands over every stored job, in id order, without a hold")
{
    Fixture f;
    std::vector<Job> stored;
    for (int i = 0; i < 5; ++i) {
        Job j = job(t0 + 4 - i, i % 2 ? "elks" : "koalas");
        j.owned = true;  // not stored
        stored.push_back(j);
        f.disk->rows[j.id.bytes()] = to_record(j);
    }
    std::vector<Job> handed;
    f.ledger.restore([&](Job&& j) { handed.push_back(std::move(j)); });
    REQUIRE(handed.size() == 5);
    for (std::size_t i = 0; i < handed.size(); ++i) {
        CHECK(handed[i].id == stored[4 - i].id);  // oldest id first
        CHECK(handed[i].animal == stored[4 - i].animal);
        CHECK_FALSE(handed[i].owned);
    }
}

TEST_CASE("local ledger: memory is the truth: every copy vouched for, the store never read")
{
    Fixture f;
    Job j = job(t0);
    CHECK(f.ledger.vouches(j, t0));
    CHECK(f.ledger.vouches(j, t0 + 1'000'000));  // past its deadline too: its completion is ours
    j.owned = false;
    CHECK(f.ledger.vouches(j, t0));
    CHECK(f.ledger.epoch() == 0);
    Ledger::Fetched read;
    read.epoch = 5;
    CHECK(f.ledger.stamp(read) == 0);

    f.disk->rows[j.id.bytes()] = to_record(j);  // even a row it could find
    CHECK(f.ledger.fetch(j.id).status == Ledger::Fetched::Status::absent);
    CHECK(f.ledger.fetch_key(IdempotencyKey{"", "k"}).status == Ledger::Fetched::Status::absent);
}

TEST_CASE("local ledger: list is newest first from memory, filtered and paged")
{
    Fixture f;
    JobTable held;
    std::vector<Job> jobs;
    for (int i = 0; i < 8; ++i) {
        jobs.push_back(job(t0 + i, i % 2 ? "elks" : "koalas", i == 3 ? JobState::cancelled : JobState::running));
        held.put(jobs.back());
    }
    JobFilter all;
    auto listed = f.ledger.list(all, held).value();
    REQUIRE(listed.size() == 8);
    for (std::size_t i = 0; i < listed.size(); ++i) CHECK(listed[i].id == jobs[7 - i].id);

    JobFilter page;
    page.limit = 3;
    page.before = jobs[6].id;
    listed = f.ledger.list(page, held).value();
    REQUIRE(listed.size() == 3);
    CHECK(listed[0].id == jobs[5].id);
    CHECK(listed[2].id == jobs[3].id);

    JobFilter elks;
    elks.animal = "elks";
    elks.state = JobState::running;
    listed = f.ledger.list(elks, held).value();
    CHECK(listed.size() == 3);  // 1, 5, 7 (3 is cancelled)
    JobFilter none;
    none.limit = 0;
    CHECK(f.ledger.list(none, held).value().empty());
}

TEST_CASE("local ledger: an expired result's row is erased, and the ledger counts it")
{
    Fixture f;
    const Job done = job(t0, "elks", JobState::done);
    const Job other = job(t0 + 1);
    f.disk->rows[done.id.bytes()] = to_record(done);
    f.disk->rows[other.id.bytes()] = to_record(other);
    CHECK(f.ledger.expired(done));
    CHECK(wait_until([&] {
        std::lock_guard lock(f.disk->mutex);
        return f.disk->rows.count(done.id.bytes()) == 0;
    }));
    std::lock_guard lock(f.disk->mutex);
    CHECK(f.disk->rows.count(other.id.bytes()) == 1);
}
