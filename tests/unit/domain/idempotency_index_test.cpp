// The key index: claims, commits, scopes kept apart, release by the holder only.

#include "domain/idempotency_index.h"

#include <doctest/doctest.h>

#include "../support/pool_fixture.h"

using zk::IdempotencyIndex;
using zk::IdempotencyKey;
using zk::JobId;

TEST_SUITE("idempotency_index") {

TEST_CASE("idempotency index: the first claim wins; later ones are told the holder")
{
    IdempotencyIndex index;
    const JobId a = JobId::generate(zk::test::t0), b = JobId::generate(zk::test::t0 + 1);
    const IdempotencyKey key{"127.0.0.1", "k"};
    CHECK_FALSE(index.claim(key, a, "elks"));
    const auto holder = index.claim(key, b, "bisons");
    REQUIRE(holder);
    CHECK(holder->job == a);
    CHECK(holder->animal == "elks");
    CHECK_FALSE(holder->committed);
    index.commit(key, b);  // not the holder: no effect
    CHECK_FALSE(index.find(key)->committed);
    index.commit(key, a);
    CHECK(index.find(key)->committed);
}

TEST_CASE("idempotency index: one key in two scopes is two keys, and no pair spells another")
{
    IdempotencyIndex index;
    const JobId a = JobId::generate(zk::test::t0), b = JobId::generate(zk::test::t0 + 1);
    CHECK_FALSE(index.claim({"10.0.0.1", "k"}, a, "elks"));
    CHECK_FALSE(index.claim({"10.0.0.2", "k"}, b, "elks"));
    CHECK_FALSE(index.claim({"10.0.0.1k", ""}, b, "elks"));  // not the same as ("10.0.0.1", "k")
    CHECK_FALSE(index.claim({"1", "0.0.0.1k"}, b, "elks"));
    CHECK(index.find({"10.0.0.2", "k"})->job == b);
    CHECK(index.size() == 4);
}

TEST_CASE("idempotency index: release frees the key only for its holder; restore is committed")
{
    IdempotencyIndex index;
    const JobId a = JobId::generate(zk::test::t0), b = JobId::generate(zk::test::t0 + 1);
    const IdempotencyKey key{"", "k"};
    index.restore(key, a, "elks");
    CHECK(index.find(key)->committed);
    index.release(key, b);
    CHECK(index.find(key));
    index.release(key, a);
    CHECK_FALSE(index.find(key));
    CHECK_FALSE(index.claim(key, b, "elks"));  // free again
}

}  // TEST_SUITE
