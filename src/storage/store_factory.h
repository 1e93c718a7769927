// Opens the configured backend behind the shared CommitPipeline: the one
// place that names the drivers. Plain options: storage knows nothing of config/.
#pragma once

#include <chrono>
#include <memory>
#include <cstddef>
#include <string>

#include "storage/job_store.h"

namespace zk::storage {

enum class Backend { sqlite, postgresql };

struct StoreOptions {
    Backend backend = Backend::sqlite;
    std::string dir;  // sqlite: the directory holding jobs.db
    // How often the writer tries again while the store is unavailable.
    std::chrono::milliseconds reconnect_interval{1000};
    // The longest one statement may take: PostgreSQL's statement_timeout
    // (a round trip's deadline adds deadline_margin), SQLite's wait for
    // another connection's write lock. The service passes the config's.
    std::chrono::milliseconds statement_timeout{5000};
    // postgresql: the libpq connection string, the read pool's size, the
    // longest wait for a new connection.
    std::string url;
    std::size_t read_connections = 4;
    std::chrono::seconds connect_timeout{5};
    // How long the writer may gather a small batch; 0 commits at once.
    std::chrono::milliseconds commit_interval{0};
};

// The options of a SQLite store in dir (tests, benchmarks).
StoreOptions sqlite_options(std::string dir, std::chrono::milliseconds commit_interval);

// Throws StoreError (naming what) when the store cannot be opened.
std::unique_ptr<JobStore> open_store(const StoreOptions& options);

}  // namespace zk::storage
