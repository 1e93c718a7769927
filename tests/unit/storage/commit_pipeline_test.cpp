// CommitPipeline's own duties, seen from the driver's side (a MemoryDriver
// records what reaches it): coalesced batches sorted by id, the periodic
// sync after commits, a sticky failure, and one close. The JobStore
// behaviour every backend shares is in job_store_contract_test.cpp.

#include "storage/commit_pipeline.h"

#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "../support/memory_driver.h"
#include "../support/store_records.h"
#include "../support/wait.h"

using zk::storage::CommitPipeline;
using zk::storage::JobStore;
using zk::test::make_id;
using zk::test::make_record;
using zk::test::MemoryDriver;
using namespace std::chrono_literals;
constexpr auto by_caller = JobStore::Committer::caller;
constexpr auto by_writer = JobStore::Committer::writer;

namespace {

struct Fixture {
    std::shared_ptr<MemoryDriver::Disk> disk = std::make_shared<MemoryDriver::Disk>();
    std::vector<std::vector<MemoryDriver::Id>> commits() const
    {
        std::lock_guard lock(disk->mutex);
        return disk->commits;
    }
    int syncs() const
    {
        std::lock_guard lock(disk->mutex);
        return disk->syncs;
    }
    int closes() const
    {
        std::lock_guard lock(disk->mutex);
        return disk->closes;
    }
};

}  // namespace

TEST_SUITE("commit_pipeline") {

TEST_CASE("commit_pipeline: the driver gets each id's last write once, sorted by id")
{
    Fixture f;
    CommitPipeline store(std::make_unique<MemoryDriver>(f.disk), 1h);  // one batch, gathered until close
    store.put(make_record(3), by_writer);
    store.put(make_record(1), by_writer);
    store.put(make_record(3), by_writer);
    store.erase(make_id(2));
    store.put(make_record(2), by_writer);
    store.close();
    const auto commits = f.commits();
    REQUIRE(commits.size() == 1);
    CHECK(commits[0] == std::vector<MemoryDriver::Id>{make_id(1), make_id(2), make_id(3)});
}

TEST_CASE("commit_pipeline: a commit is followed by one sync within the sync interval")
{
    Fixture f;
    CommitPipeline store(std::make_unique<MemoryDriver>(f.disk), 0ms);
    CHECK(f.syncs() == 0);
    REQUIRE(store.wait_durable(store.put(make_record(1), by_caller)));
    CHECK(zk::test::wait_until([&] { return f.syncs() == 1; }, 5000ms));
    store.close();
    CHECK(f.syncs() == 1);  // nothing committed since: nothing more to sync
}

TEST_CASE("commit_pipeline: after a failed commit no write reaches the driver")
{
    Fixture f;
    CommitPipeline store(std::make_unique<MemoryDriver>(f.disk), 0ms);
    REQUIRE(store.wait_durable(store.put(make_record(1), by_caller)));
    {
        std::lock_guard lock(f.disk->mutex);
        f.disk->fail_commits = true;
    }
    CHECK_FALSE(store.wait_durable(store.put(make_record(2), by_caller)));
    {
        std::lock_guard lock(f.disk->mutex);
        f.disk->fail_commits = false;  // the backend would commit again: the store stays failed
    }
    CHECK_FALSE(store.wait_durable(store.put(make_record(3), by_writer)));
    CHECK_FALSE(store.healthy());
    CHECK(f.commits().size() == 1);
}

TEST_CASE("commit_pipeline: close closes the driver once, after the last commit")
{
    Fixture f;
    {
        CommitPipeline store(std::make_unique<MemoryDriver>(f.disk), 0ms);
        store.put(make_record(1), by_writer);
        store.close();
        CHECK(f.closes() == 1);
        CHECK(f.commits().size() == 1);  // the queued write went first
        store.close();
    }  // and the destructor
    CHECK(f.closes() == 1);
}

}  // TEST_SUITE
