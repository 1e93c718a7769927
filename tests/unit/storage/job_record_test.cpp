// The record's column table (storage/job_record.h), from which every
// backend's SQL, binds and reads are made: the column list, lookup by name,
// and for_each_column visiting each member once, in column order, with the
// type its kind promises. A mistake here breaks every backend at once, so it
// is pinned here, without a database.

#include "storage/job_record.h"

#include <doctest/doctest.h>

#include <cstddef>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "../support/store_records.h"

using zk::storage::Column;
using zk::storage::ColumnKind;
using zk::storage::columns;
using zk::storage::JobRecord;
using zk::storage::RecordId;
using zk::storage::RecordState;

namespace {

// Sets each field from its column's position, whatever its type.
struct FillByIndex {
    std::vector<std::size_t> seen;
    void operator()(const Column& c, std::size_t i, RecordId& v)
    {
        CHECK(c.kind == ColumnKind::uuid);
        for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<unsigned char>(i * 16 + k);
        seen.push_back(i);
    }
    void operator()(const Column& c, std::size_t i, std::string& v)
    {
        CHECK((c.kind == ColumnKind::text || c.kind == ColumnKind::bytes));
        v = std::string(c.name) + "#" + std::to_string(i);
        seen.push_back(i);
    }
    void operator()(const Column& c, std::size_t i, std::int64_t& v)
    {
        CHECK(c.kind == ColumnKind::integer);
        v = 1'000'000'000'000 + static_cast<std::int64_t>(i);
        seen.push_back(i);
    }
    void operator()(const Column& c, std::size_t i, std::int32_t& v)
    {
        CHECK(c.kind == ColumnKind::integer);
        v = 1000 + static_cast<std::int32_t>(i);
        seen.push_back(i);
    }
    void operator()(const Column& c, std::size_t i, RecordState& v)
    {
        CHECK(c.kind == ColumnKind::integer);
        v = static_cast<RecordState>(i % 4);
        seen.push_back(i);
    }
};

}  // namespace

TEST_SUITE("job_record") {

TEST_CASE("job_record: column_list names every column once, in table order")
{
    CHECK(zk::storage::column_list() ==
          "id, animal, state, created_ms, started_ms, deadline_ms, finished_ms, duration_ms, result, idem_scope, idem_key");
    std::set<std::string_view> names;
    for (const Column& c : columns) names.insert(c.name);
    CHECK(names.size() == columns.size());
}

TEST_CASE("job_record: column_index finds each column at its position; an unknown name is past the end")
{
    for (std::size_t i = 0; i < columns.size(); ++i) {
        INFO(columns[i].name);
        CHECK(zk::storage::column_index(columns[i].name) == i);
    }
    CHECK(zk::storage::column_index("result") == 8);
    CHECK(zk::storage::column_index("nonsense") == columns.size());
    CHECK(zk::storage::column_index("") == columns.size());
    CHECK(zk::storage::column_index("ID") == columns.size());  // exact names only
}

TEST_CASE("job_record: for_each_column visits every member once, in order, and a record filled field by field comes back equal")
{
    JobRecord filled;
    FillByIndex fill;
    zk::storage::for_each_column(filled, fill);
    REQUIRE(fill.seen.size() == columns.size());
    for (std::size_t i = 0; i < fill.seen.size(); ++i) CHECK(fill.seen[i] == i);

    // The same record written by hand, member by member: each column's value
    // landed in the member of that name.
    JobRecord expected;
    for (std::size_t k = 0; k < expected.id.size(); ++k) expected.id[k] = static_cast<unsigned char>(k);
    expected.animal = "animal#1";
    expected.state = RecordState::done;  // 2 % 4
    expected.created_ms = 1'000'000'000'003;
    expected.started_ms = 1'000'000'000'004;
    expected.deadline_ms = 1'000'000'000'005;
    expected.finished_ms = 1'000'000'000'006;
    expected.duration_ms = 1007;
    expected.result = "result#8";
    expected.idem_scope = "idem_scope#9";
    expected.idem_key = "idem_key#10";
    CHECK(zk::test::describe(filled) == zk::test::describe(expected));

    // Read back through a const record (the binding path): each member's
    // address is visited once, in the order the struct declares them.
    const JobRecord& view = filled;
    std::vector<std::ptrdiff_t> offsets;
    zk::storage::for_each_column(view, [&](const Column& c, std::size_t i, const auto& field) {
        CHECK(&c == &columns[i]);
        offsets.push_back(reinterpret_cast<const char*>(&field) - reinterpret_cast<const char*>(&view));
        static_assert(std::is_const_v<std::remove_reference_t<decltype(field)>>);
    });
    REQUIRE(offsets.size() == columns.size());
    for (std::size_t i = 1; i < offsets.size(); ++i) CHECK(offsets[i] > offsets[i - 1]);
    const auto offset_of = [&](const auto& member) {
        return reinterpret_cast<const char*>(&member) - reinterpret_cast<const char*>(&view);
    };
    CHECK(offsets.front() == offset_of(view.id));
    CHECK(offsets[8] == offset_of(view.result));
    CHECK(offsets.back() == offset_of(view.idem_key));
}

TEST_CASE("job_record: only the key columns are NULL when empty; a finish writes state, started, finished and result only")
{
    std::vector<std::string_view> nullable, on_finish;
    for (const Column& c : columns) {
        if (c.null_when_empty) nullable.push_back(c.name);
        if (c.changes_on_finish) on_finish.push_back(c.name);
    }
    CHECK(nullable == std::vector<std::string_view>{"idem_scope", "idem_key"});
    CHECK(on_finish == std::vector<std::string_view>{"state", "started_ms", "finished_ms", "result"});
    CHECK(columns[0].kind == ColumnKind::uuid);  // the drivers bind the id as the first parameter
    CHECK(columns[zk::storage::column_index("result")].kind == ColumnKind::bytes);
}

}  // TEST_SUITE
