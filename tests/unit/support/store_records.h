// Records, ids and readers shared by the storage tests: ids whose byte order
// is their number's order, a printable form of a record, a full load, and a
// histogram's counts. Plus a temporary directory removed afterwards.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <stdlib.h>

#include "storage/job_store.h"

namespace zk::test {

struct TempDir {
    std::filesystem::path path;
    TempDir()
    {
        char tmpl[] = "/tmp/zk-store-test-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir()
    {
        namespace fs = std::filesystem;
        std::error_code ec;
        fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string str(const char* sub = "state") const { return (path / sub).string(); }
};

// Ids whose byte order is n's order, like UUIDv7s created one after another.
inline std::array<unsigned char, 16> make_id(std::uint64_t n)
{
    std::array<unsigned char, 16> id{};
    for (int i = 0; i < 8; ++i) id[static_cast<std::size_t>(i)] = static_cast<unsigned char>(n >> (56 - 8 * i));
    id[8] = 0x7a;
    id[15] = static_cast<unsigned char>(n * 31);
    return id;
}

inline storage::JobRecord make_record(std::uint64_t n)
{
    using storage::RecordState;
    storage::JobRecord r;
    r.id = make_id(n);
    r.animal = "aardvarks";
    r.state = static_cast<RecordState>(n % 4);
    r.created_ms = 1'700'000'000'000 + static_cast<std::int64_t>(n);
    r.started_ms = r.created_ms + 1;
    r.deadline_ms = r.created_ms + 15'000;
    r.finished_ms = r.state == RecordState::done ? r.deadline_ms : 0;
    r.duration_ms = 15'000;
    r.result = r.state == RecordState::done ? "Thirsty aardvarks sing carefully" : "";
    return r;
}

inline std::string describe(const storage::JobRecord& r)
{
    std::string s;
    for (unsigned char c : r.id) s += std::to_string(c) + ".";
    return s + " " + r.animal + " " + std::to_string(static_cast<int>(r.state)) + " " +
           std::to_string(r.created_ms) + " " + std::to_string(r.started_ms) + " " + std::to_string(r.deadline_ms) +
           " " + std::to_string(r.finished_ms) + " " + std::to_string(r.duration_ms) + " [" + r.result + "] scope[" + r.idem_scope + "] key[" + r.idem_key + "]";
}

inline std::vector<storage::JobRecord> load_all(storage::JobStore& store)
{
    std::vector<storage::JobRecord> rows;
    store.load([&](storage::JobRecord&& r) { rows.push_back(std::move(r)); });
    return rows;
}

// The count of a histogram snapshot (its +Inf bucket), and the cumulative
// count at an upper bound it has.
inline std::uint64_t count_of(const Histogram::Snapshot& h) { return h.cumulative.empty() ? 0 : h.cumulative.back(); }
inline std::uint64_t bucket_at(const Histogram::Snapshot& h, double le)
{
    const auto at = std::find(h.bounds.begin(), h.bounds.end(), le);
    REQUIRE(at != h.bounds.end());
    return h.cumulative[static_cast<std::size_t>(at - h.bounds.begin())];
}

}  // namespace zk::test
