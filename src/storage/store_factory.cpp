// Picks the driver for StoreOptions::backend and wraps it in the pipeline.

#include "storage/store_factory.h"

#include "storage/commit_pipeline.h"
#include "storage/postgres_driver.h"
#include "storage/sqlite_driver.h"

namespace zk::storage {

StoreOptions sqlite_options(std::string dir, std::chrono::milliseconds commit_interval)
{
    StoreOptions o;
    o.dir = std::move(dir);
    o.commit_interval = commit_interval;
    return o;
}

std::unique_ptr<JobStore> open_store(const StoreOptions& options)
{
    std::unique_ptr<Driver> driver;
    switch (options.backend) {
    case Backend::sqlite:
        driver = open_sqlite_driver(options.dir, options.reconnect_interval, options.statement_timeout);
        break;
    case Backend::postgresql:
        driver = std::make_unique<PostgresDriver>(PostgresOptions{options.url, options.read_connections,
                                                                  options.statement_timeout, options.connect_timeout,
                                                                  options.reconnect_interval});
        break;
    }
    if (!driver) throw StoreError("unknown store backend");
    return std::make_unique<CommitPipeline>(std::move(driver), options.commit_interval);
}

}  // namespace zk::storage
