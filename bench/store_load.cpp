// Measures the SQLite store (open_store: the pipeline over SqliteDriver): bulk insert throughput (put batches, each followed
// by wait_durable), request-like throughput and latency (threads each doing
// put then wait_durable) for several commit intervals, open time (with the
// integrity check), start-up load time and file size for N stored jobs.
//
// Not part of `make check`. Build and run from the repository root:
//   g++ -std=c++20 -O2 -Isrc -pthread bench/store_load.cpp build/libzookeeper.a -lsqlite3 -o build/store-load
//   build/store-load [--dir DIR] [--rows N] [--seconds S]

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "storage/store_factory.h"

namespace fs = std::filesystem;
using zk::storage::JobRecord;
using zk::storage::JobStore;
using zk::storage::RecordState;

using Clock = std::chrono::steady_clock;

namespace {

std::unique_ptr<JobStore> open_sqlite_store(const std::string& dir, std::chrono::milliseconds interval)
{
    return zk::storage::open_store(zk::storage::sqlite_options(dir, interval));
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A UUIDv7-shaped id: 48-bit ms timestamp, then a counter where the random bits go.
JobRecord make_record(std::uint64_t n, std::int64_t base_ms)
{
    JobRecord r;
    const auto ms = static_cast<std::uint64_t>(base_ms) + n / 64;
    for (int i = 0; i < 6; ++i) r.id[static_cast<std::size_t>(i)] = static_cast<unsigned char>(ms >> (40 - 8 * i));
    r.id[6] = 0x70;
    for (int i = 0; i < 8; ++i) r.id[static_cast<std::size_t>(8 + i)] = static_cast<unsigned char>(n >> (56 - 8 * i));
    r.animal = "aardvarks";
    r.created_ms = static_cast<std::int64_t>(ms);
    r.duration_ms = 10'000 + static_cast<std::int32_t>(n % 10'000);
    r.started_ms = r.created_ms + 1;
    r.deadline_ms = r.created_ms + r.duration_ms;
    // Most stored jobs are finished and carry their sentence.
    if (n % 5 != 0) {
        r.state = RecordState::done;
        r.finished_ms = r.deadline_ms;
        r.result = "Thirsty aardvarks sing carefully";
    } else {
        r.state = RecordState::running;
    }
    return r;
}

std::uintmax_t store_bytes(const std::string& dir)
{
    std::uintmax_t total = 0;
    for (const char* f : {"/jobs.db", "/jobs.db-wal", "/jobs.db-shm"}) {
        std::error_code ec;
        const auto n = fs::file_size(dir + f, ec);
        if (!ec) total += n;
    }
    return total;
}

void fill(const std::string& dir, std::uint64_t rows)
{
    constexpr std::uint64_t chunk = 10'000;
    const auto store_ptr = open_sqlite_store(dir, std::chrono::milliseconds(0));
    auto& store = *store_ptr;
    const auto t = Clock::now();
    for (std::uint64_t n = 0; n < rows;) {
        JobStore::Seq last = 0;
        for (const auto end = std::min(rows, n + chunk); n < end; ++n) last = store.put(make_record(n, 1'700'000'000'000), JobStore::Committer::writer);
        if (!store.wait_durable(last)) throw std::runtime_error("commit failed");
    }
    const double s = seconds_since(t);
    std::printf("fill      %llu rows in %.2f s: %.0f rows/s (batches of %llu, put + wait_durable)\n",
                static_cast<unsigned long long>(rows), s, static_cast<double>(rows) / s,
                static_cast<unsigned long long>(chunk));
    const auto c = Clock::now();
    store.close();
    std::printf("close     %.3f s (final checkpoint)\n", seconds_since(c));
    std::printf("size      %.1f MB (%.0f bytes/row)\n", static_cast<double>(store_bytes(dir)) / 1e6,
                static_cast<double>(store_bytes(dir)) / static_cast<double>(rows));
}

void reload(const std::string& dir)
{
    auto t = Clock::now();
    const auto store_ptr = open_sqlite_store(dir, std::chrono::milliseconds(0));
    auto& store = *store_ptr;
    std::printf("open      %.3f s (includes PRAGMA quick_check)\n", seconds_since(t));
    std::uint64_t count = 0, bytes = 0;
    t = Clock::now();
    store.load([&](JobRecord&& r) {
        ++count;
        bytes += r.result.size() + r.animal.size();
    });
    std::printf("load      %llu rows in %.3f s (%.0f ns/row; %llu text bytes)\n", static_cast<unsigned long long>(count),
                seconds_since(t), seconds_since(t) * 1e9 / static_cast<double>(count),
                static_cast<unsigned long long>(bytes));
}

// threads callers, each creating jobs one at a time and waiting for each, as
// the API does.
void request_like(const std::string& dir, int threads, std::chrono::milliseconds interval, double run_s)
{
    fs::remove_all(dir);
    const auto store_ptr = open_sqlite_store(dir, interval);
    auto& store = *store_ptr;
    std::atomic<bool> stop{false};
    std::vector<std::vector<double>> lat(static_cast<std::size_t>(threads));
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            auto& mine = lat[static_cast<std::size_t>(t)];
            for (std::uint64_t i = 0; !stop; ++i) {
                JobRecord r = make_record(i * 1024 + static_cast<std::uint64_t>(t), 1'800'000'000'000);
                const auto t0 = Clock::now();
                // Like a creation: the queued row, waited for by its caller.
                if (!store.wait_durable(store.put(r, JobStore::Committer::caller))) return;
                mine.push_back(seconds_since(t0) * 1e6);
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(run_s));
    stop = true;
    for (auto& th : pool) th.join();
    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    std::sort(all.begin(), all.end());
    const auto pct = [&](double p) { return all.empty() ? 0.0 : all[static_cast<std::size_t>(p * static_cast<double>(all.size() - 1))]; };
    std::printf("requests  threads=%-3d interval=%lldms  %8.0f creates/s  wait p50=%6.0f us  p99=%6.0f us  max=%6.0f us\n",
                threads, static_cast<long long>(interval.count()), static_cast<double>(all.size()) / run_s, pct(0.5),
                pct(0.99), all.empty() ? 0.0 : all.back());
}

}  // namespace

int main(int argc, char** argv)
{
    std::string dir = "/var/tmp/zk-store-bench";
    std::uint64_t rows = 1'000'000;
    double run_s = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!std::strcmp(argv[i], "--rows")) rows = std::stoull(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--seconds")) run_s = std::stod(argv[i + 1]);
    }
    try {
        fs::remove_all(dir);
        fill(dir, rows);
        reload(dir);
        for (const int threads : {1, 8, 64})
            for (const int ms : {0, 1, 2, 5}) request_like(dir + "-req", threads, std::chrono::milliseconds(ms), run_s);
        fs::remove_all(dir + "-req");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "store-load: %s\n", e.what());
        return 1;
    }
    return 0;
}
