// The persisted form of one job, and its columns listed once: each backend
// makes its SQL column lists, binds and reads from `columns` and
// for_each_column(), so no driver maps the record by hand or reads by position.
// Plain fields only, so storage knows nothing of the domain's types.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

namespace zk::storage {

// Matches zk::JobState's numeric values; stored as an integer column.
enum class RecordState : std::uint8_t { queued = 0, running = 1, done = 2, cancelled = 3 };

using RecordId = std::array<unsigned char, 16>;

struct JobRecord {
    RecordId id{};  // raw UUID bytes (UUIDv7, time-ordered)
    std::string animal;
    RecordState state = RecordState::queued;
    std::int64_t created_ms = 0;   // wall clock, ms since the Unix epoch
    std::int64_t started_ms = 0;   // 0 while queued
    std::int64_t deadline_ms = 0;  // fixed at creation
    std::int64_t finished_ms = 0;  // 0 until done or cancelled
    std::int32_t duration_ms = 0;  // planned survey length
    std::string result;            // the sentence, once done
    // The creation's Idempotency-Key and the client scope it belongs to
    // (http/idempotency_key.h); both empty (stored NULL) when the creation
    // sent none. A store keeps (scope, key) unique among the jobs it holds.
    std::string idem_scope;
    std::string idem_key;

    bool finished() const { return state == RecordState::done || state == RecordState::cancelled; }
};

// How a column is stored: each backend maps the kind to its own type.
enum class ColumnKind : std::uint8_t {
    uuid,     // RecordId: BLOB (SQLite), uuid (PostgreSQL)
    text,     // std::string
    integer,  // RecordState, std::int32_t, std::int64_t
    bytes,    // std::string kept as given: TEXT (SQLite), bytea (PostgreSQL)
};

struct Column {
    std::string_view name;
    ColumnKind kind;
    bool null_when_empty;  // an empty string is stored as NULL (the key columns)
    // Written again when a job finishes (WriteKind::finish); the rest never change.
    bool changes_on_finish;
};

inline constexpr std::array<Column, 11> columns{{
    {"id", ColumnKind::uuid, false, false},
    {"animal", ColumnKind::text, false, false},
    {"state", ColumnKind::integer, false, true},
    {"created_ms", ColumnKind::integer, false, false},
    {"started_ms", ColumnKind::integer, false, true},
    {"deadline_ms", ColumnKind::integer, false, false},
    {"finished_ms", ColumnKind::integer, false, true},
    {"duration_ms", ColumnKind::integer, false, false},
    {"result", ColumnKind::bytes, false, true},
    {"idem_scope", ColumnKind::text, true, false},
    {"idem_key", ColumnKind::text, true, false},
}};

// Whether a write binds the column: every one for a creation; for a finish
// or a cancel (finish_only), the id and the columns a finish writes.
constexpr bool binds(const Column& c, bool finish_only)
{
    return !finish_only || c.changes_on_finish || c.kind == ColumnKind::uuid;
}

// The members in the order of `columns`.
inline constexpr auto column_members =
    std::make_tuple(&JobRecord::id, &JobRecord::animal, &JobRecord::state, &JobRecord::created_ms,
                    &JobRecord::started_ms, &JobRecord::deadline_ms, &JobRecord::finished_ms,
                    &JobRecord::duration_ms, &JobRecord::result, &JobRecord::idem_scope, &JobRecord::idem_key);
static_assert(std::tuple_size_v<decltype(column_members)> == columns.size(), "one member per column");

// Calls f(columns[i], i, field) for every column, in order; `record` may be
// const (binding) or not (reading).
template <class Record, class F>
void for_each_column(Record& record, F&& f)
{
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (f(columns[I], I, record.*std::get<I>(column_members)), ...);
    }(std::make_index_sequence<columns.size()>{});
}

// "id, animal, state, ..." — every column's name, comma-separated.
std::string column_list();
// The index of a column by name (the position a SELECT of column_list() returns it at).
std::size_t column_index(std::string_view name);

}  // namespace zk::storage
