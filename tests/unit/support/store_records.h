// Records, ids and readers shared by the storage tests: ids whose byte order
// is their number's order, a printable form of a record, a full load, a
// histogram's counts, a write queued and waited for in one call, and a log of
// settled callbacks. Plus a temporary directory removed afterwards.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "storage/job_store.h"

// How doctest prints an outcome (found by argument-dependent lookup; doctest
// prints other enums as their number).
namespace zk::storage {
inline doctest::String toString(Durability d)
{
    switch (d) {
    case Durability::committed: return "committed";
    case Durability::skipped: return "skipped";
    case Durability::failed: return "failed";
    }
    return "?";
}
inline doctest::String toString(const std::optional<Durability>& d) { return d ? toString(*d) : "refused (nullopt)"; }
}  // namespace zk::storage

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

// A job as created: queued, nothing finished.
inline storage::JobRecord queued_record(std::uint64_t n)
{
    storage::JobRecord r = make_record(n);
    r.state = storage::RecordState::queued;
    r.started_ms = 0;
    r.finished_ms = 0;
    r.result.clear();
    return r;
}

// That job's finished record (done with a sentence, or cancelled) for a finish write.
inline storage::JobRecord finished_record(const storage::JobRecord& created, storage::RecordState state,
                                          std::int64_t finished_ms = 1'700'000'099'000)
{
    storage::JobRecord r = created;
    r.state = state;
    r.started_ms = created.created_ms + 5;
    r.finished_ms = finished_ms;
    r.result = state == storage::RecordState::done ? "Calm " + created.animal + " sleep wildly" : "";
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

// A deadline `ms` from now.
inline storage::JobStore::Deadline in(std::chrono::milliseconds ms) { return std::chrono::steady_clock::now() + ms; }

// Queues a write for the caller to commit and waits for it (10 s at most);
// nullopt when the store refused it.
inline std::optional<storage::Durability> put_wait(storage::JobStore& store, storage::WriteKind kind,
                                                   const storage::JobRecord& r)
{
    const auto seq = store.put(kind, r, storage::JobStore::Committer::caller);
    if (!seq) return std::nullopt;
    return store.wait(*seq, in(std::chrono::seconds(10)));
}
// What settled callbacks reported, in the order they ran: each tagged by
// the test, with the thread it ran on. Thread-safe; await() waits for a
// number of them.
class Settlements {
public:
    struct Entry {
        int tag;
        storage::Durability outcome;
        std::thread::id thread;
    };
    storage::JobStore::Settled callback(int tag)
    {
        return [this, tag](storage::Durability d) {
            {
                std::lock_guard lock(mutex_);
                entries_.push_back({tag, d, std::this_thread::get_id()});
            }
            changed_.notify_all();
        };
    }
    std::vector<Entry> entries() const
    {
        std::lock_guard lock(mutex_);
        return entries_;
    }
    std::size_t size() const
    {
        std::lock_guard lock(mutex_);
        return entries_.size();
    }
    std::vector<int> tags() const
    {
        std::vector<int> out;
        for (const Entry& e : entries()) out.push_back(e.tag);
        return out;
    }
    // The outcome of the one entry with this tag; nullopt if it has none or several.
    std::optional<storage::Durability> outcome(int tag) const
    {
        std::optional<storage::Durability> found;
        int n = 0;
        for (const Entry& e : entries())
            if (e.tag == tag) found = e.outcome, ++n;
        return n == 1 ? found : std::nullopt;
    }
    bool await(std::size_t n, std::chrono::milliseconds limit = std::chrono::seconds(10)) const
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, limit, [&] { return entries_.size() >= n; });
    }

private:
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::vector<Entry> entries_;
};

// While it lasts, no regular file of this process may grow or be written
// (RLIMIT_FSIZE 0: every write(2) fails with EFBIG, root included), as on a
// full disk; SIGXFSZ is ignored meanwhile. Pipes and terminals are exempt,
// so doctest's output still gets through unless it goes to a file: assert
// after lift(). The one fault that also fails SQLite's probe write as root
// (permissions do not stop root).
class NoFileWrites {
public:
    NoFileWrites()
    {
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved_) == 0);
        old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
        rlimit none = saved_;
        none.rlim_cur = 0;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &none) == 0);
        active_ = true;
    }
    ~NoFileWrites() { lift(); }
    NoFileWrites(const NoFileWrites&) = delete;
    NoFileWrites& operator=(const NoFileWrites&) = delete;
    void lift()
    {
        if (!active_) return;
        ::setrlimit(RLIMIT_FSIZE, &saved_);
        ::signal(SIGXFSZ, old_handler_);
        active_ = false;
    }

private:
    rlimit saved_{};
    sighandler_t old_handler_ = SIG_DFL;
    bool active_ = false;
};

// Something that holds the store's commits back (a lock, a gate) until
// release(), its destructor, or `limit` after it began, whichever is first,
// so that a test that goes wrong cannot hang.
class Held {
public:
    Held(std::function<void()> on_release, std::chrono::milliseconds limit) : release_(std::move(on_release))
    {
        watchdog_ = std::thread([this, limit] {
            std::unique_lock lock(mutex_);
            if (!cv_.wait_for(lock, limit, [&] { return released_; })) released_by_watchdog_ = true;
            lock.unlock();
            this->release();
        });
    }
    ~Held()
    {
        {
            std::lock_guard lock(mutex_);
            released_ = true;
        }
        cv_.notify_all();
        watchdog_.join();
    }
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    // Releases now (idempotent; any thread).
    void release()
    {
        std::call_once(once_, release_);
        {
            std::lock_guard lock(mutex_);
            released_ = true;
        }
        cv_.notify_all();
    }
    bool released_by_watchdog() const
    {
        std::lock_guard lock(mutex_);
        return released_by_watchdog_;
    }

private:
    std::function<void()> release_;
    std::once_flag once_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    bool released_ = false;
    bool released_by_watchdog_ = false;
    std::thread watchdog_;
};

}  // namespace zk::test
